//! OpenAI Chat Completions to Google Gemini `generateContent` (AI Studio and Vertex AI), and
//! back.
//!
//! Request: <https://platform.openai.com/docs/api-reference/chat/create> becomes
//! <https://ai.google.dev/api/generate-content#request-body>: system and developer messages
//! → `systemInstruction`; `user`/`assistant` → `user`/`model` turns of `parts`; images
//! (`data:` URLs only: Gemini takes inline data, and llmgw fetches nothing) → `inlineData`;
//! assistant `tool_calls` → `functionCall` parts; `tool` results → `functionResponse` parts;
//! sampling fields → `generationConfig`; `tools`/`tool_choice` → `tools.functionDeclarations`
//! and `toolConfig` (<https://ai.google.dev/gemini-api/docs/function-calling>);
//! `response_format` → `responseMimeType` + `responseSchema`
//! (<https://ai.google.dev/gemini-api/docs/structured-output>); `reasoning_effort` →
//! `thinkingConfig` (<https://ai.google.dev/gemini-api/docs/thinking>, budgets in
//! [`super::reasoning`]). What Gemini cannot honour is refused with a 400 naming the field.
//!
//! Paths: AI Studio `/v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`; Vertex AI
//! `/v1/projects/{project}/locations/{region}/publishers/google/models/{model}:…`
//! (<https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent>).
//!
//! Response: a `GenerateContentResponse` becomes a `chat.completion`; with `alt=sse` each
//! event is one `GenerateContentResponse` chunk, translated as it arrives. Gemini has no
//! terminal event: a chunk with a `finishReason` ends the answer, and a stream that ends
//! without one ends with an error frame. Function calls carry no ids: llmgw numbers them
//! `call_<n>` in answer order. Thought summaries (`thought: true` parts) become
//! `reasoning_content`; `thoughtsTokenCount` becomes `completion_tokens_details.reasoning_tokens`.

use std::borrow::Cow;

use super::completion::{arguments_json, AnswerMessage, ChunkStream, EMPTY_ARGUMENTS};
use super::dropped::{what, Dropped};
use super::options::VertexBackend;
use super::request_fields;
use super::{
    buffer_plan, buffered_answer, has_media_type, read_answer, truncated_stream_error,
    unreadable_answer, unreadable_error, with_usage, ResponseBody, ResponsePlan,
};
use super::{Translator, Usage};
use crate::error::{ApiError, ErrorType};
use crate::schema::gemini as gm;
use crate::schema::openai as oa;
use crate::sse;

mod request;

pub(crate) use request::model_segment;
pub use request::{gemini_schema, to_gemini_request};

/// Where the request goes: the two APIs differ only in path and auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    AiStudio,
    Vertex(VertexBackend),
}

impl Endpoint {
    pub(crate) fn model_path(&self, model: &str) -> String {
        match self {
            Endpoint::AiStudio => format!("/v1beta/models/{model}"),
            Endpoint::Vertex(v) => format!(
                "/v1/projects/{}/locations/{}/publishers/google/models/{model}",
                v.project, v.region
            ),
        }
    }
}

/// The translator; one per try.
#[derive(Debug)]
pub struct OpenAiGemini {
    endpoint: Endpoint,
    drop_fields: Vec<String>,
    /// Set once the body was read.
    path: Option<String>,
    status: u16,
    /// The OpenAI answer's id, model and time (the model asked for, until the answer names
    /// its version). Gemini has no terminal event: the stream ends (`terminated`) only with an
    /// error frame, or at the end of the body.
    stream: ChunkStream,
    decoder: sse::Decoder,
    /// The first chunk was seen (the role chunk was sent).
    started: bool,
    /// A candidate reported its finish reason: the answer is complete.
    finished: bool,
    /// Function calls seen so far in the stream (their `index` and `call_<n>` id).
    tool_calls: u32,
    usage: Option<Usage>,
    /// What had no place in the OpenAI answer.
    dropped: Dropped,
}

