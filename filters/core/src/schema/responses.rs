//! OpenAI Responses, the second OpenAI dialect clients speak to llmgw, as far as the
//! Responses ↔ Chat adapter (`translate::responses_chat`) writes it; and the Chat Completions
//! answers and chunks as that adapter reads them back from the inner translator.
//!
//! References: the response object
//! <https://platform.openai.com/docs/api-reference/responses/object> and the streaming events
//! <https://platform.openai.com/docs/api-reference/responses-streaming>. The request is read
//! field by field in `translate::responses_chat::request` (it is mapped, not echoed whole).

use serde::Deserialize;
use serde_json::Value;

use crate::json_write::{self, Object};

use super::openai::Usage;

// ---------------------------------------------------------------------------------------------
// The response object

/// `status` of a response and of its output items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

/// `incomplete_details.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncompleteReason {
    MaxOutputTokens,
    ContentFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncompleteDetails {
    pub reason: IncompleteReason,
}

/// `error` of a failed response. `code` is one of the codes the Responses API documents for
/// it (`server_error`, `rate_limit_exceeded`, `invalid_prompt`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseError {
    pub code: &'static str,
    pub message: String,
}

/// `reasoning` as echoed on the response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reasoning {
    pub effort: Option<String>,
    pub summary: Option<String>,
}

/// What the request said that the response object repeats (the API echoes its settings).
#[derive(Debug, Clone, PartialEq)]
pub struct Echo {
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u64>,
    pub parallel_tool_calls: bool,
    pub reasoning: Reasoning,
    pub temperature: Option<f64>,
    /// `{"format": …}` as requested (`{"type":"text"}` when not).
    pub text: Value,
    pub tool_choice: Value,
    pub tools: Value,
    pub top_p: Option<f64>,
    pub user: Option<String>,
    pub metadata: Value,
}

impl Default for Echo {
    fn default() -> Self {
        Self {
            instructions: None,
            max_output_tokens: None,
            parallel_tool_calls: true,
            reasoning: Reasoning::default(),
            temperature: None,
            text: serde_json::json!({"format": {"type": "text"}}),
            tool_choice: Value::String("auto".into()),
            tools: Value::Array(Vec::new()),
            top_p: None,
            user: None,
            metadata: Value::Object(serde_json::Map::new()),
        }
    }
}

/// A response (`object: "response"`).
#[derive(Debug)]
pub struct Response<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created_at: u64,
    pub status: Status,
    pub background: bool,
    pub error: Option<ResponseError>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<&'a str>,
    pub max_output_tokens: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub model: &'a str,
    pub output: &'a [OutputItem],
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<&'a str>,
    pub reasoning: &'a Reasoning,
    /// Always `false`: llmgw keeps no responses (`store: true` is refused).
    pub store: bool,
    pub temperature: Option<f64>,
    pub text: &'a Value,
    pub tool_choice: &'a Value,
    pub tools: &'a Value,
    pub top_p: Option<f64>,
    pub truncation: &'static str,
    pub usage: Option<ResponseUsage>,
    pub user: Option<&'a str>,
    pub metadata: &'a Value,
}

impl<'a> Response<'a> {
    /// The response `id` for model `model` with `output`, its settings from `echo`.
    pub fn new(
        id: &'a str,
        created_at: u64,
        model: &'a str,
        echo: &'a Echo,
        output: &'a [OutputItem],
    ) -> Self {
        Self {
            id,
            object: "response",
            created_at,
            status: Status::InProgress,
            background: false,
            error: None,
            incomplete_details: None,
            instructions: echo.instructions.as_deref(),
            max_output_tokens: echo.max_output_tokens,
            max_tool_calls: None,
            model,
            output,
            parallel_tool_calls: echo.parallel_tool_calls,
            previous_response_id: None,
            reasoning: &echo.reasoning,
            store: false,
            temperature: echo.temperature,
            text: &echo.text,
            tool_choice: &echo.tool_choice,
            tools: &echo.tools,
            top_p: echo.top_p,
            truncation: "disabled",
            usage: None,
            user: echo.user.as_deref(),
            metadata: &echo.metadata,
        }
    }
}

