//! The [`Translator`] trait, one per try and provider pair, and the helpers the translators
//! share to plan and rewrite answers.

use super::*;

/// How the filter treats a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// Let it through unchanged and unread.
    Untouched,
    /// Wait for the whole body, translate it once (non-streamed answers and errors).
    Buffer,
    /// Translate (or watch) chunk by chunk as it arrives; never buffer the stream.
    Stream,
    /// Pass the body unchanged (its length too) while the translator reads it, e.g. for usage.
    Watch,
}

/// A translator's decision on the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePlan {
    pub mode: ResponseMode,
    /// Replace `:status` (e.g. Anthropic's 529 becomes 503).
    pub status: Option<u16>,
    /// Replace `content-type`.
    pub content_type: Option<&'static str>,
}

impl ResponsePlan {
    pub const UNTOUCHED: Self = Self {
        mode: ResponseMode::Untouched,
        status: None,
        content_type: None,
    };
}

/// A translated whole body, and the status it goes with when that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBody {
    pub status: Option<u16>,
    pub body: Vec<u8>,
}

/// How a translator that rewrites whole answers and errors plans the response: a 2xx the
/// provider streams (`stream`: its streaming media type, not content-encoded) is translated
/// chunk by chunk into SSE; other 2xx answers and every error are buffered and rewritten as
/// JSON, errors with `error_status` when the provider's status maps to another; anything else
/// (1xx, 3xx) passes untouched.
pub fn buffer_plan(status: u16, stream: bool, error_status: u16) -> ResponsePlan {
    let ok = (200..300).contains(&status);
    if ok && stream {
        ResponsePlan {
            mode: ResponseMode::Stream,
            status: None,
            content_type: Some("text/event-stream"),
        }
    } else if ok || status >= 400 {
        ResponsePlan {
            mode: ResponseMode::Buffer,
            status: (status >= 400 && error_status != status).then_some(error_status),
            content_type: Some("application/json"),
        }
    } else {
        ResponsePlan::UNTOUCHED
    }
}

/// What turns a provider's 2xx answer into the OpenAI body, for [`buffered_answer`].
pub type Translate<'a> = dyn FnMut(&[u8]) -> Result<Vec<u8>, ApiError> + 'a;

/// The whole answer [`buffer_plan`] buffered: for an error `status`, the provider's error as
/// `error` normalizes it (a new status only where it differs from `error_status`, which the
/// plan already set); for a 2xx, what `translate` makes of it, or the 502 that replaces an
/// answer llmgw cannot read. (`dyn`: one copy of this serves every translator.)
pub fn buffered_answer(
    status: u16,
    error_status: u16,
    body: &[u8],
    error: &dyn Fn(&[u8]) -> ApiError,
    translate: &mut Translate<'_>,
) -> ResponseBody {
    let error = if status >= 400 {
        let error = error(body);
        if error.status == error_status {
            return ResponseBody {
                status: None,
                body: error.body(),
            };
        }
        error
    } else {
        match translate(body) {
            Ok(body) => return ResponseBody { status: None, body },
            Err(error) => error,
        }
    };
    ResponseBody {
        status: Some(error.status),
        body: error.body(),
    }
}

/// A 2xx answer llmgw cannot read (`what` it is not) is not passed on as if it were an answer.
pub fn unreadable_answer(what: &str) -> ApiError {
    ApiError::new(
        502,
        ErrorType::ApiError,
        format!("the provider answered something unreadable: {what}"),
    )
    .with_code("upstream_unreadable")
}

/// A provider's error answer (HTTP `status`) whose body llmgw cannot read: still an OpenAI
/// error, of `kind`, sent with `client_status`.
pub fn unreadable_error(status: u16, client_status: u16, kind: ErrorType) -> ApiError {
    ApiError::new(
        client_status,
        kind,
        format!("the provider answered HTTP {status} with an unreadable error body"),
    )
}

/// A provider's 2xx answer read as `T`; one llmgw cannot read (`what` it then is, e.g. "not an
/// Anthropic message") is logged and becomes the 502 of [`unreadable_answer`].
pub fn read_answer<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, ApiError> {
    crate::json::from_slice(body).map_err(|err| {
        log::warn!("llmgw.translate: unreadable answer, {what}: {err}");
        unreadable_answer(what)
    })
}

