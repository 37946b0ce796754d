//! The OpenAI side of every translated answer: the `chat.completion` body
//! (<https://platform.openai.com/docs/api-reference/chat/object>) and the
//! `chat.completion.chunk` SSE frames
//! (<https://platform.openai.com/docs/api-reference/chat-streaming>) that the Anthropic, Bedrock
//! and Gemini translators write. What OpenAI's answers always repeat (one choice at index 0,
//! role `assistant`, `logprobs: null`, `content` null only beside tool calls, `usage: null` on
//! each chunk when the client asked for usage, the usage chunk before `[DONE]`) is written here
//! once; each translator only says what its provider's events mean.

use std::borrow::Cow;

use serde_json::Value;

use super::{stream_error_frame, Usage};
use crate::error::ApiError;
use crate::schema::openai as oa;
use crate::sse;

// ---------------------------------------------------------------------------------------------
// Usage and finish reasons

/// Usage of a provider that counts cache reads and writes apart from its input tokens
/// (Anthropic, Bedrock): OpenAI's `prompt_tokens` includes cached tokens and reports the cache
/// hits in `prompt_tokens_details.cached_tokens`, the writes in `cache_write_tokens`.
pub fn usage_with_cache(
    input: u64,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    output: u64,
) -> Usage {
    let (cache_read, cache_write) = (cache_read.unwrap_or(0), cache_write.unwrap_or(0));
    let prompt = input + cache_write + cache_read;
    Usage {
        prompt_tokens: prompt,
        completion_tokens: output,
        total_tokens: prompt + output,
        prompt_tokens_details: Some(oa::PromptTokensDetails {
            cached_tokens: cache_read,
            #[cfg(any(feature = "anthropic", feature = "bedrock"))]
            cache_write_tokens: cache_write,
        }),
        completion_tokens_details: None,
    }
}

/// A streamed tool content block (Anthropic `tool_use`, Converse `toolUse`), for its input
/// fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamBlock {
    /// The forced answer tool of `response_format`: its input JSON is the message content.
    Answer,
    /// A tool call with this OpenAI `tool_calls` `index`.
    Tool(u32),
}

/// The tool calls of one answer from a provider that stands a forced tool in for
/// `response_format` (Anthropic, Bedrock Converse; see
/// [`super::request_fields::answer_tool`]): which tool is the answer, and in a stream which
/// content block is which call.
#[derive(Debug, Default)]
pub struct ToolCalls {
    /// The forced tool standing for `response_format`: its input is the answer.
    pub answer_tool: Option<String>,
    /// Stream: the tool blocks started so far by their provider index, and whether any input
    /// fragment of theirs has been forwarded yet.
    blocks: Vec<(u32, StreamBlock, bool)>,
    /// Stream: client tool calls announced so far (the next one's OpenAI `index`).
    announced: u32,
}

impl ToolCalls {
    /// Is `name` the forced answer tool?
    pub fn is_answer(&self, name: &str) -> bool {
        self.answer_tool.as_deref() == Some(name)
    }

    /// Stream: block `block` starts a call of tool `name`. The call's OpenAI `index` to announce,
    /// or `None` for the answer tool (its input follows as content: nothing to announce).
    pub fn start(&mut self, block: u32, name: &str) -> Option<u32> {
        if self.is_answer(name) {
            self.blocks.push((block, StreamBlock::Answer, false));
            return None;
        }
        let index = self.announced;
        self.announced += 1;
        self.blocks.push((block, StreamBlock::Tool(index), false));
        Some(index)
    }

    /// Stream: what block `block` started, if it started a tool.
    pub fn block(&self, block: u32) -> Option<StreamBlock> {
        self.blocks
            .iter()
            .find(|(b, _, _)| *b == block)
            .map(|(_, kind, _)| *kind)
    }

    /// Stream: a non-empty input fragment of block `block` is about to be forwarded; what the
    /// block started, if it started a tool.
    pub fn input(&mut self, block: u32) -> Option<StreamBlock> {
        let found = self.blocks.iter_mut().find(|(b, _, _)| *b == block)?;
        found.2 = true;
        Some(found.1)
    }

