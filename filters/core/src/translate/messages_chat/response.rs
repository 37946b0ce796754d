//! Chat Completions answers as Anthropic's: a `chat.completion` as a `message`, `chat.completion.chunk`
//! SSE as Anthropic's event sequence, OpenAI errors as Anthropic errors. The backend's reasoning
//! (`reasoning_content`) becomes a `thinking` block (`thinking_delta` when streamed) before the
//! text, with an empty `signature`.
//!
//! Stop reasons (<https://docs.anthropic.com/en/api/handling-stop-reasons>): `stop` →
//! `end_turn` (Chat does not say whether a stop sequence ended the answer, so `stop_sequence`
//! is never reported), `length` → `max_tokens`, `tool_calls` → `tool_use`, `content_filter` →
//! `refusal`. Usage: `input_tokens` = prompt tokens less those read from and written to the cache,
//! which are `cache_read_input_tokens` and `cache_creation_input_tokens` (Anthropic counts them
//! apart from input).

use serde::Deserialize;
use serde_json::Value;

use crate::dialect;
use crate::error::{ApiError, ErrorType};
use crate::json_write::{self, Array, Object};
use crate::schema::openai::Usage;
use crate::schema::responses::{ChatAnswer, ChatChunk, ChatToolCall, ChunkError};
use crate::sse;
use crate::translate::{truncated_stream_error, unreadable_answer};

// Bodies and events are written straight into bytes ([`json_write`]: keys in byte order, as
// the `serde_json::Value` trees this module built before kept them), not as `Value` trees.

/// Anthropic's usage object for Chat usage: Anthropic counts cache reads and writes apart from
/// `input_tokens`, Chat inside `prompt_tokens`.
fn anthropic_usage(out: &mut Vec<u8>, usage: &Usage) {
    let (read, write) = (usage.cached_tokens(), usage.cache_write_tokens());
    let mut object = Object::new(out);
    if write > 0 {
        object.number("cache_creation_input_tokens", write);
    }
    if read > 0 {
        object.number("cache_read_input_tokens", read);
    }
    object
        .number(
            "input_tokens",
            usage
                .prompt_tokens
                .saturating_sub(read)
                .saturating_sub(write),
        )
        .number("output_tokens", usage.completion_tokens);
    object.end();
}

/// A thinking block for a non-Anthropic backend's reasoning (Chat `reasoning_content`). Its
/// `signature` is empty: only Anthropic can sign thinking, so such a block must not be sent
/// back to Anthropic itself (the adapter drops earlier turns' thinking for other backends).
fn thinking_block(out: &mut Vec<u8>, thinking: &str) {
    let mut block = Object::new(out);
    block
        .string("signature", "")
        .string("thinking", thinking)
        .string("type", "thinking");
    block.end();
}

/// A text block.
fn text_block(out: &mut Vec<u8>, text: &str) {
    let mut block = Object::new(out);
    block.string("text", text).string("type", "text");
    block.end();
}

/// A tool_use block, its `input` already encoded.
fn tool_use_block(out: &mut Vec<u8>, id: &str, input: &[u8], name: &str) {
    let mut block = Object::new(out);
    block
        .string("id", id)
        .raw("input", input)
        .string("name", name)
        .string("type", "tool_use");
    block.end();
}

/// A stream's `error` event: `{"error": {"message", "type"}, "type": "error"}`.
fn error_event(out: &mut Vec<u8>, kind: &str, message: &str) {
    let mut body = Vec::new();
    let mut event = Object::new(&mut body);
    let mut error = Object::new(event.field("error"));
    error.string("message", message).string("type", kind);
    error.end();
    event.string("type", "error");
    event.end();
    sse::write_event(out, "error", &body);
}

fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// `msg_…` from a Chat id (`chatcmpl-…`).
fn message_id(chat_id: &str) -> String {
    let bare = chat_id.strip_prefix("chatcmpl-").unwrap_or(chat_id);
    format!("msg_{bare}")
}

/// A tool call's `arguments` as the `input` object, encoded (empty arguments: `{}`).
fn tool_input(arguments: &str) -> Result<Vec<u8>, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(b"{}".to_vec());
    }
    match crate::json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => {
            let mut out = Vec::new();
            json_write::value(&mut out, &value);
            Ok(out)
        }
        _ => Err(unreadable_answer(
            "a tool call whose arguments are not a JSON object",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Deserialize)]
struct OpenAiErrorBody {
    error: OpenAiError,
}

#[derive(Deserialize)]
struct OpenAiError {
    #[serde(default)]
    message: Option<String>,
}

/// An OpenAI error body (`{"error":{…}}`) answered with `status` as an [`ApiError`].
fn openai_error(status: u16, body: &[u8]) -> ApiError {
    let kind = ErrorType::for_status(status);
    match crate::json::from_slice::<OpenAiErrorBody>(body) {
        Ok(parsed) => ApiError::new(
            status,
            kind,
            parsed
                .error
                .message
                .unwrap_or_else(|| format!("the provider answered HTTP {status}")),
        ),
        Err(_) => ApiError::new(
            status,
            kind,
            format!("the provider answered HTTP {status} with an unreadable error body"),
        ),
    }
}

