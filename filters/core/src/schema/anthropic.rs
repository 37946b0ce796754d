//! Anthropic Messages API.
//!
//! Reference: <https://docs.anthropic.com/en/api/messages> (request and response),
//! <https://docs.anthropic.com/en/api/messages-streaming> (stream events) and
//! <https://docs.anthropic.com/en/api/errors> (error bodies).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MaybeStr;

// ---------------------------------------------------------------------------------------------
// Request (what llmgw sends)

#[derive(Debug, Serialize)]
pub struct MessagesRequest<'a> {
    pub model: Cow<'a, str>,
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<Cow<'a, str>>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
}

/// Extended thinking (<https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking>):
/// `budget_tokens` at least 1024 and below `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Thinking {
    Enabled { budget_tokens: u32 },
}

/// <https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use>
#[derive(Debug, Serialize)]
pub struct ToolDefinition {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: Value,
}

/// `tool_choice`; `disable_parallel_tool_use` is OpenAI's `parallel_tool_calls: false`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto {
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Any {
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Tool {
        name: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Serialize)]
pub struct Message<'a> {
    pub role: Role,
    pub content: MessageContent<'a>,
}

/// `system`: a string, or text blocks where one carries a `cache_control` breakpoint
/// (<https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<SystemBlock>),
}

#[derive(Debug, Serialize)]
pub struct SystemBlock {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
}

/// A string is shorthand for one text block; both are accepted.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum MessageContent<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<ContentBlockParam<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlockParam<'a> {
    /// `cache_control`: the client's prompt-caching breakpoint, passed as it came.
    Text {
        text: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Image {
        source: ImageSource<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: Cow<'a, str>,
    },
}

/// <https://docs.anthropic.com/en/docs/build-with-claude/vision>
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource<'a> {
    Base64 {
        media_type: Cow<'a, str>,
        data: Cow<'a, str>,
    },
    Url {
        url: Cow<'a, str>,
    },
}

#[derive(Debug, Serialize)]
pub struct Metadata<'a> {
    pub user_id: Cow<'a, str>,
}

// ---------------------------------------------------------------------------------------------
// Response (what providers send back): tolerant.

/// A non-streamed answer (`type: "message"`).
#[derive(Debug, Deserialize)]
pub struct MessageResponse<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub content: Vec<ContentBlock<'a>>,
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub usage: Usage,
}

#[derive(Debug)]
pub enum ContentBlock<'a> {
    Text {
        text: Cow<'a, str>,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: Cow<'a, str>,
        input: Value,
    },
    /// The model's reasoning; its `signature` is Anthropic's alone and not read.
    Thinking {
        thinking: Cow<'a, str>,
    },
    /// `redacted_thinking`, server tool results and whatever comes next.
    Other,
}

/// A content block or a block delta as read, before its `type` picks what it is: one struct
/// holds the fields of the blocks and deltas llmgw reads (`#[serde(tag = "type")]` would
/// buffer each one into serde's `Content` tree first). Other types ignore these fields, whatever
/// their shape ([`MaybeStr`]).
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: MaybeStr<'a>,
    #[serde(borrow, default)]
    partial_json: MaybeStr<'a>,
    #[serde(borrow, default)]
    thinking: MaybeStr<'a>,
    #[serde(borrow, default)]
    id: MaybeStr<'a>,
    #[serde(borrow, default)]
    name: MaybeStr<'a>,
    #[serde(default)]
    input: Value,
}

/// A field the block's `type` requires.
fn required<T, E: serde::de::Error>(field: Option<T>, name: &'static str) -> Result<T, E> {
    field.ok_or_else(|| E::missing_field(name))
}

impl<'de: 'a, 'a> Deserialize<'de> for ContentBlock<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Block::deserialize(deserializer)?;
        Ok(match raw.kind.as_ref() {
            "text" => ContentBlock::Text {
                text: required(raw.text.0, "text")?,
            },
            "tool_use" => ContentBlock::ToolUse {
                id: required(raw.id.0, "id")?,
                name: required(raw.name.0, "name")?,
                input: raw.input,
            },
            "thinking" => ContentBlock::Thinking {
                thinking: raw.thinking.0.unwrap_or_default(),
            },
            _ => ContentBlock::Other,
        })
    }
}

/// <https://docs.anthropic.com/en/api/handling-stop-reasons>
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    /// The context window filled up before `max_tokens` (newer models).
    ModelContextWindowExceeded,
    StopSequence,
    ToolUse,
    PauseTurn,
    Refusal,
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

