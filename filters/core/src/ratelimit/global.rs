//! Global mode: the limits are counted by an Envoy rate limit service (RLS), shared by every
//! Envoy that talks to it, instead of in one Envoy's shared data.
//!
//! ```json
//! "global": {"cluster": "ratelimit", "domain": "llmgw", "timeout_ms": 200,
//!            "failure_mode": "open"}
//! ```
//! Each limit that applies to a request becomes one descriptor of a `ShouldRateLimit` call:
//! entries `llmgw_limit` (the rule: `consumer` or the `limits[]` name), `kind` and `window`, then
//! the key's dimensions (`consumer`, `team`, `model`, …); the limit itself in the standard
//! `limit` override (`requests_per_unit`, `unit`), so the service needs no copy of llmgw's
//! config; and the cost in the descriptor's `hits_addend` (1 for requests, the estimate for
//! tokens). `rls/` (llmgw-rls) is the service built for it, counters in Redis; rls/README.md says
//! which other services honour these fields.
//!
//! When the response ends, tokens used beyond the estimate are sent as a second call with only
//! the token descriptors. Tokens are never given back (a service without `is_negative_hits`
//! would count a refund as more hits), so in global mode a request that used fewer tokens than
//! estimated stays charged its estimate. Budgets are settled both ways: what the worst case
//! reserved beyond the real cost goes back with `is_negative_hits` (llmgw-rls honours it),
//! because a budget admitted at worst cases and never refunded would run out long before the
//! money does. Budget windows `week` and `month` have no `RateLimitUnit`: the descriptor says
//! `MONTH` (or `DAY` for a week) and its `window` entry names the calendar window, which
//! llmgw-rls reads.
//!
//! A budget's amount does not fit the override: `requests_per_unit` is a `uint32`, which in
//! micro-USD is 4294.967295 USD. So a budget descriptor also carries its exact max as an entry
//! [`MAX_ENTRY`] (decimal micro-USD, up to [`MAX_GLOBAL_BUDGET_MICROS`]) that llmgw-rls counts
//! against and leaves out of the counter's key (raising a budget keeps what was spent); the
//! override says the same amount saturated at `u32::MAX`. The cost itself needs nothing: a
//! descriptor's `hits_addend` is a `UInt64Value`. The answer's `limit_remaining` is a `uint32`
//! too, so llmgw-rls adds the exact remaining of each such descriptor to the answer's
//! `response_headers_to_add` as [`REMAINING_HEADER`] `<descriptor index>:<micro-USD>`
//! ([`super::proto::RateLimitResponse::remaining`]); the filter never sends those to a client.

use serde::Deserialize;

use super::config::Applied;
use super::estimate::Cost;
use super::proto::{Descriptor, RateLimitRequest, Unit};
use super::window::{LimitKind, Window};
use crate::config::ConfigError;

pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const METHOD: &str = "ShouldRateLimit";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// The RLS is down, slow or answers nonsense: let the request through (logged, counted).
    #[default]
    Open,
    /// … refuse it with 503 `rate_limit_service_unavailable`.
    Closed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// The Envoy cluster of the rate limit service (HTTP/2).
    pub cluster: String,
    #[serde(default = "default_domain")]
    pub domain: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub failure_mode: FailureMode,
}

fn default_domain() -> String {
    "llmgw".to_string()
}

fn default_timeout_ms() -> u64 {
    200
}

impl GlobalConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster.trim().is_empty() {
            return Err(ConfigError::new(
                "global.cluster",
                "must name an Envoy cluster",
            ));
        }
        if super::proto::is_wire_message(self.cluster.as_bytes()) {
            return Err(ConfigError::new(
                "global.cluster",
                "Envoy would read this name as a serialized GrpcService and abort (Envoy 1.40: \
                 \"unset oneof\"); give the rate limit service's cluster another name",
            ));
        }
        if self.domain.is_empty() {
            return Err(ConfigError::new("global.domain", "must not be empty"));
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(ConfigError::new(
                "global.timeout_ms",
                "must be between 1 and 60000",
            ));
        }
        Ok(())
    }
}

pub const fn unit(window: Window) -> Unit {
    match window {
        Window::Second => Unit::Second,
        Window::Minute => Unit::Minute,
        Window::Hour => Unit::Hour,
        Window::Day | Window::Week => Unit::Day,
        Window::Month => Unit::Month,
    }
}

