#![allow(clippy::unwrap_used)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::collections::HashMap;

use super::store::Counter;
use super::*;
use crate::testing::FakeHost;

/// 2026-06-01T00:00:43.000Z: 17 s before the minute ends.
const NOW_MS: u64 = 1_780_272_043_000;
const WINDOW_START: u64 = 1_780_272_000_000;

fn no_env(_: &str) -> Option<String> {
    None
}

fn configure(json: &str) -> Result<RateLimitRoot, ConfigError> {
    RateLimitRoot::configure(json.as_bytes(), &no_env)
}

fn root() -> RateLimitRoot {
    configure(
        r#"{"default": {"requests_per_minute": 3},
            "teams": {"ml": {"requests_per_minute": 5}},
            "consumers": {"alice": {"requests_per_minute": 7}}}"#,
    )
    .unwrap()
}

/// Shared data that outlives each request, like Envoy's.
#[derive(Default)]
struct Envoy {
    shared: HashMap<String, (Vec<u8>, u32)>,
}

struct Outcome {
    flow: Flow,
    host: FakeHost,
}

impl Outcome {
    fn status(&self) -> Option<u16> {
        self.host.local_response.as_ref().map(|r| r.status)
    }
}

impl Envoy {
    /// One request (and its response) through `root`'s filter.
    fn request(&mut self, root: &RateLimitRoot, host: FakeHost, now_ms: u64) -> Outcome {
        let mut host = host.with_now_ms(now_ms);
        host.shared = std::mem::take(&mut self.shared);
        let mut filter = root.new_filter();
        let flow = filter.on_request_headers(&mut host, true);
        if flow == Flow::Continue {
            host = host.with_response_header(":status", "200");
        }
        filter.on_response_headers(&mut host, false);
        self.shared = std::mem::take(&mut host.shared);
        Outcome { flow, host }
    }
}

fn consumer(name: &str) -> FakeHost {
    FakeHost::new().with_request_header(headers::CONSUMER, name)
}

#[test]
fn n_pass_then_429_with_headers() {
    let root = root();
    let mut envoy = Envoy::default();
    for i in 1..=3u64 {
        let out = envoy.request(&root, consumer("bob"), NOW_MS);
        assert_eq!(out.flow, Flow::Continue, "request {i}");
        assert_eq!(out.host.resp("x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(
            out.host.resp("x-ratelimit-remaining-requests"),
            Some((3 - i).to_string().as_str())
        );
        assert_eq!(out.host.resp("x-ratelimit-reset-requests"), Some("17s"));
    }
    let out = envoy.request(&root, consumer("bob"), NOW_MS + 250);
    assert_eq!(out.flow, Flow::Pause);
    let reply = out.host.local_response.clone().unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("17"));
    assert_eq!(reply.header("x-ratelimit-limit-requests"), Some("3"));
    assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(reply.header("x-ratelimit-reset-requests"), Some("16.75s"));
    let body = reply.json();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        body["error"]["message"],
        "Rate limit reached for consumer bob: 3 requests per minute. Retry after 17s."
    );
    // Envoy runs the local reply through on_response_headers too: same values.
    assert_eq!(out.host.resp("x-ratelimit-remaining-requests"), Some("0"));
}

#[test]
fn rejected_requests_do_not_consume_budget() {
    let root = root();
    let mut envoy = Envoy::default();
    for _ in 0..10 {
        envoy.request(&root, consumer("bob"), NOW_MS);
    }
    let (bytes, _) = envoy.shared.get("llmgw.rl.v1.requests.minute.bob").unwrap();
    assert_eq!(
        Counter::decode(bytes),
        Some(Counter {
            window_start: WINDOW_START,
            count: 3
        })
    );
}

#[test]
fn window_rollover_starts_fresh() {
    let root = root();
    let mut envoy = Envoy::default();
    for _ in 0..3 {
        envoy.request(&root, consumer("bob"), NOW_MS);
    }
    assert_eq!(
        envoy
            .request(&root, consumer("bob"), WINDOW_START + 59_999)
            .status(),
        Some(429)
    );
    let out = envoy.request(&root, consumer("bob"), WINDOW_START + 60_000);
    assert_eq!(out.flow, Flow::Continue);
    assert_eq!(out.host.resp("x-ratelimit-remaining-requests"), Some("2"));
    assert_eq!(out.host.resp("x-ratelimit-reset-requests"), Some("1m0s"));
}

