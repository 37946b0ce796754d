//! OpenAI request features the non-OpenAI translators map (tools, tool choice, structured
//! output, images, tool call history) and the configured field drops, read once from the
//! parsed request so each translator only decides how its provider spells them; and the steps
//! every translator takes with a request body (parse it, pick the model, encode the result).
//!
//! References: the request
//! <https://platform.openai.com/docs/api-reference/chat/create>, tools and `tool_choice`
//! <https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools>, structured
//! output <https://platform.openai.com/docs/guides/structured-outputs>, images
//! <https://platform.openai.com/docs/guides/images-vision>.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::reasoning::Effort;
use crate::error::ApiError;
use crate::schema::openai as oa;

// ---------------------------------------------------------------------------------------------
// The request body

/// The body as an OpenAI chat completions request; a 400 when it is not one.
pub fn parse_request(body: &[u8]) -> Result<oa::ChatCompletionRequest<'_>, ApiError> {
    crate::json::from_slice(body).map_err(|err| {
        ApiError::invalid_request(format!(
            "the request body is not a valid chat completions request: {err}"
        ))
    })
}

/// Did the client ask for a stream with its usage (`stream_options.include_usage`)? Then the
/// translated stream ends with a usage chunk, as OpenAI's does.
pub fn wants_stream_usage(request: &oa::ChatCompletionRequest<'_>) -> bool {
    request.stream == Some(true)
        && request
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
}

/// The model the provider is asked for: router's name for it at this provider (`upstream`),
/// else the one the body names (`requested`); a 400 naming `model` when there is neither.
pub fn chosen_model<T>(upstream: Option<T>, requested: Option<T>) -> Result<T, ApiError> {
    upstream
        .or(requested)
        .ok_or_else(|| invalid("`model` is required", "model"))
}

/// The provider's request body, encoded.
pub fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(body).map_err(unencodable)
}

/// Not generic, so one copy serves every [`encode`].
fn unencodable(err: serde_json::Error) -> ApiError {
    ApiError::invalid_request(format!("the request body: {err}"))
}

// ---------------------------------------------------------------------------------------------
// Features