    /// Stream: block `block` ended (or the message did, `None`: every open block). Each tool
    /// block that ends without a byte of input gets [`EMPTY_ARGUMENTS`], as OpenAI sends for a
    /// function without arguments: Anthropic streams such a call as one `partial_json: ""`
    /// (or no delta at all), Converse as no `toolUse` delta, and a client that parses `""` as
    /// JSON fails. Returns the blocks to complete, each once.
    pub fn end(&mut self, block: Option<u32>) -> Vec<StreamBlock> {
        let mut empty = Vec::new();
        for (b, kind, has_input) in &mut self.blocks {
            if !*has_input && block.is_none_or(|block| block == *b) {
                *has_input = true;
                empty.push(*kind);
            }
        }
        empty
    }

    /// Stream: the finish reason when the provider stopped for a tool call.
    pub fn tool_use_finish(&self) -> oa::FinishReason {
        tool_use_finish(self.answer_tool.is_some() && self.announced == 0)
    }
}

/// The arguments of a call whose input is empty, as OpenAI sends them.
pub const EMPTY_ARGUMENTS: &str = "{}";

/// A tool call's input as OpenAI `arguments` text: an absent input (`null`) is no arguments,
/// `{}`, never `null`, which no function's parameters accept.
pub fn arguments_json(input: &Value) -> Result<String, serde_json::Error> {
    if input.is_null() {
        return Ok(EMPTY_ARGUMENTS.to_string());
    }
    serde_json::to_string(input)
}

/// The finish reason of an answer whose provider stopped for a tool call: the forced answer
/// tool is the answer (`stop`), not a call for the client to make. `answered`: an answer tool
/// was forced and no client tool was called.
fn tool_use_finish(answered: bool) -> oa::FinishReason {
    if answered {
        oa::FinishReason::Stop
    } else {
        oa::FinishReason::ToolCalls
    }
}

// ---------------------------------------------------------------------------------------------
// A whole answer: `chat.completion`

/// The assistant message of a non-streamed answer, collected block by block.
#[derive(Debug, Default)]
pub struct AnswerMessage<'a> {
    /// Absent until some text arrives (OpenAI's `content: null`).
    text: Option<Cow<'a, str>>,
    /// The model's reasoning text (`reasoning_content`), absent when it returned none.
    reasoning: Option<Cow<'a, str>>,
    tool_calls: Vec<oa::ToolCall<'a>>,
}

impl<'a> AnswerMessage<'a> {
    /// Appends text to the message content.
    pub fn push_text(&mut self, more: Cow<'a, str>) {
        match &mut self.text {
            None => self.text = Some(more),
            Some(all) => all.to_mut().push_str(&more),
        }
    }

    /// Appends reasoning text (`reasoning_content`); empty pieces leave it absent.
    pub fn push_reasoning(&mut self, more: Cow<'a, str>) {
        if more.is_empty() {
            return;
        }
        match &mut self.reasoning {
            None => self.reasoning = Some(more),
            Some(all) => all.to_mut().push_str(&more),
        }
    }

    /// A tool call the model made. The forced answer tool's input is the answer, so it joins
    /// the content; any other tool is a call for the client.
    pub fn push_tool_use(
        &mut self,
        id: &'a str,
        name: &'a str,
        input: &Value,
        tools: &ToolCalls,
    ) -> Result<(), serde_json::Error> {
        let json = arguments_json(input)?;
        if tools.is_answer(name) {
            self.push_text(Cow::Owned(json));
        } else {
            self.push_tool_call(Cow::Borrowed(id), name, json);
        }
        Ok(())
    }

    /// A call for the client to make, `arguments` as JSON text.
    pub fn push_tool_call(&mut self, id: Cow<'a, str>, name: &'a str, arguments: String) {
        self.tool_calls.push(oa::ToolCall {
            id,
            kind: "function",
            function: oa::FunctionCall { name, arguments },
        });
    }

    /// Client tool calls so far.
    pub fn tool_call_count(&self) -> usize {
        self.tool_calls.len()
    }

    /// The finish reason when the provider stopped for a tool call.
    pub fn tool_use_finish(&self, tools: &ToolCalls) -> oa::FinishReason {
        tool_use_finish(tools.answer_tool.is_some() && self.tool_calls.is_empty())
    }