impl OpenAiGemini {
    pub fn new(endpoint: Endpoint, drop_fields: Vec<String>) -> Self {
        Self {
            endpoint,
            drop_fields,
            path: None,
            status: 0,
            stream: ChunkStream::default(),
            decoder: sse::Decoder::new(),
            started: false,
            finished: false,
            tool_calls: 0,
            usage: None,
            dropped: Dropped::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Response

/// The provider, in what is logged.
const PROVIDER: &str = "Gemini";

/// <https://ai.google.dev/api/generate-content#FinishReason>
fn finish_reason(reason: gm::FinishReason, has_tool_calls: bool) -> oa::FinishReason {
    use gm::FinishReason as F;
    match reason {
        F::Stop if has_tool_calls => oa::FinishReason::ToolCalls,
        F::MaxTokens => oa::FinishReason::Length,
        F::Safety
        | F::Recitation
        | F::Language
        | F::Blocklist
        | F::ProhibitedContent
        | F::Spii
        | F::ImageSafety => oa::FinishReason::ContentFilter,
        F::Stop
        | F::MalformedFunctionCall
        | F::UnexpectedToolCall
        | F::TooManyToolCalls
        | F::Other
        | F::Unknown => oa::FinishReason::Stop,
    }
}

/// Gemini reports thinking tokens apart from `candidatesTokenCount`; OpenAI counts them in
/// `completion_tokens` and details them in `completion_tokens_details.reasoning_tokens`.
/// `promptTokenCount` already includes cached tokens, as OpenAI's `prompt_tokens` does.
fn openai_usage(usage: &gm::UsageMetadata) -> Usage {
    let completion = usage.candidates_token_count + usage.thoughts_token_count;
    Usage {
        prompt_tokens: usage.prompt_token_count,
        completion_tokens: completion,
        total_tokens: usage.prompt_token_count + completion,
        prompt_tokens_details: Some(oa::PromptTokensDetails::read(
            usage.cached_content_token_count,
        )),
        completion_tokens_details: Some(oa::CompletionTokensDetails {
            reasoning_tokens: usage.thoughts_token_count,
        }),
    }
}

/// Google's canonical error codes (<https://cloud.google.com/apis/design/errors>).
fn error_type(status_name: &str, status: u16) -> ErrorType {
    match status_name {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
            ErrorType::InvalidRequestError
        }
        "UNAUTHENTICATED" => ErrorType::AuthenticationError,
        "PERMISSION_DENIED" => ErrorType::PermissionError,
        "NOT_FOUND" => ErrorType::NotFoundError,
        "RESOURCE_EXHAUSTED" => ErrorType::RateLimitError,
        "UNAVAILABLE" => ErrorType::ServiceUnavailableError,
        "INTERNAL" | "DEADLINE_EXCEEDED" | "UNKNOWN" => ErrorType::ApiError,
        _ => ErrorType::for_status(status),
    }
}

fn translate_error(body: &gm::ErrorBody<'_>, status: u16) -> ApiError {
    let error = ApiError::new(
        status,
        error_type(&body.status, status),
        body.message.as_ref(),
    );
    if body.status.is_empty() {
        error
    } else {
        error.with_code(body.status.to_ascii_lowercase())
    }
}

/// An error body: an object, or (from the non-SSE stream method) an array holding one.
fn parse_error(body: &[u8]) -> Option<gm::ErrorResponse<'_>> {
    // Tried by shape: serde would also read a struct from an array (as a sequence).
    if body.trim_ascii_start().starts_with(b"[") {
        crate::json::from_slice::<Vec<gm::ErrorResponse<'_>>>(body)
            .ok()
            .and_then(|v| v.into_iter().next())
    } else {
        crate::json::from_slice::<gm::ErrorResponse<'_>>(body).ok()
    }
}

/// A Google API error answer (Gemini API or Vertex AI) → OpenAI error, same status; an
/// unreadable body still becomes an OpenAI error.
pub(crate) fn google_error(status: u16, body: &[u8]) -> ApiError {
    match parse_error(body) {
        // Our API key, not the client's: the gateway's error, as for every provider's 401/403.
        Some(parsed)
            if parsed
                .error
                .details
                .iter()
                .any(|d| d.reason == "API_KEY_INVALID") =>
        {
            super::account_headers::upstream_auth_failed(status)
        }
        Some(parsed) => translate_error(&parsed.error, status),
        None => unreadable_error(status, status, ErrorType::for_status(status)),
    }
}

/// `call_<n>` unless the model numbered the call itself.
fn call_id(given: Option<&Cow<'_, str>>, n: u32) -> String {
    match given {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("call_{n}"),
    }
}

fn translate_response(
    response: &gm::GenerateContentResponse<'_>,
    created: u64,
    fallback_model: &str,
    dropped: &mut Dropped,
) -> Result<(Vec<u8>, Usage), serde_json::Error> {
    let id = format!(
        "chatcmpl-{}",
        response.response_id.as_deref().unwrap_or("gemini")
    );
    let model = response.model_version.as_deref().unwrap_or(fallback_model);
    let candidate = response.candidates.iter().find(|c| c.index == 0);
    let mut answer = AnswerMessage::default();
    if let Some(content) = candidate.and_then(|c| c.content.as_ref()) {
        for part in &content.parts {
            if let Some(call) = &part.function_call {
                let id = call_id(call.id.as_ref(), answer.tool_call_count() as u32);
                let arguments = arguments_json(&call.args)?;
                answer.push_tool_call(Cow::Owned(id), &call.name, arguments);
            } else if let (Some(text), true) = (&part.text, part.thought) {
                answer.push_reasoning(Cow::Borrowed(text));
            } else if let Some(text) = &part.text {
                answer.push_text(Cow::Borrowed(text));
            } else {
                dropped.note(PROVIDER, what::CONTENT, "part");
            }
        }
    }
    let finish = match candidate.and_then(|c| c.finish_reason) {
        Some(reason) => {
            if reason == gm::FinishReason::Unknown {
                dropped.note(PROVIDER, what::STOP_REASON, "finishReason");
            }
            Some(finish_reason(reason, answer.tool_call_count() > 0))
        }
        // A blocked prompt has no candidates, only `promptFeedback.blockReason`.
        None if response
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some()) =>
        {
            Some(oa::FinishReason::ContentFilter)
        }
        None => None,
    };
    let usage = openai_usage(&response.usage_metadata.unwrap_or_default());
    Ok((answer.into_body(&id, created, model, finish, usage)?, usage))
}

