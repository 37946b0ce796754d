//! Tools, JSON output and images, shared by every mock API.
//!
//! `[mock:tool=NAME]` (or `[mock:tool=A,B]` for parallel calls) in the last user message makes
//! the mock answer with calls of those tools (when the request declares them), with arguments
//! generated from each tool's parameter schema. After a tool result, the mock answers text
//! quoting it. A JSON response format (or a forced tool) gets a JSON answer generated from the
//! schema, so clients can parse and check it.

use serde_json::{json, Map, Value};

/// Tool names asked for by `[mock:tool=...]` in `text`.
pub fn requested_tools(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[mock:tool=") {
        let after = &rest[start + "[mock:tool=".len()..];
        let Some(end) = after.find(']') else {
            break;
        };
        out.extend(
            after[..end]
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        rest = &after[end + 1..];
    }
    out
}

/// A value that satisfies `schema` (the common JSON Schema / OpenAPI keywords).
pub fn value_for_schema(schema: &Value, name: &str) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(any) = schema
        .get("anyOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return value_for_schema(any, name);
    }
    let typ = match schema.get("type") {
        Some(Value::String(t)) => t.to_ascii_lowercase(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_ascii_lowercase(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "string".into(),
    };
    match typ.as_str() {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, sub) in props {
                    out.insert(key.clone(), value_for_schema(sub, key));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let item = schema.get("items").cloned().unwrap_or(json!({}));
            json!([value_for_schema(&item, name)])
        }
        "integer" => json!(42),
        "number" => json!(4.5),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => json!(format!("mock {name}")),
    }
}

/// Standard base64 (padding optional), as inline image data must be.
pub fn is_base64(data: &str) -> bool {
    let trimmed = data.trim_end_matches('=');
    !data.is_empty()
        && data.len() - trimmed.len() <= 2
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && trimmed.len() % 4 != 1
}

/// Checks an OpenAI `image_url.url`: an http(s) URL, or a `data:` URL with valid base64.
pub fn check_openai_image_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("data:") else {
        return Err("Invalid image URL: expected a URL or a base64 data URL.".into());
    };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err("Invalid base64 image_url.".into());
    };
    if !meta.starts_with("image/") || !meta.ends_with(";base64") || !is_base64(data) {
        return Err("Invalid base64 image_url.".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_found() {
        assert_eq!(requested_tools("x [mock:tool=a, b] y"), vec!["a", "b"]);
        assert!(requested_tools("none").is_empty());
    }

    #[test]
    fn values_follow_schemas() {
        let schema = json!({"type":"object","properties":{
            "city":{"type":"string"},"n":{"type":"integer"},"u":{"enum":["c","f"]},
            "tags":{"type":"array","items":{"type":"string"}}}});
        assert_eq!(
            value_for_schema(&schema, "x"),
            json!({"city":"mock city","n":42,"u":"c","tags":["mock tags"]})
        );
    }

    #[test]
    fn base64_is_checked() {
        assert!(is_base64("iVBORw0KGgo="));
        assert!(!is_base64("not base64!"));
        assert!(check_openai_image_url("data:image/png;base64,iVBORw0KGgo=").is_ok());
        assert!(check_openai_image_url("data:image/png;base64,@@").is_err());
    }
}
