//! OpenAI Chat Completions, the format clients speak to llmgw.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat/create> (request),
//! <https://platform.openai.com/docs/api-reference/chat/object> (response) and
//! <https://platform.openai.com/docs/api-reference/chat-streaming> (stream chunks).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The request fields a translator maps one to one. Every other field lands in
/// [`ChatCompletionRequest::other`], so a translator can refuse what it cannot honour by name
/// instead of dropping it silently.
#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest<'a> {
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub messages: Vec<ChatMessage<'a>>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(borrow, default)]
    pub stop: Option<Stop<'a>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(borrow, default)]
    pub user: Option<Cow<'a, str>>,
    /// Everything else the client sent (`n`, `tools`, `logprobs`, …), by name.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `stop`: one sequence or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
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
#[derive(Debug, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ChatMessage<'a> {
    System {
        #[serde(borrow)]
        content: Content<'a>,
    },
    /// The o1-era name for `system`.
    Developer {
        #[serde(borrow)]
        content: Content<'a>,
    },
    User {
        #[serde(borrow)]
        content: Content<'a>,
    },
    Assistant {
        #[serde(borrow, default)]
        content: Option<Content<'a>>,
        #[serde(default)]
        tool_calls: Option<Value>,
        #[serde(default)]
        function_call: Option<Value>,
    },
    /// A tool's result, answering the assistant's tool call `tool_call_id`.
    Tool {
        #[serde(borrow, default)]
        tool_call_id: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        content: Option<Content<'a>>,
    },
    Function {},
}

/// Message content: a string or an array of parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Parts(#[serde(borrow)] Vec<ContentPart<'a>>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart<'a> {
    Text {
        #[serde(borrow)]
        text: Cow<'a, str>,
    },
    ImageUrl {
        #[serde(borrow)]
        image_url: ImageUrl<'a>,
    },
    /// An assistant message's refusal part.
    Refusal {
        #[serde(borrow)]
        refusal: Cow<'a, str>,
    },
    /// `input_audio`, `file` and whatever comes next.
    #[serde(other)]
    Other,
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
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
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
    pub refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ToolCall<'a> {
    pub id: &'a str,
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
#[derive(Debug, Deserialize)]
pub struct ToolParam {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionParam,
}

#[derive(Debug, Deserialize)]
pub struct FunctionParam {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
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
#[derive(Debug, Deserialize)]
pub struct ToolCallParam {
    pub id: String,
    pub function: FunctionCallParam,
}

#[derive(Debug, Deserialize)]
pub struct FunctionCallParam {
    pub name: String,
    /// JSON text, as the model produced it.
    #[serde(default)]
    pub arguments: String,
}

/// `response_format`: <https://platform.openai.com/docs/guides/structured-outputs>
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schema: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}
