//! The usage of an OpenAI `chat.completion.chunk` stream, read at constant cost per event.
//!
//! OpenAI sends a stream's usage in its last data chunk, one without choices, when the request
//! set `stream_options.include_usage`
//! (<https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options>).
//! Two readers, each touching every byte at most a bounded number of times, whatever the
//! stream's length (an earlier watcher searched the whole held buffer again for every event, so
//! a 50,000-event stream cost seconds of CPU):
//! - [`UsageTail`]: the client asked for the usage chunk, nothing is removed: only the last
//!   [`TAIL_BYTES`] of the stream are kept (the caller may read just those of each piece) and
//!   the usage chunk is looked for once, when the stream ends.
//! - [`UsageHider`]: llmgw forced `include_usage` (the client did not ask), so the usage-only
//!   chunk must not reach the client: each piece is searched once for a usage object, the one
//!   event that has it is dropped, and at most one unfinished event is held between pieces.

use serde::Deserialize;

use crate::schema::openai::Usage;

/// How much of a stream's end [`UsageTail`] keeps: the usage chunk (a few hundred bytes) and
/// `data: [DONE]` come last.
pub const TAIL_BYTES: usize = 16 << 10;

/// An unfinished event longer than this is passed on rather than held (no usage-only chunk is
/// that long): memory stays bounded whatever the provider sends.
const MAX_HELD_EVENT: usize = 256 << 10;

/// A chunk as far as usage goes: its usage, and whether it has choices.
#[derive(Deserialize)]
struct ChunkPeek {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

/// The last [`TAIL_BYTES`] of a stream, searched for its usage at the end.
#[derive(Debug, Default)]
pub struct UsageTail {
    tail: Vec<u8>,
}

impl UsageTail {
    /// How many bytes of the end of a `size`-byte piece the tail needs.
    pub fn wanted(size: usize) -> usize {
        size.min(TAIL_BYTES)
    }

    /// The end of the next piece: `piece` is its last bytes, `whole` when nothing before them
    /// was skipped.
    pub fn push(&mut self, piece: &[u8], whole: bool) {
        if !whole {
            self.tail.clear(); // what is kept must be contiguous
        }
        self.tail.extend_from_slice(piece);
        // Trim at twice the size, so each byte is moved at most once more.
        if self.tail.len() > 2 * TAIL_BYTES {
            let cut = self.tail.len() - TAIL_BYTES;
            self.tail.drain(..cut);
        }
    }

    /// The usage of the last event that carries one, if the tail holds it whole.
    pub fn usage(&self) -> Option<Usage> {
        let mut end = self.tail.len();
        while let Some(at) = rfind(self.tail.get(..end)?, b"\"usage\"") {
            let (start, stop) = event_around(&self.tail, at);
            if let Some((usage, _)) = self.tail.get(start..stop).and_then(peek_event) {
                return Some(usage);
            }
            end = at;
        }
        None
    }
}

/// Drops the usage-only chunk from a stream, recording its usage.
#[derive(Debug, Default)]
pub struct UsageHider {
    /// The unfinished event at the end of the pieces so far.
    held: Vec<u8>,
    usage: Option<Usage>,
    /// A usage-only chunk was removed.
    pub hidden: bool,
}

impl UsageHider {
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// One piece of the stream; what replaces it (`None`: send it as it is).
    pub fn push(&mut self, piece: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        let held_before = !self.held.is_empty();
        // Whole events end at the last blank line; what follows waits for the next piece.
        let complete_end = if end_of_stream {
            piece.len()
        } else {
            match last_event_end(piece) {
                Some(end) => end,
                None if self.held.len() + piece.len() > MAX_HELD_EVENT => piece.len(),
                None => {
                    self.held.extend_from_slice(piece);
                    return Some(Vec::new());
                }
            }
        };
        let (complete, rest) = piece.split_at(complete_end);
        // `"usage":null` (on every chunk when usage was asked for) does not count. The held
        // event is searched again with what completes it: its key may straddle two pieces.
        let (mut out, has_usage) = if held_before {
            let mut out = std::mem::take(&mut self.held);
            out.extend_from_slice(complete);
            let has_usage = usage_object_in(&out);
            (out, has_usage)
        } else {
            let has_usage = usage_object_in(complete);
            if !has_usage && rest.is_empty() {
                return None; // the common case: whole events, no usage among them
            }
            (complete.to_vec(), has_usage)
        };
        if has_usage {
            out = self.without_usage_only(out);
        }
        self.held = rest.to_vec();
        Some(out)
    }