/// The largest budget global mode counts exactly: llmgw-rls compares in Redis's Lua, whose
/// numbers are doubles, exact for integers up to 2^53 (9007199254.740992 USD per period).
pub const MAX_GLOBAL_BUDGET_MICROS: u64 = 1 << 53;

/// The descriptor entry that carries a budget's max in full (decimal micro-USD).
pub const MAX_ENTRY: &str = "max";

/// The answer's `response_headers_to_add` name under which llmgw-rls writes the exact remaining
/// of each descriptor that carried [`MAX_ENTRY`].
pub const REMAINING_HEADER: &str = "x-llmgw-rls-remaining";

/// One descriptor per applied limit, costing `units(applied)`, with the limit's own max or
/// `max_override`.
pub fn descriptors(
    applied: &[Applied],
    units: impl Fn(&Applied) -> u64,
    max_override: Option<u64>,
) -> Vec<Descriptor> {
    applied
        .iter()
        .map(|a| descriptor(a, units(a), max_override))
        .collect()
}

/// One applied limit as a descriptor costing `hits`.
fn descriptor(a: &Applied, hits: u64, max_override: Option<u64>) -> Descriptor {
    let max = max_override.unwrap_or(a.limit.max);
    let mut entries = Vec::with_capacity(a.key.len() + 4);
    entries.push(("llmgw_limit".to_string(), a.rule.clone()));
    entries.push(("kind".to_string(), a.limit.kind.as_str().to_string()));
    entries.push(("window".to_string(), a.limit.window.as_str().to_string()));
    for (dim, value) in &a.key {
        entries.push(((*dim).to_string(), value.clone()));
    }
    // Budgets only: request and token descriptors stay what any rate limit service counts.
    if a.limit.kind == LimitKind::Usd {
        entries.push((MAX_ENTRY.to_string(), max.to_string()));
    }
    Descriptor {
        entries,
        limit: Some((u32::try_from(max).unwrap_or(u32::MAX), unit(a.limit.window))),
        hits_addend: Some(hits),
        negative: false,
    }
}

/// The admission call: every applied limit at its estimated cost.
pub fn admission(domain: &str, applied: &[Applied], estimate: &Cost) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.to_string(),
        descriptors: descriptors(applied, |a| estimate.of(a.limit.kind), None),
        hits_addend: 0,
    }
}

