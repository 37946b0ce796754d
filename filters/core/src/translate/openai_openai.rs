//! OpenAI Chat Completions to an OpenAI-compatible provider: a passthrough.
//!
//! The body changes only where router chose another model name for this provider
//! ([`crate::facts::RouterFacts::upstream_model`]); every other field is the client's, as sent
//! (<https://platform.openai.com/docs/api-reference/chat/create>). Answers pass unchanged.
//! Streams are watched, not re-encoded: translate remembers whether `data: [DONE]` arrived and
//! the usage chunk (<https://platform.openai.com/docs/api-reference/chat-streaming>), and
//! appends an error frame if the provider's stream ends early, so a client never mistakes a
//! cut stream for a complete answer.

use serde_json::{Map, Value};

use super::request_fields;
use super::{
    has_media_type, stream_error_frame, truncated_stream_error, ResponseBody, ResponseMode,
    ResponsePlan,
};
use super::{Translator, Usage};
use crate::error::ApiError;
use crate::schema::openai::UsageOnly;
use crate::sse;
use crate::text;
use crate::usage_stream::UsageHider;

/// The passthrough translator; one per try.
#[derive(Debug)]
pub struct OpenAiOpenAi {
    base_path: String,
    decoder: sse::Decoder,
    /// `data: [DONE]` or an error frame arrived: the stream ended as the provider meant it to.
    terminated: bool,
    usage: Option<Usage>,
    /// The stream carried an error frame, the provider's or ours for a cut stream.
    failed: bool,
    /// A non-streamed JSON answer, collected as it passes unchanged, to read its `usage`.
    json_body: Option<Vec<u8>>,
    /// Request fields this server rejects: answered with a 400 naming them.
    refuse_fields: Vec<String>,
    /// Request fields removed before the request leaves (only when configured).
    drop_fields: Vec<String>,
    /// Usage was forced, not asked for: the usage-only chunk is dropped from the stream.
    hider: Option<UsageHider>,
}

/// Answers larger than this are not collected for their usage (OpenAI's are a few KiB).
const MAX_WATCHED_JSON: usize = 4 << 20;

impl OpenAiOpenAi {
    pub fn new(base_path: String) -> Self {
        Self {
            base_path,
            decoder: sse::Decoder::new(),
            terminated: false,
            usage: None,
            json_body: None,
            failed: false,
            refuse_fields: Vec::new(),
            drop_fields: Vec::new(),
            hider: None,
        }
    }

    /// The provider's configured field policy (see [`super::options`]).
    pub fn with_fields(mut self, refuse_fields: Vec<String>, drop_fields: Vec<String>) -> Self {
        self.refuse_fields = refuse_fields;
        self.drop_fields = drop_fields;
        self
    }

    fn has_field_policy(&self) -> bool {
        !self.refuse_fields.is_empty() || !self.drop_fields.is_empty()
    }

    /// Applies the field policy and the model rewrite to a parsed body; `true` when it
    /// changed. A refused field present with a value (not `null`) is a 400 naming it.
    fn apply(
        &self,
        request: &mut Map<String, Value>,
        upstream_model: Option<&str>,
    ) -> Result<bool, ApiError> {
        for name in &self.refuse_fields {
            if request.get(name).is_some_and(|v| !v.is_null()) {
                return Err(ApiError::invalid_request(format!(
                    "`{name}` is not supported by this provider"
                ))
                .with_param(name.as_str()));
            }
        }
        let mut changed = false;
        for name in &self.drop_fields {
            changed |= request.remove(name).is_some();
        }
        if let Some(model) = upstream_model {
            if request.get("model").and_then(Value::as_str) != Some(model) {
                request.insert("model".to_string(), Value::String(model.to_string()));
                changed = true;
            }
        }
        Ok(changed)
    }

    /// The body to send for a parsed request ([`parse_object`]): `None` when neither the field
    /// policy nor the model rewrite changed it, so it leaves as the client sent it.
    pub fn rewrite(
        &self,
        mut request: Map<String, Value>,
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        if !self.apply(&mut request, upstream_model)? {
            return Ok(None);
        }
        request_fields::encode(&request).map(Some)
    }

