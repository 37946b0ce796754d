//! OpenAI Chat Completions, the format clients speak to llmgw.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat/create> (request),
//! <https://platform.openai.com/docs/api-reference/chat/object> (response) and
//! <https://platform.openai.com/docs/api-reference/chat-streaming> (stream chunks).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{from_value, once, text_or_list, FieldName, TextOrList};

/// The request fields a translator maps one to one. Every other field lands in
/// [`ChatCompletionRequest::other`], so a translator can refuse what it cannot honour by name
/// instead of dropping it silently.
#[derive(Debug)]
pub struct ChatCompletionRequest<'a> {
    pub model: Option<Cow<'a, str>>,
    pub messages: Vec<ChatMessage<'a>>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Option<Stop<'a>>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub user: Option<Cow<'a, str>>,
    /// Everything else the client sent (`n`, `tools`, `logprobs`, …), by name.
    pub other: BTreeMap<String, Value>,
}

/// Field by field, as `#[derive(Deserialize)]` with `#[serde(flatten)] other` would, but
/// without buffering every other field into serde's `Content` tree first and converting it to
/// a `Value` afterwards: each is read straight into its `Value`.
impl<'de: 'a, 'a> Deserialize<'de> for ChatCompletionRequest<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ChatCompletionRequest<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a chat completions request object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let mut model = None;
                let mut messages = None;
                let mut max_tokens = None;
                let mut max_completion_tokens = None;
                let mut temperature = None;
                let mut top_p = None;
                let mut stop = None;
                let mut stream = None;
                let mut stream_options = None;
                let mut user = None;
                let mut other = BTreeMap::new();
                while let Some(FieldName(key)) = map.next_key()? {
                    match key.as_ref() {
                        "model" => once(&mut map, &mut model, "model")?,
                        "messages" => once(&mut map, &mut messages, "messages")?,
                        "max_tokens" => once(&mut map, &mut max_tokens, "max_tokens")?,
                        "max_completion_tokens" => once(
                            &mut map,
                            &mut max_completion_tokens,
                            "max_completion_tokens",
                        )?,
                        "temperature" => once(&mut map, &mut temperature, "temperature")?,
                        "top_p" => once(&mut map, &mut top_p, "top_p")?,
                        "stop" => once(&mut map, &mut stop, "stop")?,
                        "stream" => once(&mut map, &mut stream, "stream")?,
                        "stream_options" => once(&mut map, &mut stream_options, "stream_options")?,
                        "user" => once(&mut map, &mut user, "user")?,
                        _ => {
                            other.insert(key.into_owned(), map.next_value()?);
                        }
                    }
                }
                Ok(ChatCompletionRequest {
                    model: model.flatten(),
                    messages: messages.ok_or_else(|| A::Error::missing_field("messages"))?,
                    max_tokens: max_tokens.flatten(),
                    max_completion_tokens: max_completion_tokens.flatten(),
                    temperature: temperature.flatten(),
                    top_p: top_p.flatten(),
                    stop: stop.flatten(),
                    stream: stream.flatten(),
                    stream_options: stream_options.flatten(),
                    user: user.flatten(),
                    other,
                })
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// `stop`: one sequence or a list.
#[derive(Debug)]
pub enum Stop<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Stop<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match TextOrList::deserialize(deserializer)? {
            TextOrList::Text(one) => Ok(Stop::One(one)),
            TextOrList::List(many) => Ok(Stop::Many(many)),
            TextOrList::Other(seen) => Err(text_or_list(seen, "a string or an array of strings")),
        }
    }
}

