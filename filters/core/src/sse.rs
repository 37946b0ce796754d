//! Server-sent events: an incremental decoder and the few encoder helpers the translators need.
//!
//! Follows the WHATWG event-stream grammar
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>):
//! lines end in CRLF, LF or CR; `field: value` lines (one leading space after the colon is
//! dropped); lines starting with `:` are comments; a blank line dispatches the event, and an
//! event without `data` is not dispatched. Envoy hands a filter the body in whatever pieces the
//! network produced, so the decoder keeps partial lines (even a CR whose LF has not arrived
//! yet) between calls and never needs the whole stream.

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The `id:` field, if the event had one.
    pub id: Option<String>,
}

/// Incremental decoder: feed it bytes as they arrive, get back the events they complete.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes of the line being read (no terminator yet).
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF at the start of the next one belongs to it.
    skip_lf: bool,
    /// At least one line was processed (a byte-order mark may only start the first one).
    seen_line: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode `bytes`, returning every event they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut rest = bytes;
        if self.skip_lf && !rest.is_empty() {
            self.skip_lf = false;
            if rest.first() == Some(&b'\n') {
                rest = rest.get(1..).unwrap_or_default();
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(pos);
            let is_cr = tail.first() == Some(&b'\r');
            rest = tail.get(1..).unwrap_or_default();
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = rest.get(1..).unwrap_or_default(),
                    // CR at the very end of this chunk: the LF (if any) comes next time.
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
            if self.line.is_empty() {
                // The whole line is in this piece (the usual case): read it where it is,
                // without copying it into `line` first.
                self.process_line(head, &mut events);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, &mut events);
                // Reuse the allocation for the next line.
                self.line = line;
                self.line.clear();
            }
        }
        self.line.extend_from_slice(rest);
        events
    }

    /// True when bytes of an unfinished event are held (a partial line or an event whose
    /// blank line has not arrived). Such an event is discarded at end of stream, per the spec.
    pub fn has_pending(&self) -> bool {
        !self.line.is_empty() || self.has_data || self.event.is_some()
    }

    fn process_line(&mut self, line: &[u8], events: &mut Vec<Event>) {
        let mut line = line;
        if !self.seen_line {
            self.seen_line = true;
            if let Some(stripped) = line.strip_prefix(b"\xEF\xBB\xBF") {
                line = stripped;
            }
        }
        if line.is_empty() {
            if self.has_data {
                events.push(Event {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                    id: self.id.take(),
                });
            }
            self.event = None;
            self.id = None;
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line.first() == Some(&b':') {
            return; // comment, e.g. a keep-alive
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = line.get(colon + 1..).unwrap_or_default();
                let value = value.strip_prefix(b" ").unwrap_or(value);
                (line.get(..colon).unwrap_or_default(), value)
            }
            None => (line, &b""[..]),
        };
        // Lines only split at CR/LF (ASCII), so a complete line never cuts a UTF-8 sequence.
        // `from_utf8` first: its ASCII fast path checks a word at a time, where the lossy
        // decoder walks every byte (~1.7 k instructions a 200-byte event, natively); only an
        // invalid line pays for the replacement characters.
        let value = match std::str::from_utf8(value) {
            Ok(valid) => std::borrow::Cow::Borrowed(valid),
            Err(_) => String::from_utf8_lossy(value),
        };
        match name {
            b"event" => self.event = Some(value.into_owned()),
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"id" => self.id = Some(value.into_owned()),
            _ => {} // `retry` and unknown fields are ignored
        }
    }
}