/// An item of `output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputItem {
    Message {
        id: String,
        status: Status,
        role: &'static str,
        content: Vec<OutputContent>,
    },
    FunctionCall {
        id: String,
        status: Status,
        arguments: String,
        call_id: String,
        name: String,
    },
    /// The model's reasoning, as text (`content`) where the provider returned it; llmgw writes
    /// no summaries and no `encrypted_content`.
    Reasoning {
        id: String,
        status: Status,
        summary: Vec<Value>,
        content: Vec<ReasoningText>,
    },
}

impl OutputItem {
    pub fn id(&self) -> &str {
        match self {
            OutputItem::Message { id, .. }
            | OutputItem::FunctionCall { id, .. }
            | OutputItem::Reasoning { id, .. } => id,
        }
    }
}

/// A part of an output message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputContent {
    OutputText {
        annotations: Vec<Value>,
        logprobs: Vec<Value>,
        text: String,
    },
    Refusal {
        refusal: String,
    },
}

impl OutputContent {
    pub fn text(text: String) -> Self {
        OutputContent::OutputText {
            annotations: Vec::new(),
            logprobs: Vec::new(),
            text,
        }
    }
}

/// A part of a reasoning item's `content`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasoningText {
    pub kind: &'static str,
    pub text: String,
}

impl ReasoningText {
    pub fn new(text: String) -> Self {
        Self {
            kind: "reasoning_text",
            text,
        }
    }
}

/// `usage` of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseUsage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputTokensDetails {
    pub cached_tokens: u64,
    /// Required by the current SDKs' types: the Chat usage's `cache_write_tokens` (part of
    /// `input_tokens`).
    pub cache_write_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

impl From<Usage> for ResponseUsage {
    fn from(usage: Usage) -> Self {
        Self {
            input_tokens: usage.prompt_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: usage.cached_tokens(),
                cache_write_tokens: usage.cache_write_tokens(),
            },
            output_tokens: usage.completion_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: usage
                    .completion_tokens_details
                    .map_or(0, |d| d.reasoning_tokens),
            },
            total_tokens: usage.total_tokens,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming events: each is sent as `event: <type>` with the event as `data:`.

/// The content part a `content_part.*` event carries.
#[derive(Debug)]
pub enum Part<'a> {
    OutputText {
        annotations: [(); 0],
        logprobs: [(); 0],
        text: &'a str,
    },
    Refusal {
        refusal: &'a str,
    },
    ReasoningText {
        text: &'a str,
    },
}

/// One streaming event. `sequence_number` counts from 0 over the stream.
#[derive(Debug)]
pub enum StreamEvent<'a> {
    Created {
        sequence_number: u64,
        response: Response<'a>,
    },
    InProgress {
        sequence_number: u64,
        response: Response<'a>,
    },
    Completed {
        sequence_number: u64,
        response: Response<'a>,
    },
    Incomplete {
        sequence_number: u64,
        response: Response<'a>,
    },
    Failed {
        sequence_number: u64,
        response: Response<'a>,
    },
    OutputItemAdded {
        sequence_number: u64,
        output_index: usize,
        item: &'a OutputItem,
    },
    OutputItemDone {
        sequence_number: u64,
        output_index: usize,
        item: &'a OutputItem,
    },
    ContentPartAdded {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        part: Part<'a>,
    },
    ContentPartDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        part: Part<'a>,
    },
    OutputTextDelta {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        delta: &'a str,
        logprobs: [(); 0],
    },
    OutputTextDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        text: &'a str,
        logprobs: [(); 0],
    },
    RefusalDelta {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        delta: &'a str,
    },
    RefusalDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        refusal: &'a str,
    },
    ReasoningTextDelta {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        delta: &'a str,
    },
    ReasoningTextDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        content_index: usize,
        text: &'a str,
    },
    FunctionCallArgumentsDelta {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        delta: &'a str,
    },
    FunctionCallArgumentsDone {
        sequence_number: u64,
        item_id: &'a str,
        output_index: usize,
        name: &'a str,
        arguments: &'a str,
    },
    /// An error in the stream; `response.failed` follows it.
    Error {
        sequence_number: u64,
        code: Option<&'a str>,
        message: &'a str,
        param: Option<&'a str>,
    },
}

