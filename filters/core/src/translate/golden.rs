//! The golden-fixture harness every translator's tests share (`fixtures/translate/<pair>/`,
//! README there): JSON compared semantically, buffered answers and errors checked by one table
//! runner, SSE compared event by event, streams fed whole and byte by byte. `fixture!` is
//! defined in the parent module, before the test modules.

use serde_json::Value;

use super::{ResponseMode, Translator, Usage};
use crate::sse;

/// `created` of every translated answer in the fixtures.
pub const CREATED: u64 = 1_700_000_000;

pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
}

pub fn json_bytes(bytes: &[u8]) -> Value {
    json(std::str::from_utf8(bytes).unwrap())
}

/// SSE compared event by event; `data` as JSON where it is JSON.
pub fn assert_sse_eq(got: &[u8], want: &str, name: &str) {
    let norm = |bytes: &[u8]| -> Vec<(Option<String>, Value)> {
        let mut dec = sse::Decoder::new();
        let events = dec.feed(bytes);
        assert!(!dec.has_pending(), "{name}: unterminated frame in output");
        events
            .into_iter()
            .map(|e| {
                let data =
                    serde_json::from_str(&e.data).unwrap_or_else(|_| Value::String(e.data.clone()));
                (e.event, data)
            })
            .collect()
    };
    let (got_events, want_events) = (norm(got), norm(want.as_bytes()));
    assert_eq!(
        got_events.len(),
        want_events.len(),
        "{name}: event count\n got: {}",
        String::from_utf8_lossy(got)
    );
    for (i, (g, w)) in got_events.iter().zip(&want_events).enumerate() {
        assert_eq!(g, w, "{name}: event {i}");
    }
}

/// Feed `input` whole and byte by byte through fresh translators; both outputs must be equal
/// byte for byte. Returns the output and the usage recorded.
pub fn run_stream(
    make: impl Fn() -> Box<dyn Translator>,
    input: &str,
    name: &str,
) -> (Vec<u8>, Option<Usage>) {
    let feed = |pieces: Vec<&[u8]>| {
        let mut t = make();
        let plan = t.response_headers(
            200,
            Some("text/event-stream; charset=utf-8"),
            false,
            CREATED,
        );
        assert_eq!(plan.mode, ResponseMode::Stream, "{name}");
        let mut out = Vec::new();
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate() {
            match t.response_chunk(piece, i == last) {
                Some(replaced) => out.extend_from_slice(&replaced),
                None => out.extend_from_slice(piece),
            }
        }
        (out, t.usage())
    };
    let bytes = input.as_bytes();
    let whole = feed(vec![bytes]);
    let mut pieces: Vec<&[u8]> = bytes.chunks(1).collect();
    // Envoy may also signal the end with an empty last piece.
    pieces.push(&[]);
    let bytewise = feed(pieces);
    assert_eq!(
        String::from_utf8_lossy(&whole.0),
        String::from_utf8_lossy(&bytewise.0),
        "{name}: whole vs byte by byte"
    );
    assert_eq!(whole.1, bytewise.1, "{name}: usage whole vs byte by byte");
    whole
}

/// What a buffered response became: the status the client gets when it differs from the
/// provider's, the body as JSON, and the usage the translator recorded.
pub type Answer = (Option<u16>, Value, Option<Usage>);

/// Run one buffered response (`status`, `content_type`, body `input`) through `t`.
pub fn respond(t: &mut dyn Translator, status: u16, content_type: &str, input: &str) -> Answer {
    let plan = t.response_headers(status, Some(content_type), false, CREATED);
    assert_eq!(plan.mode, ResponseMode::Buffer, "{input}");
    assert_eq!(plan.content_type, Some("application/json"), "{input}");
    let out = t.response_body(input.as_bytes());
    (out.status.or(plan.status), json_bytes(&out.body), t.usage())
}

/// Golden 2xx answers `(name, input, output)`: each becomes `output`, keeps its status and
/// records the usage `output` reports to the client.
pub fn check_answers(cases: &[(&str, &str, &str)], run: impl Fn(u16, &str) -> Answer) {
    for (name, input, want) in cases {
        let (status, got, usage) = run(200, input);
        let want = json(want);
        assert_eq!(status, None, "{name}");
        assert_eq!(got, want, "{name}");
        let recorded: Usage = serde_json::from_value(want["usage"].clone()).unwrap();
        assert_eq!(usage, Some(recorded), "{name}");
    }
}

/// Golden errors `(status in, status out, input, output)`: each becomes the OpenAI error
/// `output` with `status out`, and records no usage.
pub fn check_errors(cases: &[(u16, u16, &str, &str)], run: impl Fn(u16, &str) -> Answer) {
    for (status_in, status_out, input, want) in cases {
        let (status, got, usage) = run(*status_in, input);
        let changed = (status_out != status_in).then_some(*status_out);
        assert_eq!(status, changed, "{input}");
        assert_eq!(got, json(want), "{input}");
        assert_eq!(usage, None, "{input}");
    }
}
