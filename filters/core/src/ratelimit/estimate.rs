//! What a request is expected to cost before it goes upstream, and what it cost once it ended.
//!
//! Token limits are admitted against an [`Estimate`]: the prompt's size from the body (router
//! counts bytes / 4, rounded up, a cheap upper-ish bound for English text and JSON: OpenAI's own
//! rule of thumb is ~4 characters per token; images count by their pixels, not their base64
//! bytes, see [`super::image_tokens`]) plus the answer's cap (`max_completion_tokens`,
//! else `max_tokens`, else ratelimit's `default_max_output_tokens`). When the response ends,
//! the real `usage` replaces the estimate ([`Cost::delta`]).
//!
//! Router, the one filter that parses the body, hands the facts on in its
//! [`RouterFacts`]; ratelimit reads them back with [`Cost::estimate`].

use serde::Deserialize;

use super::window::LimitKind;
use crate::facts::RouterFacts;
use crate::schema::openai::Usage;
use crate::schema::Lenient;

/// Tokens a request is charged per kind: by estimate at admission, by usage at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub input: u64,
    pub output: u64,
}

impl Cost {
    /// Units of `kind` this cost spends (a request always counts 1 request).
    pub const fn of(&self, kind: LimitKind) -> u64 {
        match kind {
            LimitKind::Requests => 1,
            LimitKind::InputTokens => self.input,
            LimitKind::OutputTokens => self.output,
            LimitKind::TotalTokens => self.input.saturating_add(self.output),
        }
    }

    /// The real cost from the provider's usage (OpenAI terms, whatever the provider spoke).
    pub fn from_usage(usage: &Usage) -> Self {
        // Some providers report only a total; then it counts as input (it was spent).
        let input = if usage.prompt_tokens == 0 && usage.completion_tokens == 0 {
            usage.total_tokens
        } else {
            usage.prompt_tokens
        };
        Self {
            input,
            output: usage.completion_tokens,
        }
    }

    /// The estimate ratelimit admits against, from router's facts. Without router in front
    /// (no facts), the prompt counts 0 and the answer `default_max_output`.
    pub fn estimate(routed: &RouterFacts, default_max_output: u64) -> Self {
        Self {
            input: routed.input_tokens_estimate,
            output: routed.max_output_tokens.unwrap_or(default_max_output),
        }
    }

    /// What to add to a counter of `kind` charged `estimated` so it holds `self` instead:
    /// positive = charge more, negative = give back.
    pub fn delta(&self, estimated: &Cost, kind: LimitKind) -> i128 {
        i128::from(self.of(kind)) - i128::from(estimated.of(kind))
    }
}

/// Prompt tokens estimated from the request body's size: bytes / 4, rounded up.
pub const fn input_tokens_from_body_len(len: usize) -> u64 {
    (len as u64).div_ceil(4)
}

/// `stream_options` as router peeks at it.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct StreamOptionsPeek {
    #[serde(default)]
    pub include_usage: Lenient<bool>,
}

/// `stream_options.include_usage` as router's body peek reads it (a wrong type counts as not
/// asked: validating it is the provider's job).
pub fn include_usage(options: &Lenient<StreamOptionsPeek>) -> bool {
    options.0.and_then(|o| o.include_usage.0).unwrap_or(false)
}

/// translate's part: the client's body with `stream_options.include_usage: true`, for a stream
/// whose usage ratelimit forced ([`crate::facts::RateLimitFacts::force_usage`]). `None` when the body is not a JSON object (left for the provider to
/// refuse).
pub fn force_include_usage(body: &[u8]) -> Option<Vec<u8>> {
    let mut request: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).ok()?;
    let options = request
        .entry("stream_options")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if !options.is_object() {
        *options = serde_json::Value::Object(Default::default());
    }
    if let Some(options) = options.as_object_mut() {
        options.insert("include_usage".to_string(), serde_json::Value::Bool(true));
    }
    serde_json::to_vec(&request).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn body_bytes_over_four_rounded_up() {
        assert_eq!(input_tokens_from_body_len(0), 0);
        assert_eq!(input_tokens_from_body_len(1), 1);
        assert_eq!(input_tokens_from_body_len(4), 1);
        assert_eq!(input_tokens_from_body_len(5), 2);
        assert_eq!(input_tokens_from_body_len(4000), 1000);
    }

    #[test]
    fn cost_per_kind() {
        let c = Cost {
            input: 300,
            output: 100,
        };
        assert_eq!(c.of(LimitKind::Requests), 1);
        assert_eq!(c.of(LimitKind::InputTokens), 300);
        assert_eq!(c.of(LimitKind::OutputTokens), 100);
        assert_eq!(c.of(LimitKind::TotalTokens), 400);
    }

    #[test]
    fn reconciliation_deltas() {
        let estimated = Cost {
            input: 300,
            output: 1000,
        };
        let actual = Cost::from_usage(&Usage {
            prompt_tokens: 250,
            completion_tokens: 40,
            total_tokens: 290,
            ..Usage::default()
        });
        assert_eq!(actual.delta(&estimated, LimitKind::InputTokens), -50);
        assert_eq!(actual.delta(&estimated, LimitKind::OutputTokens), -960);
        assert_eq!(actual.delta(&estimated, LimitKind::TotalTokens), -1010);
        assert_eq!(actual.delta(&estimated, LimitKind::Requests), 0);
        let more = Cost {
            input: 400,
            output: 10,
        };
        assert_eq!(more.delta(&estimated, LimitKind::InputTokens), 100);
        // Only a total reported: it counts as input.
        let total_only = Cost::from_usage(&Usage {
            total_tokens: 77,
            ..Usage::default()
        });
        assert_eq!(
            total_only,
            Cost {
                input: 77,
                output: 0
            }
        );
    }

    #[test]
    fn stream_options_are_read_leniently() {
        let read = |json: &str| {
            let options: Lenient<StreamOptionsPeek> = serde_json::from_str(json).unwrap();
            include_usage(&options)
        };
        assert!(read(r#"{"include_usage":true}"#));
        assert!(!read(r#"{"include_usage":false}"#));
        assert!(!read(r#"{"include_usage":"yes"}"#));
        assert!(!read("7"));
        assert!(!read("{}"));
    }

    #[test]
    fn estimate_reads_router_facts_or_defaults() {
        let routed = RouterFacts {
            input_tokens_estimate: 120,
            max_output_tokens: Some(30),
            ..RouterFacts::default()
        };
        assert_eq!(
            Cost::estimate(&routed, 500),
            Cost {
                input: 120,
                output: 30
            }
        );
        assert_eq!(
            Cost::estimate(&RouterFacts::default(), 500),
            Cost {
                input: 0,
                output: 500
            }
        );
    }

    #[test]
    fn include_usage_is_forced_into_the_body() {
        let out = force_include_usage(br#"{"model":"m","stream":true}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["model"], "m");
        let out =
            force_include_usage(br#"{"stream_options":{"include_usage":false,"x":1}}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["stream_options"]["x"], 1);
        assert!(force_include_usage(b"[1]").is_none());
    }
}