impl StreamEvent<'_> {
    /// The `event:` name it is sent under (its `type`).
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::Created { .. } => "response.created",
            StreamEvent::InProgress { .. } => "response.in_progress",
            StreamEvent::Completed { .. } => "response.completed",
            StreamEvent::Incomplete { .. } => "response.incomplete",
            StreamEvent::Failed { .. } => "response.failed",
            StreamEvent::OutputItemAdded { .. } => "response.output_item.added",
            StreamEvent::OutputItemDone { .. } => "response.output_item.done",
            StreamEvent::ContentPartAdded { .. } => "response.content_part.added",
            StreamEvent::ContentPartDone { .. } => "response.content_part.done",
            StreamEvent::OutputTextDelta { .. } => "response.output_text.delta",
            StreamEvent::OutputTextDone { .. } => "response.output_text.done",
            StreamEvent::RefusalDelta { .. } => "response.refusal.delta",
            StreamEvent::RefusalDone { .. } => "response.refusal.done",
            StreamEvent::ReasoningTextDelta { .. } => "response.reasoning_text.delta",
            StreamEvent::ReasoningTextDone { .. } => "response.reasoning_text.done",
            StreamEvent::FunctionCallArgumentsDelta { .. } => {
                "response.function_call_arguments.delta"
            }
            StreamEvent::FunctionCallArgumentsDone { .. } => {
                "response.function_call_arguments.done"
            }
            StreamEvent::Error { .. } => "error",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing: each type writes itself through `json_write`, its fields in the order the API
// reference lists them (the order the derived `Serialize` of these types wrote, byte for byte;
// the writers cost the module less than serde's per-type code, issue #16).

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Incomplete => "incomplete",
            Status::Failed => "failed",
        }
    }
}

impl IncompleteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IncompleteReason::MaxOutputTokens => "max_output_tokens",
            IncompleteReason::ContentFilter => "content_filter",
        }
    }
}

/// `"type": kind` first, as the tagged shapes carry it.
fn typed<'o>(out: &'o mut Vec<u8>, kind: &str) -> Object<'o> {
    let mut object = Object::new(out);
    object.string("type", kind);
    object
}

/// An output item's `type`, `id` and `status`, its other fields to follow.
fn item<'o>(out: &'o mut Vec<u8>, kind: &str, id: &str, status: Status) -> Object<'o> {
    let mut object = typed(out, kind);
    object.string("id", id).string("status", status.as_str());
    object
}

/// A content event's position: `sequence_number`, `item_id`, `output_index`, `content_index`.
fn content_at(
    o: &mut Object<'_>,
    sequence_number: u64,
    item_id: &str,
    output_index: usize,
    content_index: usize,
) {
    o.number("sequence_number", sequence_number)
        .string("item_id", item_id)
        .number("output_index", output_index as u64)
        .number("content_index", content_index as u64);
}

impl Response<'_> {
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.string("id", self.id)
            .string("object", self.object)
            .number("created_at", self.created_at)
            .string("status", self.status.as_str())
            .bool("background", self.background);
        match &self.error {
            Some(error) => {
                let mut e = Object::new(o.field("error"));
                e.string("code", error.code)
                    .string("message", &error.message);
                e.end();
            }
            None => {
                o.null("error");
            }
        }
        match &self.incomplete_details {
            Some(details) => {
                let mut d = Object::new(o.field("incomplete_details"));
                d.string("reason", details.reason.as_str());
                d.end();
            }
            None => {
                o.null("incomplete_details");
            }
        }
        o.opt_string("instructions", self.instructions)
            .opt_number("max_output_tokens", self.max_output_tokens)
            .opt_number("max_tool_calls", self.max_tool_calls)
            .string("model", self.model);
        json_write::list(o.field("output"), self.output, |out, item| item.write(out));
        o.bool("parallel_tool_calls", self.parallel_tool_calls)
            .opt_string("previous_response_id", self.previous_response_id);
        let mut r = Object::new(o.field("reasoning"));
        r.opt_string("effort", self.reasoning.effort.as_deref())
            .opt_string("summary", self.reasoning.summary.as_deref());
        r.end();
        o.bool("store", self.store)
            .opt_float("temperature", self.temperature)
            .value("text", self.text)
            .value("tool_choice", self.tool_choice)
            .value("tools", self.tools)
            .opt_float("top_p", self.top_p)
            .string("truncation", self.truncation);
        match &self.usage {
            Some(usage) => usage.write(o.field("usage")),
            None => {
                o.null("usage");
            }
        }
        o.opt_string("user", self.user)
            .value("metadata", self.metadata);
        o.end();
    }
}