/// The terminal frame of an OpenAI stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Append a `data:` frame. `data` is split on newlines so multi-line payloads stay one event.
pub fn write_data(out: &mut Vec<u8>, data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Append an event with an `event:` name and `data:`.
pub fn write_event(out: &mut Vec<u8>, event: &str, data: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.push(b'\n');
    write_data(out, data);
}

/// Append a `data:` frame holding `value` as JSON. Serializing llmgw's own wire types cannot
/// fail; if it somehow did, nothing is written rather than a broken frame.
pub fn write_json<T: serde::Serialize>(out: &mut Vec<u8>, value: &T) {
    match serde_json::to_vec(value) {
        Ok(json) => write_data(out, &json),
        Err(err) => log::warn!("llmgw: could not encode an SSE frame: {err}"),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn ev(event: Option<&str>, data: &str) -> Event {
        Event {
            event: event.map(str::to_string),
            data: data.to_string(),
            id: None,
        }
    }

    /// Decode `input` whole, byte by byte, and split at every position: all must agree.
    fn decode_all_ways(input: &[u8]) -> Vec<Event> {
        let whole = Decoder::new().feed(input);
        let mut dec = Decoder::new();
        let bytewise: Vec<Event> = input.iter().flat_map(|b| dec.feed(&[*b])).collect();
        assert_eq!(whole, bytewise, "byte by byte");
        for split in 0..=input.len() {
            let mut dec = Decoder::new();
            let (a, b) = input.split_at(split);
            let mut got = dec.feed(a);
            got.extend(dec.feed(b));
            assert_eq!(whole, got, "split at {split}");
        }
        whole
    }

    #[test]
    fn decodes_events_with_names_and_data() {
        let input = b"event: message_start\ndata: {\"a\":1}\n\nevent: ping\ndata: {}\n\n";
        assert_eq!(
            decode_all_ways(input),
            vec![
                ev(Some("message_start"), "{\"a\":1}"),
                ev(Some("ping"), "{}")
            ]
        );
    }

    #[test]
    fn handles_crlf_cr_and_lf_line_endings() {
        let input = b"data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n";
        assert_eq!(
            decode_all_ways(input),
            vec![ev(None, "a"), ev(None, "b"), ev(None, "c"), ev(None, "d")]
        );
    }

    #[test]
    fn joins_multi_line_data_and_skips_comments() {
        let input = b": keep-alive\ndata: line one\ndata:line two\nid: 7\nretry: 10\n\n";
        let events = decode_all_ways(input);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "line one\nline two");
        assert_eq!(events[0].id.as_deref(), Some("7"));
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_partial_is_pending() {
        let mut dec = Decoder::new();
        assert!(dec.feed(b"event: ping\n\n").is_empty());
        assert!(dec.feed(b"data: partial").is_empty());
        assert!(dec.has_pending());
        assert_eq!(dec.feed(b"\n\n"), vec![ev(None, "partial")]);
        assert!(!dec.has_pending());
    }

    #[test]
    fn strips_a_leading_byte_order_mark_and_keeps_utf8() {
        let input = "\u{FEFF}data: héllo ✓\n\n".as_bytes();
        assert_eq!(decode_all_ways(input), vec![ev(None, "héllo ✓")]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let input = b"data: a\xFFb\n\ndata: ok\n\n";
        assert_eq!(
            decode_all_ways(input),
            vec![ev(None, "a\u{FFFD}b"), ev(None, "ok")]
        );
    }

    #[test]
    fn a_line_split_across_pieces_is_joined() {
        let mut dec = Decoder::new();
        assert!(dec.feed(b"data: {\"a\"").is_empty());
        assert!(dec.feed(b":1}").is_empty());
        assert_eq!(
            dec.feed(b"\n\ndata: b\n\n"),
            vec![ev(None, "{\"a\":1}"), ev(None, "b")]
        );
    }

    #[test]
    fn field_without_colon_and_value_without_space() {
        let input = b"data\ndata:x\n\n";
        assert_eq!(decode_all_ways(input), vec![ev(None, "\nx")]);
    }

    #[test]
    fn encoder_round_trips() {
        let mut out = Vec::new();
        write_event(&mut out, "e", b"one\ntwo");
        write_data(&mut out, b"{}");
        out.extend_from_slice(DONE);
        assert_eq!(
            decode_all_ways(&out),
            vec![
                ev(Some("e"), "one\ntwo"),
                ev(None, "{}"),
                ev(None, "[DONE]")
            ]
        );
    }
}
