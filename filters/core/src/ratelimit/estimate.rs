//! What a request is expected to cost before it goes upstream, and what it cost once it ended.
//!
//! Token limits are admitted against an [`Estimate`]: the prompt's size from the body (router
//! counts bytes / 4, rounded up, a cheap upper-ish bound for English text and JSON: OpenAI's own
//! rule of thumb is ~4 characters per token; images count by their pixels, not their base64
//! bytes, see [`super::image_tokens`]) plus the answer's cap (`max_completion_tokens`,
//! else `max_tokens`, else ratelimit's `default_max_output_tokens`). When the response ends,
//! the real `usage` replaces the estimate ([`Cost::delta`]).
//!
//! Budgets are admitted at the request's worst-case cost ([`worst_case_usd_micros`]): the
//! estimated input tokens at the dearest input price (fresh, cache read or cache write) plus
//! the answer's cap at the output price, of the dearest target the request may reach (fallbacks
//! included). The real cost ([`usd_micros`]) is the usage at the price of the provider that
//! answered, cached input tokens at their own prices, reasoning tokens as the output they are
//! billed as (OpenAI's `completion_tokens` includes them).
//!
//! Router, the one filter that parses the body, hands the facts on in its
//! [`RouterFacts`]; ratelimit reads them back with [`Cost::estimate`].

use serde::Deserialize;

use super::window::LimitKind;
use std::ops::Deref;

use crate::facts::{Price, RouterFacts};
use crate::schema::openai::Usage;
use crate::schema::Lenient;

/// Tokens a request is charged per kind: by estimate at admission, by usage at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub input: u64,
    pub output: u64,
    /// Spend in micro-USD (budgets).
    pub usd_micros: u64,
}

impl Cost {
    /// Units of `kind` this cost spends (a request always counts 1 request).
    pub const fn of(&self, kind: LimitKind) -> u64 {
        match kind {
            LimitKind::Requests => 1,
            LimitKind::InputTokens => self.input,
            LimitKind::OutputTokens => self.output,
            LimitKind::TotalTokens => self.input.saturating_add(self.output),
            LimitKind::Usd => self.usd_micros,
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
            usd_micros: 0,
        }
    }

    /// The estimate ratelimit admits against, from router's facts. Without router in front
    /// (no facts), the prompt counts 0 and the answer `default_max_output`.
    pub fn estimate<S>(routed: &RouterFacts<S>, default_max_output: u64) -> Self {
        Self {
            input: routed.input_tokens_estimate,
            output: routed.max_output_tokens.unwrap_or(default_max_output),
            usd_micros: 0,
        }
    }

    /// What to add to a counter of `kind` charged `estimated` so it holds `self` instead:
    /// positive = charge more, negative = give back.
    pub fn delta(&self, estimated: &Cost, kind: LimitKind) -> i128 {
        i128::from(self.of(kind)) - i128::from(estimated.of(kind))
    }
}

/// The providers a request may reach: its fallback chain's, else router's choice.
pub fn reachable_providers<S: Deref<Target = str>>(routed: &RouterFacts<S>) -> Vec<&str> {
    match routed.targets.as_deref() {
        Some(targets) => targets
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(provider, _)| provider.trim())
            .collect(),
        None => routed.provider.as_deref().into_iter().collect(),
    }
}

/// The most a request admitted at `estimate` (tokens) may cost, in micro-USD (rounded up): at
/// the prices of the dearest provider it may reach. `Err(provider)` names a reachable provider
/// without a price (or, `""`, that router named none): such a request cannot be budgeted.
pub fn worst_case_usd_micros<'a, S: Deref<Target = str>>(
    routed: &'a RouterFacts<S>,
    estimate: &Cost,
) -> Result<u64, &'a str> {
    let providers = reachable_providers(routed);
    if providers.is_empty() {
        return Err("");
    }
    let mut worst = 0;
    for provider in providers {
        let price = routed.price_for(provider).ok_or(provider)?;
        // Every input token could be a cache write, dearer than a fresh one at Anthropic.
        let input = price.input.max(price.cache_read).max(price.cache_write);
        let nanos = Price::new(input, price.output).cost_nanos(estimate.input, estimate.output);
        worst = worst.max(nanos.div_ceil(1000));
    }
    Ok(worst)
}

