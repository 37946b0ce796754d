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
    FakeHost::new().with_consumer(name)
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
        "Rate limit reached for consumer bob on default.requests_per_minute: 3 requests per minute. Retry after 17s."
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
    assert_eq!(allowed(|| consumer("alice").with_team("ml")), 7);
    assert_eq!(allowed(|| consumer("carol").with_team("ml")), 5);
    assert_eq!(allowed(|| consumer("dave").with_team("ops")), 3);
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
            let host = consumer(name).with_team("ml");
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
fn a_consumer_that_is_no_valid_id_counts_as_anonymous() {
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
    let err = configure(r#"{"teams": {"ml": {"requests_per_week": 5}}}"#).unwrap_err();
    assert_eq!(err.path, "teams.ml.requests_per_week");
    assert!(err.reason.contains("<kind>_per_<window>"), "{}", err.reason);
    let err = configure(r#"{"teams": {"ml": {"tokens_per_minute": 5}}}"#).unwrap_err();
    assert_eq!(err.path, "teams.ml.tokens_per_minute");
    let err = configure(r#"{"default": {"total_tokens_per_hour": "lots"}}"#).unwrap_err();
    assert_eq!(err.path, "default.total_tokens_per_hour");
    let err =
        configure(r#"{"limits": [{"name": "t", "by": ["tenant"], "requests_per_second": 1}]}"#)
            .unwrap_err();
    assert_eq!(err.path, "limits[0].by[0]");
    let err = configure(r#"{"limits": [{"name": "t", "by": ["team"]}]}"#).unwrap_err();
    assert_eq!(err.path, "limits[0]");
    let err = configure(r#"{"limits": [{"name": "t", "requests_per_day": "x"}]}"#).unwrap_err();
    assert_eq!(err.path, "limits[0].requests_per_day");
    let err = configure(r#"{"limits": [{"requests_per_day": 1}]}"#).unwrap_err();
    assert_eq!(err.path, "limits[0]");
    assert!(
        err.reason.contains("missing field `name`"),
        "{}",
        err.reason
    );
    let err = configure(
        r#"{"limits": [{"name": "t", "requests_per_day": 1}, {"name": "t", "requests_per_day": 2}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.path, "limits[1].name");
    let err = configure(r#"{"limits": [{"name": "t", "models": [], "requests_per_day": 1}]}"#)
        .unwrap_err();
    assert_eq!(err.path, "limits[0].models");
    let err = configure(r#"{"default_max_output_tokens": 0}"#).unwrap_err();
    assert_eq!(err.path, "default_max_output_tokens");
    let err = configure(r#"{"global": {"cluster": "rls", "timeout_ms": 0}}"#).unwrap_err();
    assert_eq!(err.path, "global.timeout_ms");
    // A name Envoy would parse as a serialized GrpcService (field 13, varint 104) crashes it.
    let err = configure(r#"{"global": {"cluster": "hh"}}"#).unwrap_err();
    assert_eq!(err.path, "global.cluster");
    assert!(err.reason.contains("GrpcService"), "{}", err.reason);
    let err = configure(r#"{"global": {"cluster": "rls", "mode": "x"}}"#).unwrap_err();
    assert_eq!(err.path, "global.mode");
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

// ---- tokens, several limits, reconciliation ----

/// A chat request as router leaves it: estimate facts set.
fn chat(consumer_id: &str, input: u64, max_output: Option<u64>) -> FakeHost {
    consumer(consumer_id)
        .with_upstream_model("gpt-4o")
        .with_provider("openai")
        .with_routed(|r| {
            r.input_tokens_estimate = input;
            r.max_output_tokens = max_output;
        })
}

fn stored(envoy: &Envoy, key: &str) -> u64 {
    envoy
        .shared
        .get(key)
        .and_then(|(b, _)| Counter::decode(b))
        .map_or(0, |c| c.count)
}

impl Envoy {
    /// A request answered by `body` (content type `ct`, status 200) through `root`'s filter.
    fn exchange(
        &mut self,
        root: &RateLimitRoot,
        host: FakeHost,
        ct: &str,
        body: &str,
        step: usize,
    ) -> Outcome {
        let mut host = host.with_now_ms(NOW_MS);
        host.shared = std::mem::take(&mut self.shared);
        let mut filter = root.new_filter();
        let flow = filter.on_request_headers(&mut host, false);
        if flow == Flow::Continue {
            host = host
                .with_response_header(":status", "200")
                .with_response_header("content-type", ct);
            filter.on_response_headers(&mut host, false);
            let pieces: Vec<&[u8]> = body.as_bytes().chunks(step).collect();
            let mut out = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                host.response_body = piece.to_vec();
                filter.on_response_body(&mut host, piece.len(), i + 1 == pieces.len());
                out.extend_from_slice(&host.response_body);
            }
            host.response_body = out;
        }
        self.shared = std::mem::take(&mut host.shared);
        Outcome { flow, host }
    }
}

const TOKENS: &str = r#"{"default": {"requests_per_minute": 100, "total_tokens_per_minute": 1000},
                         "default_max_output_tokens": 200}"#;

#[test]
fn token_limit_is_hit_by_large_requests_before_the_request_limit() {
    let root = configure(TOKENS).unwrap();
    let mut envoy = Envoy::default();
    // Estimate 300 + 100 = 400 each, never answered: 2 fit in 1000, the third does not.
    for _ in 0..2 {
        let out = envoy.request(&root, chat("bob", 300, Some(100)), NOW_MS);
        assert_eq!(out.flow, Flow::Continue);
    }
    let out = envoy.request(&root, chat("bob", 300, Some(100)), NOW_MS);
    let reply = out.host.local_response.unwrap();
    assert_eq!(reply.status, 429);
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("default.total_tokens_per_minute: 1000 tokens per minute"));
    assert_eq!(reply.header("x-ratelimit-limit-tokens"), Some("1000"));
    assert_eq!(reply.header("x-ratelimit-remaining-tokens"), Some("200"));
    assert_eq!(reply.header("x-ratelimit-limit-requests"), Some("100"));
    // The refused request gave its request back: still 2 requests counted.
    assert_eq!(stored(&envoy, "llmgw.rl.v1.requests.minute.bob"), 2);
    assert_eq!(stored(&envoy, "llmgw.rl.v1.total_tokens.minute.bob"), 800);
    // A small one still fits; without max_tokens the default output (200) counts.
    let out = envoy.request(&root, chat("bob", 1, None), NOW_MS);
    assert_eq!(out.status(), Some(429)); // 800 + 201 > 1000
    let out = envoy.request(&root, chat("bob", 1, Some(10)), NOW_MS);
    assert_eq!(out.flow, Flow::Continue);
    assert_eq!(out.host.resp("x-ratelimit-remaining-tokens"), Some("189"));
}

#[test]
fn json_usage_replaces_the_estimate() {
    let root = configure(TOKENS).unwrap();
    let mut envoy = Envoy::default();
    let body =
        r#"{"choices":[],"usage":{"prompt_tokens":250,"completion_tokens":30,"total_tokens":280}}"#;
    let out = envoy.exchange(
        &root,
        chat("bob", 300, Some(400)),
        "application/json",
        body,
        7,
    );
    assert_eq!(out.host.resp("x-ratelimit-remaining-tokens"), Some("300"));
    assert_eq!(out.host.response_body, body.as_bytes());
    assert_eq!(stored(&envoy, "llmgw.rl.v1.total_tokens.minute.bob"), 280);
}

const SSE: &str = concat!(
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":5,\"total_tokens\":25}}\n\n",
    "data: [DONE]\n\n"
);

#[test]
fn forced_stream_usage_is_charged_and_hidden() {
    let root = configure(TOKENS).unwrap();
    let mut envoy = Envoy::default();
    let host = chat("bob", 30, Some(100)).with_stream_usage(false);
    let out = envoy.exchange(&root, host, "text/event-stream", SSE, 3);
    assert!(out.host.forced_usage());
    let body = String::from_utf8(out.host.response_body.clone()).unwrap();
    assert!(!body.contains("prompt_tokens"), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert_eq!(stored(&envoy, "llmgw.rl.v1.total_tokens.minute.bob"), 25);

    let host = chat("carl", 30, Some(100)).with_stream_usage(true);
    let out = envoy.exchange(&root, host, "text/event-stream", SSE, 3);
    assert!(!out.host.forced_usage());
    assert_eq!(out.host.response_body, SSE.as_bytes());
    assert_eq!(stored(&envoy, "llmgw.rl.v1.total_tokens.minute.carl"), 25);
}

#[test]
fn translates_usage_fact_is_charged_and_the_body_never_read() {
    let root = configure(TOKENS).unwrap();
    let mut host = chat("bob", 30, Some(100))
        .with_stream_usage(false)
        .with_now_ms(NOW_MS);
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Continue);
    // translate (upstream, first on the response path) said at the headers that it reports.
    let mut host = host
        .with_response_header(":status", "200")
        .with_response_header("content-type", "text/event-stream")
        .with_fact(&UsageFact::Pending);
    filter.on_response_headers(&mut host, false);
    assert_eq!(host.resp("content-length"), None);
    // A body whose own usage differs: ratelimit must not read it, nor change it.
    let body = SSE.as_bytes().to_vec();
    host.response_body = body.clone();
    let calls = host.host_calls.get();
    assert_eq!(
        filter.on_response_body(&mut host, body.len(), false),
        Flow::Continue
    );
    assert_eq!(
        host.host_calls.get(),
        calls,
        "no host call for a piece of the body"
    );
    assert_eq!(host.response_body, body);
    host.properties.insert(
        vec![crate::facts::USAGE.into()],
        br#"{"prompt_tokens":40,"completion_tokens":2,"total_tokens":42}"#.to_vec(),
    );
    filter.on_response_body(&mut host, 0, true);
    let (bytes, _) = host
        .shared
        .get("llmgw.rl.v1.total_tokens.minute.bob")
        .unwrap();
    assert_eq!(Counter::decode(bytes).unwrap().count, 42);
    // translate saw no usage ("-"): the estimate stays, counted as missing.
    let root = configure(TOKENS).unwrap();
    let mut host = chat("ann", 30, Some(100)).with_now_ms(NOW_MS);
    let mut filter = root.new_filter();
    filter.on_request_headers(&mut host, false);
    let mut host = host
        .with_response_header(":status", "200")
        .with_response_header("content-type", "application/json")
        .with_fact(&UsageFact::Pending);
    filter.on_response_headers(&mut host, false);
    host.response_body = br#"{"usage":{"total_tokens":1}}"#.to_vec();
    let size = host.response_body.len();
    filter.on_response_body(&mut host, size, true);
    assert_eq!(host.counter(metrics::USAGE_MISSING), Some(1));
    let (bytes, _) = host
        .shared
        .get("llmgw.rl.v1.total_tokens.minute.ann")
        .unwrap();
    assert_eq!(Counter::decode(bytes).unwrap().count, 130);
}

#[test]
fn cut_stream_is_charged_its_estimate_and_counted() {
    let root = configure(TOKENS).unwrap();
    let mut envoy = Envoy::default();
    let cut = &SSE[..SSE.find("data: {\"choices\":[]").unwrap()];
    let host = chat("bob", 30, Some(100)).with_stream_usage(false);
    let out = envoy.exchange(&root, host, "text/event-stream", cut, 4);
    assert_eq!(stored(&envoy, "llmgw.rl.v1.total_tokens.minute.bob"), 130);
    assert_eq!(out.host.counter(metrics::USAGE_MISSING), Some(1));

    // Reset mid-stream: no end of stream, only the end of the request. (A new root: metric
    // ids are cached per root, as per Envoy worker, and this is a new fake host.)
    let root = configure(TOKENS).unwrap();
    let mut host = chat("ann", 30, Some(100)).with_now_ms(NOW_MS);
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Continue);
    let mut host = host
        .with_response_header(":status", "200")
        .with_response_header("content-type", "text/event-stream");
    filter.on_response_headers(&mut host, false);
    host.response_body = cut.as_bytes().to_vec();
    filter.on_response_body(&mut host, cut.len(), false);
    filter.on_stream_done(&mut host);
    filter.on_stream_done(&mut host);
    assert_eq!(host.counter(metrics::USAGE_MISSING), Some(1));
    let (bytes, _) = host
        .shared
        .get("llmgw.rl.v1.total_tokens.minute.ann")
        .unwrap();
    assert_eq!(Counter::decode(bytes).unwrap().count, 130);
}

#[test]
fn provider_errors_give_the_token_estimate_back() {
    let root = configure(TOKENS).unwrap();
    let mut host = chat("bob", 300, Some(100)).with_now_ms(NOW_MS);
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Continue);
    let mut host = host
        .with_response_header(":status", "503")
        .with_response_header("content-type", "application/json");
    filter.on_response_headers(&mut host, false);
    let (bytes, _) = host
        .shared
        .get("llmgw.rl.v1.total_tokens.minute.bob")
        .unwrap();
    assert_eq!(Counter::decode(bytes).unwrap().count, 0);
    let (bytes, _) = host.shared.get("llmgw.rl.v1.requests.minute.bob").unwrap();
    assert_eq!(Counter::decode(bytes).unwrap().count, 1);
}

#[test]
fn keyed_limits_share_counters_across_consumers_and_spare_the_others_when_refused() {
    let root = configure(
        r#"{"default": {"requests_per_minute": 100},
            "limits": [
              {"name": "team", "by": ["team"], "requests_per_minute": 3},
              {"name": "gpt4o-in", "by": ["model"], "models": ["gpt-4o"], "input_tokens_per_hour": 1000}]}"#,
    )
    .unwrap();
    let mut envoy = Envoy::default();
    let member = |c: &str| chat(c, 10, Some(1)).with_team("ml");
    for c in ["a", "b", "c"] {
        assert_eq!(envoy.request(&root, member(c), NOW_MS).flow, Flow::Continue);
    }
    let out = envoy.request(&root, member("d"), NOW_MS);
    let reply = out.host.local_response.clone().unwrap();
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("limits.team.requests_per_minute"));
    // d's refused request took nothing from the others.
    assert_eq!(stored(&envoy, "llmgw.rl.v1.requests.minute.d"), 0);
    assert_eq!(
        stored(&envoy, "llmgw.rl.v1.input_tokens.hour.@gpt4o-in:gpt-4o"),
        30
    );
    assert_eq!(stored(&envoy, "llmgw.rl.v1.requests.minute.@team:ml"), 3);
    // No team: the team limit does not apply. Another model: the model limit does not.
    assert_eq!(
        envoy.request(&root, chat("e", 10, Some(1)), NOW_MS).flow,
        Flow::Continue
    );
    let other = consumer("f").with_upstream_model("gpt-4.1");
    assert_eq!(envoy.request(&root, other, NOW_MS).flow, Flow::Continue);
    assert_eq!(
        stored(&envoy, "llmgw.rl.v1.input_tokens.hour.@gpt4o-in:gpt-4o"),
        40
    );
}

#[test]
fn consumer_overrides_apply_per_rate() {
    let root = configure(
        r#"{"default": {"requests_per_minute": 10, "requests_per_day": 100},
            "consumers": {"alice": {"requests_per_minute": 2}}}"#,
    )
    .unwrap();
    let mut limits = root.policy().limits_for("alice", None);
    limits.sort_by_key(|l| l.window);
    let maxes: Vec<(Window, u64)> = limits.iter().map(|l| (l.window, l.max)).collect();
    assert_eq!(maxes, [(Window::Minute, 2), (Window::Day, 100)]);
}

#[test]
fn headers_report_the_tightest_counter_per_trio() {
    let u = |kind, max, used, reset_ms| Usage {
        limit: Limit {
            kind,
            window: Window::Minute,
            max,
        },
        used,
        reset_ms,
    };
    let headers = response_headers(&[
        u(LimitKind::Requests, 100, 10, 5_000),
        u(LimitKind::Requests, 20, 15, 60_000),
        u(LimitKind::InputTokens, 1000, 100, 5_000),
        u(LimitKind::TotalTokens, 5000, 4500, 2_000),
    ]);
    let get = |n: &str| {
        headers
            .iter()
            .find(|(h, _)| *h == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("x-ratelimit-limit-requests"), Some("20"));
    assert_eq!(get("x-ratelimit-remaining-requests"), Some("5"));
    assert_eq!(get("x-ratelimit-reset-requests"), Some("1m0s"));
    assert_eq!(get("x-ratelimit-limit-tokens"), Some("5000"));
    assert_eq!(get("x-ratelimit-remaining-tokens"), Some("500"));
    assert_eq!(get("x-ratelimit-reset-tokens"), Some("2s"));
    assert_eq!(headers.len(), 6);
}

// ---- global mode ----

fn global_root(mode: &str) -> RateLimitRoot {
    configure(&format!(
        r#"{{"default": {{"requests_per_minute": 10, "total_tokens_per_minute": 1000}},
            "global": {{"cluster": "rls", "failure_mode": "{mode}"}}}}"#
    ))
    .unwrap()
}

fn rls_answer(codes: &[(u64, u64)]) -> Vec<u8> {
    // (code, remaining) per descriptor.
    let mut msg = Vec::new();
    let over = codes.iter().any(|(c, _)| *c == 2);
    msg.extend_from_slice(&[0x08, if over { 2 } else { 1 }]);
    for (code, remaining) in codes {
        let mut st = vec![0x08, *code as u8, 0x18];
        proto::put_varint(&mut st, *remaining);
        st.extend_from_slice(&[0x22, 0x02, 0x08, 0x09]); // 9 s until reset
        msg.push(0x12);
        msg.push(st.len() as u8);
        msg.extend_from_slice(&st);
    }
    msg
}

#[test]
fn global_admission_pauses_then_resumes_on_ok() {
    let root = global_root("open");
    let mut host = chat("bob", 300, Some(100)).with_now_ms(NOW_MS);
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    assert_eq!(filter.on_request_body(&mut host, 10, true), Flow::Pause);
    let (cluster, service, method, message) = host.grpc_calls[0].clone();
    assert_eq!(cluster, "rls");
    assert_eq!(service, "envoy.service.ratelimit.v3.RateLimitService");
    assert_eq!(method, "ShouldRateLimit");
    let expected = global::admission(
        "llmgw",
        &root
            .policy()
            .applicable(&identity(host.auth_facts(), &host.routed())),
        &Cost {
            input: 300,
            output: 100,
            usd_micros: 0,
        },
    )
    .encode();
    assert_eq!(message, expected);
    host.grpc_response = rls_answer(&[(1, 7), (1, 600)]);
    let size = host.grpc_response.len();
    filter.on_grpc_response(&mut host, 1, 0, size);
    assert_eq!(host.resumed, 1);
    assert!(host.local_response.is_none());
    let mut host = host.with_response_header(":status", "200");
    filter.on_response_headers(&mut host, false);
    assert_eq!(host.resp("x-ratelimit-remaining-requests"), Some("7"));
    assert_eq!(host.resp("x-ratelimit-remaining-tokens"), Some("600"));
    assert_eq!(host.resp("x-ratelimit-reset-tokens"), Some("9s"));
}

#[test]
fn global_over_limit_is_429_naming_the_limit() {
    let root = global_root("open");
    let mut host = chat("bob", 300, Some(100)).with_now_ms(NOW_MS);
    let mut filter = root.new_filter();
    filter.on_request_headers(&mut host, false);
    host.grpc_response = rls_answer(&[(1, 7), (2, 0)]);
    let size = host.grpc_response.len();
    filter.on_grpc_response(&mut host, 1, 0, size);
    let reply = host.local_response.unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("9"));
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("default.total_tokens_per_minute"));
}

#[test]
fn global_failure_modes() {
    for (mode, status) in [("open", None), ("closed", Some(503))] {
        // The call cannot start.
        let root = global_root(mode);
        let mut host = chat("bob", 3, Some(1)).with_now_ms(NOW_MS);
        host.grpc_unavailable = true;
        let flow = root.new_filter().on_request_headers(&mut host, false);
        assert_eq!(
            host.local_response.as_ref().map(|r| r.status),
            status,
            "{mode}"
        );
        assert_eq!(flow == Flow::Continue, status.is_none());
        // The call fails (timeout: gRPC status 4) or answers garbage.
        for (grpc_status, answer) in [(4u32, vec![]), (0, vec![0x0b])] {
            let root = global_root(mode); // a fresh metric id cache for this fake host
            let mut host = chat("bob", 3, Some(1)).with_now_ms(NOW_MS);
            let mut filter = root.new_filter();
            assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
            host.grpc_response = answer;
            let size = host.grpc_response.len();
            filter.on_grpc_response(&mut host, 1, grpc_status, size);
            match status {
                None => assert_eq!(host.resumed, 1),
                Some(s) => {
                    let reply = host.local_response.clone().unwrap();
                    assert_eq!(reply.status, s);
                    assert_eq!(
                        reply.json()["error"]["code"],
                        "rate_limit_service_unavailable"
                    );
                }
            }
            assert_eq!(host.counter(metrics::RLS_FAILURES), Some(1));
        }
    }
}

#[test]
fn global_reconciliation_sends_tokens_over_the_estimate() {
    let root = global_root("open");
    let mut host = chat("bob", 10, Some(5)).with_now_ms(NOW_MS);
    let mut filter = root.new_filter();
    filter.on_request_headers(&mut host, false);
    host.grpc_response = rls_answer(&[(1, 7), (1, 600)]);
    let size = host.grpc_response.len();
    filter.on_grpc_response(&mut host, 1, 0, size);
    let mut host = host
        .with_response_header(":status", "200")
        .with_response_header("content-type", "application/json");
    filter.on_response_headers(&mut host, false);
    let body = br#"{"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#;
    host.response_body = body.to_vec();
    filter.on_response_body(&mut host, body.len(), true);
    assert_eq!(host.grpc_calls.len(), 2);
    let (_, _, _, message) = &host.grpc_calls[1];
    let applied = root
        .policy()
        .applicable(&identity(host.auth_facts(), &host.routed()));
    let expected = global::reconciliation(
        "llmgw",
        &applied,
        &Cost {
            input: 10,
            output: 5,
            usd_micros: 0,
        },
        &Cost {
            input: 12,
            output: 9,
            usd_micros: 0,
        },
    )
    .unwrap();
    assert_eq!(expected.descriptors.len(), 1);
    assert_eq!(expected.descriptors[0].hits_addend, Some(6));
    assert_eq!(message, &expected.encode());
    // Its answer is ignored.
    filter.on_grpc_response(&mut host, 2, 0, 0);
    assert_eq!(host.resumed, 1);
}

#[test]
fn usage_is_not_forced_without_token_limits() {
    let root = root(); // requests only
    let mut envoy = Envoy::default();
    let host = chat("bob", 30, Some(100)).with_stream_usage(false);
    let out = envoy.exchange(&root, host, "text/event-stream", SSE, 3);
    assert!(!out.host.forced_usage());
    assert_eq!(out.host.response_body, SSE.as_bytes());
}

// ---- the chain: router publishes, ratelimit forces, translate asks the provider ----

// The chain's second provider is translate's Anthropic one.
#[cfg(feature = "anthropic")]
#[test]
fn forced_usage_reaches_the_provider_body_for_every_schema() {
    use crate::translate::TranslateRoot;
    let config = r#"{"providers": [
        {"name": "openai", "schema": "openai", "key_env": "K"},
        {"name": "anthropic", "schema": "anthropic", "key_env": "K"}]}"#;
    let env = |name: &str| (name == "K").then(|| "secret".to_string());
    let translate = TranslateRoot::configure(config.as_bytes(), &env).unwrap();
    let body =
        r#"{"model":"m","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    for (provider, marker, expect_usage) in [
        ("openai", "forced", true),
        ("openai", "none", false),
        ("openai", "client", false),
        ("anthropic", "forced", true),
    ] {
        let mut host = FakeHost::new()
            .with_request_header(":method", "POST")
            .with_request_header(":path", "/v1/chat/completions")
            .with_provider(provider)
            .with_upstream_model("m")
            .with_stream_usage(marker == "client")
            .with_fact(&RateLimitFacts {
                force_usage: marker == "forced",
            })
            .with_request_body(body.as_bytes().to_vec());
        let mut filter = translate.new_filter();
        assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
        let size = host.request_body.len();
        assert_eq!(
            filter.on_request_body(&mut host, size, true),
            Flow::Continue
        );
        let sent: serde_json::Value = serde_json::from_slice(&host.request_body).unwrap();
        assert!(
            !host
                .request_headers
                .iter()
                .any(|(n, _)| n.starts_with("x-llmgw-")),
            "a reserved header leaked"
        );
        if provider == "openai" {
            let asked = sent["stream_options"]["include_usage"] == true;
            assert_eq!(asked, expect_usage, "{provider} {marker}: {sent}");
        } else {
            // Anthropic always reports usage; the body is Anthropic's, without stream_options.
            assert!(sent.get("stream_options").is_none());
        }
        assert_eq!(
            host.req("content-length"),
            Some(host.request_body.len().to_string().as_str())
        );
    }
}

