//! What one try cost and how it went, as labelled Envoy metrics (see [`crate::metrics`]).
//!
//! translate records them because it is the one filter that knows, per try, which provider
//! answered, with which model, and how many tokens that took. Names follow Prometheus
//! conventions; each maps to an OpenTelemetry GenAI semantic convention (README):
//!
//! | metric | kind | labels | OpenTelemetry GenAI |
//! |---|---|---|---|
//! | `llmgw_upstream_requests_total` | counter | provider, model, status | `gen_ai.server.request.duration` count |
//! | `llmgw_upstream_errors_total` | counter | provider, model, error | `error.type` |
//! | `llmgw_tokens_total` | counter | provider, model, consumer, team, token_type | `gen_ai.client.token.usage` (`gen_ai.token.type`) |
//! | `llmgw_request_duration_ms` | histogram | provider, model | `gen_ai.server.request.duration` |
//! | `llmgw_time_to_first_token_ms` | histogram | provider, model | `gen_ai.server.time_to_first_token` |

use crate::host::Host;
use crate::metrics::Metrics;

use super::first_try::FirstTry;
use super::Usage;

/// Label value when a fact is unknown (no team, no model header).
const NONE: &str = "-";

/// Metric-label settings from translate's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Label token counts with consumer and team (bounded by auth's config). Turn off when
    /// there are many consumers.
    #[serde(default = "yes")]
    pub consumer_labels: bool,
}

fn yes() -> bool {
    true
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            consumer_labels: true,
        }
    }
}

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

/// One try's measurements, reported once when the try ends.
#[derive(Debug, Default)]
pub struct TryTelemetry {
    started_ms: u64,
    first_byte_ms: Option<u64>,
    status: Option<u16>,
    consumer: Option<String>,
    team: Option<String>,
    reported: bool,
}

impl TryTelemetry {
    /// Start timing; read auth's consumer and team before translate strips the headers.
    /// `first` holds them for every try: a retry sees the headers as the first try left them.
    pub fn start(host: &dyn Host, config: MetricsConfig, first: &FirstTry) -> Self {
        let (consumer, team) = if config.consumer_labels {
            (first.consumer.clone(), first.team.clone())
        } else {
            (None, None)
        };
        Self {
            started_ms: host.now_ms(),
            consumer,
            team,
            ..Self::default()
        }
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
        usage: Option<Usage>,
        stream_failed: bool,
    ) {
        if self.reported {
            return;
        }
        self.reported = true;
        let model = model.unwrap_or(NONE);
        let status = self.status.map(|s| s.to_string());
        let status = status.as_deref().unwrap_or("none");
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
            for (token_type, tokens) in [
                ("input", usage.prompt_tokens),
                ("output", usage.completion_tokens),
            ] {
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