/// The features taken out of [`oa::ChatCompletionRequest::other`].
#[derive(Debug, Default)]
pub struct Features {
    pub tools: Vec<oa::ToolParam>,
    pub tool_choice: Option<oa::ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<oa::ResponseFormat>,
    pub seed: Option<i64>,
    /// `reasoning_effort`, for the translator's thinking budget ([`super::reasoning`]).
    pub reasoning_effort: Option<Effort>,
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

/// A 400 naming the request field `param`.
pub fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// Takes tools, tool choice, response format, seed and reasoning effort out of `other` (a `null` counts as
/// absent), checking their shape. What is left in `other` is for the translator to refuse.
pub fn take_features(other: &mut BTreeMap<String, Value>) -> Result<Features, ApiError> {
    let mut take = |name: &str| other.remove(name).filter(|v| !v.is_null());
    let mut features = Features::default();
    if let Some(tools) = take("tools") {
        let Value::Array(list) = tools else {
            return Err(invalid("`tools` must be an array", "tools"));
        };
        for (i, tool) in list.into_iter().enumerate() {
            let tool = oa::ToolParam::from_value(tool)
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
        let format = oa::ResponseFormat::from_value(format).map_err(|err| {
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
    if let Some(effort) = take(super::reasoning::FIELD) {
        features.reasoning_effort = Effort::parse(&effort)?;
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

/// Fields that Anthropic and Bedrock Converse have no counterpart for, yet fine when they ask
/// for nothing (their OpenAI default): clients and SDKs often send them explicitly. (Gemini
/// maps `n` and the penalties, and lets fewer go.)
fn asks_for_nothing(name: &str, value: &Value) -> bool {
    let zero = || value.as_f64() == Some(0.0);
    match name {
        "n" => value.as_u64() == Some(1),
        "logprobs" | "store" => value == &Value::Bool(false),
        "presence_penalty" | "frequency_penalty" => zero(),
        "functions" => value.as_array().is_some_and(Vec::is_empty),
        "logit_bias" | "metadata" => value.as_object().is_some_and(|m| m.is_empty()),
        "function_call" => matches!(value.as_str(), Some("none" | "auto")),
        "service_tier" => matches!(value.as_str(), Some("auto" | "default")),
        _ => false,
    }
}

/// The first field left in `other` (after [`take_features`]) that asks for something the
/// Anthropic and Bedrock translators do not map, for them to refuse by name; `null` and
/// defaults ([`asks_for_nothing`]) are let go.
pub fn first_unmapped(other: &BTreeMap<String, Value>) -> Option<&str> {
    other
        .iter()
        .find(|(name, value)| !value.is_null() && !asks_for_nothing(name, value))
        .map(|(name, _)| name.as_str())
}

/// A `data:<media type>;base64,<data>` URL, split.
pub struct DataUrl<'a> {
    pub media_type: &'a str,
    pub data: &'a str,
}

/// A base64 `data:` URL with a media type and data.
pub fn data_url(url: &str) -> Option<DataUrl<'_>> {
    split_data_url(url).filter(|d| !d.media_type.is_empty() && !d.data.is_empty())
}

/// A base64 `data:` URL, split; either part may be empty.
pub fn split_data_url(url: &str) -> Option<DataUrl<'_>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some(DataUrl { media_type, data })
}

/// An assistant message's tool call, its `arguments` as the JSON object providers take.
pub struct ToolCallInput {
    pub id: String,
    pub name: String,
    pub arguments: Value,
}

/// The `tool_calls` of message `i` (an assistant turn of the history), typed, each call's
/// arguments read as it is taken.
pub fn assistant_tool_calls(
    value: Option<Value>,
    i: usize,
) -> Result<impl ExactSizeIterator<Item = Result<ToolCallInput, ApiError>>, ApiError> {
    let calls: Vec<oa::ToolCallParam> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => oa::ToolCallParam::list_from_value(value).map_err(|err| {
            invalid(
                format!("invalid `tool_calls`: {err}"),
                format!("messages[{i}].tool_calls"),
            )
        })?,
    };
    Ok(calls.into_iter().enumerate().map(move |(j, call)| {
        let arguments = arguments_object(
            &call.function.arguments,
            &format!("messages[{i}].tool_calls[{j}].function.arguments"),
        )?;
        Ok(ToolCallInput {
            id: call.id,
            name: call.function.name,
            arguments,
        })
    }))
}

/// A tool call's `arguments` (JSON text) as the object providers take. Empty text is `{}`.
pub fn arguments_object(arguments: &str, at: &str) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match crate::json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(invalid(
            "tool call `arguments` must be a JSON object",
            at.to_string(),
        )),
    }
}

/// Content that may only be text (system prompts, tool results): a string as it is, text
/// parts joined. `Err(j)`: part `j` is not text, for the caller to refuse in its own words.
pub fn text_only(content: oa::Content<'_>) -> Result<Cow<'_, str>, usize> {
    match content {
        oa::Content::Text(text) => Ok(text),
        oa::Content::Parts(parts) => {
            let mut text = String::new();
            for (j, part) in parts.into_iter().enumerate() {
                match part {
                    oa::ContentPart::Text { text: t, .. } => text.push_str(&t),
                    _ => return Err(j),
                }
            }
            Ok(Cow::Owned(text))
        }
    }
}

/// A tool message's content as text (tool results are text in OpenAI's format).
pub fn tool_result_text<'a>(
    content: Option<oa::Content<'a>>,
    at: &str,
) -> Result<Cow<'a, str>, ApiError> {
    match content {
        None => Ok(Cow::Borrowed("")),
        Some(content) => text_only(content).map_err(|j| {
            invalid(
                "tool results may only hold text parts",
                format!("{at}[{j}]"),
            )
        }),
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
    fn shared_request_steps() {
        assert_eq!(chosen_model(Some("a"), Some("b")).unwrap(), "a");
        assert_eq!(chosen_model(None, Some("b")).unwrap(), "b");
        let err = chosen_model::<&str>(None, None).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("model")));
        let o = other(r#"{"n":1,"store":false,"logprobs":null,"top_logprobs":2}"#);
        assert_eq!(first_unmapped(&o), Some("top_logprobs"));
        assert_eq!(first_unmapped(&other(r#"{"n":1}"#)), None);
        let parts: oa::Content = serde_json::from_str(
            r#"[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]"#,
        )
        .unwrap();
        assert_eq!(text_only(parts).unwrap_err(), 1);
        let calls = serde_json::json!([{"id":"c","function":{"name":"f","arguments":"[]"}}]);
        let err = assistant_tool_calls(Some(calls), 2)
            .unwrap()
            .next()
            .unwrap()
            .err()
            .unwrap();
        assert_eq!(
            err.param.as_deref(),
            Some("messages[2].tool_calls[0].function.arguments")
        );
        assert!(split_data_url("data:;base64,").is_some());
        assert!(data_url("data:;base64,").is_none());
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
