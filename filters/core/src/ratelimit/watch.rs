//! Reading the real usage off the response as it passes, without holding it back, at a
//! constant cost per streamed event.
//!
//! The response ratelimit sees is already OpenAI's format (translate runs first on the response
//! path): a `chat.completion` JSON body with `usage`, or a `chat.completion.chunk` event stream
//! whose last data chunk carries `usage` when `stream_options.include_usage` was set.
//!
//! - translate in the chain: it reports each try's usage as the filter-state fact
//!   [`crate::facts::USAGE`] when the answer ends, and drops a forced usage chunk
//!   itself; the body is never read here ([`ResponseWatcher::reported`]).
//! - ratelimit alone (in front of an OpenAI-compatible server):
//!   - JSON: each piece goes on to the client at once; a copy (capped at [`MAX_JSON_COPY`]) is
//!     parsed for `usage` when the body ends.
//!   - Stream, the client asked for usage: only the last bytes of each piece are read
//!     ([`UsageTail`]), searched once at the end.
//!   - Stream, usage `forced` (the client did not ask, llmgw did, to charge tokens): the
//!     usage-only chunk is removed ([`UsageHider`]): whole events go on, a partial event waits
//!     for its end (at most one event is held). The `"usage":null` field of the other chunks is
//!     left as it is: clients that did not ask ignore it, and rewriting every chunk would cost
//!     a parse per chunk.

use crate::schema::openai::Usage;
use crate::usage_stream::{UsageHider, UsageTail};

/// The largest JSON answer whose usage is read; a larger one is charged by its estimate.
pub const MAX_JSON_COPY: usize = 4 << 20;

#[derive(Debug)]
enum Mode {
    /// Not a successful chat completion: nothing to read.
    Ignored,
    /// translate reports the usage: the body is not read.
    Reported,
    Json {
        copy: Vec<u8>,
        overflow: bool,
    },
    Tail(UsageTail),
    Hide(UsageHider),
}

/// Which bytes of a body piece the watcher needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRead {
    Nothing,
    /// The last this-many bytes.
    Tail(usize),
    All,
}

/// Watches one response for its usage.
#[derive(Debug)]
pub struct ResponseWatcher {
    mode: Mode,
    usage: Option<Usage>,
}

#[derive(serde::Deserialize)]
struct UsageOnly {
    #[serde(default)]
    usage: Option<Usage>,
}

impl ResponseWatcher {
    /// `status` and `content_type` of the response; `hide_usage` when the client did not ask
    /// for the usage chunk of a stream.
    pub fn new(status: u16, content_type: Option<&str>, hide_usage: bool) -> Self {
        let ct = content_type.unwrap_or("").trim_start().to_ascii_lowercase();
        let mode = if !(200..300).contains(&status) {
            Mode::Ignored
        } else if ct.starts_with("text/event-stream") {
            if hide_usage {
                Mode::Hide(UsageHider::default())
            } else {
                Mode::Tail(UsageTail::default())
            }
        } else if ct.starts_with("application/json") {
            Mode::Json {
                copy: Vec::new(),
                overflow: false,
            }
        } else {
            Mode::Ignored
        };
        Self { mode, usage: None }
    }

    /// A watcher that reads nothing: the answer is in a dialect ratelimit does not parse
    /// (Messages, Responses) and no translate reports its usage ([`crate::facts::USAGE`]).
    pub fn ignoring() -> Self {
        Self {
            mode: Mode::Ignored,
            usage: None,
        }
    }

    /// translate reports the usage of this response ([`ResponseWatcher::set_reported`]).
    pub fn reported(status: u16) -> Self {
        let mode = if (200..300).contains(&status) {
            Mode::Reported
        } else {
            Mode::Ignored
        };
        Self { mode, usage: None }
    }

    /// Is the usage translate's to report?
    pub fn is_reported(&self) -> bool {
        matches!(self.mode, Mode::Reported)
    }

    /// The usage translate reported when the answer ended.
    pub fn set_reported(&mut self, usage: Option<Usage>) {
        if self.is_reported() {
            self.usage = usage;
        }
    }

    /// Is this a successful answer whose usage ratelimit expects to find?
    pub fn expects_usage(&self) -> bool {
        !matches!(self.mode, Mode::Ignored)
    }

    /// Does the watcher change the stream (so its length is no longer known)?
    pub fn rewrites(&self) -> bool {
        matches!(self.mode, Mode::Hide(_))
    }

    /// The usage, once the body carried it.
    pub fn usage(&self) -> Option<Usage> {
        match &self.mode {
            Mode::Tail(tail) => tail.usage(),
            Mode::Hide(hider) => hider.usage(),
            _ => self.usage,
        }
    }

    /// What [`ResponseWatcher::chunk`] needs of a piece of `size` bytes.
    pub fn body_read(&self, size: usize) -> BodyRead {
        match &self.mode {
            Mode::Ignored | Mode::Reported => BodyRead::Nothing,
            Mode::Json { overflow: true, .. } => BodyRead::Nothing,
            Mode::Tail(_) if UsageTail::wanted(size) < size => {
                BodyRead::Tail(UsageTail::wanted(size))
            }
            _ => BodyRead::All,
        }
    }