#[test]
fn forced_usage_is_hidden_even_when_shared_data_fails() {
    let root = configure(TOKENS).unwrap();
    let mut host = chat("bob", 30, Some(100))
        .with_now_ms(NOW_MS)
        .with_stream_usage(false);
    host.cas_conflicts = u32::MAX;
    // First writes of new keys are not CAS'd: make the keys exist first.
    for key in [
        "llmgw.rl.v1.requests.minute.bob",
        "llmgw.rl.v1.total_tokens.minute.bob",
    ] {
        host.shared.insert(key.to_string(), (Vec::new(), 1));
    }
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Continue);
    assert!(host.forced_usage());
    let mut host = host
        .with_response_header(":status", "200")
        .with_response_header("content-type", "text/event-stream");
    filter.on_response_headers(&mut host, false);
    host.response_body = SSE.as_bytes().to_vec();
    filter.on_response_body(&mut host, SSE.len(), true);
    let body = String::from_utf8(host.response_body.clone()).unwrap();
    assert!(!body.contains("prompt_tokens"), "{body}");
}

#[test]
fn keyed_limits_take_per_consumer_overrides() {
    let root = configure(
        r#"{"limits": [{"name": "per-model", "by": ["consumer", "model"],
                        "requests_per_minute": 1,
                        "consumers": {"vip": {"requests_per_minute": 3}}}]}"#,
    )
    .unwrap();
    let allowed = |name: &str| {
        let mut envoy = Envoy::default();
        (0..10)
            .take_while(|_| {
                envoy.request(&root, chat(name, 1, Some(1)), NOW_MS).flow == Flow::Continue
            })
            .count()
    };
    assert_eq!(allowed("vip"), 3);
    assert_eq!(allowed("joe"), 1);
    let err = configure(
        r#"{"limits": [{"name": "x", "requests_per_minute": 1, "consumers": {"vip": {}}}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.path, "limits[0].consumers.vip");
}