/// What `usage` cost at `price`, in micro-USD (rounded to the nearest): what translate's cost
/// metric and the access log count for the same try, in micro- rather than nano-USD.
pub fn usd_micros(usage: &Usage, price: Price) -> u64 {
    let nanos = price.cost_with_cache_nanos(
        usage.prompt_tokens,
        usage.cached_tokens(),
        usage.cache_write_tokens(),
        usage.completion_tokens,
    );
    nanos.saturating_add(500) / 1000
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
        crate::json::from_slice(body).ok()?;
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
            usd_micros: 7,
        };
        assert_eq!(c.of(LimitKind::Usd), 7);
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
            usd_micros: 0,
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
            usd_micros: 0,
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
                output: 0,
                usd_micros: 0
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
        let routed: RouterFacts = RouterFacts {
            input_tokens_estimate: 120,
            max_output_tokens: Some(30),
            ..RouterFacts::default()
        };
        assert_eq!(
            Cost::estimate(&routed, 500),
            Cost {
                input: 120,
                output: 30,
                usd_micros: 0
            }
        );
        assert_eq!(
            Cost::estimate(&RouterFacts::<String>::default(), 500),
            Cost {
                input: 0,
                output: 500,
                usd_micros: 0
            }
        );
    }

    #[test]
    fn worst_case_is_the_dearest_reachable_target_at_its_dearest_input_price() {
        let estimate = Cost {
            input: 1000,
            output: 100,
            usd_micros: 0,
        };
        let one: RouterFacts = RouterFacts {
            provider: Some("openai".into()),
            prices: Some("openai=0.15/0.6,anthropic=1/5".into()),
            ..RouterFacts::default()
        };
        // 1000 × 0.15 + 100 × 0.6 = 210 micro-USD.
        assert_eq!(worst_case_usd_micros(&one, &estimate), Ok(210));
        let chain = RouterFacts {
            targets: Some("openai=gpt-4o-mini,anthropic=claude-haiku-4-5".into()),
            ..one.clone()
        };
        // The fallback's 1000 × 1 + 100 × 5 = 1500.
        assert_eq!(worst_case_usd_micros(&chain, &estimate), Ok(1500));
        // Cache writes at 3.75 dearer than fresh input at 3: 3750 + 1500.
        let cached: RouterFacts = RouterFacts {
            provider: Some("bedrock".into()),
            prices: Some("bedrock=3/15/0.3/3.75".into()),
            ..RouterFacts::default()
        };
        assert_eq!(worst_case_usd_micros(&cached, &estimate), Ok(5250));
        // Rounded up: 1 token at 0.15 is 0.15 micro-USD.
        let tiny = Cost {
            input: 1,
            output: 0,
            usd_micros: 0,
        };
        assert_eq!(worst_case_usd_micros(&one, &tiny), Ok(1));
        let unpriced = RouterFacts {
            targets: Some("openai=gpt-4o-mini,gemini=gemini-2.5-flash".into()),
            ..one.clone()
        };
        assert_eq!(worst_case_usd_micros(&unpriced, &estimate), Err("gemini"));
        assert_eq!(
            worst_case_usd_micros(&RouterFacts::<String>::default(), &estimate),
            Err("")
        );
    }

    #[test]
    fn real_cost_prices_cache_reads_and_rounds_to_the_nearest_micro() {
        let usage: Usage = serde_json::from_str(
            r#"{"prompt_tokens":2000,"completion_tokens":100,"total_tokens":2100,
                "prompt_tokens_details":{"cached_tokens":1000}}"#,
        )
        .unwrap();
        // 1000 fresh × 3 + 1000 read × 0.3 + 100 × 15 = 4800 micro-USD.
        let price = Price {
            cache_read: 0.3,
            cache_write: 3.75,
            ..Price::new(3.0, 15.0)
        };
        assert_eq!(usd_micros(&usage, price), 4800);
        let small: Usage =
            serde_json::from_str(r#"{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}"#)
                .unwrap();
        // 3 × 0.15 + 1 × 0.6 = 1.05 micro-USD → 1.
        assert_eq!(usd_micros(&small, Price::new(0.15, 0.6)), 1);
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
