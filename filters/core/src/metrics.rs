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
use std::hash::{BuildHasherDefault, Hasher};
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

/// Every metric llmgw defines: the filter that defines it, its name, kind and label names in the
/// order [`stat_name`] writes them. A host whose metrics take labels apart from the name
/// (Envoy's dynamic modules define each metric once per configuration, with label names, before
/// any request) defines a filter's families up front; `FakeHost` refuses any other metric, so a
/// new one fails the core tests until it is listed here.
pub const FAMILIES: [Family; 18] = [
    family(
        "llmgw.auth",
        "llmgw_auth_failures_total",
        MetricKind::Counter,
        &["reason"],
    ),
    family(
        "llmgw.router",
        "llmgw_requests_total",
        MetricKind::Counter,
        &["model", "provider", "consumer", "team", "status"],
    ),
    family(
        "llmgw.router",
        "llmgw_router_panic_total",
        MetricKind::Counter,
        &["model"],
    ),
    family(
        "llmgw.ratelimit",
        "llmgw_ratelimit_refused_total",
        MetricKind::Counter,
        &["limit"],
    ),
    family(
        "llmgw.ratelimit",
        "llmgw_ratelimit_rls_failures_total",
        MetricKind::Counter,
        &[],
    ),
    family(
        "llmgw.ratelimit",
        "llmgw_ratelimit_store_failures_total",
        MetricKind::Counter,
        &[],
    ),
    family(
        "llmgw.ratelimit",
        "llmgw_ratelimit_usage_missing_total",
        MetricKind::Counter,
        &[],
    ),
    family(
        "llmgw.translate",
        "llmgw_upstream_requests_total",
        MetricKind::Counter,
        &["provider", "model", "status"],
    ),
    family(
        "llmgw.translate",
        "llmgw_upstream_errors_total",
        MetricKind::Counter,
        &["provider", "model", "error"],
    ),
    family(
        "llmgw.translate",
        "llmgw_translate_dropped_total",
        MetricKind::Counter,
        &["provider", "model", "what"],
    ),
    family(
        "llmgw.translate",
        "llmgw_request_duration_ms",
        MetricKind::Histogram,
        &["provider", "model"],
    ),
    family(
        "llmgw.translate",
        "llmgw_time_to_first_token_ms",
        MetricKind::Histogram,
        &["provider", "model"],
    ),
    family(
        "llmgw.translate",
        "llmgw_cost_usd_nanos_total",
        MetricKind::Counter,
        &["provider", "model", "consumer", "team"],
    ),
    family(
        "llmgw.translate",
        "llmgw_tokens_total",
        MetricKind::Counter,
        &["provider", "model", "consumer", "team", "token_type"],
    ),
    family(
        "llmgw.ratelimit",
        "llmgw_budget_warnings_total",
        MetricKind::Counter,
        &["budget"],
    ),
    family(
        "llmgw.ratelimit",
        "llmgw_budget_unpriced_total",
        MetricKind::Counter,
        &["budget"],
    ),
    family(
        "llmgw.ratelimit",
        "llmgw_budget_spent_usd_micros",
        MetricKind::Gauge,
        &["budget", "key"],
    ),
    family(
        "llmgw.ratelimit",
        "llmgw_budget_limit_usd_micros",
        MetricKind::Gauge,
        &["budget", "key"],
    ),
];

/// One entry of [`FAMILIES`].
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// The filter that counts it (its `FilterRoot::NAME`).
    pub filter: &'static str,
    pub name: &'static str,
    pub kind: MetricKind,
    pub labels: &'static [&'static str],
}

const fn family(
    filter: &'static str,
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
) -> Family {
    Family {
        filter,
        name,
        kind,
        labels,
    }
}

/// A stat name taken apart again: the metric's name and its `(label, value)` pairs, in order.
/// `None` for a name [`stat_name`] did not make.
pub fn parse_stat_name(stat: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let mut labels = Vec::new();
    let mut rest = stat;
    while let Some((pair, tail)) = rest.split_once(";.;") {
        let (label, value) = pair.split_once("=.=")?;
        labels.push((label, value));
        rest = tail;
    }
    (!rest.contains("=.=")).then_some((rest, labels))
}