    /// Did the stream end as the provider meant it to (`[DONE]` or an error frame)?
    pub fn terminated(&self) -> bool {
        self.terminated
    }

    /// The stream ended before its terminal event: append the error frame that says so.
    pub fn end_cut_stream(&mut self, out: &mut Vec<u8>) {
        self.terminated = true;
        self.failed = true;
        stream_error_frame(out, &truncated_stream_error());
    }

    /// Notes what a stream event means for the try: its end, its usage.
    pub fn watch(&mut self, event: &sse::Event) {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.terminated = true;
            return;
        }
        if data.starts_with("{\"error\"") {
            // The provider reported a failure in-band; the client will raise on it.
            self.terminated = true;
            self.failed = true;
            return;
        }
        // Only the final usage chunk is parsed; every other chunk is scanned, not parsed.
        if has_usage_object(data) {
            if let Ok(UsageOnly { usage: Some(usage) }) = crate::json::from_str(data) {
                self.usage = Some(usage);
            }
        }
    }
}

/// An OpenAI request body as the JSON object the passthroughs rewrite (whatever its fields).
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    crate::json::from_slice(body).map_err(|err| {
        ApiError::invalid_request(format!("the request body is not a JSON object: {err}"))
    })
}

/// Does `data` hold `"usage": {` (and not `"usage": null`)?
fn has_usage_object(data: &str) -> bool {
    let mut rest = data;
    while let Some(at) = rest.find("\"usage\"") {
        rest = rest.get(at + "\"usage\"".len()..).unwrap_or_default();
        let after = rest.trim_start();
        if let Some(value) = after.strip_prefix(':') {
            if value.trim_start().starts_with('{') {
                return true;
            }
        }
    }
    false
}

impl Translator for OpenAiOpenAi {
    fn chat_path(&self, query: Option<&str>) -> String {
        match query {
            Some(query) => text::concat(&[&self.base_path, "/chat/completions?", query]),
            None => text::concat(&[&self.base_path, "/chat/completions"]),
        }
    }

    fn needs_request_body(&self, upstream_model: Option<&str>) -> bool {
        // Without another model name or a field policy the body goes as sent: no need to read
        // or parse it (the provider validates it anyway).
        upstream_model.is_some() || self.has_field_policy()
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        if upstream_model.is_none() && !self.has_field_policy() {
            return Ok(None);
        }
        self.rewrite(parse_object(body)?, upstream_model)
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
        let is_sse = has_media_type(content_type, "text/event-stream");
        let is_json = has_media_type(content_type, "application/json");
        let ok = (200..300).contains(&status) && !encoded;
        if ok && is_sse {
            // The body may grow by an error frame: its length is no longer known.
            ResponsePlan {
                mode: ResponseMode::Stream,
                status: None,
                content_type: None,
            }
        } else if ok && is_json {
            // Already OpenAI's: passed on unchanged, read once at its end for `usage`.
            self.json_body = Some(Vec::new());
            ResponsePlan {
                mode: ResponseMode::Watch,
                status: None,
                content_type: None,
            }
        } else {
            // Errors are already OpenAI's: pass them unread.
            ResponsePlan::UNTOUCHED
        }
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        // Not reached: this translator never buffers. Hand the body back as it came.
        ResponseBody {
            status: None,
            body: body.to_vec(),
        }
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        if let Some(body) = self.json_body.as_mut() {
            if body.len() + chunk.len() > MAX_WATCHED_JSON {
                self.json_body = None;
            } else {
                body.extend_from_slice(chunk);
                if end_of_stream {
                    if let Ok(UsageOnly { usage }) = crate::json::from_slice(body) {
                        self.usage = usage;
                    }
                    self.json_body = None;
                }
            }
            return None;
        }
        if !self.terminated {
            for event in self.decoder.feed(chunk) {
                self.watch(&event);
                if self.terminated {
                    break;
                }
            }
        }
        let hidden = self
            .hider
            .as_mut()
            .and_then(|hider| hider.push(chunk, end_of_stream));
        if end_of_stream && !self.terminated {
            self.terminated = true;
            self.failed = true;
            let mut out = Vec::with_capacity(chunk.len() + 160);
            out.extend_from_slice(hidden.as_deref().unwrap_or(chunk));
            // A partial last frame must be closed before the error frame can be read.
            if self.decoder.has_pending() {
                out.extend_from_slice(b"\n\n");
            }
            stream_error_frame(&mut out, &truncated_stream_error());
            return Some(out);
        }
        hidden
    }

