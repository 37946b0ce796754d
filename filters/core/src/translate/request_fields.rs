//! OpenAI request features the non-OpenAI translators map (tools, tool choice, structured
//! output, images, tool call history) and the configured field drops, read once from the
//! parsed request so each translator only decides how its provider spells them.
//!
//! References: tools and `tool_choice`
//! <https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools>, structured
//! output <https://platform.openai.com/docs/guides/structured-outputs>, images
//! <https://platform.openai.com/docs/guides/images-vision>.

use std::borrow::Cow;

use serde_json::Value;

use crate::error::ApiError;
use crate::schema::openai as oa;

/// The features taken out of [`oa::ChatCompletionRequest::other`].
#[derive(Debug, Default)]
pub struct Features {
    pub tools: Vec<oa::ToolParam>,
    pub tool_choice: Option<oa::ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<oa::ResponseFormat>,
    pub seed: Option<i64>,
}

/// Removes the fields the provider's config says to drop, wherever the request keeps them.
pub fn drop_fields(request: &mut oa::ChatCompletionRequest<'_>, names: &[String]) {
    for name in names {
        match name.as_str() {
            "max_tokens" => request.max_tokens = None,
            "max_completion_tokens" => request.max_completion_tokens = None,
            "temperature" => request.temperature = None,
            "top_p" => request.top_p = None,
            "stop" => request.stop = None,
            "stream_options" => request.stream_options = None,
            "user" => request.user = None,
            other => {
                request.other.remove(other);
            }
        }
    }
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// Takes tools, tool choice, response format and seed out of `other` (a `null` counts as
/// absent), checking their shape. What is left in `other` is for the translator to refuse.
pub fn take_features(
    other: &mut std::collections::BTreeMap<String, Value>,
) -> Result<Features, ApiError> {
    let mut take = |name: &str| other.remove(name).filter(|v| !v.is_null());
    let mut features = Features::default();
    if let Some(tools) = take("tools") {
        let Value::Array(list) = tools else {
            return Err(invalid("`tools` must be an array", "tools"));
        };
        for (i, tool) in list.into_iter().enumerate() {
            let tool: oa::ToolParam = serde_json::from_value(tool)
                .map_err(|err| invalid(format!("invalid tool: {err}"), format!("tools[{i}]")))?;
            if tool.kind != "function" {
                return Err(invalid(
                    format!(
                        "tool type `{}` is not supported; only `function`",
                        tool.kind
                    ),
                    format!("tools[{i}].type"),
                ));
            }
            features.tools.push(tool);
        }
    }
    if let Some(choice) = take("tool_choice") {
        let parsed = oa::ToolChoice::parse(&choice).ok_or_else(|| {
            invalid(
                "`tool_choice` must be \"none\", \"auto\", \"required\" or a named function",
                "tool_choice",
            )
        })?;
        if let oa::ToolChoice::Named(name) = &parsed {
            if !features.tools.iter().any(|t| &t.function.name == name) {
                return Err(invalid(
                    format!("`tool_choice` names `{name}`, which is not in `tools`"),
                    "tool_choice",
                ));
            }
        }
        if parsed != oa::ToolChoice::None && features.tools.is_empty() {
            return Err(invalid(
                "`tool_choice` is only allowed when `tools` are specified",
                "tool_choice",
            ));
        }
        features.tool_choice = Some(parsed);
    }
    if let Some(parallel) = take("parallel_tool_calls") {
        features.parallel_tool_calls = Some(parallel.as_bool().ok_or_else(|| {
            invalid(
                "`parallel_tool_calls` must be a boolean",
                "parallel_tool_calls",
            )
        })?);
    }
    if let Some(format) = take("response_format") {
        let format: oa::ResponseFormat = serde_json::from_value(format).map_err(|err| {
            invalid(
                format!("invalid `response_format`: {err}"),
                "response_format",
            )
        })?;
        features.response_format = Some(format);
    }
    if let Some(seed) = take("seed") {
        features.seed = Some(
            seed.as_i64()
                .ok_or_else(|| invalid("`seed` must be an integer", "seed"))?,
        );
    }
    Ok(features)
}

/// The forced tool's name for `response_format: json_object` (a `json_schema` uses its name).
pub const JSON_ANSWER_TOOL: &str = "json_answer";

/// What the forced answer tool tells the model when the schema carries no description.
const ANSWER_DESCRIPTION: &str = "Give the answer as this tool's input, in JSON.";

/// The forced tool standing for `response_format` `json_object` / `json_schema` on providers
/// without a native JSON mode (Anthropic, Bedrock Converse): the model must call it, and its
/// input is the answer, returned to the client as message content.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerTool {
    pub name: String,
    pub description: String,
    /// A JSON Schema object whose root, if typed, is an object (tool input always is).
    pub schema: Value,
}