#[test]
fn precedence_consumer_then_team_then_default() {
    let root = root();
    let allowed = |host: fn() -> FakeHost| {
        let mut envoy = Envoy::default();
        (0..20)
            .take_while(|_| envoy.request(&root, host(), NOW_MS).flow == Flow::Continue)
            .count()
    };
    // alice has her own limit, even in team ml.
    assert_eq!(
        allowed(|| consumer("alice").with_request_header(headers::TEAM, "ml")),
        7
    );
    assert_eq!(
        allowed(|| consumer("carol").with_request_header(headers::TEAM, "ml")),
        5
    );
    assert_eq!(
        allowed(|| consumer("dave").with_request_header(headers::TEAM, "ops")),
        3
    );
    assert_eq!(allowed(|| consumer("erin")), 3);
    // No consumer header: "anonymous", still under default.
    assert_eq!(allowed(FakeHost::new), 3);
}

#[test]
fn team_limit_is_per_member() {
    let root = root();
    let mut envoy = Envoy::default();
    for name in ["carol", "dan"] {
        for _ in 0..5 {
            let host = consumer(name).with_request_header(headers::TEAM, "ml");
            assert_eq!(envoy.request(&root, host, NOW_MS).flow, Flow::Continue);
        }
    }
}

#[test]
fn consumers_are_counted_separately() {
    let root = root();
    let mut envoy = Envoy::default();
    for _ in 0..3 {
        envoy.request(&root, consumer("bob"), NOW_MS);
    }
    assert_eq!(
        envoy.request(&root, consumer("bob"), NOW_MS).status(),
        Some(429)
    );
    assert_eq!(
        envoy.request(&root, consumer("erin"), NOW_MS).status(),
        None
    );
    assert_eq!(envoy.request(&root, FakeHost::new(), NOW_MS).status(), None);
}

#[test]
fn invalid_consumer_header_counts_as_anonymous() {
    let root = root();
    let mut envoy = Envoy::default();
    envoy.request(&root, consumer("a b/../c"), NOW_MS);
    assert_eq!(envoy.shared.len(), 1);
    assert!(envoy
        .shared
        .contains_key("llmgw.rl.v1.requests.minute.anonymous"));
}