/// The [`FAMILIES`] entry of a stat name: its index and label values.
pub fn family_of(kind: MetricKind, stat: &str) -> Option<(usize, Vec<&str>)> {
    let (name, labels) = parse_stat_name(stat)?;
    let index = FAMILIES.iter().position(|family| {
        family.name == name
            && family.kind == kind
            && family.labels.len() == labels.len()
            && family.labels.iter().zip(&labels).all(|(n, (l, _))| n == l)
    })?;
    Some((index, labels.into_iter().map(|(_, value)| value).collect()))
}

/// The Envoy stat name carrying `labels` for metric `name`.
pub fn stat_name(name: &str, labels: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(name.len() + labels.len() * 24);
    write_stat_name(&mut out, name, labels);
    out
}

/// [`stat_name`] into `out` (cleared first): a warm request looks its metrics up without
/// allocating a name.
fn write_stat_name(out: &mut String, name: &str, labels: &[(&str, &str)]) {
    out.clear();
    for (label, value) in labels {
        out.push_str(label);
        out.push_str("=.=");
        if value.bytes().all(keeps) {
            out.push_str(value);
        } else {
            for c in value.chars() {
                out.push(if c.is_ascii() && keeps(c as u8) {
                    c
                } else {
                    '_'
                });
            }
        }
        out.push_str(";.;");
    }
    out.push_str(name);
}

/// A byte a label value keeps as it is (anything else becomes `_`).
fn keeps(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-')
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
    cache: Rc<RefCell<IdCache>>,
}

#[derive(Debug, Default)]
struct IdCache {
    ids: HashMap<String, Option<u32>, BuildHasherDefault<FxHasher>>,
    /// The stat name being looked up, reused from one lookup to the next.
    scratch: String,
    /// Each metric's last lookup, by name: a request's updates mostly repeat the previous
    /// request's labels, and comparing a few short values costs a fraction of writing and
    /// hashing the stat name (~670 instructions an update natively, 7 a request).
    last: Vec<LastLookup>,
}

/// A metric's last lookup: its name, label values and id. Its strings are rewritten in
/// place on a miss, so a warm cache does not allocate.
#[derive(Debug, Default)]
struct LastLookup {
    name: String,
    labels: Vec<(String, String)>,
    id: Option<u32>,
    /// `labels` and `id` hold a lookup (not a new entry's defaults).
    known: bool,
}

impl LastLookup {
    fn is(&self, labels: &[(&str, &str)]) -> bool {
        self.labels.len() == labels.len()
            && self
                .labels
                .iter()
                .zip(labels)
                .all(|((l, v), (label, value))| l == label && v == value)
    }

    fn remember(&mut self, labels: &[(&str, &str)], id: Option<u32>) {
        self.labels.truncate(labels.len());
        for (i, (label, value)) in labels.iter().enumerate() {
            match self.labels.get_mut(i) {
                Some((l, v)) => {
                    l.clear();
                    l.push_str(label);
                    v.clear();
                    v.push_str(value);
                }
                None => self.labels.push((label.to_string(), value.to_string())),
            }
        }
        self.id = id;
        self.known = true;
    }
}

impl Metrics {
    fn id(
        &self,
        host: &mut dyn Host,
        kind: MetricKind,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Option<u32> {
        let stat = {
            let mut cache = self.cache.borrow_mut();
            let IdCache { ids, scratch, last } = &mut *cache;
            let at = match last.iter().position(|l| l.name == name) {
                Some(at) => at,
                None => {
                    last.push(LastLookup {
                        name: name.to_string(),
                        ..LastLookup::default()
                    });
                    last.len() - 1
                }
            };
            if let Some(memo) = last.get(at).filter(|m| m.known && m.is(labels)) {
                return memo.id;
            }
            write_stat_name(scratch, name, labels);
            if let Some(&id) = ids.get(scratch.as_str()) {
                if let Some(memo) = last.get_mut(at) {
                    memo.remember(labels, id);
                }
                return id;
            }
            scratch.clone()
        };
        let id = host.define_metric(kind, &stat);
        let mut cache = self.cache.borrow_mut();
        cache.ids.insert(stat, id);
        if let Some(last) = cache.last.iter_mut().find(|l| l.name == name) {
            last.remember(labels, id);
        }
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

/// Firefox's and rustc's "Fx" hash, a word at a time: the id cache is looked up several times
/// per request, and its keys (names and label values from the configuration and small fixed
/// sets, never raw client input) need no defence against flooding, so SipHash's cost buys
/// nothing here.
#[derive(Debug, Default)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut le = [0u8; 8];
            le.copy_from_slice(word);
            self.add(u64::from_le_bytes(le));
        }
        let mut last = [0u8; 8];
        let rest = words.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(last));
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
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
    fn every_family_names_a_filter() {
        use crate::filter::FilterRoot;
        let filters = [
            crate::auth::AuthRoot::NAME,
            crate::router::RouterRoot::NAME,
            crate::ratelimit::RateLimitRoot::NAME,
            crate::translate::TranslateRoot::NAME,
        ];
        for family in FAMILIES {
            assert!(filters.contains(&family.filter), "{}", family.name);
        }
    }

