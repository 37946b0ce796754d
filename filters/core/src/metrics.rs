//! Labelled metrics in Envoy's stats, the way Istio does it.
//!
//! proxy-wasm metrics have a name and no labels, so the labels go into the name, in front:
//! `model=.=gpt-4o;.;provider=.=openai;.;llmgw_requests_total`. The bootstrap's
//! `stats_config.stats_tags` (one regex per label, in `envoy/gateway.yaml`) cuts each
//! `<label>=.=<value>;.;` out of the name into a tag, so `/stats/prometheus` shows
//! `llmgw_requests_total{model="gpt-4o",provider="openai"}`. Labels go first so that removing
//! them leaves no stray separator.
//!
//! A metric is defined once per name and label values, and its id cached for the worker: label
//! values come from config or small fixed sets (never raw client input), so the cache is
//! bounded. Values are sanitized anyway: anything outside `[A-Za-z0-9._:/-]` becomes `_`, so a
//! value can never end a tag early.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::host::{Host, MetricKind};

/// The label names llmgw uses; each has a `stats_tags` entry in `envoy/gateway.yaml`.
pub const LABELS: [&str; 12] = [
    "model",
    "requested",
    "provider",
    "consumer",
    "team",
    "status",
    "error",
    "token_type",
    "reason",
    "limit",
    "budget",
    "key",
];

/// The Envoy stat name carrying `labels` for metric `name`.
pub fn stat_name(name: &str, labels: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(name.len() + labels.len() * 24);
    for (label, value) in labels {
        out.push_str(label);
        out.push_str("=.=");
        for c in value.chars() {
            let keep = c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-');
            out.push(if keep { c } else { '_' });
        }
        out.push_str(";.;");
    }
    out.push_str(name);
    out
}

/// Metric-label settings in translate's and router's config (`"metrics"`).
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

/// Metric ids by stat name, shared by every request of one worker's filter.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    ids: Rc<RefCell<HashMap<String, Option<u32>>>>,
}

impl Metrics {
    fn id(
        &self,
        host: &mut dyn Host,
        kind: MetricKind,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Option<u32> {
        let stat = stat_name(name, labels);
        if let Some(id) = self.ids.borrow().get(&stat) {
            return *id;
        }
        let id = host.define_metric(kind, &stat);
        self.ids.borrow_mut().insert(stat, id);
        id
    }

    /// Add `delta` to a counter.
    pub fn count(&self, host: &mut dyn Host, name: &str, labels: &[(&str, &str)], delta: u64) {
        if delta == 0 {
            return;
        }
        if let Some(id) = self.id(host, MetricKind::Counter, name, labels) {
            host.increment_metric(id, i64::try_from(delta).unwrap_or(i64::MAX));
        }
    }

    /// Set a gauge.
    pub fn set(&self, host: &mut dyn Host, name: &str, labels: &[(&str, &str)], value: u64) {
        if let Some(id) = self.id(host, MetricKind::Gauge, name, labels) {
            host.record_metric(id, value);
        }
    }

    /// Record one sample of a histogram.
    pub fn observe(&self, host: &mut dyn Host, name: &str, labels: &[(&str, &str)], value: u64) {
        if let Some(id) = self.id(host, MetricKind::Histogram, name, labels) {
            host.record_metric(id, value);
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn labels_go_first_in_istio_form() {
        assert_eq!(
            stat_name(
                "llmgw_requests_total",
                &[("model", "gpt-4.1"), ("provider", "openai")]
            ),
            "model=.=gpt-4.1;.;provider=.=openai;.;llmgw_requests_total"
        );
    }

    #[test]
    fn values_cannot_break_out_of_their_tag() {
        assert_eq!(
            stat_name("m", &[("model", "a;.;b=.=c d")]),
            "model=.=a_._b_._c_d;.;m"
        );
    }

    #[test]
    fn metrics_are_defined_once_and_counted() {
        let metrics = Metrics::default();
        let mut host = FakeHost::new();
        metrics.count(&mut host, "c", &[("model", "x")], 2);
        metrics.clone().count(&mut host, "c", &[("model", "x")], 3);
        metrics.count(&mut host, "c", &[("model", "y")], 1);
        metrics.count(&mut host, "c", &[("model", "z")], 0);
        metrics.observe(&mut host, "h", &[], 7);
        metrics.observe(&mut host, "h", &[], 9);
        assert_eq!(host.counter("model=.=x;.;c"), Some(5));
        assert_eq!(host.counter("model=.=y;.;c"), Some(1));
        assert_eq!(host.counter("model=.=z;.;c"), None);
        assert_eq!(host.histogram("h"), vec![7, 9]);
        assert_eq!(host.metrics_defined, 3);
    }
}