/// OpenAI's rule for a `json_schema` name (`a-z`, `A-Z`, `0-9`, `_`, `-`, at most 64), which
/// is also Anthropic's and Converse's rule for tool names.
pub fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Takes `response_format` out of `features` as the forced [`AnswerTool`], if it asks for
/// JSON. A forced tool leaves the model no other tool to call, so `tools` with it are a 400
/// naming `response_format` (`provider` names the provider in the message).
pub fn answer_tool(
    features: &mut Features,
    provider: &str,
) -> Result<Option<AnswerTool>, ApiError> {
    let (name, description, schema) = match features.response_format.take() {
        None | Some(oa::ResponseFormat::Text) => return Ok(None),
        Some(oa::ResponseFormat::JsonObject) => (JSON_ANSWER_TOOL.to_string(), None, None),
        Some(oa::ResponseFormat::JsonSchema { json_schema }) => (
            json_schema.name,
            json_schema.description,
            json_schema.schema,
        ),
    };
    if !features.tools.is_empty() {
        return Err(invalid(
            format!(
                "`response_format` cannot be combined with `tools` for {provider}: \
                 structured output is a forced tool there"
            ),
            "response_format",
        ));
    }
    if !valid_tool_name(&name) {
        return Err(invalid(
            "`response_format.json_schema.name` must be 1 to 64 of `a-z`, `A-Z`, `0-9`, `_`, `-`",
            "response_format.json_schema.name",
        ));
    }
    let schema = schema.unwrap_or_else(|| serde_json::json!({"type": "object"}));
    let object_root = match &schema {
        Value::Object(map) => map.get("type").is_none_or(|t| t == "object"),
        _ => false,
    };
    if !object_root {
        return Err(invalid(
            format!(
                "`response_format.json_schema.schema` must be a JSON Schema of an object for \
                 {provider} (the answer is a tool's input)"
            ),
            "response_format.json_schema.schema",
        ));
    }
    Ok(Some(AnswerTool {
        name,
        description: description
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| ANSWER_DESCRIPTION.to_string()),
        schema,
    }))
}

/// A `data:<media type>;base64,<data>` URL, split.
pub struct DataUrl<'a> {
    pub media_type: &'a str,
    pub data: &'a str,
}

pub fn data_url(url: &str) -> Option<DataUrl<'_>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    if media_type.is_empty() || data.is_empty() {
        return None;
    }
    Some(DataUrl { media_type, data })
}

/// An assistant message's `tool_calls`, typed.
pub fn tool_calls(value: Option<Value>, at: &str) -> Result<Vec<oa::ToolCallParam>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(value) => serde_json::from_value(value)
            .map_err(|err| invalid(format!("invalid `tool_calls`: {err}"), at.to_string())),
    }
}

/// A tool call's `arguments` (JSON text) as the object providers take. Empty text is `{}`.
pub fn arguments_object(arguments: &str, at: &str) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(invalid(
            "tool call `arguments` must be a JSON object",
            at.to_string(),
        )),
    }
}

/// A tool message's content as text (tool results are text in OpenAI's format).
pub fn tool_result_text<'a>(
    content: Option<oa::Content<'a>>,
    at: &str,
) -> Result<Cow<'a, str>, ApiError> {
    match content {
        None => Ok(Cow::Borrowed("")),
        Some(oa::Content::Text(text)) => Ok(text),
        Some(oa::Content::Parts(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.into_iter().enumerate() {
                match part {
                    oa::ContentPart::Text { text: t } => text.push_str(&t),
                    _ => {
                        return Err(invalid(
                            "tool results may only hold text parts",
                            format!("{at}[{j}]"),
                        ))
                    }
                }
            }
            Ok(Cow::Owned(text))
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn other(json: &str) -> std::collections::BTreeMap<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn features_are_taken_and_checked() {
        let mut o = other(
            r#"{"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],
                "tool_choice":{"type":"function","function":{"name":"f"}},
                "seed":7,"response_format":{"type":"json_object"},"n":2}"#,
        );
        let f = take_features(&mut o).unwrap();
        assert_eq!(f.tools.len(), 1);
        assert_eq!(f.tool_choice, Some(oa::ToolChoice::Named("f".into())));
        assert_eq!(f.seed, Some(7));
        assert!(matches!(
            f.response_format,
            Some(oa::ResponseFormat::JsonObject)
        ));
        assert_eq!(o.keys().collect::<Vec<_>>(), vec!["n"]);
    }

    #[test]
    fn bad_features_name_the_param() {
        for (json, param) in [
            (r#"{"tools":{}}"#, "tools"),
            (
                r#"{"tools":[{"type":"code_interpreter","function":{"name":"f"}}]}"#,
                "tools[0].type",
            ),
            (r#"{"tool_choice":"auto"}"#, "tool_choice"),
            (
                r#"{"tools":[{"type":"function","function":{"name":"f"}}],
                    "tool_choice":{"type":"function","function":{"name":"g"}}}"#,
                "tool_choice",
            ),
            (r#"{"response_format":{"type":"xml"}}"#, "response_format"),
            (r#"{"seed":"x"}"#, "seed"),
        ] {
            let err = take_features(&mut other(json)).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{json}");
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn response_format_becomes_one_forced_answer_tool() {
        let answer =
            |json: &str| take_features(&mut other(json)).and_then(|mut f| answer_tool(&mut f, "P"));
        assert_eq!(
            answer(r#"{"response_format":{"type":"text"}}"#).unwrap(),
            None
        );
        let open = answer(r#"{"response_format":{"type":"json_object"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(open.name, JSON_ANSWER_TOOL);
        assert_eq!(open.schema, serde_json::json!({"type": "object"}));
        let named = answer(
            r#"{"response_format":{"type":"json_schema","json_schema":{"name":"p","description":" ",
                "schema":{"properties":{"a":{"type":"string"}}}}}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(named.name, "p");
        assert_eq!(named.description, ANSWER_DESCRIPTION);
        assert_eq!(named.schema["properties"]["a"]["type"], "string");
        let err = answer(
            r#"{"tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("response_format"));
        assert!(err.message.contains("for P: structured"), "{}", err.message);
    }

    #[test]
    fn data_urls_and_arguments() {
        let d = data_url("data:image/png;base64,iVBORw0=").unwrap();
        assert_eq!((d.media_type, d.data), ("image/png", "iVBORw0="));
        assert!(data_url("https://example.com/a.png").is_none());
        assert!(data_url("data:image/png,raw").is_none());
        assert_eq!(arguments_object("", "a").unwrap(), serde_json::json!({}));
        assert!(arguments_object("[1]", "a").is_err());
    }
}