impl OpenAiGemini {
    /// One `GenerateContentResponse` chunk → zero or more OpenAI frames.
    fn on_event(&mut self, event: &sse::Event, out: &mut Vec<u8>) {
        let data = event.data.trim();
        if data.starts_with("{\"error\"") || data.starts_with("[{\"error\"") {
            let error = match parse_error(data.as_bytes()) {
                Some(e) => {
                    let status = if e.error.code >= 400 {
                        e.error.code
                    } else {
                        500
                    };
                    translate_error(&e.error, status)
                }
                None => unreadable_answer("an error event that is not Gemini's error shape"),
            };
            self.stream.fail(out, &error);
            return;
        }
        let chunk: gm::GenerateContentResponse<'_> = match crate::json::from_str(data) {
            Ok(chunk) => chunk,
            Err(err) => {
                log::warn!("llmgw.translate: unreadable Gemini stream chunk: {err}");
                let error = unreadable_answer("a stream chunk that is not JSON");
                self.stream.fail(out, &error);
                return;
            }
        };
        if !self.started {
            self.started = true;
            if let Some(id) = &chunk.response_id {
                self.stream.id = format!("chatcmpl-{id}");
            }
            if let Some(model) = &chunk.model_version {
                self.stream.model = model.to_string();
            }
            self.stream.role(out);
        }
        if let Some(usage) = &chunk.usage_metadata {
            // Each chunk's counts are totals so far: they replace, not add.
            self.usage = Some(openai_usage(usage));
        }
        let Some(candidate) = chunk.candidates.iter().find(|c| c.index == 0) else {
            if chunk
                .prompt_feedback
                .as_ref()
                .is_some_and(|f| f.block_reason.is_some())
            {
                self.finished = true;
                let finish = Some(oa::FinishReason::ContentFilter);
                self.stream.finish(out, finish);
            }
            return;
        };
        if let Some(content) = &candidate.content {
            for part in &content.parts {
                if let Some(call) = &part.function_call {
                    let index = self.tool_calls;
                    self.tool_calls += 1;
                    let id = call_id(call.id.as_ref(), index);
                    let arguments =
                        arguments_json(&call.args).unwrap_or_else(|_| EMPTY_ARGUMENTS.to_string());
                    // Gemini sends a call whole: its first piece carries all the arguments.
                    self.stream
                        .tool_call(out, index, &id, &call.name, &arguments);
                } else if let (Some(text), true) = (&part.text, part.thought) {
                    self.stream.reasoning(out, text);
                } else if let Some(text) = &part.text {
                    if !text.is_empty() {
                        self.stream.text(out, text);
                    }
                } else {
                    // executableCode, inlineData answers, new part types.
                    self.dropped.note(PROVIDER, what::CONTENT, "part");
                }
            }
        }
        if let Some(reason) = candidate.finish_reason {
            if reason == gm::FinishReason::Unknown {
                self.dropped
                    .note(PROVIDER, what::STOP_REASON, "finishReason");
            }
            self.finished = true;
            let finish = finish_reason(reason, self.tool_calls > 0);
            self.stream.finish(out, Some(finish));
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.stream.failed {
            return;
        }
        if !self.finished {
            self.stream.fail(out, &truncated_stream_error());
            return;
        }
        // Gemini reports usage on its chunks; a stream without any still ends with one.
        self.stream.done(out, Some(self.usage.unwrap_or_default()));
    }
}

