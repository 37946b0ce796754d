//! What one try cost and how it went, as labelled Envoy metrics (see [`crate::metrics`]).
//!
//! translate records them because it is the one filter that knows, per try, which provider
//! answered, with which model, and how many tokens that took. Names follow Prometheus
//! conventions; each maps to an OpenTelemetry GenAI semantic convention (README). The same
//! facts go to the access log ([`crate::access_log`]) when the try's response ends.
//!
//! | metric | kind | labels | OpenTelemetry GenAI |
//! |---|---|---|---|
//! | `llmgw_upstream_requests_total` | counter | provider, model, status | `gen_ai.server.request.duration` count |
//! | `llmgw_upstream_errors_total` | counter | provider, model, error | `error.type` |
//! | `llmgw_tokens_total` | counter | provider, model, consumer, team, token_type (`input`, `output`; `cache_read`, `cache_write`: the part of `input` read from / written to the provider's prompt cache) | `gen_ai.client.token.usage` (`gen_ai.token.type`) |
//! | `llmgw_cost_usd_nanos_total` | counter | provider, model, consumer, team | — (tokens × the catalogue's price) |
//! | `llmgw_request_duration_ms` | histogram | provider, model | `gen_ai.server.request.duration` |
//! | `llmgw_time_to_first_token_ms` | histogram | provider, model | `gen_ai.server.time_to_first_token` |
//! | `llmgw_translate_dropped_total` | counter | provider, model, what | — (what the provider sent that had no place in the OpenAI answer, [`super::dropped`]) |

use crate::access_log::{self, Field};
use crate::facts::{self, AuthFacts, Price};
use crate::host::Host;
use crate::metrics::Metrics;
use crate::text;

use super::Usage;

/// Label value when a fact is unknown (no team, no model header).
const NONE: &str = "-";

/// Metric-label settings, shared with router's config.
pub use crate::metrics::MetricsConfig;

/// The error class of a finished try, `None` when it succeeded.
fn error_class(status: Option<u16>, stream_failed: bool) -> Option<&'static str> {
    match status {
        None => Some("no_response"),
        Some(429) => Some("rate_limited"),
        Some(s) if s >= 500 => Some("server_error"),
        Some(s) if s >= 400 => Some("client_error"),
        Some(_) if stream_failed => Some("stream_error"),
        Some(_) => None,
    }
}

/// How a try ended, as its translator saw it.
#[derive(Debug, Default)]
pub struct Outcome<'a> {
    pub usage: Option<Usage>,
    /// The stream ended with an error frame.
    pub stream_failed: bool,
    /// What had no place in the OpenAI answer, by kind ([`super::dropped`]).
    pub dropped: &'a [(&'static str, u64)],
}

/// One try's measurements, reported once when the try ends.
#[derive(Debug, Default)]
pub struct TryTelemetry {
    started_ms: u64,
    first_byte_ms: Option<u64>,
    status: Option<u16>,
    consumer: Option<String>,
    team: Option<String>,
    /// The catalogue's price of this try's provider, for its cost.
    price: Option<Price>,
    /// The try's outcome is in the access log.
    logged: bool,
    /// translate answered the try itself; [`crate::host::send_error`] logged its error code.
    replied: bool,
    /// An earlier try of the request may have logged values this one must blank.
    retry: bool,
    reported: bool,
}

impl TryTelemetry {
    /// Start timing; read auth's consumer and team (its facts) for the labels, when the config
    /// wants them. `price` is the catalogue's for this try's provider; `retry` says an earlier
    /// try of the request ran. The access log names this try's provider and model from now on:
    /// the last try's win.
    pub fn start(
        host: &mut dyn Host,
        config: MetricsConfig,
        retry: bool,
        price: Option<Price>,
        provider: &str,
        model: Option<&str>,
    ) -> Self {
        let (consumer, team) = if config.consumer_labels {
            let record = facts::stored(host, facts::AUTH);
            let auth = AuthFacts::view(record.as_deref());
            let owned = |v: Option<&str>| v.map(str::to_string);
            (owned(auth.consumer), owned(auth.team))
        } else {
            (None, None)
        };
        access_log::record(host, Field::Provider, provider);
        access_log::record(host, Field::Model, model.unwrap_or_default());
        Self {
            started_ms: host.now_ms(),
            consumer,
            team,
            price,
            retry,
            ..Self::default()
        }
    }

    /// translate answered this try itself (its error code is logged already).
    pub fn replied(&mut self) {
        self.replied = true;
    }

    /// Put the try's tokens, cost, time to first token and error class in the access log,
    /// once, as soon as its response has ended. An unknown value is not written, so the access
    /// log leaves it out; a retry writes it empty instead, so nothing an earlier try of the
    /// request logged survives.
    pub fn log_outcome(&mut self, host: &mut dyn Host, usage: Option<Usage>, stream_failed: bool) {
        if self.logged {
            return;
        }
        self.logged = true;
        let tokens = usage.map(|u| (u.prompt_tokens, u.completion_tokens));
        let ttft = self
            .first_byte_ms
            .map(|t| t.saturating_sub(self.started_ms));
        // Numbers written on the stack, not through `to_string`: every try logs these.
        self.log_number(host, Field::InputTokens, tokens.map(|t| t.0));
        self.log_number(host, Field::OutputTokens, tokens.map(|t| t.1));
        self.log_number(host, Field::TotalTokens, tokens.map(|t| t.0 + t.1));
        let cost = self.cost_nanos(usage).map(access_log::usd);
        self.log(host, Field::CostUsd, cost.as_deref());
        self.log_number(host, Field::TimeToFirstTokenMs, ttft);
        if !self.replied {
            self.log(host, Field::Error, error_class(self.status, stream_failed));
        }
    }

