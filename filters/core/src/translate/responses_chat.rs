//! The client adapter for OpenAI Responses (`POST /v1/responses`) on backends that do not speak
//! it (Anthropic, Gemini, Vertex, Bedrock): Responses → Chat Completions → the existing Chat
//! translator for the backend, and its Chat answer, chunks and errors back into Responses.
//! OpenAI and Azure take Responses as they are (passthrough, no adapter).
//!
//! - [`request`]: the request mapping, and what is refused or accepted without effect;
//! - [`answer`]: a `chat.completion` → the `response` object;
//! - [`stream`]: Chat SSE chunks → the Responses event stream.
//!
//! Errors need no mapping: the inner translator writes OpenAI's error body, which is the
//! Responses API's too (<https://platform.openai.com/docs/guides/error-codes>). Usage stays in
//! Chat terms for the filters behind ([`Translator::usage`]); the client sees it in Responses
//! terms (`input_tokens`, `output_tokens`, …).

pub mod answer;
pub mod request;
pub mod stream;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod tests;

use super::{ResponseBody, ResponseMode, ResponsePlan, Translator, Usage};
use crate::error::ApiError;
use crate::schema::responses::Echo;
use stream::ResponsesStream;

/// The adapter around one try's Chat translator.
pub struct ResponsesChat {
    inner: Box<dyn Translator>,
    /// The provider's name, for refusals.
    provider: String,
    echo: Echo,
    stream: ResponsesStream,
    /// Unix time (s) stamped on the response.
    created: u64,
    /// The inner translator's plan for this response.
    mode: ResponseMode,
    /// The provider's response status.
    status: u16,
}

impl ResponsesChat {
    pub fn new(inner: Box<dyn Translator>, provider: &str) -> Self {
        Self {
            inner,
            provider: provider.to_string(),
            echo: Echo::default(),
            stream: ResponsesStream::default(),
            created: 0,
            mode: ResponseMode::Untouched,
            status: 0,
        }
    }
}

impl Translator for ResponsesChat {
    fn chat_path(&self, query: Option<&str>) -> String {
        self.inner.chat_path(query)
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let chat = request::to_chat(body, &self.provider)?;
        self.echo = chat.echo.clone();
        self.stream = ResponsesStream::new(chat.echo);
        match self.inner.request_body(&chat.body, upstream_model) {
            Ok(Some(out)) => Ok(Some(out)),
            Ok(None) => Ok(Some(chat.body)),
            // The inner translator names Chat's fields; the client wrote Responses'.
            Err(mut error) => {
                error.param = error.param.as_deref().map(request::responses_param);
                Err(error)
            }
        }
    }

    fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        encoded: bool,
        created: u64,
    ) -> ResponsePlan {
        self.created = created;
        self.status = status;
        self.stream.set_created(created);
        let plan = self
            .inner
            .response_headers(status, content_type, encoded, created);
        self.mode = plan.mode;
        plan
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        let out = self.inner.response_body(body);
        if !(200..300).contains(&self.status) || out.status.is_some() {
            // An error: OpenAI's body is the Responses API's too.
            return out;
        }
        match answer::to_response(&out.body, &self.echo, self.created) {
            Ok((body, _usage)) => ResponseBody { status: None, body },
            Err(error) => ResponseBody {
                status: Some(error.status),
                body: error.body(),
            },
        }
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        if self.mode != ResponseMode::Stream {
            return self.inner.response_chunk(chunk, end_of_stream);
        }
        let chat = self.inner.response_chunk(chunk, end_of_stream);
        let chat = chat.as_deref().unwrap_or(chunk);
        Some(self.stream.feed(chat, end_of_stream))
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
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
        self.inner.stream_failed() || self.stream.failed
    }

    fn request_path(&self) -> Option<String> {
        self.inner.request_path()
    }
}