/// What a translator made of a 2xx answer: the OpenAI body, with its usage kept in `usage`. An
/// answer it could not re-encode (`what` it then is) is the 502 of [`unreadable_answer`].
pub fn with_usage(
    translated: Result<(Vec<u8>, Usage), serde_json::Error>,
    usage: &mut Option<Usage>,
    what: &str,
) -> Result<Vec<u8>, ApiError> {
    let (body, recorded) = translated.map_err(|_| unreadable_answer(what))?;
    *usage = Some(recorded);
    Ok(body)
}

/// One request's translation between the client's OpenAI format and one provider's format.
/// A new translator is made per try, so it keeps the per-response state (stream ids, the SSE
/// decoder's partial frames, usage).
pub trait Translator {
    /// The provider path for a chat completions request (`query` is the client's, if any).
    fn chat_path(&self, query: Option<&str>) -> String;
    /// Whether [`Translator::request_body`] needs the body (reading it costs a copy). Every
    /// translator that rewrites the body does; passthroughs say when they can skip it.
    fn needs_request_body(&self, _upstream_model: Option<&str>) -> bool {
        true
    }
    /// The whole request body in, the provider's body out (`None`: send it unchanged).
    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError>;
    /// Does [`Translator::response_headers`] stamp `created` on the answer? A passthrough does
    /// not: the filter then reads no clock for it (one host call less before a stream's first
    /// event).
    fn stamps_created(&self) -> bool {
        true
    }
    /// Decide on the response from its status and headers. `created` is the Unix time (s)
    /// stamped on translated answers (0 when [`Translator::stamps_created`] says it is not).
    fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        encoded: bool,
        created: u64,
    ) -> ResponsePlan;
    /// The whole response body in ([`ResponseMode::Buffer`]), the OpenAI body out.
    fn response_body(&mut self, body: &[u8]) -> ResponseBody;
    /// One piece of a streamed response in ([`ResponseMode::Stream`]), what replaces it out
    /// (`None`: leave the piece as it is). Translators that only buffer never get one.
    fn response_chunk(&mut self, _chunk: &[u8], _end_of_stream: bool) -> Option<Vec<u8>> {
        None
    }
    /// Token usage, once the provider reported it.
    fn usage(&self) -> Option<Usage>;
    /// llmgw forced `stream_options.include_usage` (to charge tokens; the client did not ask):
    /// keep reading the usage, but send the client no usage-only chunk. Called after
    /// [`Translator::request_body`].
    fn hide_usage_chunk(&mut self) {}
    /// Request headers to set once the rewritten body is final, called with that body (only
    /// when [`Translator::request_body`] rewrote it): the real `:path` and a signature that
    /// covers the body, for providers that sign requests (Bedrock, SigV4).
    fn finish_request(&mut self, _body: &[u8], _now_ms: u64) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Response headers the translator reads (e.g. AWS's `x-amzn-errortype`); each present one
    /// is handed to [`Translator::note_response_header`] before [`Translator::response_headers`].
    fn response_headers_read(&self) -> &'static [&'static str] {
        &[]
    }
    fn note_response_header(&mut self, _name: &str, _value: &str) {}
    /// A streamed answer ended with an error frame (the provider's, or a cut stream's).
    fn stream_failed(&self) -> bool {
        false
    }
    /// What the provider sent that had no place in the OpenAI answer, by kind and count
    /// ([`dropped`]).
    fn dropped(&self) -> &[(&'static str, u64)] {
        &[]
    }
    /// The provider path once the body was read, when it depends on the body (Gemini's model
    /// and stream method, Azure's deployment); `None` keeps [`Translator::chat_path`]'s.
    fn request_path(&self) -> Option<String> {
        None
    }
}

/// Is `content_type` of this media type (`text/event-stream; charset=utf-8` is
/// `text/event-stream`)? Media types are case-insensitive (RFC 9110 §8.3.1).
pub fn has_media_type(content_type: Option<&str>, media_type: &str) -> bool {
    content_type.is_some_and(|ct| {
        ct.trim_start()
            .get(..media_type.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(media_type))
    })
}

/// The SSE frame OpenAI clients raise on: `data: {"error":{…}}`. The OpenAI Python SDK turns a
/// data frame with an `error` key into an `APIError`.
pub fn stream_error_frame(out: &mut Vec<u8>, error: &ApiError) {
    crate::sse::write_data(out, &error.body());
}

/// The frame appended when the provider's stream ends before its terminal event.
pub fn truncated_stream_error() -> ApiError {
    ApiError::new(
        502,
        ErrorType::ApiError,
        "upstream stream ended before completion",
    )
    .with_code("upstream_stream_truncated")
}