    /// One access-log field of the outcome: a retry blanks what it does not know.
    fn log(&self, host: &mut dyn Host, field: Field, value: Option<&str>) {
        match value {
            Some(value) => access_log::record(host, field, value),
            None if self.retry => access_log::record(host, field, ""),
            None => {}
        }
    }

    fn log_number(&self, host: &mut dyn Host, field: Field, value: Option<u64>) {
        match value {
            Some(value) => access_log::record_u64(host, field, value),
            None => self.log(host, field, None),
        }
    }

    fn cost_nanos(&self, usage: Option<Usage>) -> Option<u64> {
        let usage = usage?;
        Some(self.price?.cost_with_cache_nanos(
            usage.prompt_tokens,
            usage.cached_tokens(),
            usage.cache_write_tokens(),
            usage.completion_tokens,
        ))
    }

    /// The status the client will see for this try: the provider's, then as translated (e.g.
    /// Anthropic's 529 becomes 503, an unreadable answer 502).
    pub fn status_changed(&mut self, status: u16) {
        self.status = Some(status);
    }

    pub fn body_received(&mut self, host: &dyn Host) {
        if self.first_byte_ms.is_none() {
            self.first_byte_ms = Some(host.now_ms());
        }
    }

    /// Report the try once: on `on_log`, whatever way it ended.
    pub fn report(
        &mut self,
        host: &mut dyn Host,
        metrics: &Metrics,
        provider: &str,
        model: Option<&str>,
        outcome: Outcome<'_>,
    ) {
        if self.reported {
            return;
        }
        let Outcome {
            usage,
            stream_failed,
            dropped,
        } = outcome;
        self.reported = true;
        // A try cut short (client gone, provider reset) still gets its line.
        self.log_outcome(host, usage, stream_failed);
        let model = model.unwrap_or(NONE);
        let mut digits = [0u8; text::MAX_DIGITS];
        let status = self
            .status
            .and_then(|s| std::str::from_utf8(text::decimal(u64::from(s), &mut digits)).ok())
            .unwrap_or("none");
        let try_labels = [("provider", provider), ("model", model)];

        metrics.count(
            host,
            "llmgw_upstream_requests_total",
            &[try_labels[0], try_labels[1], ("status", status)],
            1,
        );
        if let Some(error) = error_class(self.status, stream_failed) {
            metrics.count(
                host,
                "llmgw_upstream_errors_total",
                &[try_labels[0], try_labels[1], ("error", error)],
                1,
            );
        }
        for (what, n) in dropped {
            metrics.count(
                host,
                "llmgw_translate_dropped_total",
                &[try_labels[0], try_labels[1], ("what", what)],
                *n,
            );
        }
        let now = host.now_ms();
        metrics.observe(
            host,
            "llmgw_request_duration_ms",
            &try_labels,
            now.saturating_sub(self.started_ms),
        );
        if let (Some(first), Some(200..=299)) = (self.first_byte_ms, self.status) {
            metrics.observe(
                host,
                "llmgw_time_to_first_token_ms",
                &try_labels,
                first.saturating_sub(self.started_ms),
            );
        }
        if let Some(usage) = usage {
            let consumer = self.consumer.as_deref().unwrap_or(NONE);
            let team = self.team.as_deref().unwrap_or(NONE);
            if let Some(cost) = self.cost_nanos(Some(usage)) {
                metrics.count(
                    host,
                    "llmgw_cost_usd_nanos_total",
                    &[
                        try_labels[0],
                        try_labels[1],
                        ("consumer", consumer),
                        ("team", team),
                    ],
                    cost,
                );
            }
            // Cache reads and writes are part of the input tokens; counted apart only when the
            // provider reported some (a label set is defined on first use).
            for (token_type, tokens) in [
                ("input", usage.prompt_tokens),
                ("output", usage.completion_tokens),
                ("cache_read", usage.cached_tokens()),
                ("cache_write", usage.cache_write_tokens()),
            ] {
                if tokens == 0 && token_type.starts_with("cache") {
                    continue;
                }
                metrics.count(
                    host,
                    "llmgw_tokens_total",
                    &[
                        try_labels[0],
                        try_labels[1],
                        ("consumer", consumer),
                        ("team", team),
                        ("token_type", token_type),
                    ],
                    tokens,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn error_classes() {
        assert_eq!(error_class(Some(200), false), None);
        assert_eq!(error_class(Some(200), true), Some("stream_error"));
        assert_eq!(error_class(Some(429), false), Some("rate_limited"));
        assert_eq!(error_class(Some(503), false), Some("server_error"));
        assert_eq!(error_class(Some(400), false), Some("client_error"));
        assert_eq!(error_class(None, false), Some("no_response"));
    }
}