    fn hide_usage_chunk(&mut self) {
        self.hider = Some(UsageHider::default());
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

    #[test]
    fn usage_object_is_found_but_null_is_not() {
        assert!(has_usage_object(
            r#"{"choices":[],"usage": {"prompt_tokens":1}}"#
        ));
        assert!(!has_usage_object(r#"{"choices":[],"usage":null}"#));
        assert!(!has_usage_object(
            r#"{"choices":[{"delta":{"content":"\"usage\""}}]}"#
        ));
    }

    #[test]
    fn same_model_leaves_the_body_alone() {
        let mut t = OpenAiOpenAi::new("/v1".into());
        let body = br#"{"model":"gpt-4o","messages":[]}"#;
        assert_eq!(t.request_body(body, Some("gpt-4o")).unwrap(), None);
        assert!(!t.needs_request_body(None));
    }

    #[test]
    fn json_answers_pass_unchanged_and_their_usage_is_read() {
        let mut t = OpenAiOpenAi::new("/v1".into());
        let plan = t.response_headers(200, Some("application/json"), false, 0);
        assert_eq!(plan.mode, ResponseMode::Watch);
        let body = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":5,"total_tokens":12}}"#;
        let (a, b) = body.split_at(20);
        assert_eq!(t.response_chunk(a, false), None);
        assert_eq!(t.usage(), None);
        assert_eq!(t.response_chunk(b, true), None);
        let usage = t.usage().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (7, 5));
        // Errors are not read.
        let mut t = OpenAiOpenAi::new("/v1".into());
        let plan = t.response_headers(429, Some("application/json"), false, 0);
        assert_eq!(plan.mode, ResponseMode::Untouched);
    }

    #[test]
    fn unknown_events_fields_and_finish_reasons_pass_unchanged() {
        // The passthrough has nothing to map: whatever OpenAI adds reaches the client as sent.
        let stream = concat!(
            "event: response.something_new\ndata: {\"anything\":1}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,",
            "\"delta\":{\"content\":\"\",\"new_field\":true},\"finish_reason\":\"brand_new\"}]}\n\n",
            "data: [DONE]\n\n"
        );
        let mut t = OpenAiOpenAi::new("/v1".into());
        t.response_headers(200, Some("text/event-stream"), false, 0);
        assert_eq!(t.response_chunk(stream.as_bytes(), true), None);
        assert!(!t.stream_failed());
        assert_eq!(t.dropped(), []);
    }

    #[test]
    fn non_object_body_is_refused() {
        let mut t = OpenAiOpenAi::new("/v1".into());
        let err = t.request_body(b"[1]", Some("m")).unwrap_err();
        assert_eq!(err.status, 400);
    }
}

#[cfg(test)]
mod field_policy_tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn refused_fields_are_named_and_dropped_fields_removed() {
        let mut t = OpenAiOpenAi::new("/v1".into())
            .with_fields(vec!["logprobs".into()], vec!["store".into()]);
        assert!(t.needs_request_body(None));
        let err = t
            .request_body(br#"{"model":"m","messages":[],"logprobs":true}"#, None)
            .unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("logprobs")));
        // `null` asks for nothing: not refused.
        let out = t
            .request_body(
                br#"{"model":"m","messages":[],"logprobs":null,"store":true}"#,
                None,
            )
            .unwrap()
            .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"model":"m","messages":[],"logprobs":null})
        );
        assert_eq!(
            t.request_body(br#"{"model":"m","messages":[]}"#, None)
                .unwrap(),
            None
        );
    }
}