// ---- budgets ----

/// $0.01 a day for every consumer; a month's budget for team ml.
const BUDGETS: &str = r#"{"limits": [
    {"name": "keys", "by": ["consumer"], "usd_per_day": 0.01,
     "consumers": {"carol": {"usd_per_day": 1}}},
    {"name": "team", "by": ["team"], "usd_per_month": 500}],
  "budget_warning_percent": 50}"#;

/// A request to openai ($0.15 / $0.6 per million) that may fall back to anthropic ($1 / $5).
fn priced(consumer_id: &str, input: u64, max_output: u64, fallback: bool) -> FakeHost {
    chat(consumer_id, input, Some(max_output)).with_routed(|r| {
        r.prices = Some("openai=0.15/0.6,anthropic=1/5".into());
        if fallback {
            r.targets = Some("openai=gpt-4o,anthropic=claude-haiku-4-5".into());
        }
    })
}

const BUDGET_KEY: &str = "llmgw.rl.v1.usd.day.@keys:bob";

#[test]
fn budgets_reserve_the_worst_case_and_refuse_with_insufficient_quota() {
    let root = configure(BUDGETS).unwrap();
    let mut envoy = Envoy::default();
    // Worst case 1000 × 0.15 + 1000 × 0.6 = 750 micro-USD: 13 fit in 10000, the 14th not.
    for i in 1..=13u64 {
        let out = envoy.request(&root, priced("bob", 1000, 1000, false), NOW_MS);
        assert_eq!(out.flow, Flow::Continue, "request {i}");
        let left = format_usd(10_000 - 750 * i);
        assert_eq!(
            out.host.resp("x-llmgw-budget-remaining-usd"),
            Some(left.as_str())
        );
        assert_eq!(out.host.resp("x-llmgw-budget-limit-usd"), Some("0.010000"));
        assert_eq!(
            out.host.resp("x-llmgw-budget"),
            Some("limits.keys.usd_per_day")
        );
        assert_eq!(
            out.host.resp("x-llmgw-budget-reset-at"),
            Some("2026-06-02T00:00:00Z")
        );
        // Warned from 50% on: 7 × 750 = 5250.
        assert_eq!(
            out.host.resp("x-llmgw-budget-warning").is_some(),
            i >= 7,
            "{i}"
        );
    }
    assert_eq!(stored(&envoy, BUDGET_KEY), 9750);
    let out = envoy.request(&root, priced("bob", 1000, 1000, false), NOW_MS);
    let reply = out.host.local_response.unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("x-should-retry"), Some("false"));
    let body = reply.json();
    assert_eq!(body["error"]["type"], "insufficient_quota");
    assert_eq!(body["error"]["code"], "insufficient_quota");
    assert_eq!(
        body["error"]["message"],
        "Budget limits.keys.usd_per_day for bob is spent: 0.009750 of 0.010000 USD per day \
         (UTC) used, and this request may cost up to 0.000750 USD. It resets at \
         2026-06-02T00:00:00Z."
    );
    assert_eq!(stored(&envoy, BUDGET_KEY), 9750);
    // A cheaper request still fits; carol's own override is $1.
    let out = envoy.request(&root, priced("bob", 100, 200, false), NOW_MS);
    assert_eq!(out.flow, Flow::Continue);
    let out = envoy.request(&root, priced("carol", 1000, 1000, false), NOW_MS);
    assert_eq!(out.host.resp("x-llmgw-budget-limit-usd"), Some("1.000000"));
}