    /// `events` (whole, but for a stream's unfinished last one) without the usage-only chunk.
    fn without_usage_only(&mut self, events: Vec<u8>) -> Vec<u8> {
        let mut kept = Vec::with_capacity(events.len());
        let mut rest = events.as_slice();
        while !rest.is_empty() {
            let len = first_event_len(rest).unwrap_or(rest.len());
            let (event, after) = rest.split_at(len);
            rest = after;
            match peek_event(event) {
                Some((usage, usage_only)) => {
                    self.usage = Some(usage);
                    if usage_only {
                        self.hidden = true;
                        continue;
                    }
                    kept.extend_from_slice(event);
                }
                None => kept.extend_from_slice(event),
            }
        }
        kept
    }
}

/// The usage of one event and whether it is usage only (no choices); `None` without a usage
/// object.
fn peek_event(event: &[u8]) -> Option<(Usage, bool)> {
    let data = event_data(event)?;
    if !has_usage_object(&data) {
        return None;
    }
    let peek = crate::json::from_str::<ChunkPeek>(&data).ok()?;
    let usage = peek.usage?;
    Some((usage, peek.choices.is_none_or(|c| c.is_empty())))
}

/// The `data:` lines of an event, joined.
fn event_data(event: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(event).ok()?;
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

/// Does `data` hold `"usage": {` (and not `"usage": null`)?
pub fn has_usage_object(data: &str) -> bool {
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

/// Does `bytes` hold `"usage"` followed by `:` and `{` (JSON whitespace allowed)?
fn usage_object_in(bytes: &[u8]) -> bool {
    let key = b"\"usage\"";
    let mut from = 0;
    while let Some(at) = bytes.get(from..).and_then(|rest| find(rest, key)) {
        from += at + key.len();
        let mut after = bytes.get(from..).unwrap_or_default().iter();
        let mut next = || after.find(|b| !b" \t\r\n".contains(b));
        if next() == Some(&b':') && next() == Some(&b'{') {
            return true;
        }
    }
    false
}

/// Length of the first event in `bytes`, through its blank line (`\n\n` or `\r\n\r\n`).
fn first_event_len(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = bytes.get(from..)?.iter().position(|&b| b == b'\n') {
        let lf = from + at;
        match bytes.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if bytes.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            _ => from = lf + 1,
        }
    }
    None
}

/// Where the last whole event of `bytes` ends (after its blank line), scanning from the end:
/// the cost is the length of the unfinished event after it, not of `bytes`.
fn last_event_end(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while let Some(lf) = bytes.get(..end)?.iter().rposition(|&b| b == b'\n') {
        // A blank line: this LF follows another LF, or CR LF follows LF.
        let before = bytes.get(..lf)?;
        match before.last() {
            Some(b'\n') => return Some(lf + 1),
            Some(b'\r') if before.len() >= 2 && before.get(before.len() - 2) == Some(&b'\n') => {
                return Some(lf + 1)
            }
            _ => end = lf,
        }
    }
    None
}

/// The event around byte `at` of `bytes`: from after the blank line before it to after the
/// blank line that ends it (or the end).
fn event_around(bytes: &[u8], at: usize) -> (usize, usize) {
    let start = bytes.get(..at).and_then(last_event_end).unwrap_or(0);
    let stop = bytes
        .get(at..)
        .and_then(first_event_len)
        .map_or(bytes.len(), |len| at + len);
    (start, stop)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(at) = haystack.get(from..)?.iter().position(|&b| b == first) {
        let start = from + at;
        if haystack.get(start..start + needle.len()) == Some(needle) {
            return Some(start);
        }
        from = start + 1;
    }
    None
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut end = haystack.len();
    while let Some(start) = haystack.get(..end)?.iter().rposition(|&b| b == first) {
        if haystack.get(start..start + needle.len()) == Some(needle) {
            return Some(start);
        }
        end = start;
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const USAGE_CHUNK: &str = "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n";

    fn stream(events: usize, usage: bool, crlf: bool) -> String {
        let mut s = String::new();
        for i in 0..events {
            s.push_str(&format!(
                "data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i}\"}}}}],\"usage\":null}}\n\n"
            ));
        }
        if usage {
            s.push_str(USAGE_CHUNK);
        }
        s.push_str("data: [DONE]\n\n");
        if crlf {
            s = s.replace("\n", "\r\n");
        }
        s
    }

    fn hide(hider: &mut UsageHider, body: &[u8], step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let pieces: Vec<&[u8]> = body.chunks(step).collect();
        for (i, piece) in pieces.iter().enumerate() {
            match hider.push(piece, i + 1 == pieces.len()) {
                Some(replaced) => out.extend_from_slice(&replaced),
                None => out.extend_from_slice(piece),
            }
        }
        out
    }

    #[test]
    fn the_hider_drops_only_the_usage_chunk_in_pieces_of_any_size() {
        for crlf in [false, true] {
            let body = stream(40, true, crlf);
            let crlf_usage = if crlf {
                USAGE_CHUNK.replace("\n", "\r\n")
            } else {
                USAGE_CHUNK.to_string()
            };
            let expected = body.replace(&crlf_usage, "");
            for step in [1, 2, 3, 7, 64, 500, body.len()] {
                let mut hider = UsageHider::default();
                let out = hide(&mut hider, body.as_bytes(), step);
                assert_eq!(String::from_utf8(out).unwrap(), expected, "step {step}");
                assert_eq!(hider.usage().unwrap().total_tokens, 15, "step {step}");
                assert!(hider.hidden);
            }
        }
    }

    #[test]
    fn the_hider_leaves_a_stream_without_usage_and_a_chunk_with_choices_alone() {
        let body = stream(10, false, false);
        let mut hider = UsageHider::default();
        assert_eq!(
            hide(&mut hider, body.as_bytes(), body.len()),
            body.as_bytes()
        );
        assert!(hider.usage().is_none());
        // Usage on a chunk that also has choices (some servers): read, not removed.
        let body = "data: {\"choices\":[{\"delta\":{}}],\"usage\":{\"total_tokens\":4}}\n\n";
        let mut hider = UsageHider::default();
        assert_eq!(hide(&mut hider, body.as_bytes(), 5), body.as_bytes());
        assert_eq!(hider.usage().unwrap().total_tokens, 4);
        assert!(!hider.hidden);
    }

    #[test]
    fn the_hider_passes_a_cut_stream_tail_and_bounds_what_it_holds() {
        let body = stream(3, true, false);
        let cut = &body[..body.find("\"choices\":[]").unwrap()];
        let mut hider = UsageHider::default();
        assert_eq!(hide(&mut hider, cut.as_bytes(), 9), cut.as_bytes());
        assert!(hider.usage().is_none());
        // One endless event: held up to the bound, then passed on.
        let mut hider = UsageHider::default();
        let piece = vec![b'x'; 100 << 10];
        let mut passed = 0;
        for _ in 0..10 {
            passed += hider
                .push(&piece, false)
                .map_or(piece.len(), |out| out.len());
            assert!(hider.held.len() <= MAX_HELD_EVENT);
        }
        assert!(passed >= 10 * piece.len() - MAX_HELD_EVENT);
    }

    #[test]
    fn whole_events_without_usage_are_not_copied() {
        let body = stream(5, false, false);
        let mut hider = UsageHider::default();
        assert_eq!(hider.push(body.as_bytes(), false), None);
    }

    #[test]
    fn the_tail_finds_the_usage_of_a_long_stream_from_its_last_bytes() {
        for crlf in [false, true] {
            let body = stream(5000, true, crlf);
            for step in [1, 100, 4096, 70_000, body.len()] {
                let mut tail = UsageTail::default();
                for piece in body.as_bytes().chunks(step) {
                    let wanted = UsageTail::wanted(piece.len());
                    let end = &piece[piece.len() - wanted..];
                    tail.push(end, wanted == piece.len());
                    assert!(tail.tail.len() <= 2 * TAIL_BYTES);
                }
                assert_eq!(tail.usage().unwrap().prompt_tokens, 12, "step {step}");
            }
        }
        let mut tail = UsageTail::default();
        tail.push(stream(20, false, false).as_bytes(), true);
        assert!(tail.usage().is_none());
    }

    #[test]
    fn event_boundaries() {
        assert_eq!(first_event_len(b"data: a\n\ndata: b\n\n"), Some(9));
        assert_eq!(first_event_len(b"data: a\r\n\r\ndata: b"), Some(11));
        assert_eq!(first_event_len(b"data: a\n"), None);
        assert_eq!(last_event_end(b"data: a\n\ndata: b\n\ndata: c"), Some(18));
        assert_eq!(last_event_end(b"data: a\r\n\r\ndata"), Some(11));
        assert_eq!(last_event_end(b"data: a\ndata"), None);
        assert_eq!(find(b"ab\"usage\"", b"\"usage\""), Some(2));
        assert_eq!(rfind(b"\"usage\" \"usage\"", b"\"usage\""), Some(8));
        assert!(usage_object_in(b"{\"usage\": {\"a\":1}}"));
        assert!(usage_object_in(b"{\"usage\":null,\"x\":{\"usage\" :\n{}}}"));
        assert!(!usage_object_in(b"{\"usage\":null}"));
        assert!(!usage_object_in(b"{\"usage\""));
    }
}