    /// One piece of the body, as [`ResponseWatcher::body_read`] asked for it (`whole`: all of
    /// it, not its last bytes); returns what replaces it when the stream must change.
    pub fn chunk(&mut self, piece: &[u8], whole: bool, end_of_stream: bool) -> Option<Vec<u8>> {
        match &mut self.mode {
            Mode::Ignored | Mode::Reported => None,
            Mode::Json { copy, overflow } => {
                if !*overflow {
                    if copy.len() + piece.len() > MAX_JSON_COPY {
                        *overflow = true;
                        *copy = Vec::new();
                    } else {
                        copy.extend_from_slice(piece);
                    }
                }
                if end_of_stream && !*overflow {
                    if let Ok(peek) = crate::json::from_slice::<UsageOnly>(copy) {
                        self.usage = peek.usage;
                    }
                    *copy = Vec::new();
                }
                None
            }
            Mode::Tail(tail) => {
                tail.push(piece, whole);
                None
            }
            Mode::Hide(hider) => hider.push(piece, end_of_stream),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n",
        "data: [DONE]\n\n"
    );

    /// Feeds `body` in pieces of `step` bytes, each read as the watcher asks; returns what the
    /// client receives.
    fn run(w: &mut ResponseWatcher, body: &[u8], step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let pieces: Vec<&[u8]> = body.chunks(step).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let end = i + 1 == pieces.len();
            let (read, whole) = match w.body_read(piece.len()) {
                BodyRead::Nothing => (&piece[..0], true),
                BodyRead::Tail(n) => (&piece[piece.len() - n..], false),
                BodyRead::All => (*piece, true),
            };
            match w.chunk(read, whole, end) {
                Some(replaced) => out.extend_from_slice(&replaced),
                None => out.extend_from_slice(piece),
            }
        }
        out
    }

    #[test]
    fn stream_usage_is_read_and_kept_when_the_client_asked() {
        for step in [1, 7, STREAM.len()] {
            let mut w = ResponseWatcher::new(200, Some("text/event-stream"), false);
            let out = run(&mut w, STREAM.as_bytes(), step);
            assert_eq!(out, STREAM.as_bytes(), "step {step}");
            assert_eq!(w.usage().unwrap().total_tokens, 15);
            assert!(!w.rewrites());
        }
    }

    #[test]
    fn forced_usage_chunk_is_hidden_whole_or_byte_by_byte() {
        let expected = STREAM.replace(
            "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n",
            "",
        );
        for step in [1, 5, STREAM.len()] {
            let mut w = ResponseWatcher::new(200, Some("text/event-stream; charset=utf-8"), true);
            let out = run(&mut w, STREAM.as_bytes(), step);
            assert_eq!(String::from_utf8(out).unwrap(), expected, "step {step}");
            assert_eq!(w.usage().unwrap().prompt_tokens, 12);
            assert!(w.rewrites());
        }
    }

    #[test]
    fn cut_stream_has_no_usage_and_passes_its_tail() {
        let cut = &STREAM[..STREAM.find("\"choices\":[]").unwrap()];
        let mut w = ResponseWatcher::new(200, Some("text/event-stream"), true);
        let out = run(&mut w, cut.as_bytes(), 9);
        assert_eq!(out, cut.as_bytes());
        assert!(w.usage().is_none());
        assert!(w.expects_usage());
    }

    #[test]
    fn json_usage_is_read_from_a_copy() {
        let body = br#"{"id":"c","choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
        let mut w = ResponseWatcher::new(200, Some("application/json"), false);
        let out = run(&mut w, body, 10);
        assert_eq!(out, body);
        assert_eq!(w.usage().unwrap().completion_tokens, 2);
    }

    #[test]
    fn errors_and_other_types_are_ignored() {
        let mut w = ResponseWatcher::new(429, Some("application/json"), false);
        assert!(!w.expects_usage());
        assert_eq!(w.body_read(10), BodyRead::Nothing);
        assert_eq!(
            w.chunk(br#"{"usage":{"total_tokens":1}}"#, true, true),
            None
        );
        assert!(w.usage().is_none());
        let w = ResponseWatcher::new(200, Some("text/plain"), false);
        assert!(!w.expects_usage());
    }

    #[test]
    fn a_reported_answer_is_never_read() {
        let mut w = ResponseWatcher::reported(200);
        assert!(w.expects_usage() && w.is_reported());
        assert_eq!(w.body_read(1 << 20), BodyRead::Nothing);
        assert_eq!(run(&mut w, STREAM.as_bytes(), 7), STREAM.as_bytes());
        assert!(w.usage().is_none(), "the body is not read");
        w.set_reported(Some(Usage {
            total_tokens: 9,
            ..Usage::default()
        }));
        assert_eq!(w.usage().unwrap().total_tokens, 9);
        let w = ResponseWatcher::reported(503);
        assert!(!w.expects_usage());
    }

    #[test]
    fn a_long_stream_is_read_by_its_tail_when_nothing_is_hidden() {
        let mut body = String::new();
        for _ in 0..2000 {
            body.push_str(
                &STREAM[..STREAM
                    .find("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},")
                    .unwrap()],
            );
        }
        body.push_str(STREAM);
        let mut w = ResponseWatcher::new(200, Some("text/event-stream"), false);
        assert_eq!(
            w.body_read(1 << 20),
            BodyRead::Tail(crate::usage_stream::TAIL_BYTES)
        );
        assert_eq!(run(&mut w, body.as_bytes(), 100_000), body.as_bytes());
        assert_eq!(w.usage().unwrap().total_tokens, 15);
    }

    #[test]
    fn crlf_frames_and_usage_null_are_handled() {
        let body = "data: {\"choices\":[{}],\"usage\":null}\r\n\r\ndata: {\"choices\":[],\"usage\":{\"total_tokens\":4}}\r\n\r\n";
        let mut w = ResponseWatcher::new(200, Some("text/event-stream"), true);
        let out = run(&mut w, body.as_bytes(), 3);
        assert_eq!(out, b"data: {\"choices\":[{}],\"usage\":null}\r\n\r\n");
        assert_eq!(w.usage().unwrap().total_tokens, 4);
    }
}
