//! Reading the real usage off the response as it passes, without holding it back.
//!
//! The response ratelimit sees is already OpenAI's format (translate runs first on the response
//! path): a `chat.completion` JSON body with `usage`, or a `chat.completion.chunk` event stream
//! whose last data chunk carries `usage` when `stream_options.include_usage` was set.
//!
//! - JSON: each piece goes on to the client at once; a copy (capped at [`MAX_JSON_COPY`]) is
//!   parsed for `usage` when the body ends.
//! - Stream: events are scanned as they pass. When router marked the usage `forced` (the client
//!   did not ask for it, llmgw did, to charge tokens), the usage-only chunk is removed from the
//!   stream: whole events go on, a partial event waits for its end (at most one event is held).
//!   The `"usage":null` field of the other chunks is left as it is: clients that did not ask
//!   ignore it, and rewriting every chunk would cost a parse per chunk.

use serde::Deserialize;

use crate::schema::openai::Usage;

/// The largest JSON answer whose usage is read; a larger one is charged by its estimate.
pub const MAX_JSON_COPY: usize = 4 << 20;

#[derive(Debug)]
enum Mode {
    /// Not a successful chat completion: nothing to read.
    Ignored,
    Json {
        copy: Vec<u8>,
        overflow: bool,
    },
    Stream {
        pending: Vec<u8>,
        hide_usage: bool,
    },
}

/// Watches one response for its usage.
#[derive(Debug)]
pub struct ResponseWatcher {
    mode: Mode,
    usage: Option<Usage>,
    /// A usage chunk was removed from the stream.
    pub hidden: bool,
}

/// A chunk as far as the watcher cares: its usage, and whether it has choices.
#[derive(Deserialize)]
struct ChunkPeek {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

impl ResponseWatcher {
    /// `status` and `content_type` of the response; `hide_usage` when the client did not ask
    /// for the usage chunk of a stream.
    pub fn new(status: u16, content_type: Option<&str>, hide_usage: bool) -> Self {
        let ct = content_type.unwrap_or("").trim_start().to_ascii_lowercase();
        let mode = if !(200..300).contains(&status) {
            Mode::Ignored
        } else if ct.starts_with("text/event-stream") {
            Mode::Stream {
                pending: Vec::new(),
                hide_usage,
            }
        } else if ct.starts_with("application/json") {
            Mode::Json {
                copy: Vec::new(),
                overflow: false,
            }
        } else {
            Mode::Ignored
        };
        Self {
            mode,
            usage: None,
            hidden: false,
        }
    }

    /// Is this a successful answer whose usage ratelimit expects to find?
    pub fn expects_usage(&self) -> bool {
        !matches!(self.mode, Mode::Ignored)
    }

    /// A watcher that reads nothing: the answer is in a dialect whose usage translate records
    /// ([`crate::facts::USAGE`]).
    pub fn ignoring() -> Self {
        Self {
            mode: Mode::Ignored,
            usage: None,
            hidden: false,
        }
    }

    /// The usage, once the body carried it.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// One piece of the body; returns what replaces it when the stream must change.
    pub fn chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        match &mut self.mode {
            Mode::Ignored => None,
            Mode::Json { copy, overflow } => {
                if !*overflow {
                    if copy.len() + chunk.len() > MAX_JSON_COPY {
                        *overflow = true;
                        copy.clear();
                    } else {
                        copy.extend_from_slice(chunk);
                    }
                }
                if end_of_stream && !*overflow {
                    if let Ok(peek) = serde_json::from_slice::<ChunkPeek>(copy) {
                        self.usage = peek.usage;
                    }
                    copy.clear();
                }
                None
            }
            Mode::Stream {
                pending,
                hide_usage,
            } => {
                let hide = *hide_usage;
                pending.extend_from_slice(chunk);
                let mut out = Vec::new();
                let mut consumed = 0;
                while let Some(len) = frame_len(pending.get(consumed..).unwrap_or_default()) {
                    let frame = pending.get(consumed..consumed + len).unwrap_or_default();
                    consumed += len;
                    let usage_only = match frame_data(frame) {
                        Some(data) => peek_usage(&data, &mut self.usage),
                        None => false,
                    };
                    if hide && usage_only {
                        self.hidden = true;
                    } else {
                        out.extend_from_slice(frame);
                    }
                }
                pending.drain(..consumed);
                if end_of_stream {
                    // An unfinished last event goes out as it came.
                    out.append(pending);
                }
                if hide {
                    Some(out)
                } else {
                    // Nothing changes: only keep the unfinished event for the next call.
                    None
                }
            }
        }
    }
}

/// Length of the first complete event in `bytes` (through its blank line), if any.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let lf = find(bytes, b"\n\n").map(|i| i + 2);
    let crlf = find(bytes, b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `data:` lines of an event, joined.
fn frame_data(frame: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(frame).ok()?;
    let mut data: Option<String> = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            }
        }
    }
    data
}

/// Records the usage of a chunk that has one; true when the chunk is usage only (no choices).
fn peek_usage(data: &str, usage: &mut Option<Usage>) -> bool {
    // Only a chunk with a usage object is parsed; the others are scanned.
    if !has_usage_object(data) {
        return false;
    }
    match serde_json::from_str::<ChunkPeek>(data) {
        Ok(ChunkPeek {
            usage: Some(found),
            choices,
        }) => {
            *usage = Some(found);
            choices.is_none_or(|c| c.is_empty())
        }
        _ => false,
    }
}

/// Does `data` hold `"usage": {` (and not `"usage": null`)?
fn has_usage_object(data: &str) -> bool {
    let mut rest = data;
    while let Some(at) = rest.find("\"usage\"") {
        rest = rest.get(at + "\"usage\"".len()..).unwrap_or_default();
        if let Some(value) = rest.trim_start().strip_prefix(':') {
            if value.trim_start().starts_with('{') {
                return true;
            }
        }
    }
    false
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

    /// Feeds `body` in pieces of `step` bytes; returns what the client receives.
    fn run(w: &mut ResponseWatcher, body: &[u8], step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let pieces: Vec<&[u8]> = body.chunks(step).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let end = i + 1 == pieces.len();
            match w.chunk(piece, end) {
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
            assert!(!w.hidden);
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
            assert!(w.hidden);
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
        assert_eq!(w.chunk(br#"{"usage":{"total_tokens":1}}"#, true), None);
        assert!(w.usage().is_none());
        let w = ResponseWatcher::new(200, Some("text/plain"), false);
        assert!(!w.expects_usage());
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