/// The reconciliation call: tokens used beyond the estimate, per token limit, and each
/// budget's difference between its reservation and the real cost (a refund when below);
/// `None` when nothing is owed.
pub fn reconciliation(
    domain: &str,
    applied: &[Applied],
    estimate: &Cost,
    actual: &Cost,
) -> Option<RateLimitRequest> {
    let descriptors: Vec<Descriptor> = applied
        .iter()
        .filter_map(|a| {
            let delta = actual.delta(estimate, a.limit.kind);
            let refund = a.limit.kind == LimitKind::Usd && delta < 0;
            if !(a.limit.kind.is_settled() && delta > 0 || refund) {
                return None;
            }
            // The tokens were spent: they must be counted even past the limit. A service that
            // does not count refused hits (Limitador, llmgw-rls) would drop them at the real
            // max, so the charge goes with the largest max; the counter is the same (it is
            // keyed by the entries, not by the limit, nor by a budget's max entry).
            let hits = u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX);
            let largest = match a.limit.kind {
                LimitKind::Usd => u64::MAX,
                _ => u64::from(u32::MAX),
            };
            let mut d = descriptor(a, hits, Some(largest));
            d.negative = refund;
            Some(d)
        })
        .collect();
    if descriptors.is_empty() {
        return None;
    }
    Some(RateLimitRequest {
        domain: domain.to_string(),
        descriptors,
        hits_addend: 0,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::ratelimit::window::{Limit, LimitKind};

    fn applied(kind: LimitKind, max: u64) -> Applied {
        Applied {
            name: format!("default.{}_per_minute", kind.as_str()),
            limit: Limit {
                kind,
                window: Window::Minute,
                max,
            },
            rule: "consumer".into(),
            key: vec![("consumer", "alice".into())],
        }
    }

    #[test]
    fn admission_carries_limit_key_and_cost() {
        let limits = [
            applied(LimitKind::Requests, 60),
            applied(LimitKind::TotalTokens, 10_000),
        ];
        let est = Cost {
            input: 100,
            output: 50,
            usd_micros: 0,
        };
        let req = admission("llmgw", &limits, &est);
        assert_eq!(req.domain, "llmgw");
        assert_eq!(req.descriptors.len(), 2);
        let d = &req.descriptors[1];
        let entries: Vec<(&str, &str)> = d
            .entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            entries,
            [
                ("llmgw_limit", "consumer"),
                ("kind", "total_tokens"),
                ("window", "minute"),
                ("consumer", "alice")
            ]
        );
        assert_eq!(d.limit, Some((10_000, Unit::Minute)));
        assert_eq!(d.hits_addend, Some(150));
        assert_eq!(req.descriptors[0].hits_addend, Some(1));
    }

    #[test]
    fn reconciliation_sends_only_what_is_owed() {
        let limits = [
            applied(LimitKind::Requests, 60),
            applied(LimitKind::InputTokens, 10_000),
            applied(LimitKind::OutputTokens, 10_000),
        ];
        let est = Cost {
            input: 100,
            output: 50,
            usd_micros: 0,
        };
        let actual = Cost {
            input: 130,
            output: 20,
            usd_micros: 0,
        };
        let req = reconciliation("d", &limits, &est, &actual).unwrap();
        assert_eq!(req.descriptors.len(), 1);
        assert_eq!(req.descriptors[0].hits_addend, Some(30));
        assert_eq!(req.descriptors[0].limit, Some((u32::MAX, Unit::Minute)));
        assert!(req.descriptors[0]
            .entries
            .contains(&("kind".to_string(), "input_tokens".to_string())));
        assert!(reconciliation("d", &limits, &est, &est).is_none());
    }

    #[test]
    fn budgets_are_settled_both_ways() {
        let mut budget = applied(LimitKind::Usd, 10_000);
        budget.limit.window = Window::Month;
        let limits = [applied(LimitKind::InputTokens, 10_000), budget];
        let est = Cost {
            input: 100,
            output: 50,
            usd_micros: 900,
        };
        let actual = Cost {
            input: 90,
            output: 20,
            usd_micros: 250,
        };
        // Tokens below the estimate stay charged; the budget gets 650 back.
        let req = reconciliation("d", &limits, &est, &actual).unwrap();
        assert_eq!(req.descriptors.len(), 1);
        let d = &req.descriptors[0];
        assert!(d.negative);
        assert_eq!(d.hits_addend, Some(650));
        assert_eq!(d.limit, Some((u32::MAX, Unit::Month)));
        assert!(d
            .entries
            .contains(&("window".to_string(), "month".to_string())));
        assert!(d
            .entries
            .contains(&("max".to_string(), u64::MAX.to_string())));
        // Dearer than reserved (a usage past the estimate): charged, not refunded.
        let dearer = Cost {
            usd_micros: 1000,
            ..actual
        };
        let req = reconciliation("d", &limits, &est, &dearer).unwrap();
        assert!(!req.descriptors[0].negative);
        assert_eq!(req.descriptors[0].hits_addend, Some(100));
    }

    #[test]
    fn a_budget_carries_its_max_in_full() {
        // 50,000 USD a month: past the override's 32 bits, exact in the `max` entry.
        let mut budget = applied(LimitKind::Usd, 50_000_000_000);
        budget.limit.window = Window::Month;
        let est = Cost {
            input: 100,
            output: 50,
            usd_micros: 5_000_000_123,
        };
        let req = admission("d", &[applied(LimitKind::Requests, 60), budget], &est);
        let d = &req.descriptors[1];
        assert_eq!(d.limit, Some((u32::MAX, Unit::Month)));
        assert_eq!(d.hits_addend, Some(5_000_000_123));
        assert_eq!(
            d.entries.last(),
            Some(&("max".to_string(), "50000000000".to_string()))
        );
        // Request and token descriptors carry no such entry.
        assert!(!req.descriptors[0].entries.iter().any(|(k, _)| k == "max"));
    }

    #[test]
    fn config_is_checked() {
        let cfg: GlobalConfig = serde_json::from_str(r#"{"cluster":"rls"}"#).unwrap();
        assert_eq!(cfg.domain, "llmgw");
        assert_eq!(cfg.timeout_ms, 200);
        assert_eq!(cfg.failure_mode, FailureMode::Open);
        cfg.validate().unwrap();
        let cfg: GlobalConfig =
            serde_json::from_str(r#"{"cluster":"rls","timeout_ms":0,"failure_mode":"closed"}"#)
                .unwrap();
        assert_eq!(cfg.validate().unwrap_err().path, "global.timeout_ms");
        assert!(
            serde_json::from_str::<GlobalConfig>(r#"{"cluster":"r","failure_mode":"x"}"#).is_err()
        );
    }
}
