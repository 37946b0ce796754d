//! Deterministic reply text, token counting and the `[mock:...]` test controls.

use crate::body::StreamPlan;

/// Test controls found in the last user message.
#[derive(Debug, Default, Clone, Copy)]
pub struct Controls {
    pub status: Option<u16>,
    pub words: Option<usize>,
    pub plan: StreamPlan,
    /// Sleep this long before answering at all (before the response headers).
    pub headers_delay_ms: u64,
    /// Azure only: stream with the content filter's chunks (`[mock:content_filter=1]`).
    pub content_filter: bool,
    /// OpenAI's 429: this `retry-after` (delay-seconds) instead of 7.
    pub retry_after_s: Option<u32>,
    /// Answer 200 with this kind of garbage instead of the API's answer.
    pub garbage: Option<Garbage>,
}

/// `[mock:garbage=html|json|sse]`: what a broken provider, or a proxy in front of it, sends
/// with a 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    /// An HTML error page (`text/html`), as a CDN in front of an API sends.
    Html,
    /// `application/json` that is cut off mid-document.
    Json,
    /// `text/event-stream` whose second event is not JSON.
    Sse,
}

impl Garbage {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "html" => Some(Self::Html),
            "json" => Some(Self::Json),
            "sse" => Some(Self::Sse),
            _ => None,
        }
    }
}

/// Removes every `[mock:key=value]` from `text`, returning the cleaned text and the controls.
#[cfg(test)]
pub fn parse_controls(text: &str) -> (String, Controls) {
    parse_controls_for(text, "")
}

/// The APIs a control can be addressed to: `[mock:openai_status=429]` applies only to requests
/// the OpenAI endpoint serves (so a fallback chain can fail on one provider and not the next).
const APIS: [&str; 4] = ["openai", "anthropic", "gemini", "bedrock"];

/// [`parse_controls`] for a request served by `api` (`openai` or `anthropic`): controls
/// addressed to another API (`<api>_<key>`) are removed from the text but ignored.
pub fn parse_controls_for(text: &str, api: &str) -> (String, Controls) {
    let mut c = Controls::default();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[mock:") {
        let after = &rest[start + 6..];
        let Some(end) = after.find(']') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &after[..end];
        if let Some((k, v)) = inner.split_once('=') {
            let v = v.trim();
            let k = k.trim();
            let addressed = APIS.iter().find_map(|a| {
                k.strip_prefix(a)
                    .and_then(|r| r.strip_prefix('_'))
                    .map(|r| (*a, r))
            });
            let k = match addressed {
                Some((a, rest)) if a == api => rest,
                Some(_) => "",
                None => k,
            };
            match k {
                "status" => c.status = v.parse().ok(),
                "delay_ms" => c.plan.delay_ms = v.parse().unwrap_or(0),
                "cut_after" => c.plan.cut_after = v.parse().ok(),
                "truncate_after" => c.plan.truncate_after = v.parse().ok(),
                "words" => c.words = v.parse().ok(),
                "headers_delay_ms" => c.headers_delay_ms = v.parse().unwrap_or(0),
                "content_filter" => c.content_filter = v == "1",
                "retry_after" => c.retry_after_s = v.parse().ok(),
                "garbage" => c.garbage = Garbage::from_name(v),
                _ => {}
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    let cleaned = out.split_whitespace().collect::<Vec<_>>().join(" ");
    (cleaned, c)
}

/// `[mock:headers_delay_ms=N]` (or `[mock:<api>_headers_delay_ms=N]`) anywhere in a request body:
/// how long to wait before answering, so tests can make one provider slow or time out.
pub fn headers_delay_ms(api: &str, body: &[u8]) -> u64 {
    parse_controls_for(&String::from_utf8_lossy(body), api)
        .1
        .headers_delay_ms
}

/// `[mock:garbage=...]` (or `[mock:<api>_garbage=...]`) anywhere in a request body.
pub fn garbage(api: &str, body: &[u8]) -> Option<Garbage> {
    parse_controls_for(&String::from_utf8_lossy(body), api)
        .1
        .garbage
}

const WORDS: [&str; 16] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "magna",
];

/// The reply for the given provider name and (cleaned) last user text.
pub fn reply_text(provider: &str, last_user: &str, controls: &Controls) -> String {
    if let Some(n) = controls.words {
        let mut s = String::with_capacity(n * 7);
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(WORDS[i % WORDS.len()]);
        }
        return s;
    }
    let said: String = last_user.chars().take(200).collect();
    format!("Hello from mock {provider}! You said: {said}")
}

fn is_punct(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace()
}

/// Splits text into pieces whose concatenation is the text: each run of alphanumerics and
/// each punctuation character is one piece; whitespace belongs to the piece that follows it
/// (trailing whitespace to the last piece). Text without non-whitespace has no pieces.
pub fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    let mut ws_run_start = 0;
    let mut seen = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if !prev.is_some_and(char::is_whitespace) {
                ws_run_start = i;
            }
        } else {
            let boundary = match prev {
                None => false,
                Some(p) => is_punct(c) || p.is_whitespace() || is_punct(p),
            };
            if boundary && seen {
                let split = if prev.is_some_and(char::is_whitespace) {
                    ws_run_start
                } else {
                    i
                };
                out.push(&text[start..split]);
                start = split;
            }
            seen = true;
        }
        prev = Some(c);
    }
    if seen {
        out.push(&text[start..]);
    }
    out
}