impl<'a> Stop<'a> {
    pub fn into_vec(self) -> Vec<Cow<'a, str>> {
        match self {
            Stop::One(one) => vec![one],
            Stop::Many(many) => many,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// A message, by `role`. Unknown fields inside a message (`name`, …) are ignored.
#[derive(Debug)]
pub enum ChatMessage<'a> {
    System {
        content: Content<'a>,
    },
    /// The o1-era name for `system`.
    Developer {
        content: Content<'a>,
    },
    User {
        content: Content<'a>,
    },
    Assistant {
        content: Option<Content<'a>>,
        tool_calls: Option<Value>,
        function_call: Option<Value>,
    },
    /// A tool's result, answering the assistant's tool call `tool_call_id`.
    Tool {
        tool_call_id: Option<Cow<'a, str>>,
        content: Option<Content<'a>>,
    },
    Function {},
}

/// By `role`, like `#[serde(tag = "role")]` but read in one pass: an internally tagged enum
/// buffers each message (its whole content) into serde's `Content` tree before it picks the
/// variant. One struct holds the fields any role uses; each role then takes its own.
impl<'de: 'a, 'a> Deserialize<'de> for ChatMessage<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            role: Cow<'a, str>,
            #[serde(borrow, default)]
            content: Option<Content<'a>>,
            #[serde(default)]
            tool_calls: Option<Value>,
            #[serde(default)]
            function_call: Option<Value>,
            /// A `Value`: other roles ignore it, whatever it holds.
            #[serde(default)]
            tool_call_id: Option<Value>,
        }
        const ROLES: &[&str] = &[
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ];
        let raw = Raw::deserialize(deserializer)?;
        let required = |content: Option<Content<'a>>| {
            content.ok_or_else(|| D::Error::missing_field("content"))
        };
        Ok(match raw.role.as_ref() {
            "system" => ChatMessage::System {
                content: required(raw.content)?,
            },
            "developer" => ChatMessage::Developer {
                content: required(raw.content)?,
            },
            "user" => ChatMessage::User {
                content: required(raw.content)?,
            },
            "assistant" => ChatMessage::Assistant {
                content: raw.content,
                tool_calls: raw.tool_calls,
                function_call: raw.function_call,
            },
            "tool" => ChatMessage::Tool {
                tool_call_id: match raw.tool_call_id {
                    None | Some(Value::Null) => None,
                    Some(Value::String(id)) => Some(Cow::Owned(id)),
                    Some(_) => {
                        return Err(D::Error::invalid_type(
                            serde::de::Unexpected::Other("a non-string `tool_call_id`"),
                            &"a string",
                        ))
                    }
                },
                content: raw.content,
            },
            "function" => ChatMessage::Function {},
            other => return Err(D::Error::unknown_variant(other, ROLES)),
        })
    }
}

/// Message content: a string or an array of parts.
#[derive(Debug)]
pub enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<ContentPart<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match TextOrList::deserialize(deserializer)? {
            TextOrList::Text(text) => Ok(Content::Text(text)),
            TextOrList::List(parts) => Ok(Content::Parts(parts)),
            TextOrList::Other(seen) => {
                Err(text_or_list(seen, "a string or an array of content parts"))
            }
        }
    }
}

/// `cache_control` on a text or image part is the prompt-caching breakpoint LiteLLM and
/// OpenRouter take in Chat requests (Anthropic's shape, e.g. `{"type": "ephemeral"}`): the
/// Anthropic translator passes it on, Bedrock's sets a cache point after the block.
#[derive(Debug)]
pub enum ContentPart<'a> {
    Text {
        text: Cow<'a, str>,
        cache_control: Option<Value>,
    },
    ImageUrl {
        image_url: ImageUrl<'a>,
        cache_control: Option<Value>,
    },
    /// An assistant message's refusal part.
    Refusal { refusal: Cow<'a, str> },
    /// `input_audio`, `file` and whatever comes next.
    Other,
}

/// By `type`, like `#[serde(tag = "type")]` but without buffering each part into serde's
/// `Content` first: one struct holds the fields of the parts llmgw reads.
impl<'de: 'a, 'a> Deserialize<'de> for ContentPart<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(rename = "type", borrow)]
            kind: Cow<'a, str>,
            #[serde(borrow, default)]
            text: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            image_url: Option<ImageUrl<'a>>,
            #[serde(borrow, default)]
            refusal: Option<Cow<'a, str>>,
            #[serde(default)]
            cache_control: Option<Value>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let cache_control = raw.cache_control.filter(|c| !c.is_null());
        Ok(match raw.kind.as_ref() {
            "text" => ContentPart::Text {
                text: raw.text.ok_or_else(|| D::Error::missing_field("text"))?,
                cache_control,
            },
            "image_url" => ContentPart::ImageUrl {
                image_url: raw
                    .image_url
                    .ok_or_else(|| D::Error::missing_field("image_url"))?,
                cache_control,
            },
            "refusal" => ContentPart::Refusal {
                refusal: raw
                    .refusal
                    .ok_or_else(|| D::Error::missing_field("refusal"))?,
            },
            _ => ContentPart::Other,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct ImageUrl<'a> {
    #[serde(borrow)]
    pub url: Cow<'a, str>,
}

/// Token usage, as OpenAI reports it (and as llmgw records it for every provider).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Reasoning ("thinking") tokens, counted in `completion_tokens` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

impl Usage {
    /// Prompt tokens served from the provider's cache (0 when not reported).
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .map(|d| d.cached_tokens)
            .unwrap_or(0)
    }

    /// Prompt tokens written to the provider's cache (0 when not reported).
    pub fn cache_write_tokens(&self) -> u64 {
        #[cfg(any(feature = "anthropic", feature = "bedrock"))]
        return self
            .prompt_tokens_details
            .map(|d| d.cache_write_tokens)
            .unwrap_or(0);
        #[cfg(not(any(feature = "anthropic", feature = "bedrock")))]
        0
    }
}