    /// The `chat.completion` body with this message as its one choice.
    pub fn into_body(
        self,
        id: &str,
        created: u64,
        model: &str,
        finish_reason: Option<oa::FinishReason>,
        usage: Usage,
    ) -> Result<Vec<u8>, serde_json::Error> {
        // OpenAI: `content` is null only when the answer is tool calls.
        let content = match self.text {
            None if self.tool_calls.is_empty() => Some(Cow::Borrowed("")),
            text => text,
        };
        let completion = oa::ChatCompletion {
            id,
            object: "chat.completion",
            created,
            model,
            choices: vec![oa::Choice {
                index: 0,
                message: oa::ResponseMessage {
                    role: "assistant",
                    content,
                    reasoning_content: self.reasoning,
                    refusal: None,
                    tool_calls: self.tool_calls,
                },
                logprobs: None,
                finish_reason,
            }],
            usage,
        };
        serde_json::to_vec(&completion)
    }
}

// ---------------------------------------------------------------------------------------------
// A streamed answer: `chat.completion.chunk` frames

/// The OpenAI stream a translator writes: what every chunk of it repeats, and whether it ended.
#[derive(Debug, Default)]
pub struct ChunkStream {
    /// `chatcmpl-…`, the same on every chunk.
    pub id: String,
    pub model: String,
    /// Unix time (s), the same on every chunk.
    pub created: u64,
    /// The client asked for `stream_options.include_usage`: every chunk carries `usage: null`
    /// and the last one, without choices, the usage (as OpenAI does).
    pub include_usage: bool,
    /// The stream ended (its terminal frame or an error frame was written): nothing after it is
    /// forwarded.
    pub terminated: bool,
    /// The stream ended with an error frame (the provider's, or ours for a cut stream).
    pub failed: bool,
}

impl ChunkStream {
    /// One chunk whose one choice carries `delta` (and `finish_reason`).
    pub fn delta(
        &self,
        out: &mut Vec<u8>,
        delta: oa::Delta<'_>,
        finish_reason: Option<oa::FinishReason>,
    ) {
        let chunk = oa::ChatCompletionChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: vec![oa::ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: self.include_usage.then_some(None),
        };
        sse::write_json(out, &chunk);
    }

    /// The first chunk: the assistant's role, with empty content (as OpenAI starts).
    pub fn role(&self, out: &mut Vec<u8>) {
        let delta = oa::Delta {
            role: Some("assistant"),
            content: Some(""),
            ..oa::Delta::default()
        };
        self.delta(out, delta, None);
    }

    /// A piece of the message content.
    pub fn text(&self, out: &mut Vec<u8>, text: &str) {
        let delta = oa::Delta {
            content: Some(text),
            ..oa::Delta::default()
        };
        self.delta(out, delta, None);
    }

    /// A piece of the reasoning text (`reasoning_content`, as DeepSeek and vLLM stream it).
    pub fn reasoning(&self, out: &mut Vec<u8>, text: &str) {
        if text.is_empty() {
            return;
        }
        let delta = oa::Delta {
            reasoning_content: Some(text),
            ..oa::Delta::default()
        };
        self.delta(out, delta, None);
    }

    /// A tool call's first piece: its id, type and name (and arguments, all or the first part).
    pub fn tool_call(&self, out: &mut Vec<u8>, index: u32, id: &str, name: &str, arguments: &str) {
        let call = oa::ToolCallDelta {
            index,
            id: Some(id),
            kind: Some("function"),
            function: oa::FunctionDelta {
                name: Some(name),
                arguments: Some(arguments),
            },
        };
        self.tool_call_delta(out, call);
    }

    /// A later piece of a tool block's input: argument text of call `Tool(index)`, or for the
    /// forced answer tool a piece of the content.
    pub fn tool_input(&self, out: &mut Vec<u8>, block: StreamBlock, fragment: &str) {
        let index = match block {
            StreamBlock::Answer => return self.text(out, fragment),
            StreamBlock::Tool(index) => index,
        };
        let call = oa::ToolCallDelta {
            index,
            id: None,
            kind: None,
            function: oa::FunctionDelta {
                name: None,
                arguments: Some(fragment),
            },
        };
        self.tool_call_delta(out, call);
    }

    fn tool_call_delta(&self, out: &mut Vec<u8>, call: oa::ToolCallDelta<'_>) {
        let delta = oa::Delta {
            tool_calls: vec![call],
            ..oa::Delta::default()
        };
        self.delta(out, delta, None);
    }