impl ResponseUsage {
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.number("input_tokens", self.input_tokens);
        let mut input = Object::new(o.field("input_tokens_details"));
        input
            .number("cached_tokens", self.input_tokens_details.cached_tokens)
            .number(
                "cache_write_tokens",
                self.input_tokens_details.cache_write_tokens,
            );
        input.end();
        o.number("output_tokens", self.output_tokens);
        let mut output = Object::new(o.field("output_tokens_details"));
        output.number(
            "reasoning_tokens",
            self.output_tokens_details.reasoning_tokens,
        );
        output.end();
        o.number("total_tokens", self.total_tokens);
        o.end();
    }
}

impl OutputItem {
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            OutputItem::Message {
                id,
                status,
                role,
                content,
            } => {
                let mut o = item(out, "message", id, *status);
                o.string("role", role);
                json_write::list(o.field("content"), content, |out, part| match part {
                    OutputContent::OutputText { text, .. } => output_text(out, text),
                    OutputContent::Refusal { refusal } => refusal_part(out, refusal),
                });
                o.end();
            }
            OutputItem::FunctionCall {
                id,
                status,
                arguments,
                call_id,
                name,
            } => {
                let mut o = item(out, "function_call", id, *status);
                o.string("arguments", arguments)
                    .string("call_id", call_id)
                    .string("name", name);
                o.end();
            }
            OutputItem::Reasoning {
                id,
                status,
                summary,
                content,
            } => {
                let mut o = item(out, "reasoning", id, *status);
                json_write::list(o.field("summary"), summary, |out, entry| {
                    json_write::value(out, entry)
                });
                json_write::list(o.field("content"), content, |out, part| {
                    let mut p = Object::new(out);
                    p.string("type", part.kind).string("text", &part.text);
                    p.end();
                });
                o.end();
            }
        }
    }
}

/// An `output_text` part (no annotations, no logprobs).
fn output_text(out: &mut Vec<u8>, text: &str) {
    let mut o = typed(out, "output_text");
    o.raw("annotations", b"[]")
        .raw("logprobs", b"[]")
        .string("text", text);
    o.end();
}

fn refusal_part(out: &mut Vec<u8>, refusal: &str) {
    let mut o = typed(out, "refusal");
    o.string("refusal", refusal);
    o.end();
}

impl Part<'_> {
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Part::OutputText { text, .. } => output_text(out, text),
            Part::Refusal { refusal } => refusal_part(out, refusal),
            Part::ReasoningText { text } => {
                let mut o = typed(out, "reasoning_text");
                o.string("text", text);
                o.end();
            }
        }
    }
}