pub fn count_tokens(text: &str) -> u64 {
    pieces(text).len() as u64
}

/// The reply cut at the first stop sequence (if any), then to `max` pieces (if given).
/// Returns the pieces and why it stopped: `None` natural end, `Some(Stop::Sequence(s))`,
/// or `Some(Stop::Length)`.
pub enum Stop {
    Natural,
    Sequence(String),
    Length,
}

pub fn shape_reply<'a>(reply: &'a str, stops: &[String], max: Option<u64>) -> (Vec<&'a str>, Stop) {
    let mut text = reply;
    let mut stop = Stop::Natural;
    let mut best: Option<(usize, &String)> = None;
    for s in stops.iter().filter(|s| !s.is_empty()) {
        if let Some(pos) = reply.find(s.as_str()) {
            if best.is_none_or(|(b, _)| pos < b) {
                best = Some((pos, s));
            }
        }
    }
    if let Some((pos, s)) = best {
        text = &reply[..pos];
        stop = Stop::Sequence(s.clone());
    }
    let mut p = pieces(text);
    if let Some(max) = max {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        if p.len() > max {
            p.truncate(max);
            stop = Stop::Length;
        }
    }
    (p, stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concat_to_text() {
        for t in [
            "Hello from mock openai! You said: hi there",
            "  leading and trailing  ",
            "a,b;;c  d",
            "",
            "   ",
            "héllo wörld ✓ ok",
        ] {
            assert_eq!(pieces(t).concat(), if t.trim().is_empty() { "" } else { t });
        }
        assert_eq!(
            pieces("Hello from mock openai! You said: hi"),
            vec!["Hello", " from", " mock", " openai", "!", " You", " said", ":", " hi"]
        );
    }

    #[test]
    fn controls_are_removed() {
        let (t, c) = parse_controls("hi [mock:status=429] there [mock:delay_ms=5][mock:words=3]");
        assert_eq!(t, "hi there");
        assert_eq!(c.status, Some(429));
        assert_eq!(c.plan.delay_ms, 5);
        assert_eq!(c.words, Some(3));
        assert_eq!(reply_text("x", &t, &c), "lorem ipsum dolor");
    }

    #[test]
    fn controls_addressed_to_one_api() {
        let text = "hi [mock:openai_status=429] [mock:anthropic_words=2]";
        let (t, c) = parse_controls_for(text, "openai");
        assert_eq!(t, "hi");
        assert_eq!((c.status, c.words), (Some(429), None));
        let (t, c) = parse_controls_for(text, "anthropic");
        assert_eq!(t, "hi");
        assert_eq!((c.status, c.words), (None, Some(2)));
    }

    #[test]
    fn headers_delay_is_read_from_the_whole_body() {
        let body =
            br#"{"messages":[{"role":"user","content":"x [mock:openai_headers_delay_ms=250]"}]}"#;
        assert_eq!(headers_delay_ms("openai", body), 250);
        assert_eq!(headers_delay_ms("anthropic", body), 0);
    }

    #[test]
    fn shape_stops() {
        let (p, s) = shape_reply("a b c d", &["c".into()], None);
        assert_eq!(p.concat(), "a b ");
        assert!(matches!(s, Stop::Sequence(ref x) if x == "c"));
        let (p, s) = shape_reply("a b c d", &[], Some(2));
        assert_eq!(p.concat(), "a b");
        assert!(matches!(s, Stop::Length));
    }
}