#[test]
fn a_fallback_reserves_at_the_dearer_target_and_settles_at_the_answering_one() {
    let root = configure(BUDGETS).unwrap();
    let mut envoy = Envoy::default();
    let body = r#"{"choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}}"#;
    // Reserved at anthropic's prices: 1000 × 1 + 1000 × 5 = 6000.
    let host = priced("bob", 1000, 1000, true)
        .with_property(&crate::router::UPSTREAM_PROVIDER, b"anthropic");
    let out = envoy.exchange(&root, host, "application/json", body, 11);
    assert_eq!(
        out.host.resp("x-llmgw-budget-remaining-usd"),
        Some("0.004000")
    );
    // Settled: 1000 × 1 + 100 × 5 = 1500.
    assert_eq!(stored(&envoy, BUDGET_KEY), 1500);
    // Answered by openai: 1000 × 0.15 + 100 × 0.6 = 210.
    let host =
        priced("bob", 1000, 1000, true).with_property(&crate::router::UPSTREAM_PROVIDER, b"openai");
    envoy.exchange(&root, host, "application/json", body, 11);
    assert_eq!(stored(&envoy, BUDGET_KEY), 1710);
}

#[test]
fn a_provider_error_refunds_the_budget() {
    let root = configure(BUDGETS).unwrap();
    let mut host = priced("bob", 1000, 1000, false).with_now_ms(NOW_MS);
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Continue);
    assert_eq!(
        Counter::count_in(
            host.shared_data(BUDGET_KEY).data.as_deref(),
            1_780_272_000_000
        ),
        750
    );
    let mut host = host
        .with_response_header(":status", "503")
        .with_response_header("content-type", "application/json");
    filter.on_response_headers(&mut host, false);
    assert_eq!(
        Counter::count_in(
            host.shared_data(BUDGET_KEY).data.as_deref(),
            1_780_272_000_000
        ),
        0
    );
}