impl StreamEvent<'_> {
    /// The event's JSON (its `type` first, then its fields).
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut o = typed(out, self.name());
        match self {
            StreamEvent::Created {
                sequence_number,
                response,
            }
            | StreamEvent::InProgress {
                sequence_number,
                response,
            }
            | StreamEvent::Completed {
                sequence_number,
                response,
            }
            | StreamEvent::Incomplete {
                sequence_number,
                response,
            }
            | StreamEvent::Failed {
                sequence_number,
                response,
            } => {
                o.number("sequence_number", *sequence_number);
                response.write(o.field("response"));
            }
            StreamEvent::OutputItemAdded {
                sequence_number,
                output_index,
                item,
            }
            | StreamEvent::OutputItemDone {
                sequence_number,
                output_index,
                item,
            } => {
                o.number("sequence_number", *sequence_number)
                    .number("output_index", *output_index as u64);
                item.write(o.field("item"));
            }
            StreamEvent::ContentPartAdded {
                sequence_number,
                item_id,
                output_index,
                content_index,
                part,
            }
            | StreamEvent::ContentPartDone {
                sequence_number,
                item_id,
                output_index,
                content_index,
                part,
            } => {
                content_at(
                    &mut o,
                    *sequence_number,
                    item_id,
                    *output_index,
                    *content_index,
                );
                part.write(o.field("part"));
            }
            StreamEvent::OutputTextDelta {
                sequence_number,
                item_id,
                output_index,
                content_index,
                delta: text,
                ..
            }
            | StreamEvent::OutputTextDone {
                sequence_number,
                item_id,
                output_index,
                content_index,
                text,
                ..
            }
            | StreamEvent::RefusalDelta {
                sequence_number,
                item_id,
                output_index,
                content_index,
                delta: text,
            }
            | StreamEvent::RefusalDone {
                sequence_number,
                item_id,
                output_index,
                content_index,
                refusal: text,
            }
            | StreamEvent::ReasoningTextDelta {
                sequence_number,
                item_id,
                output_index,
                content_index,
                delta: text,
            }
            | StreamEvent::ReasoningTextDone {
                sequence_number,
                item_id,
                output_index,
                content_index,
                text,
            } => {
                let name = match self {
                    StreamEvent::OutputTextDelta { .. }
                    | StreamEvent::RefusalDelta { .. }
                    | StreamEvent::ReasoningTextDelta { .. } => "delta",
                    StreamEvent::RefusalDone { .. } => "refusal",
                    _ => "text",
                };
                content_at(
                    &mut o,
                    *sequence_number,
                    item_id,
                    *output_index,
                    *content_index,
                );
                o.string(name, text);
                if matches!(
                    self,
                    StreamEvent::OutputTextDelta { .. } | StreamEvent::OutputTextDone { .. }
                ) {
                    o.raw("logprobs", b"[]");
                }
            }
            StreamEvent::FunctionCallArgumentsDelta {
                sequence_number,
                item_id,
                output_index,
                delta,
            } => {
                o.number("sequence_number", *sequence_number)
                    .string("item_id", item_id)
                    .number("output_index", *output_index as u64)
                    .string("delta", delta);
            }
            StreamEvent::FunctionCallArgumentsDone {
                sequence_number,
                item_id,
                output_index,
                name,
                arguments,
            } => {
                o.number("sequence_number", *sequence_number)
                    .string("item_id", item_id)
                    .number("output_index", *output_index as u64)
                    .string("name", name)
                    .string("arguments", arguments);
            }
            StreamEvent::Error {
                sequence_number,
                code,
                message,
                param,
            } => {
                o.number("sequence_number", *sequence_number)
                    .opt_string("code", *code)
                    .string("message", message)
                    .opt_string("param", *param);
            }
        }
        o.end();
    }
}

// ---------------------------------------------------------------------------------------------
// Chat Completions answers, as the client adapters (Responses ← Chat and Messages ← Chat) read
// what the inner translator wrote: one set of types for both, so the module carries one reader
// of each (issue #16)
// (<https://platform.openai.com/docs/api-reference/chat/object>,
// <https://platform.openai.com/docs/api-reference/chat-streaming>). `reasoning_content` is the
// de-facto field (DeepSeek, vLLM, LiteLLM) for the model's reasoning text.

/// A `chat.completion`, or a `chat.completion.chunk` ([`ChatChunk`]) or the `{"error": …}`
/// frame OpenAI streams end with on failure: one shape for both, so the module carries one
/// reader for answers and chunks (issue #16). An answer's choices carry `message`, a chunk's
/// `delta`; a tool call's `index` is a chunk's, its other fields are whole in an answer and
/// pieces in a chunk.
#[derive(Debug, Default, Deserialize)]
pub struct ChatAnswer {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<ChatChoice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub error: Option<ChunkError>,
}

/// A streamed `chat.completion.chunk`.
pub type ChatChunk = ChatAnswer;

#[derive(Debug, Default, Deserialize)]
pub struct ChatChoice {
    #[serde(default)]
    pub message: ChatDelta,
    #[serde(default)]
    pub delta: ChatDelta,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// An answer's `message` or a chunk's `delta`.
#[derive(Debug, Default, Deserialize)]
pub struct ChatDelta {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ChatToolCall>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChatToolCall {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: ChatFunction,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChatFunction {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// The error an OpenAI error body or stream frame carries.
#[derive(Debug, Default, Deserialize)]
pub struct ChunkError {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub param: Option<String>,
}
