//! Anthropic Messages client to every other backend: the Messages ↔ Chat Completions adapter,
//! composed around the existing Chat → provider [`Translator`] (`openai_openai`,
//! `openai_gemini`, `openai_bedrock`, `openai_azure`).
//!
//! Request: the Messages body (<https://docs.anthropic.com/en/api/messages>) becomes a Chat
//! Completions body (<https://platform.openai.com/docs/api-reference/chat/create>), which the
//! inner translator turns into the provider's. Answer: what the inner translator makes of the
//! provider's answer (Chat JSON, Chat SSE chunks, OpenAI errors) becomes Anthropic's message,
//! its SSE event sequence (`message_start`, `ping`, `content_block_start` /
//! `content_block_delta` (`text_delta`, `input_json_delta`) / `content_block_stop`,
//! `message_delta`, `message_stop`, `error`:
//! <https://docs.anthropic.com/en/api/messages-streaming>) or its error shape. Streaming state
//! (open block, block indexes per tool call, stop reason, usage) lives here.
//!
//! What the mapping drops or refuses is listed in [`request`] and in the README ("Client APIs").

mod request;
mod response;

use super::{ResponseBody, ResponseMode, ResponsePlan, Translator, Usage};
use crate::error::ApiError;

pub use request::to_chat_request;
use response::{AnswerStream, ChatAnswerReader};

/// The adapter; one per try.
pub struct MessagesChat {
    inner: Box<dyn Translator>,
    /// The inner translator's plan for the answer.
    inner_mode: ResponseMode,
    status: u16,
    stream: AnswerStream,
    reader: ChatAnswerReader,
    /// Keep `cache_control` on the Chat parts ([`request::to_chat_request_with`]).
    cache_hints: bool,
}

impl MessagesChat {
    pub fn new(inner: Box<dyn Translator>) -> Self {
        Self {
            inner,
            inner_mode: ResponseMode::Untouched,
            status: 0,
            stream: AnswerStream::default(),
            reader: ChatAnswerReader::default(),
            cache_hints: false,
        }
    }

    /// For an inner translator that reads `cache_control` on Chat parts (never the OpenAI
    /// passthrough, which would send it to a provider that refuses unknown fields).
    pub fn with_cache_hints(mut self) -> Self {
        self.cache_hints = true;
        self
    }
}

impl Translator for MessagesChat {
    fn chat_path(&self, _query: Option<&str>) -> String {
        // The client's query string is Anthropic's (`?beta=true`): nothing to the backend.
        self.inner.chat_path(None)
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let chat = request::to_chat_request_with(body, self.cache_hints)?;
        // The inner translator sends the Chat body as it is (`None`) or its own.
        Ok(Some(
            self.inner
                .request_body(&chat, upstream_model)?
                .unwrap_or(chat),
        ))
    }

    fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        encoded: bool,
        created: u64,
    ) -> ResponsePlan {
        self.status = status;
        let inner = self
            .inner
            .response_headers(status, content_type, encoded, created);
        self.inner_mode = inner.mode;
        let ok = (200..300).contains(&status);
        match inner.mode {
            ResponseMode::Stream => ResponsePlan {
                mode: ResponseMode::Stream,
                status: inner.status,
                content_type: Some("text/event-stream"),
            },
            // Every other answer and error is read whole and rewritten as Anthropic's.
            _ if ok || status >= 400 => ResponsePlan {
                mode: ResponseMode::Buffer,
                status: inner.status,
                content_type: Some("application/json"),
            },
            _ => ResponsePlan::UNTOUCHED,
        }
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        // The Chat answer: the inner translator's, or the body itself where the inner one
        // passes it (it still reads it, for usage).
        let (status, chat) = match self.inner_mode {
            ResponseMode::Buffer => {
                let out = self.inner.response_body(body);
                (out.status.unwrap_or(self.status), out.body)
            }
            ResponseMode::Watch => {
                // The inner passthrough reads its answer for usage as it would passing it.
                let _unchanged = self.inner.response_chunk(body, true);
                (self.status, body.to_vec())
            }
            // Untouched: already the Chat answer or OpenAI error, unread by the inner one.
            ResponseMode::Untouched | ResponseMode::Stream => (self.status, body.to_vec()),
        };
        let (status, body) = self.reader.translate(status, &chat);
        ResponseBody {
            status: (status != self.status).then_some(status),
            body,
        }
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        let chat = self.inner.response_chunk(chunk, end_of_stream);
        let chat = chat.as_deref().unwrap_or(chunk);
        Some(self.stream.feed(chat, end_of_stream))
    }

    fn usage(&self) -> Option<Usage> {
        self.stream
            .usage()
            .or(self.reader.usage())
            .or_else(|| self.inner.usage())
    }

    fn finish_request(&mut self, body: &[u8], now_ms: u64) -> Vec<(String, String)> {
        self.inner.finish_request(body, now_ms)
    }

    fn response_headers_read(&self) -> &'static [&'static str] {
        self.inner.response_headers_read()
    }

    fn note_response_header(&mut self, name: &str, value: &str) {
        self.inner.note_response_header(name, value);
    }

    fn stream_failed(&self) -> bool {
        self.stream.failed() || self.inner.stream_failed()
    }

    fn request_path(&self) -> Option<String> {
        self.inner.request_path()
    }
}