impl Translator for OpenAiGemini {
    fn chat_path(&self, _query: Option<&str>) -> String {
        // The model and the method are in the body: the real path is set once it was read
        // (`request_path`). Until then, a path the provider would refuse.
        self.endpoint.model_path("-")
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let request = request_fields::parse_request(body)?;
        let model = request_fields::chosen_model(upstream_model, request.model.as_deref())?;
        let model = model_segment(model)?.to_string();
        let stream = request.stream == Some(true);
        self.stream.include_usage = request_fields::wants_stream_usage(&request);
        let translated = to_gemini_request(request, &self.drop_fields)?;
        let out = request_fields::encode(&translated)?;
        let base = self.endpoint.model_path(&model);
        self.path = Some(if stream {
            format!("{base}:streamGenerateContent?alt=sse")
        } else {
            format!("{base}:generateContent")
        });
        self.stream.id = "chatcmpl-gemini".to_string();
        self.stream.model = model;
        Ok(Some(out))
    }

    fn request_path(&self) -> Option<String> {
        self.path.clone()
    }

    fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        encoded: bool,
        created: u64,
    ) -> ResponsePlan {
        self.stream.created = created;
        self.status = status;
        let stream = !encoded && has_media_type(content_type, "text/event-stream");
        buffer_plan(status, stream, status)
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        let status = self.status;
        let (created, model, usage) = (self.stream.created, &self.stream.model, &mut self.usage);
        let dropped = &mut self.dropped;
        buffered_answer(
            status,
            status,
            body,
            &|body| google_error(status, body),
            &mut |body| {
                let response = read_answer::<gm::GenerateContentResponse<'_>>(
                    body,
                    "not a Gemini GenerateContentResponse",
                )?;
                let translated = translate_response(&response, created, model, dropped);
                with_usage(translated, usage, "an answer that cannot be re-encoded")
            },
        )
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if !self.stream.failed {
            for event in self.decoder.feed(chunk) {
                self.on_event(&event, &mut out);
                if self.stream.failed {
                    break;
                }
            }
        }
        if end_of_stream {
            self.end(&mut out);
        }
        Some(out)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn hide_usage_chunk(&mut self) {
        self.stream.include_usage = false;
    }

    fn stream_failed(&self) -> bool {
        self.stream.failed
    }

    fn dropped(&self) -> &[(&'static str, u64)] {
        self.dropped.counts()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn finish_reasons_map_to_openai() {
        use gm::FinishReason as F;
        for reason in [
            F::Safety,
            F::Recitation,
            F::Blocklist,
            F::ProhibitedContent,
            F::Spii,
        ] {
            assert_eq!(
                finish_reason(reason, false),
                oa::FinishReason::ContentFilter
            );
        }
        assert_eq!(finish_reason(F::Stop, true), oa::FinishReason::ToolCalls);
        assert_eq!(finish_reason(F::Stop, false), oa::FinishReason::Stop);
        assert_eq!(finish_reason(F::MaxTokens, false), oa::FinishReason::Length);
        assert_eq!(finish_reason(F::Unknown, false), oa::FinishReason::Stop);
        let parsed: gm::FinishReason =
            serde_json::from_str("\"FINISH_REASON_UNSPECIFIED\"").unwrap();
        assert_eq!(parsed, F::Unknown);
    }

    #[test]
    fn paths_follow_the_endpoint_and_stream_flag() {
        let mut t = OpenAiGemini::new(Endpoint::AiStudio, Vec::new());
        t.request_body(
            br#"{"model":"g","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            t.request_path().as_deref(),
            Some("/v1beta/models/g:streamGenerateContent?alt=sse")
        );
        let vertex = Endpoint::Vertex(VertexBackend {
            project: "p".into(),
            region: "europe-west4".into(),
        });
        let mut t = OpenAiGemini::new(vertex, Vec::new());
        t.request_body(
            br#"{"model":"g","messages":[{"role":"user","content":"hi"}]}"#,
            Some("gemini-2.5-pro"),
        )
        .unwrap();
        assert_eq!(
            t.request_path().as_deref(),
            Some("/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent")
        );
    }
}