#[test]
fn unlimited_consumers_get_no_headers() {
    let root = configure(r#"{"consumers": {"alice": {"requests_per_minute": 1}}}"#).unwrap();
    let mut envoy = Envoy::default();
    for _ in 0..5 {
        let out = envoy.request(&root, consumer("bob"), NOW_MS);
        assert_eq!(out.flow, Flow::Continue);
        assert!(out.host.resp("x-ratelimit-limit-requests").is_none());
    }
    assert!(envoy.shared.is_empty());
    let root = configure("{}").unwrap();
    assert_eq!(
        envoy.request(&root, consumer("alice"), NOW_MS).flow,
        Flow::Continue
    );
}

#[test]
fn cas_conflicts_are_retried() {
    let root = root();
    let mut envoy = Envoy::default();
    envoy.request(&root, consumer("bob"), NOW_MS);
    let mut host = consumer("bob");
    host.cas_conflicts = 3;
    let out = envoy.request(&root, host, NOW_MS);
    assert_eq!(out.flow, Flow::Continue);
    assert_eq!(out.host.cas_conflicts, 0);
    assert_eq!(out.host.resp("x-ratelimit-remaining-requests"), Some("1"));
}

#[test]
fn persistent_contention_fails_open() {
    let root = root();
    let mut envoy = Envoy::default();
    for _ in 0..3 {
        envoy.request(&root, consumer("bob"), NOW_MS);
    }
    // Over the limit, but the read says so before any write: still refused.
    let mut host = consumer("bob");
    host.cas_conflicts = u32::MAX;
    assert_eq!(envoy.request(&root, host, NOW_MS).status(), Some(429));
    // Another consumer that cannot get a write in: let through, no headers.
    envoy.request(&root, consumer("erin"), NOW_MS);
    let mut host = consumer("erin");
    host.cas_conflicts = u32::MAX;
    let out = envoy.request(&root, host, NOW_MS);
    assert_eq!(out.flow, Flow::Continue);
    assert!(out.host.resp("x-ratelimit-limit-requests").is_none());
}

#[test]
fn corrupt_stored_value_is_treated_as_empty() {
    let root = root();
    let mut envoy = Envoy::default();
    envoy.shared.insert(
        "llmgw.rl.v1.requests.minute.bob".to_string(),
        (b"\xff\x00garbage".to_vec(), 7),
    );
    let out = envoy.request(&root, consumer("bob"), NOW_MS);
    assert_eq!(out.flow, Flow::Continue);
    assert_eq!(out.host.resp("x-ratelimit-remaining-requests"), Some("2"));
    let (bytes, _) = envoy.shared.get("llmgw.rl.v1.requests.minute.bob").unwrap();
    assert_eq!(bytes.len(), 16);
}

#[test]
fn upstream_ratelimit_headers_are_replaced() {
    let root = root();
    let mut host = consumer("bob")
        .with_now_ms(NOW_MS)
        .with_response_header("x-ratelimit-limit-requests", "10000")
        .with_response_header("x-ratelimit-remaining-requests", "9999");
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, true), Flow::Continue);
    filter.on_response_headers(&mut host, false);
    assert_eq!(host.resp("x-ratelimit-limit-requests"), Some("3"));
    assert_eq!(host.resp("x-ratelimit-remaining-requests"), Some("2"));
    assert_eq!(
        host.response_headers
            .iter()
            .filter(|(n, _)| n == "x-ratelimit-limit-requests")
            .count(),
        1
    );
    assert_eq!(filter.usage().len(), 1);
}

// ---- configuration ----

#[test]
fn zero_limits_are_refused_with_path() {
    let err = configure(r#"{"teams": {"ml": {"requests_per_minute": 0}}}"#).unwrap_err();
    assert_eq!(err.path, "teams.ml.requests_per_minute");
    assert!(err.reason.contains("at least 1"), "{}", err.reason);
    let err = configure(r#"{"default": {"requests_per_minute": 0}}"#).unwrap_err();
    assert_eq!(err.path, "default.requests_per_minute");
    let err = configure(r#"{"consumers": {"alice": {"requests_per_minute": 0}}}"#).unwrap_err();
    assert_eq!(err.path, "consumers.alice.requests_per_minute");
}

#[test]
fn malformed_config_is_refused_with_path() {
    let err = configure(r#"{"teams": {"ml": {"requests_per_minute": -1}}}"#).unwrap_err();
    assert_eq!(err.path, "teams.ml.requests_per_minute");
    let err = configure(r#"{"teams": {"ml": {"requests_per_hour": 5}}}"#).unwrap_err();
    assert_eq!(err.path, "teams.ml.requests_per_hour");
    let err = configure(r#"{"defaults": {}}"#).unwrap_err();
    assert_eq!(err.path, "defaults");
    let err = configure(r#"{"consumers": {"alice": {}}}"#).unwrap_err();
    assert_eq!(err.path, "consumers.alice");
    let err = configure(r#"{"consumers": {"al ice": {"requests_per_minute": 1}}}"#).unwrap_err();
    assert_eq!(err.path, "consumers.al ice");
}

#[test]
fn policy_resolution() {
    let root = root();
    let policy = root.policy();
    let max = |consumer: &str, team: Option<&str>| {
        policy
            .limits_for(consumer, team)
            .iter()
            .map(|l| l.max)
            .collect::<Vec<_>>()
    };
    assert_eq!(max("alice", Some("ml")), vec![7]);
    assert_eq!(max("alice", None), vec![7]);
    assert_eq!(max("zed", Some("ml")), vec![5]);
    assert_eq!(max("zed", Some("other")), vec![3]);
    assert_eq!(max(ANONYMOUS, None), vec![3]);
}