/// Both counts are part of `prompt_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Read from the cache (OpenAI's field).
    #[serde(default)]
    pub cached_tokens: u64,
    /// Written to the cache (Anthropic's `cache_creation_input_tokens`, Bedrock's
    /// `cacheWriteInputTokens`): the field of the openai SDKs' `PromptTokensDetails` and of
    /// OpenRouter's usage (<https://openrouter.ai/docs/use-cases/usage-accounting>); left out
    /// when 0, as OpenAI, which bills no cache writes, leaves it out. Only in builds with a
    /// backend that reports cache writes: the OpenAI family alone (translate-openai.wasm) has
    /// none, and the field's serde code would cost it ~2.7 KB.
    #[cfg(any(feature = "anthropic", feature = "bedrock"))]
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
}

impl PromptTokensDetails {
    /// Tokens read from the cache; none written.
    #[allow(clippy::needless_update)] // (not needless in builds with `cache_write_tokens`)
    pub fn read(cached_tokens: u64) -> Self {
        Self {
            cached_tokens,
            ..Self::default()
        }
    }
}

#[cfg(any(feature = "anthropic", feature = "bedrock"))]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

/// A non-streamed answer (`object: "chat.completion"`).
#[derive(Debug, Serialize)]
pub struct ChatCompletion<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<Choice<'a>>,
    pub usage: Usage,
}

#[derive(Debug, Serialize)]
pub struct Choice<'a> {
    pub index: u32,
    pub message: ResponseMessage<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: Option<FinishReason>,
}

#[derive(Debug, Serialize)]
pub struct ResponseMessage<'a> {
    pub role: &'static str,
    pub content: Option<Cow<'a, str>>,
    /// The model's reasoning text, where the provider returns it (Anthropic thinking, Gemini
    /// thought summaries, Bedrock `reasoningContent`): the de-facto field DeepSeek's API and
    /// vLLM use (<https://api-docs.deepseek.com/guides/reasoning_model>); OpenAI's own models
    /// return none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<Cow<'a, str>>,
    pub refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ToolCall<'a> {
    /// The provider's call id, or one llmgw numbered (Gemini).
    pub id: Cow<'a, str>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCall<'a>,
}

#[derive(Debug, Serialize)]
pub struct FunctionCall<'a> {
    pub name: &'a str,
    pub arguments: String,
}

/// One streamed chunk (`object: "chat.completion.chunk"`).
#[derive(Debug, Serialize)]
pub struct ChatCompletionChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<ChunkChoice<'a>>,
    /// Absent unless the client asked for `stream_options.include_usage`; then `null` on every
    /// chunk but the last, which carries the usage and no choices (as OpenAI does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

#[derive(Debug, Serialize)]
pub struct ChunkChoice<'a> {
    pub index: u32,
    pub delta: Delta<'a>,
    pub logprobs: Option<()>,
    pub finish_reason: Option<FinishReason>,
}

#[derive(Debug, Default, Serialize)]
pub struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    /// A piece of the reasoning text (see [`ResponseMessage::reasoning_content`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallDelta<'a>>,
}

/// A piece of a streamed tool call: the first piece of each call carries `id`, `type` and
/// `function.name`; later pieces only argument fragments. `index` is stable per call.
#[derive(Debug, Serialize)]
pub struct ToolCallDelta<'a> {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDelta<'a>,
}

#[derive(Debug, Serialize)]
pub struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<&'a str>,
}

/// Just the `usage` of a response or chunk, for reading it without the rest.
#[derive(Debug, Deserialize)]
pub struct UsageOnly {
    #[serde(default)]
    pub usage: Option<Usage>,
}

// ---------------------------------------------------------------------------------------------
// Tools, tool choice and response format, as clients send them. They stay in
// `ChatCompletionRequest::other` (so a translator that does not map them refuses them by name)
// and are read from there by the translators that do.