/// `{"type":"error","error":{"type":…,"message":…}}`
pub type ErrorResponse<'a> = super::ErrorEnvelope<ErrorBody<'a>>;

#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub message: Cow<'a, str>,
}

// ---------------------------------------------------------------------------------------------
// Stream events: <https://docs.anthropic.com/en/api/messages-streaming#event-types>

/// Read with [`StreamEvent::parse`].
#[derive(Debug)]
pub enum StreamEvent<'a> {
    MessageStart {
        message: MessageStart<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: ContentBlock<'a>,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: Option<DeltaUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorBody<'a>,
    },
    /// New event types are to be ignored, per Anthropic's versioning policy.
    Unknown,
}

impl<'a> StreamEvent<'a> {
    /// One event's JSON (`data:`). The `type` tag is read first, then the one event's struct,
    /// instead of `#[serde(tag = "type")]`: an internally tagged enum buffers every event into
    /// serde's `Content` tree before it picks the variant (allocations per event, and ~20 KB of
    /// wasm); a second scan of a small event costs less.
    pub fn parse(text: &'a str) -> serde_json::Result<Self> {
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow)]
            kind: Cow<'a, str>,
        }
        #[derive(Deserialize)]
        struct Start<'a> {
            #[serde(borrow)]
            message: MessageStart<'a>,
        }
        #[derive(Deserialize)]
        struct BlockStart<'a> {
            #[serde(default)]
            index: u32,
            #[serde(borrow)]
            content_block: ContentBlock<'a>,
        }
        #[derive(Deserialize)]
        struct Delta<'a> {
            #[serde(default)]
            index: u32,
            #[serde(borrow)]
            delta: BlockDelta<'a>,
        }
        #[derive(Deserialize)]
        struct Stop {
            #[serde(default)]
            index: u32,
        }
        #[derive(Deserialize)]
        struct MsgDelta {
            #[serde(default)]
            delta: MessageDeltaBody,
            #[serde(default)]
            usage: Option<DeltaUsage>,
        }
        #[derive(Deserialize)]
        struct Failure<'a> {
            #[serde(borrow)]
            error: ErrorBody<'a>,
        }
        let tag: Tag<'_> = crate::json::from_str(text)?;
        Ok(match tag.kind.as_ref() {
            "message_start" => {
                let Start { message } = crate::json::from_str(text)?;
                StreamEvent::MessageStart { message }
            }
            "content_block_start" => {
                let BlockStart {
                    index,
                    content_block,
                } = crate::json::from_str(text)?;
                StreamEvent::ContentBlockStart {
                    index,
                    content_block,
                }
            }
            "content_block_delta" => {
                let Delta { index, delta } = crate::json::from_str(text)?;
                StreamEvent::ContentBlockDelta { index, delta }
            }
            "content_block_stop" => {
                let Stop { index } = crate::json::from_str(text)?;
                StreamEvent::ContentBlockStop { index }
            }
            "message_delta" => {
                let MsgDelta { delta, usage } = crate::json::from_str(text)?;
                StreamEvent::MessageDelta { delta, usage }
            }
            "message_stop" => StreamEvent::MessageStop,
            "ping" => StreamEvent::Ping,
            "error" => {
                let Failure { error } = crate::json::from_str(text)?;
                StreamEvent::Error { error }
            }
            _ => StreamEvent::Unknown,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct MessageStart<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(default)]
    pub usage: Usage,
}

#[derive(Debug)]
pub enum BlockDelta<'a> {
    TextDelta {
        text: Cow<'a, str>,
    },
    InputJsonDelta {
        partial_json: Cow<'a, str>,
    },
    ThinkingDelta {
        thinking: Cow<'a, str>,
    },
    /// `signature_delta`, `citations_delta`, …
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for BlockDelta<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Block::deserialize(deserializer)?;
        Ok(match raw.kind.as_ref() {
            "text_delta" => BlockDelta::TextDelta {
                text: required(raw.text.0, "text")?,
            },
            "input_json_delta" => BlockDelta::InputJsonDelta {
                partial_json: required(raw.partial_json.0, "partial_json")?,
            },
            "thinking_delta" => BlockDelta::ThinkingDelta {
                thinking: required(raw.thinking.0, "thinking")?,
            },
            _ => BlockDelta::Other,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct MessageDeltaBody {
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
}

/// `message_delta` usage is cumulative; input counts appear there only in newer API versions.
#[derive(Debug, Default, Deserialize)]
pub struct DeltaUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}
