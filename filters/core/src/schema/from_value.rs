//! Typed fields read by hand out of a `serde_json::Value` the request was already parsed into
//! (`tools`, `response_format` and `tool_calls` of a Chat Completions request, kept in its
//! `other` map or a message's raw fields).
//!
//! `serde_json::from_value` would do the same, but it is a second deserializer for every type
//! read that way (beside the body's own reader), and an internally tagged enum
//! (`response_format`) buffers into serde's `Content` tree on top: ~10 KB of the translate
//! module for three small types (issue #16). These read the fields the translators use and
//! ignore the others, as derive does.

use serde_json::{Map, Value};

/// The object `value` is; otherwise an error naming what it was instead.
pub fn object(value: Value, what: &str) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(invalid_type(&other, what)),
    }
}

/// The field `name`, `null` counted as absent (as `#[serde(default)] Option<T>` reads it).
pub fn optional(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    map.remove(name).filter(|v| !v.is_null())
}

/// The string field `name`, which must be there.
pub fn string(map: &mut Map<String, Value>, name: &str) -> Result<String, String> {
    match map.remove(name) {
        Some(value) => as_string(value, name),
        None => Err(format!("missing field `{name}`")),
    }
}

/// The string field `name`; absent or `null` is `None`.
pub fn optional_string(map: &mut Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    optional(map, name).map(|v| as_string(v, name)).transpose()
}

/// The boolean field `name`; absent or `null` is `None`.
pub fn optional_bool(map: &mut Map<String, Value>, name: &str) -> Result<Option<bool>, String> {
    match optional(map, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(format!("`{name}`: {}", invalid_type(&other, "a boolean"))),
    }
}

fn as_string(value: Value, name: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(format!("`{name}`: {}", invalid_type(&other, "a string"))),
    }
}

/// serde's wording: `invalid type: a number, expected a string`.
pub fn invalid_type(seen: &Value, expected: &str) -> String {
    let seen = match seen {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("invalid type: {seen}, expected {expected}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_read_and_null_is_absent() {
        let mut map = object(json!({"a": "x", "b": null, "c": true, "d": 5}), "an object").unwrap();
        assert_eq!(string(&mut map, "a").unwrap(), "x");
        assert_eq!(optional_string(&mut map, "b").unwrap(), None);
        assert_eq!(optional_bool(&mut map, "c").unwrap(), Some(true));
        assert_eq!(
            optional_string(&mut map, "d").unwrap_err(),
            "`d`: invalid type: a number, expected a string"
        );
        assert_eq!(string(&mut map, "zz").unwrap_err(), "missing field `zz`");
        assert_eq!(
            object(json!([1]), "a tool").unwrap_err(),
            "invalid type: an array, expected a tool"
        );
    }
}