    #[test]
    fn stat_names_parse_back_into_their_family() {
        let stat = stat_name("llmgw_router_panic_total", &[("model", "gpt-4o")]);
        assert_eq!(
            parse_stat_name(&stat),
            Some(("llmgw_router_panic_total", vec![("model", "gpt-4o")]))
        );
        assert_eq!(
            family_of(MetricKind::Counter, &stat),
            Some((2, vec!["gpt-4o"]))
        );
        assert_eq!(family_of(MetricKind::Histogram, &stat), None);
        assert_eq!(
            family_of(MetricKind::Counter, "llmgw_ratelimit_rls_failures_total"),
            Some((4, vec![]))
        );
        // Labels out of order, or unknown, are no family.
        let swapped = stat_name("llmgw_router_panic_total", &[("provider", "x")]);
        assert_eq!(family_of(MetricKind::Counter, &swapped), None);
        assert_eq!(parse_stat_name("a=.=b"), None);
    }

    #[test]
    fn values_cannot_break_out_of_their_tag() {
        assert_eq!(
            stat_name("m", &[("model", "a;.;b=.=c d")]),
            "model=.=a_._b_._c_d;.;m"
        );
        // One `_` per character, not per byte, past ASCII.
        assert_eq!(stat_name("m", &[("team", "é-ü")]), "team=.=_-_;.;m");
    }

    #[test]
    fn metrics_are_defined_once_and_counted() {
        let metrics = Metrics::default();
        let mut host = FakeHost::new();
        let c = "llmgw_router_panic_total";
        let h = "llmgw_request_duration_ms";
        let labels = [("provider", "openai"), ("model", "m")];
        metrics.count(&mut host, c, &[("model", "x")], 2);
        metrics.clone().count(&mut host, c, &[("model", "x")], 3);
        metrics.count(&mut host, c, &[("model", "y")], 1);
        metrics.count(&mut host, c, &[("model", "z")], 0);
        metrics.observe(&mut host, h, &labels, 7);
        metrics.observe(&mut host, h, &labels, 9);
        assert_eq!(host.counter(&format!("model=.=x;.;{c}")), Some(5));
        assert_eq!(host.counter(&format!("model=.=y;.;{c}")), Some(1));
        assert_eq!(host.counter(&format!("model=.=z;.;{c}")), None);
        assert_eq!(host.histogram(&stat_name(h, &labels)), vec![7, 9]);
        assert_eq!(host.metrics_defined, 3);
    }

    #[test]
    fn a_metrics_last_labels_are_remembered_not_confused() {
        let metrics = Metrics::default();
        let mut host = FakeHost::new();
        let c = "llmgw_router_panic_total";
        let plain = "llmgw_ratelimit_rls_failures_total";
        // A metric without labels is defined at its first update like any other.
        metrics.count(&mut host, plain, &[], 1);
        metrics.count(&mut host, plain, &[], 1);
        assert_eq!(host.counter(plain), Some(2));
        // Alternating values each reach their own series, from the memo or the map.
        for (model, n) in [("a", 1), ("b", 10), ("a", 100), ("a", 1000), ("b", 10000)] {
            metrics.count(&mut host, c, &[("model", model)], n);
        }
        assert_eq!(host.counter(&format!("model=.=a;.;{c}")), Some(1101));
        assert_eq!(host.counter(&format!("model=.=b;.;{c}")), Some(10010));
        // Values that sanitize alike share a series, as their stat name does.
        metrics.count(&mut host, c, &[("model", "a b")], 1);
        metrics.count(&mut host, c, &[("model", "a;b")], 2);
        assert_eq!(host.counter(&format!("model=.=a_b;.;{c}")), Some(3));
        assert_eq!(host.metrics_defined, 4);
    }
}