#[test]
fn a_budgeted_request_to_an_unpriced_provider_is_not_sent() {
    let root = configure(BUDGETS).unwrap();
    let host = chat("bob", 10, Some(10)).with_routed(|r| {
        r.prices = Some("anthropic=1/5".into());
    });
    let out = Envoy::default().request(&root, host, NOW_MS);
    let reply = out.host.local_response.unwrap();
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["error"]["code"], "budget_unpriced_model");
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("provider openai has no price"));
}

#[test]
fn bad_budgets_are_refused_with_their_path() {
    let refused = |json: &str| configure(json).unwrap_err();
    let e = refused(r#"{"default": {"usd_per_day": -1}}"#);
    assert_eq!(
        (e.path.as_str(), e.reason.as_str()),
        ("default.usd_per_day", "must not be negative")
    );
    let e = refused(r#"{"limits": [{"name": "b", "usd_per_fortnight": 5}]}"#);
    assert_eq!(e.path, "limits[0].usd_per_fortnight");
    let e = refused(r#"{"limits": [{"name": "b", "usd_per_minute": 5}]}"#);
    assert!(e.reason.contains("unknown budget period"), "{e:?}");
    let e = refused(r#"{"consumers": {"a": {"requests_per_month": 5}}}"#);
    assert_eq!(e.path, "consumers.a.requests_per_month");
    let e = refused(r#"{"teams": {"ml": {"usd_per_day": 0.0000001}}}"#);
    assert!(e.reason.contains("6 decimal places"), "{e:?}");
    let e = refused(r#"{"default": {"requests_per_day": 1.5}}"#);
    assert_eq!(e.reason, "must be a whole number, at least 1");
    let e = refused(r#"{"default": {"usd_per_day": 0}}"#);
    assert_eq!(e.path, "default.usd_per_day");
    let e = refused(r#"{"budget_warning_percent": 0}"#);
    assert_eq!(e.path, "budget_warning_percent");
    // Global mode: past the override's 32 bits is fine (the `max` entry), past 2^53 is not.
    configure(
        r#"{"limits": [{"name": "b", "by": ["team"], "usd_per_month": 50000}],
            "global": {"cluster": "rls"}}"#,
    )
    .unwrap();
    let e = refused(
        r#"{"limits": [{"name": "b", "by": ["team"], "usd_per_month": 9007199255}],
            "global": {"cluster": "rls"}}"#,
    );
    assert_eq!(e.path, "limits[0].usd_per_month");
    assert!(e.reason.contains("2^53"), "{e:?}");
    // Exact micro-USD from the decimal text.
    let root = configure(r#"{"default": {"usd_per_day": 0.29}}"#).unwrap();
    assert_eq!(root.policy().limits_for("x", None)[0].max, 290_000);
    let root = configure(r#"{"default": {"usd_per_week": 1e-6}}"#).unwrap();
    assert_eq!(root.policy().limits_for("x", None)[0].max, 1);
}

#[test]
fn a_refusal_speaks_the_dialect_router_read_else_the_one_of_the_path() {
    let root = root();
    let mut envoy = Envoy::default();
    let anthropic_shaped = |out: &Outcome| {
        let body = out.host.local_response.as_ref().unwrap().json();
        body["type"] == "error" && body["error"]["type"] == "rate_limit_error"
    };
    for _ in 0..3 {
        envoy.request(&root, consumer("carol"), NOW_MS);
    }
    // router's record names the dialect: no `:path` read.
    let routed = consumer("carol").with_routed(|r| r.client_api = Some(ClientApi::Messages));
    let out = envoy.request(&root, routed, NOW_MS);
    assert_eq!(out.status(), Some(429));
    assert!(anthropic_shaped(&out));
    assert!(!out
        .host
        .call_log
        .borrow()
        .iter()
        .any(|c| c.contains(":path")));
    // Without router in the chain, the path tells.
    let alone = consumer("carol").with_request_header(":path", "/v1/messages");
    let out = envoy.request(&root, alone, NOW_MS);
    assert!(anthropic_shaped(&out));
    let out = envoy.request(&root, consumer("carol"), NOW_MS);
    assert!(!anthropic_shaped(&out));
}

// ---- the budget index (every build writes it) ----

#[test]
fn the_public_ratelimit_indexes_each_budget_counter_it_charges() {
    let root = configure(BUDGETS).unwrap();
    let mut envoy = Envoy::default();
    for _ in 0..2 {
        envoy.request(&root, priced("bob", 10, 10, false), NOW_MS);
    }
    let (index, _) = &envoy.shared[budget_index::INDEX_KEY];
    let index: serde_json::Value = serde_json::from_slice(index).unwrap();
    // The counter key is the one the charge went to, so the admin role (ratelimit.wasm) reads
    // what this build (gateway.wasm too) writes.
    assert!(stored(&envoy, "llmgw.rl.v1.usd.day.@keys:bob") > 0);
    assert_eq!(
        index,
        serde_json::json!([{"counter": "llmgw.rl.v1.usd.day.@keys:bob", "rule": "keys",
            "window": "day", "max": 10000, "key": [["consumer", "bob"]]}])
    );
}

/// gateway.wasm: the refusal names the module that has the role.
#[cfg(not(feature = "admin"))]
#[test]
fn a_build_without_the_admin_role_refuses_it_naming_ratelimit_wasm() {
    let e = configure(r#"{"admin": {"key_sha256": "ABC"}}"#).unwrap_err();
    assert_eq!(e.path, "admin");
    assert_eq!(
        e.reason,
        "the admin role is not in this build of ratelimit (gateway.wasm); load ratelimit.wasm \
         for the admin listener, with this module's vm_id so that it reads the counters this \
         module writes (README, \"Budgets\")"
    );
    // Without the section, the same config loads.
    configure(BUDGETS).unwrap();
}

// ---- the admin role (local mode's GET /llmgw/budgets; Cargo feature `admin`) ----

#[cfg(feature = "admin")]
mod admin_role {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const ADMIN_KEY: &str = "sk-admin-0123";

    fn admin_root() -> RateLimitRoot {
        let hash = crate::auth::hash_key(ADMIN_KEY);
        configure(&format!(r#"{{"admin": {{"key_sha256": "{hash}"}}}}"#)).unwrap()
    }

    fn admin_request(envoy: &mut Envoy, method: &str, path: &str, key: Option<&str>) -> FakeHost {
        let mut host = FakeHost::new()
            .with_request_header(":method", method)
            .with_request_header(":path", path);
        if let Some(key) = key {
            host = host.with_request_header("authorization", &format!("Bearer {key}"));
        }
        envoy.request(&admin_root(), host, NOW_MS).host
    }

    #[test]
    fn the_admin_role_lists_what_the_public_ratelimit_spent() {
        let root = configure(BUDGETS).unwrap();
        let mut envoy = Envoy::default();
        for _ in 0..3 {
            envoy.request(
                &root,
                priced("bob", 1000, 1000, false).with_team("ml"),
                NOW_MS,
            );
        }
        let host = admin_request(&mut envoy, "GET", "/llmgw/budgets?x=1", Some(ADMIN_KEY));
        let reply = host.local_response.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let body = reply.json();
        assert_eq!(body["complete"], true);
        let budgets = body["budgets"].as_array().unwrap();
        assert_eq!(budgets.len(), 2, "{body}");
        // Sorted by counter key: the consumer budget, then the team's.
        assert_eq!(
            budgets[0],
            serde_json::json!({"domain": null, "budget": "keys", "period": "day",
                "key": {"consumer": "bob"}, "limit_usd": "0.010000", "spent_usd": "0.002250",
                "remaining_usd": "0.007750", "limit_micros": 10000, "spent_micros": 2250,
                "remaining_micros": 7750, "resets_at": "2026-06-02T00:00:00Z"})
        );
        assert_eq!(budgets[1]["key"], serde_json::json!({"team": "ml"}));
        assert_eq!(budgets[1]["resets_at"], "2026-07-01T00:00:00Z");
        // A new window: listed, nothing spent yet.
        let tomorrow = NOW_MS + 86_400_000;
        let mut host = FakeHost::new()
            .with_request_header(":method", "GET")
            .with_request_header(":path", "/llmgw/budgets")
            .with_request_header("authorization", &format!("Bearer {ADMIN_KEY}"));
        host.shared = envoy.shared.clone();
        let body = admin::budgets(&host.with_now_ms(tomorrow), tomorrow);
        assert_eq!(body["budgets"][0]["spent_micros"], 0);
    }

    #[test]
    fn the_admin_role_wants_its_key_get_and_its_path() {
        let mut envoy = Envoy::default();
        for key in [None, Some("sk-admin-012"), Some("sk-admin-01234")] {
            let reply = admin_request(&mut envoy, "GET", "/llmgw/budgets", key)
                .local_response
                .unwrap();
            assert_eq!(reply.status, 401, "{key:?}");
            assert_eq!(reply.json()["error"]["code"], "invalid_admin_key");
        }
        let reply = admin_request(&mut envoy, "DELETE", "/llmgw/budgets", Some(ADMIN_KEY))
            .local_response
            .unwrap();
        assert_eq!((reply.status, reply.header("allow")), (405, Some("GET")));
        let reply = admin_request(&mut envoy, "GET", "/v1/chat/completions", Some(ADMIN_KEY))
            .local_response
            .unwrap();
        assert_eq!(reply.status, 404);
    }

    #[test]
    fn the_budget_index_is_bounded_and_follows_a_changed_limit() {
        let root = configure(BUDGETS).unwrap();
        let mut envoy = Envoy::default();
        envoy.request(&root, priced("bob", 10, 10, false), NOW_MS);
        // A reload raises bob's budget: the index follows (a new root: a new worker memo).
        let raised = configure(&BUDGETS.replace("0.01,", "0.02,")).unwrap();
        envoy.request(&raised, priced("bob", 10, 10, false), NOW_MS);
        let mut host = FakeHost::new();
        host.shared = envoy.shared.clone();
        let body = admin::budgets(&host, NOW_MS);
        assert_eq!(body["budgets"].as_array().unwrap().len(), 1);
        assert_eq!(body["budgets"][0]["limit_micros"], 20_000);
        // Full: a new counter is counted, not listed.
        let filler: Vec<serde_json::Value> = (0..budget_index::MAX_INDEXED)
            .map(|i| {
                serde_json::json!({"counter": format!("c{i}"), "rule": "r", "window": "day",
                                   "max": 1, "key": []})
            })
            .collect();
        let full = serde_json::to_vec(&filler).unwrap();
        envoy
            .shared
            .insert(budget_index::INDEX_KEY.to_string(), (full, 1));
        let out = envoy.request(&raised, priced("carol", 10, 10, false), NOW_MS);
        assert!(out.host.resp("x-llmgw-budget").is_some());
        assert!(stored(&envoy, "llmgw.rl.v1.usd.day.@keys:carol") > 0);
        let mut host = FakeHost::new();
        host.shared = envoy.shared.clone();
        let body = admin::budgets(&host, NOW_MS);
        assert_eq!(body["complete"], false);
        assert!(!body.to_string().contains("carol"));
    }

    #[test]
    fn the_admin_role_is_only_that() {
        let hash = crate::auth::hash_key(ADMIN_KEY);
        let e = configure(&format!(
            r#"{{"admin": {{"key_sha256": "{hash}"}}, "default": {{"usd_per_day": 1}}}}"#
        ))
        .unwrap_err();
        assert_eq!(e.path, "admin");
        let e = configure(&format!(
            r#"{{"admin": {{"key_sha256": "{hash}"}}, "global": {{"cluster": "rls"}}}}"#
        ))
        .unwrap_err();
        assert!(e.reason.contains("GET /budgets"), "{e:?}");
        let e = configure(r#"{"admin": {"key_sha256": "ABC"}}"#).unwrap_err();
        assert_eq!(e.path, "admin.key_sha256");
    }
}