    /// The chunk with the finish reason and an empty delta.
    pub fn finish(&self, out: &mut Vec<u8>, finish_reason: Option<oa::FinishReason>) {
        self.delta(out, oa::Delta::default(), finish_reason);
    }

    /// The stream's regular end: the usage chunk when the client asked for it and there is a
    /// usage to report, then `data: [DONE]`.
    pub fn done(&mut self, out: &mut Vec<u8>, usage: Option<Usage>) {
        self.terminated = true;
        if let (true, Some(usage)) = (self.include_usage, usage) {
            let chunk = oa::ChatCompletionChunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices: Vec::new(),
                usage: Some(Some(usage)),
            };
            sse::write_json(out, &chunk);
        }
        out.extend_from_slice(sse::DONE);
    }

    /// The stream ends with an error frame.
    pub fn fail(&mut self, out: &mut Vec<u8>, error: &ApiError) {
        self.terminated = true;
        self.failed = true;
        stream_error_frame(out, error);
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use serde_json::json;

    use super::*;

    fn body(answer: AnswerMessage<'_>) -> Value {
        let out = answer
            .into_body("chatcmpl-1", 7, "m", None, Usage::default())
            .unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn content_is_null_only_beside_tool_calls() {
        assert_eq!(
            body(AnswerMessage::default())["choices"][0]["message"]["content"],
            ""
        );
        let mut calls = AnswerMessage::default();
        calls.push_tool_call(Cow::Borrowed("c"), "f", "{}".into());
        let message = &body(calls)["choices"][0]["message"];
        assert!(message["content"].is_null());
        assert_eq!(message["tool_calls"][0]["id"], "c");
    }

    #[test]
    fn the_answer_tool_is_content_and_finishes_with_stop() {
        let tools = ToolCalls {
            answer_tool: Some("json_answer".into()),
            ..ToolCalls::default()
        };
        let mut answer = AnswerMessage::default();
        answer
            .push_tool_use("t", "json_answer", &json!({"a": 1}), &tools)
            .unwrap();
        assert_eq!(answer.tool_use_finish(&tools), oa::FinishReason::Stop);
        let message = &body(answer)["choices"][0]["message"];
        assert_eq!(message["content"], r#"{"a":1}"#);
        assert!(message.get("tool_calls").is_none());
    }

    #[test]
    fn stream_blocks_find_their_calls() {
        let mut tools = ToolCalls {
            answer_tool: Some("json_answer".into()),
            ..ToolCalls::default()
        };
        assert_eq!(tools.start(3, "json_answer"), None);
        assert_eq!(tools.tool_use_finish(), oa::FinishReason::Stop);
        assert_eq!(tools.start(5, "f"), Some(0));
        assert_eq!(tools.start(6, "g"), Some(1));
        assert_eq!(tools.block(3), Some(StreamBlock::Answer));
        assert_eq!(tools.block(6), Some(StreamBlock::Tool(1)));
        assert_eq!(tools.block(4), None);
        assert_eq!(tools.tool_use_finish(), oa::FinishReason::ToolCalls);
    }

    #[test]
    fn usage_chunk_only_when_asked_and_known() {
        let mut stream = ChunkStream::default();
        let mut out = Vec::new();
        stream.done(&mut out, Some(Usage::default()));
        assert_eq!(out, sse::DONE);
        assert!(stream.terminated && !stream.failed);
        let mut stream = ChunkStream {
            include_usage: true,
            ..ChunkStream::default()
        };
        let mut out = Vec::new();
        stream.done(&mut out, None);
        assert_eq!(out, sse::DONE);
        let mut out = Vec::new();
        stream.done(&mut out, Some(usage_with_cache(3, Some(2), Some(1), 4)));
        let text = String::from_utf8(out).unwrap();
        // Cache writes are reported by builds with a backend that has them
        // (`PromptTokensDetails::cache_write_tokens`).
        #[cfg(any(feature = "anthropic", feature = "bedrock"))]
        let details = r#"{"cached_tokens":2,"cache_write_tokens":1}"#;
        #[cfg(not(any(feature = "anthropic", feature = "bedrock")))]
        let details = r#"{"cached_tokens":2}"#;
        let usage = format!(
            r#""choices":[],"usage":{{"prompt_tokens":6,"completion_tokens":4,"total_tokens":10,"prompt_tokens_details":{details}}}"#
        );
        assert!(text.contains(&usage), "{text}");
    }
}
