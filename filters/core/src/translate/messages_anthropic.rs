//! Anthropic Messages client to an Anthropic backend: a passthrough.
//!
//! The body leaves byte for byte as the client sent it, but for the top-level `model` when
//! router chose another name for this provider ([`super::model_field`]); headers change only in
//! credentials (the filter sets the provider's `x-api-key`, keeps the client's
//! `anthropic-version` or sets the configured one). So `cache_control`, `thinking` blocks with
//! their `signature`, `anthropic-beta` features and fields Anthropic adds later keep working
//! without a release of llmgw (<https://docs.anthropic.com/en/api/messages>).
//!
//! Answers pass unchanged, Anthropic's errors included (they already are in the client's
//! dialect). translate reads them on the way for the try's usage (`message_start` and the
//! cumulative `message_delta` usage of a stream, `usage` of a JSON answer), and appends an
//! Anthropic `error` event to a stream that ends before `message_stop`, so the SDK raises
//! instead of returning a cut message
//! (<https://docs.anthropic.com/en/api/messages-streaming#error-events>).

use super::openai_anthropic::openai_usage;
use super::{has_media_type, model_field, ResponseBody, ResponseMode, ResponsePlan};
use super::{truncated_stream_error, Translator, Usage};
use crate::dialect::{self, Operation};
use crate::error::ApiError;
use crate::schema::anthropic as an;
use crate::sse;

/// JSON answers larger than this are not collected for their usage.
const MAX_WATCHED_JSON: usize = 4 << 20;

/// The passthrough translator; one per try.
#[derive(Debug)]
pub struct MessagesAnthropic {
    operation: Operation,
    decoder: sse::Decoder,
    /// The answer is a stream being watched.
    streaming: bool,
    /// `message_stop` or an `error` event arrived.
    terminated: bool,
    failed: bool,
    /// Anthropic's counts so far (a stream's `message_delta` replaces them).
    counts: an::Usage,
    usage: Option<Usage>,
    /// A JSON answer, collected as it passes, to read its `usage`.
    json_body: Option<Vec<u8>>,
}

impl MessagesAnthropic {
    pub fn new(operation: Operation) -> Self {
        Self {
            operation,
            decoder: sse::Decoder::new(),
            streaming: false,
            terminated: false,
            failed: false,
            counts: an::Usage::default(),
            // Counting tokens spends none.
            usage: (operation == Operation::CountTokens).then(Usage::default),
            json_body: None,
        }
    }

    fn watch(&mut self, event: &sse::Event) {
        match an::StreamEvent::parse(&event.data) {
            Ok(an::StreamEvent::MessageStart { message }) => {
                self.counts = message.usage;
                self.usage = Some(openai_usage(&self.counts));
            }
            Ok(an::StreamEvent::MessageDelta {
                usage: Some(delta), ..
            }) => {
                // Cumulative counts: they replace, not add.
                let c = &mut self.counts;
                c.output_tokens = delta.output_tokens.unwrap_or(c.output_tokens);
                c.input_tokens = delta.input_tokens.unwrap_or(c.input_tokens);
                if delta.cache_creation_input_tokens.is_some() {
                    c.cache_creation_input_tokens = delta.cache_creation_input_tokens;
                }
                if delta.cache_read_input_tokens.is_some() {
                    c.cache_read_input_tokens = delta.cache_read_input_tokens;
                }
                self.usage = Some(openai_usage(&self.counts));
            }
            Ok(an::StreamEvent::MessageStop) => self.terminated = true,
            Ok(an::StreamEvent::Error { .. }) => {
                self.terminated = true;
                self.failed = true;
            }
            // Events llmgw does not read, new ones and unreadable ones pass as they came.
            _ => {}
        }
    }
}

/// An Anthropic `error` event (`event: error` + its JSON), what the SDK raises on mid-stream.
pub fn error_event(out: &mut Vec<u8>, error: &ApiError) {
    let json = serde_json::to_vec(&dialect::anthropic_error(error)).unwrap_or_default();
    sse::write_event(out, "error", &json);
}

impl Translator for MessagesAnthropic {
    fn chat_path(&self, query: Option<&str>) -> String {
        // The query is Anthropic's own (the SDK's beta client sends `?beta=true`).
        let path = match self.operation {
            Operation::Create => dialect::MESSAGES,
            Operation::CountTokens => dialect::MESSAGES_COUNT_TOKENS,
        };
        match query {
            Some(query) => format!("{path}?{query}"),
            None => path.to_string(),
        }
    }

    fn needs_request_body(&self, upstream_model: Option<&str>) -> bool {
        upstream_model.is_some()
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        // A body without a string `model` goes as it is: Anthropic names what is wrong.
        Ok(upstream_model.and_then(|model| model_field::replace_model(body, model)))
    }

    fn stamps_created(&self) -> bool {
        false // the answer is the provider's, its `created` included
    }

    fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        encoded: bool,
        _created: u64,
    ) -> ResponsePlan {
        let ok = (200..300).contains(&status);
        if !ok || encoded || self.operation == Operation::CountTokens {
            return ResponsePlan::UNTOUCHED;
        }
        if has_media_type(content_type, "text/event-stream") {
            self.streaming = true;
            // Stream, not Watch: a cut stream gets an error event appended.
            ResponsePlan {
                mode: ResponseMode::Stream,
                status: None,
                content_type: None,
            }
        } else if has_media_type(content_type, "application/json") {
            self.json_body = Some(Vec::new());
            ResponsePlan {
                mode: ResponseMode::Watch,
                status: None,
                content_type: None,
            }
        } else {
            ResponsePlan::UNTOUCHED
        }
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        // Never buffered (see `response_headers`); the body goes back unchanged.
        ResponseBody {
            status: None,
            body: body.to_vec(),
        }
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        if !self.streaming {
            // A JSON answer being watched: keep a copy until it ends, then read its usage.
            if let Some(copy) = self.json_body.as_mut() {
                if copy.len() + chunk.len() <= MAX_WATCHED_JSON {
                    copy.extend_from_slice(chunk);
                } else {
                    self.json_body = None;
                }
            }
            if end_of_stream {
                if let Some(copy) = self.json_body.take() {
                    #[derive(serde::Deserialize)]
                    struct UsageOnly {
                        usage: an::Usage,
                    }
                    if let Ok(answer) = crate::json::from_slice::<UsageOnly>(&copy) {
                        self.usage = Some(openai_usage(&answer.usage));
                    }
                }
            }
            return None;
        }
        if !self.terminated {
            for event in self.decoder.feed(chunk) {
                self.watch(&event);
            }
        }
        if end_of_stream && !self.terminated {
            self.terminated = true;
            self.failed = true;
            let mut out = chunk.to_vec();
            error_event(&mut out, &truncated_stream_error());
            return Some(out);
        }
        None
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn stream_failed(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    // Anthropic's documented streaming example, shortened
    // (<https://docs.anthropic.com/en/api/messages-streaming#basic-streaming-request>).
    const STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-opus-4-6\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    fn streamed(t: &mut MessagesAnthropic, body: &str, step: usize) -> Vec<u8> {
        let plan = t.response_headers(200, Some("text/event-stream"), false, 0);
        assert_eq!(plan.mode, ResponseMode::Stream);
        let bytes = body.as_bytes();
        let mut out = Vec::new();
        let pieces: Vec<&[u8]> = bytes.chunks(step).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let last = i + 1 == pieces.len();
            match t.response_chunk(piece, last) {
                Some(replaced) => out.extend(replaced),
                None => out.extend_from_slice(piece),
            }
        }
        out
    }

    #[test]
    fn a_stream_passes_unchanged_and_its_usage_is_read() {
        for step in [STREAM.len(), 1, 7] {
            let mut t = MessagesAnthropic::new(Operation::Create);
            let out = streamed(&mut t, STREAM, step);
            assert_eq!(out, STREAM.as_bytes(), "step {step}");
            let usage = t.usage().unwrap();
            assert_eq!((usage.prompt_tokens, usage.completion_tokens), (25, 15));
            assert!(!t.stream_failed());
        }
    }

    #[test]
    fn a_cut_stream_ends_in_an_anthropic_error_event() {
        let cut = &STREAM[..STREAM.find("event: message_delta").unwrap()];
        for step in [cut.len(), 1] {
            let mut t = MessagesAnthropic::new(Operation::Create);
            let out = String::from_utf8(streamed(&mut t, cut, step)).unwrap();
            let tail = out.strip_prefix(cut).unwrap();
            assert!(tail.starts_with("event: error\ndata: "), "{tail}");
            let json: serde_json::Value =
                serde_json::from_str(tail["event: error\ndata: ".len()..].trim()).unwrap();
            assert_eq!(json["type"], "error");
            assert_eq!(json["error"]["type"], "api_error");
            assert!(t.stream_failed());
        }
    }

    #[test]
    fn a_json_answer_is_watched_for_usage() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"cache_read_input_tokens":4,"output_tokens":3}}"#;
        let mut t = MessagesAnthropic::new(Operation::Create);
        let plan = t.response_headers(200, Some("application/json"), false, 0);
        assert_eq!(plan.mode, ResponseMode::Watch);
        assert_eq!(t.response_chunk(&body[..20], false), None);
        assert_eq!(t.response_chunk(&body[20..], true), None);
        let usage = t.usage().unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens()
            ),
            (14, 3, 4)
        );
    }

    #[test]
    fn errors_and_count_tokens_pass_untouched() {
        let mut t = MessagesAnthropic::new(Operation::Create);
        let plan = t.response_headers(529, Some("application/json"), false, 0);
        assert_eq!(plan, ResponsePlan::UNTOUCHED);
        let mut t = MessagesAnthropic::new(Operation::CountTokens);
        assert_eq!(t.chat_path(None), "/v1/messages/count_tokens");
        let plan = t.response_headers(200, Some("application/json"), false, 0);
        assert_eq!(plan, ResponsePlan::UNTOUCHED);
        let t = MessagesAnthropic::new(Operation::Create);
        assert_eq!(t.chat_path(Some("beta=true")), "/v1/messages?beta=true");
    }

    #[test]
    fn only_the_model_changes_in_the_body() {
        let body = br#"{"model":"claude","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}]}]}"#;
        let mut t = MessagesAnthropic::new(Operation::Create);
        assert!(!t.needs_request_body(None));
        assert_eq!(t.request_body(body, None).unwrap(), None);
        let out = t
            .request_body(body, Some("claude-sonnet-4-5"))
            .unwrap()
            .unwrap();
        let expected =
            String::from_utf8_lossy(body).replacen("\"claude\"", "\"claude-sonnet-4-5\"", 1);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