/// The Anthropic error type of an in-band OpenAI error (mid-stream, no status to go by).
fn stream_error_type(kind: Option<&str>) -> &'static str {
    match kind {
        Some("invalid_request_error") => "invalid_request_error",
        Some("authentication_error") => "authentication_error",
        Some("permission_error") => "permission_error",
        Some("not_found_error") => "not_found_error",
        Some("rate_limit_error") => "rate_limit_error",
        Some("service_unavailable_error" | "overloaded_error") => "overloaded_error",
        _ => "api_error",
    }
}

// ---------------------------------------------------------------------------------------------
// Whole answers

/// Reads buffered Chat answers and errors; keeps the usage of the answer.
#[derive(Debug, Default)]
pub struct ChatAnswerReader {
    usage: Option<Usage>,
}

impl ChatAnswerReader {
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The Anthropic body (and the status it goes with) for a Chat answer or OpenAI error.
    pub fn translate(&mut self, status: u16, chat: &[u8]) -> (u16, Vec<u8>) {
        let error = if status >= 400 {
            openai_error(status, chat)
        } else {
            match self.message(chat) {
                Ok(body) => return (status, body),
                Err(error) => error,
            }
        };
        (error.status, dialect::anthropic_error_body(&error))
    }

    fn message(&mut self, chat: &[u8]) -> Result<Vec<u8>, ApiError> {
        let answer: ChatAnswer = crate::json::from_slice(chat).map_err(|err| {
            log::warn!("llmgw.translate: unreadable Chat answer: {err}");
            unreadable_answer("not a chat completion")
        })?;
        let choice = answer
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| unreadable_answer("a chat completion without choices"))?;
        let mut content = Array::default();
        if let Some(reasoning) = choice.message.reasoning_content.filter(|r| !r.is_empty()) {
            thinking_block(content.item(), &reasoning);
        }
        let text = choice.message.content.or(choice.message.refusal);
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            text_block(content.item(), &text);
        }
        for call in choice.message.tool_calls {
            // A call the client could not route: refused, not passed on with an empty name.
            let name = call
                .function
                .name
                .ok_or_else(|| unreadable_answer("a tool call without a function name"))?;
            let arguments = call.function.arguments.unwrap_or_default();
            let input = tool_input(&arguments)?;
            let id = call.id.unwrap_or_default();
            tool_use_block(content.item(), &id, &input, &name);
        }
        let usage = answer.usage.unwrap_or_default();
        self.usage = Some(usage);
        let mut body = Vec::new();
        let mut message = Object::new(&mut body);
        message
            .raw("content", &content.into_bytes())
            .string("id", &message_id(&answer.id))
            .string("model", &answer.model)
            .string("role", "assistant")
            .string(
                "stop_reason",
                stop_reason(choice.finish_reason.as_deref().unwrap_or("stop")),
            )
            .raw("stop_sequence", b"null")
            .string("type", "message");
        anthropic_usage(message.field("usage"), &usage);
        message.end();
        Ok(body)
    }
}

// ---------------------------------------------------------------------------------------------
// Streams

/// The block currently open in the Anthropic stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(u32),
    Thinking(u32),
    Tool(u32),
}

/// Turns Chat SSE chunks into Anthropic's event sequence, piece by piece.
#[derive(Debug, Default)]
pub struct AnswerStream {
    decoder: sse::Decoder,
    started: bool,
    open: Option<Open>,
    next_block: u32,
    /// Block index of each Chat tool call index seen.
    tool_blocks: Vec<(u32, u32)>,
    stop_reason: Option<&'static str>,
    usage: Option<Usage>,
    terminated: bool,
    failed: bool,
}

impl AnswerStream {
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub fn failed(&self) -> bool {
        self.failed
    }

    /// One piece of the Chat SSE in, Anthropic SSE out.
    pub fn feed(&mut self, chat: &[u8], end_of_stream: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.terminated {
            for event in self.decoder.feed(chat) {
                self.on_event(&event.data, &mut out);
                if self.terminated {
                    break;
                }
            }
        }
        if end_of_stream && !self.terminated {
            self.fail(&mut out, &truncated_stream_error());
        }
        out
    }

    fn on_event(&mut self, data: &str, out: &mut Vec<u8>) {
        let data = data.trim();
        if data == "[DONE]" {
            self.finish(out);
            return;
        }
        let chunk: ChatChunk = match crate::json::from_str(data) {
            Ok(chunk) => chunk,
            Err(err) => {
                log::warn!("llmgw.translate: unreadable Chat chunk: {err}");
                self.fail(out, &unreadable_answer("a stream chunk that is not JSON"));
                return;
            }
        };
        if let Some(error) = chunk.error {
            self.fail_in_band(out, &error);
            return;
        }
        self.start(&chunk.id, &chunk.model, out);
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices {
            if let Some(reasoning) = choice.delta.reasoning_content.filter(|r| !r.is_empty()) {
                self.thinking(&reasoning, out);
            }
            let text = choice.delta.content.or(choice.delta.refusal);
            if let Some(text) = text.filter(|t| !t.is_empty()) {
                self.text(&text, out);
            }
            for call in choice.delta.tool_calls {
                self.tool_call(call, out);
            }
            if let Some(finish) = choice.finish_reason {
                self.close(out);
                self.stop_reason = Some(stop_reason(&finish));
            }
        }
    }