/// `tools[]`: <https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools>
#[derive(Debug)]
pub struct ToolParam {
    /// `type`.
    pub kind: String,
    pub function: FunctionParam,
}

#[derive(Debug)]
pub struct FunctionParam {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Option<Value>,
}

impl ToolParam {
    /// A `tools[]` entry, read out of the request's `other` ([`from_value`]).
    pub fn from_value(value: Value) -> Result<Self, String> {
        let mut tool = from_value::object(value, "a tool object")?;
        let kind = from_value::string(&mut tool, "type")?;
        let Some(function) = tool.remove("function") else {
            return Err("missing field `function`".into());
        };
        let mut function = from_value::object(function, "a function object")?;
        Ok(ToolParam {
            kind,
            function: FunctionParam {
                name: from_value::string(&mut function, "name")?,
                description: from_value::optional_string(&mut function, "description")?,
                parameters: from_value::optional(&mut function, "parameters"),
            },
        })
    }
}

/// `tool_choice`: `"none"`, `"auto"`, `"required"` or `{"type":"function","function":{"name"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    Named(String),
}

impl ToolChoice {
    /// `None` when the value is none of OpenAI's forms.
    pub fn parse(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => match s.as_str() {
                "none" => Some(Self::None),
                "auto" => Some(Self::Auto),
                "required" => Some(Self::Required),
                _ => None,
            },
            Value::Object(o) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(|n| Self::Named(n.to_string())),
            _ => None,
        }
    }
}

/// An assistant message's `tool_calls[]` entry.
#[derive(Debug)]
pub struct ToolCallParam {
    pub id: String,
    pub function: FunctionCallParam,
}

#[derive(Debug)]
pub struct FunctionCallParam {
    pub name: String,
    /// JSON text, as the model produced it; empty when absent.
    pub arguments: String,
}

impl ToolCallParam {
    /// An assistant message's `tool_calls` ([`from_value`]).
    pub fn list_from_value(value: Value) -> Result<Vec<Self>, String> {
        let Value::Array(calls) = value else {
            return Err(from_value::invalid_type(&value, "a sequence"));
        };
        calls.into_iter().map(Self::from_value).collect()
    }

    fn from_value(value: Value) -> Result<Self, String> {
        let mut call = from_value::object(value, "a tool call object")?;
        let id = from_value::string(&mut call, "id")?;
        let Some(function) = call.remove("function") else {
            return Err("missing field `function`".into());
        };
        let mut function = from_value::object(function, "a function object")?;
        let name = from_value::string(&mut function, "name")?;
        let arguments = match function.remove("arguments") {
            None => String::new(),
            Some(Value::String(arguments)) => arguments,
            Some(other) => {
                return Err(format!(
                    "`arguments`: {}",
                    from_value::invalid_type(&other, "a string")
                ))
            }
        };
        Ok(ToolCallParam {
            id,
            function: FunctionCallParam { name, arguments },
        })
    }
}

/// `response_format`: <https://platform.openai.com/docs/guides/structured-outputs>
#[derive(Debug)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug)]
pub struct JsonSchemaFormat {
    pub name: String,
    pub description: Option<String>,
    pub schema: Option<Value>,
    pub strict: Option<bool>,
}

impl ResponseFormat {
    /// By `type`, read out of the request's `other` ([`from_value`]).
    pub fn from_value(value: Value) -> Result<Self, String> {
        let mut format = from_value::object(value, "a response format object")?;
        match from_value::string(&mut format, "type")?.as_str() {
            "text" => Ok(ResponseFormat::Text),
            "json_object" => Ok(ResponseFormat::JsonObject),
            "json_schema" => {
                let Some(schema) = format.remove("json_schema") else {
                    return Err("missing field `json_schema`".into());
                };
                let mut schema = from_value::object(schema, "a json_schema object")?;
                Ok(ResponseFormat::JsonSchema {
                    json_schema: JsonSchemaFormat {
                        name: from_value::string(&mut schema, "name")?,
                        description: from_value::optional_string(&mut schema, "description")?,
                        schema: from_value::optional(&mut schema, "schema"),
                        strict: from_value::optional_bool(&mut schema, "strict")?,
                    },
                })
            }
            other => Err(format!(
                "unknown variant `{other}`, expected one of `text`, `json_object`, `json_schema`"
            )),
        }
    }
}