    fn start(&mut self, id: &str, model: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut body = Vec::new();
        let mut start = Object::new(&mut body);
        let mut message = Object::new(start.field("message"));
        message
            .raw("content", b"[]")
            .string("id", &message_id(id))
            .string("model", model)
            .string("role", "assistant")
            .raw("stop_reason", b"null")
            .raw("stop_sequence", b"null")
            .string("type", "message")
            .raw("usage", br#"{"input_tokens":0,"output_tokens":0}"#);
        message.end();
        start.string("type", "message_start");
        start.end();
        sse::write_event(out, "message_start", &body);
        sse::write_event(out, "ping", br#"{"type":"ping"}"#);
    }

    /// Opens the next block, written by `block`.
    fn open_block(&mut self, out: &mut Vec<u8>, block: impl FnOnce(&mut Vec<u8>)) -> u32 {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        let mut body = Vec::new();
        let mut event = Object::new(&mut body);
        block(event.field("content_block"));
        event
            .number("index", index.into())
            .string("type", "content_block_start");
        event.end();
        sse::write_event(out, "content_block_start", &body);
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let index = match self.open.take() {
            Some(Open::Text(index) | Open::Thinking(index) | Open::Tool(index)) => index,
            None => return,
        };
        let mut body = Vec::new();
        let mut event = Object::new(&mut body);
        event
            .number("index", index.into())
            .string("type", "content_block_stop");
        event.end();
        sse::write_event(out, "content_block_stop", &body);
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(Open::Text(index)) => index,
            _ => {
                let index = self.open_block(out, |block| text_block(block, ""));
                self.open = Some(Open::Text(index));
                index
            }
        };
        block_delta(out, index, "text", text, "text_delta");
    }

    /// A piece of the reasoning, in the open thinking block or a new one (without a
    /// signature: see [`thinking_block`]).
    fn thinking(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(Open::Thinking(index)) => index,
            _ => {
                let index = self.open_block(out, |block| thinking_block(block, ""));
                self.open = Some(Open::Thinking(index));
                index
            }
        };
        block_delta(out, index, "thinking", text, "thinking_delta");
    }

    fn tool_call(&mut self, call: ChatToolCall, out: &mut Vec<u8>) {
        let (name, arguments) = (call.function.name, call.function.arguments);
        let known = self
            .tool_blocks
            .iter()
            .find(|(c, _)| *c == call.index)
            .map(|(_, b)| *b);
        let block = match known {
            Some(block) => block,
            None => {
                let id = call.id.unwrap_or_default();
                let name = name.unwrap_or_default();
                let block = self.open_block(out, |block| tool_use_block(block, &id, b"{}", &name));
                self.open = Some(Open::Tool(block));
                self.tool_blocks.push((call.index, block));
                block
            }
        };
        if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
            block_delta(out, block, "partial_json", &arguments, "input_json_delta");
        }
    }

    /// `data: [DONE]`: the message's end, with its stop reason and usage.
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.start("", "", out);
        self.close(out);
        let mut body = Vec::new();
        let mut event = Object::new(&mut body);
        let mut delta = Object::new(event.field("delta"));
        delta
            .string("stop_reason", self.stop_reason.unwrap_or("end_turn"))
            .raw("stop_sequence", b"null");
        delta.end();
        event.string("type", "message_delta");
        anthropic_usage(event.field("usage"), &self.usage.unwrap_or_default());
        event.end();
        sse::write_event(out, "message_delta", &body);
        sse::write_event(out, "message_stop", br#"{"type":"message_stop"}"#);
        self.terminated = true;
    }

    fn fail_in_band(&mut self, out: &mut Vec<u8>, error: &ChunkError) {
        let kind = stream_error_type(error.kind.as_deref());
        error_event(out, kind, &error.message);
        self.terminated = true;
        self.failed = true;
    }

    fn fail(&mut self, out: &mut Vec<u8>, error: &ApiError) {
        let kind = dialect::anthropic_error_type(error.status, error.kind);
        error_event(out, kind, &error.message);
        self.terminated = true;
        self.failed = true;
    }
}

/// A `content_block_delta` of block `index`: `{"delta": {field: text, "type": kind}, …}`.
fn block_delta(out: &mut Vec<u8>, index: u32, field: &str, text: &str, kind: &str) {
    let mut body = Vec::new();
    let mut event = Object::new(&mut body);
    let mut delta = Object::new(event.field("delta"));
    delta.string(field, text).string("type", kind);
    delta.end();
    event
        .number("index", index.into())
        .string("type", "content_block_delta");
    event.end();
    sse::write_event(out, "content_block_delta", &body);
}
