//! Router tests with the fake host: resolution, selection, policies, health, config refusals.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::collections::HashMap;

use super::*;
use crate::testing::FakeHost;

const CONFIG: &str = r#"{
    "models": [
        {"name": "gpt-4o-mini", "targets": [{"provider": "openai", "model": "gpt-4o-mini"}]},
        {"name": "claude-haiku", "targets": [
            {"provider": "anthropic", "model": "claude-3-5-haiku-20241022"}]},
        {"name": "split", "targets": [
            {"provider": "openai", "model": "gpt-4o-mini", "weight": 3},
            {"provider": "anthropic", "model": "claude-3-5-haiku-20241022", "weight": 1}]},
        {"name": "claude-sonnet-4-5-20250929", "targets": [
            {"provider": "anthropic", "model": "claude-sonnet-4-5-20250929"}]},
        {"name": "claude-sonnet-4-6", "targets": [
            {"provider": "anthropic", "model": "claude-sonnet-4-6"}]},
        {"name": "cheap", "policy": "cheapest", "targets": [
            {"provider": "openai", "model": "small", "context_window": 1000,
             "price": {"input": 0.1, "output": 0.4}, "capabilities": ["streaming"]},
            {"provider": "openai", "model": "medium", "context_window": 100000,
             "price": {"input": 1.0, "output": 4.0}, "capabilities": ["streaming", "tools"]},
            {"provider": "anthropic", "model": "large", "context_window": 200000,
             "price": {"input": 3.0, "output": 15.0}}]},
        {"name": "quick", "policy": "fastest", "targets": [
            {"provider": "openai", "model": "a"}, {"provider": "anthropic", "model": "b"}]},
        {"name": "first", "policy": "ordered", "targets": [
            {"provider": "openai", "model": "a"}, {"provider": "anthropic", "model": "b"}]},
        {"name": "regions", "targets": [
            {"provider": "openai", "model": "gpt-4o-mini", "cluster": "openai-eu"},
            {"provider": "openai", "model": "gpt-4o-mini", "cluster": "openai-us"}]},
        {"name": "resilient", "fallback": {"cluster": "llm-fallback"}, "targets": [
            {"provider": "openai", "model": "gpt-4o-mini"},
            {"provider": "anthropic", "model": "claude-haiku-4-5",
             "price": {"input": 1, "output": 5}}]}
    ],
    "aliases": {
        "fast": "gpt-4o-mini",
        "claude-sonnet": {"version": "claude-sonnet-4-5-20250929",
                          "rollout": {"version": "claude-sonnet-4-6", "percent": 20}}
    },
    "clusters": {"anthropic": "llm-anthropic"},
    "health": {"failure_threshold": 2, "cooldown_seconds": 10},
    "expose": {"model": true},
    "default_output_tokens": 100
}"#;

const NOW: u64 = 1_700_000_000_000;

fn root() -> RouterRoot {
    RouterRoot::configure(CONFIG.as_bytes(), &|_: &str| None).unwrap()
}

/// [`CONFIG`] with panic mode off: a model whose targets all cool down answers 503.
fn root_without_panic() -> RouterRoot {
    let json = CONFIG.replace(
        r#""cooldown_seconds": 10}"#,
        r#""cooldown_seconds": 10, "panic_threshold_percent": 0}"#,
    );
    assert_ne!(json, CONFIG);
    RouterRoot::configure(json.as_bytes(), &|_: &str| None).unwrap()
}

/// [`policy::select`] with the default panic threshold, the chosen target alone.
fn select<'a>(
    model: &'a Model,
    needs: &Needs,
    state: &dyn TargetState,
    draw: u64,
) -> Result<&'a Target, SelectError> {
    policy::select(model, needs, state, draw, 50).map(|s| s.target)
}

fn refusal(json: &str) -> ConfigError {
    RouterRoot::configure(json.as_bytes(), &|_: &str| None).unwrap_err()
}

fn post(path: &str, body: &str, host: FakeHost) -> FakeHost {
    host.with_now_ms(NOW)
        .with_request_header(":method", "POST")
        .with_request_header(":path", path)
        .with_request_body(body)
}

/// Runs a request through a fresh router filter; returns the flow, the filter and the host.
fn run(root: &RouterRoot, mut host: FakeHost) -> (Flow, RouterFilter, FakeHost) {
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    let size = host.request_body.len();
    assert_eq!(filter.on_request_body(&mut host, 3, false), Flow::Pause);
    let flow = filter.on_request_body(&mut host, size, true);
    (flow, filter, host)
}

/// Runs a chat completion request through router; returns the host afterwards.
fn route(body: &str, host: FakeHost) -> (Flow, FakeHost) {
    let (flow, _, host) = run(&root(), post("/v1/chat/completions", body, host));
    (flow, host)
}

/// A small xorshift generator: deterministic draws for convergence tests.
fn draws(n: usize) -> impl Iterator<Item = u64> {
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    (0..n).map(move |_| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    })
}

/// Target state from plain maps.
#[derive(Default)]
struct State {
    down: HashMap<String, u64>,
    latency: HashMap<String, f64>,
}

impl TargetState for State {
    fn unhealthy_for_ms(&self, t: &Target) -> Option<u64> {
        self.down.get(&t.model).copied()
    }
    fn latency_ms(&self, t: &Target) -> Option<f64> {
        self.latency.get(&t.model).copied()
    }
}

fn model(root: &RouterRoot, name: &str) -> std::rc::Rc<Model> {
    root.resolve(name, None, 0).unwrap().clone()
}

// ---------------------------------------------------------------------------------------------
// Contract headers, aliases, errors

#[test]
fn exact_model_publishes_the_cluster_header_and_router_facts() {
    let body = r#"{"model":"gpt-4o-mini","stream":true,"max_tokens":70}"#;
    let (flow, host) = route(body, FakeHost::new());
    assert_eq!(flow, Flow::Continue);
    assert_eq!(host.req(facts::CLUSTER_HEADER), Some("openai"));
    assert_eq!(
        host.routed(),
        RouterFacts {
            requested_model: Some("gpt-4o-mini".into()),
            provider: Some("openai".into()),
            upstream_model: Some("gpt-4o-mini".into()),
            stream: true,
            targets: None,
            prices: None, // no price in the catalogue
            // 56 bytes / 4, rounded up
            input_tokens_estimate: 14,
            max_output_tokens: Some(70),
            include_usage: false,
            client_api: Some(crate::dialect::ClientApi::ChatCompletions),
        }
    );
    // The cluster is the one fact that is a header.
    let reserved: Vec<&str> = host
        .request_headers
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| facts::is_reserved_header(n))
        .collect();
    assert_eq!(reserved, [facts::CLUSTER_HEADER]);
    assert!(host.local_response.is_none());
    let requested = host.property(&[crate::access_log::Field::RequestedModel.property()]);
    assert_eq!(requested.as_deref(), Some(&b"gpt-4o-mini"[..]));
}

#[test]
fn a_stream_hands_on_whether_its_client_asked_for_usage() {
    let asked = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}"#;
    let (_, host) = route(asked, FakeHost::new());
    assert!(host.routed().include_usage && !host.routed().stream_without_usage());
    let (_, host) = route(r#"{"model":"gpt-4o-mini","stream":true}"#, FakeHost::new());
    assert!(host.routed().stream_without_usage());
    // Not a stream: nothing to force, whatever stream_options say.
    let not_streamed = r#"{"model":"gpt-4o-mini","stream_options":{"include_usage":true}}"#;
    let (_, host) = route(not_streamed, FakeHost::new());
    assert!(!host.routed().stream && !host.routed().include_usage);
    assert_eq!(host.routed().max_output_tokens, None);
}

#[test]
fn the_chosen_target_s_price_is_handed_on() {
    let (_, host) = route(r#"{"model":"cheap","max_tokens":10}"#, FakeHost::new());
    assert_eq!(host.routed().upstream_model.as_deref(), Some("small"));
    assert_eq!(host.routed().prices.as_deref(), Some("openai=0.1/0.4"));
    // A chain hands on every priced target's price, for whichever provider answers.
    let (_, host) = route(r#"{"model":"resilient"}"#, FakeHost::new());
    assert_eq!(host.routed().prices.as_deref(), Some("anthropic=1/5"));
    // Cache prices go along when the catalogue sets them.
    let json = CONFIG.replace(
        r#""price": {"input": 1, "output": 5}"#,
        r#""price": {"input": 1, "output": 5, "cache_read": 0.1, "cache_write": 1.25}"#,
    );
    let root = RouterRoot::configure(json.as_bytes(), &|_: &str| None).unwrap();
    let (_, _, host) = run(
        &root,
        post(
            "/v1/chat/completions",
            r#"{"model":"resilient"}"#,
            FakeHost::new(),
        ),
    );
    assert_eq!(
        host.routed().prices.as_deref(),
        Some("anthropic=1/5/0.1/1.25")
    );
}

#[test]
fn alias_resolves_and_cluster_mapping_applies() {
    let (_, host) = route(r#"{"model":"fast"}"#, FakeHost::new());
    assert_eq!(host.routed().requested_model.as_deref(), Some("fast"));
    assert_eq!(host.routed().upstream_model.as_deref(), Some("gpt-4o-mini"));
    assert!(!host.routed().stream);
    let (_, host) = route(r#"{"model":"claude-haiku"}"#, FakeHost::new());
    assert_eq!(host.req(facts::CLUSTER_HEADER), Some("llm-anthropic"));
}

#[test]
fn a_target_may_name_its_own_cluster() {
    let (_, host) = route(r#"{"model":"regions"}"#, FakeHost::new().with_randoms(&[1]));
    let first = host.req(facts::CLUSTER_HEADER).unwrap().to_string();
    assert!(first == "openai-eu" || first == "openai-us", "{first}");
    let clusters: std::collections::BTreeSet<String> = draws(50)
        .map(|d| {
            let (_, host) = route(r#"{"model":"regions"}"#, FakeHost::new().with_randoms(&[d]));
            host.req(facts::CLUSTER_HEADER).unwrap().to_string()
        })
        .collect();
    assert_eq!(clusters.len(), 2, "{clusters:?}");
}

#[test]
fn embeddings_resolve_like_chat() {
    let (flow, _, host) = run(
        &root(),
        post(
            "/v1/embeddings",
            r#"{"model":"fast","input":"hello"}"#,
            FakeHost::new(),
        ),
    );
    assert_eq!(flow, Flow::Continue);
    assert_eq!(host.routed().upstream_model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(host.req(facts::CLUSTER_HEADER), Some("openai"));
}

#[test]
fn unknown_model_is_404_model_not_found() {
    let (flow, host) = route(r#"{"model":"gpt-9"}"#, FakeHost::new());
    assert_eq!(flow, Flow::Pause);
    assert!(host.req(facts::CLUSTER_HEADER).is_none());
    let reply = host.local_response.unwrap();
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "model_not_found");
}

#[test]
fn bad_bodies_are_400() {
    for (body, code) in [
        (r#"{"model": 4}"#, Some("invalid_type")),
        (r#"{"messages": []}"#, Some("missing_required_parameter")),
        (r#"{"model": ""}"#, Some("missing_required_parameter")),
        (r#"{"model": "fast""#, None),
        ("not json", None),
        (r#"{"model":"fast","stream":"yes"}"#, Some("invalid_type")),
        (
            r#"{"model":"fast","stream":{"on":[true]}}"#,
            Some("invalid_type"),
        ),
        (r#"{"model":["fast"]}"#, Some("invalid_type")),
    ] {
        let (flow, host) = route(body, FakeHost::new());
        assert_eq!(flow, Flow::Pause, "{body}");
        let reply = host.local_response.unwrap();
        assert_eq!(reply.status, 400, "{body}");
        let json = reply.json();
        assert_eq!(json["error"]["type"], "invalid_request_error");
        assert_eq!(json["error"]["code"].as_str(), code, "{body}");
    }
}

#[test]
fn odd_shapes_of_fields_router_only_peeks_at_are_left_to_the_provider() {
    let body = r#"{"model":"fast","messages":"x","tools":{},"max_tokens":"9",
                   "response_format":"json","functions":null,"max_completion_tokens":-1,
                   "stream_options":[true]}"#;
    let (flow, host) = route(body, FakeHost::new());
    assert_eq!(flow, Flow::Continue);
    assert!(host.local_response.is_none());
}

#[test]
fn allow_list_from_auth_is_enforced_on_the_requested_name() {
    let allowed = FakeHost::new().with_auth(|f| f.allowed_models = Some("gpt-*,fast".to_string()));
    let (flow, _) = route(r#"{"model":"fast"}"#, allowed.clone());
    assert_eq!(flow, Flow::Continue);
    let (flow, host) = route(r#"{"model":"claude-haiku"}"#, allowed);
    assert_eq!(flow, Flow::Pause);
    let reply = host.local_response.unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["error"]["param"], "model");
}

#[test]
fn other_urls_are_404_and_empty_bodies_400() {
    let mut host = FakeHost::new()
        .with_request_header(":method", "GET")
        .with_request_header(":path", "/v1/engines");
    let mut filter = root().new_filter();
    assert_eq!(filter.on_request_headers(&mut host, true), Flow::Pause);
    assert_eq!(host.local_response.unwrap().status, 404);

    let mut host = FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/chat/completions?x=1");
    assert_eq!(filter.on_request_headers(&mut host, true), Flow::Pause);
    assert_eq!(host.local_response.unwrap().status, 400);
}

#[test]
fn models_list_holds_only_allowed_names_aliases_included() {
    let list = |allowed: Option<&str>| {
        let mut host = FakeHost::new()
            .with_request_header(":method", "GET")
            .with_request_header(":path", "/v1/models");
        if let Some(a) = allowed {
            host = host.with_auth(|f| f.allowed_models = Some(a.to_string()));
        }
        let mut filter = root().new_filter();
        assert_eq!(filter.on_request_headers(&mut host, true), Flow::Pause);
        let reply = host.local_response.unwrap();
        assert_eq!(reply.status, 200);
        let json = reply.json();
        assert_eq!(json["object"], "list");
        let ids: Vec<String> = json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m["object"], "model");
                assert_eq!(m["owned_by"], "llmgw");
                assert!(m["created"].is_u64());
                m["id"].as_str().unwrap().to_string()
            })
            .collect();
        ids
    };
    let all = list(None);
    assert_eq!(all.len(), 12, "{all:?}");
    assert_eq!(all[0], "gpt-4o-mini");
    assert!(all.contains(&"claude-sonnet".to_string()));
    assert_eq!(list(Some("gpt-*,fast")), ["gpt-4o-mini", "fast"]);
    assert!(list(Some("nothing-*")).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Weighted selection

#[test]
fn weighted_split_follows_the_draw() {
    let root = root();
    let split = model(&root, "split");
    let state = State::default();
    // Weights 3:1 → draws 0,1,2 go to openai, 3 to anthropic, 4 wraps to openai.
    let providers: Vec<&str> = (0..5)
        .map(|draw| {
            select(&split, &Needs::default(), &state, draw)
                .unwrap()
                .provider
                .as_str()
        })
        .collect();
    assert_eq!(
        providers,
        ["openai", "openai", "openai", "anthropic", "openai"]
    );
}

#[test]
fn selection_through_the_filter_is_deterministic_for_a_draw() {
    let pick = |draw: u64| {
        let (_, host) = route(
            r#"{"model":"split"}"#,
            FakeHost::new().with_randoms(&[draw]),
        );
        host.routed().provider.as_deref().unwrap().to_string()
    };
    for draw in [0, 1, 7, 12345, u64::MAX] {
        assert_eq!(pick(draw), pick(draw), "draw {draw}");
    }
}

#[test]
fn weighted_split_converges_within_two_percent() {
    let root = root();
    let split = model(&root, "split");
    let state = State::default();
    let openai = draws(10_000)
        .filter(|&d| {
            select(&split, &Needs::default(), &state, d)
                .unwrap()
                .provider
                == "openai"
        })
        .count();
    assert!(
        (7300..=7700).contains(&openai),
        "openai got {openai} of 10000"
    );
}

// ---------------------------------------------------------------------------------------------
// Versions and rollouts

#[test]
fn rollout_is_sticky_per_consumer_and_splits_consumers_within_tolerance() {
    let root = root();
    let mut canaries = 0;
    for i in 0..10_000 {
        let consumer = format!("consumer-{i}");
        let first = root.resolve("claude-sonnet", Some(&consumer), 1).unwrap();
        // Whatever the request's own draw, one consumer stays on one version.
        for draw in [2, 99, u64::MAX] {
            let again = root
                .resolve("claude-sonnet", Some(&consumer), draw)
                .unwrap();
            assert_eq!(first.name, again.name, "{consumer} flipped");
        }
        if first.name == "claude-sonnet-4-6" {
            canaries += 1;
        } else {
            assert_eq!(first.name, "claude-sonnet-4-5-20250929");
        }
    }
    // 20 % of 10 000 consumers, ± 2 points.
    assert!((1800..=2200).contains(&canaries), "{canaries} canaries");
}

#[test]
fn rollout_without_consumer_uses_the_draw_and_exact_versions_stay_reachable() {
    let root = root();
    assert_eq!(
        root.resolve("claude-sonnet", None, 1999).unwrap().name,
        "claude-sonnet-4-6"
    );
    assert_eq!(
        root.resolve("claude-sonnet", None, 2000).unwrap().name,
        "claude-sonnet-4-5-20250929"
    );
    let (_, host) = route(
        r#"{"model":"claude-sonnet-4-6"}"#,
        FakeHost::new().with_consumer("anyone"),
    );
    assert_eq!(
        host.routed().upstream_model.as_deref(),
        Some("claude-sonnet-4-6")
    );
    let (_, host) = route(
        r#"{"model":"claude-sonnet"}"#,
        FakeHost::new().with_consumer("consumer-1"),
    );
    let expected = root
        .resolve("claude-sonnet", Some("consumer-1"), 0)
        .unwrap()
        .name
        .clone();
    assert_eq!(
        host.routed().upstream_model.as_deref(),
        Some(expected.as_str())
    );
    assert_eq!(
        host.routed().requested_model.as_deref(),
        Some("claude-sonnet")
    );
}

// ---------------------------------------------------------------------------------------------
// Policies

fn needs(input_tokens: u64, caps: &[Capability]) -> Needs {
    Needs {
        input_tokens,
        output_tokens: 100,
        capabilities: Capabilities::of(caps),
    }
}

#[test]
fn cheapest_picks_the_cheapest_target_whose_window_fits() {
    let root = root();
    let cheap = model(&root, "cheap");
    let state = State::default();
    let pick = |n: Needs| select(&cheap, &n, &state, 0).map(|t| t.model.clone());
    assert_eq!(pick(needs(10, &[])).unwrap(), "small");
    assert_eq!(pick(needs(900, &[])).unwrap(), "small"); // 900 + 100 = 1000 fits exactly
    assert_eq!(pick(needs(901, &[])).unwrap(), "medium");
    assert_eq!(pick(needs(150_000, &[])).unwrap(), "large");
    let Err(SelectError::CannotServe(reasons)) = pick(needs(300_000, &[])) else {
        panic!("a request larger than every window must be refused");
    };
    assert_eq!(reasons.len(), 3);
    assert!(
        reasons[2].contains("context window of 200000"),
        "{reasons:?}"
    );
}

#[test]
fn cheapest_respects_capabilities() {
    let root = root();
    let cheap = model(&root, "cheap");
    let state = State::default();
    let pick = |n: Needs| select(&cheap, &n, &state, 0).map(|t| t.model.clone());
    assert_eq!(pick(needs(10, &[Capability::Streaming])).unwrap(), "small");
    assert_eq!(pick(needs(10, &[Capability::Tools])).unwrap(), "medium");
    // `large` declares no list: it can do everything.
    assert_eq!(pick(needs(10, &[Capability::Vision])).unwrap(), "large");
    assert_eq!(pick(needs(150_000, &[Capability::Tools])).unwrap(), "large");
    let Err(SelectError::CannotServe(reasons)) = pick(needs(250_000, &[Capability::Tools])) else {
        panic!("nothing fits");
    };
    assert_eq!(reasons[0], "small does not support tools");
    assert!(reasons[1].starts_with("medium has a context window of 100000 tokens"));
}

#[test]
fn cheapest_skips_an_unhealthy_target() {
    let root = root();
    let cheap = model(&root, "cheap");
    let mut state = State::default();
    state.down.insert("small".into(), 5_000);
    let t = select(&cheap, &needs(10, &[]), &state, 0).unwrap();
    assert_eq!(t.model, "medium");
}

#[test]
fn request_facts_read_what_the_request_needs() {
    let facts = RequestFacts::parse(
        br#"{"model":"m","stream":true,"max_completion_tokens":50,"max_tokens":9,
             "tools":[{"type":"function","function":{"name":"f"}}],
             "response_format":{"type":"json_schema","json_schema":{"name":"x"}},
             "messages":[{"role":"user","content":[{"type":"text","text":"image_url"},
                         {"type":"image_url","image_url":{"url":"data:..."}}]}]}"#,
    )
    .unwrap();
    assert_eq!(facts.max_output_tokens, Some(50));
    assert_eq!(
        facts.capabilities,
        Capabilities::of(&[
            Capability::Streaming,
            Capability::Tools,
            Capability::JsonSchema,
            Capability::Vision
        ])
    );
    let plain = RequestFacts::parse(
        br#"{"model":"m","max_tokens":9,"tools":[],"response_format":{"type":"json_object"},
             "messages":[{"role":"user","content":"type image_url"}]}"#,
    )
    .unwrap();
    assert_eq!(plain.max_output_tokens, Some(9));
    assert_eq!(plain.capabilities, Capabilities::NONE);
    assert_eq!(plain.needs(400, 7).input_tokens, 100);
    assert_eq!(plain.needs(400, 7).output_tokens, 9);
}

#[test]
fn request_facts_read_each_dialects_fields() {
    use crate::dialect::{ClientApi, Operation};
    let messages = br#"{"model":"m","stream":true,"max_tokens":300,"max_completion_tokens":5,
        "tools":[{"name":"f","input_schema":{"type":"object"}}],
        "messages":[{"role":"user","content":[{"type":"image",
            "source":{"type":"base64","media_type":"image/png","data":"iVBOR"}}]}]}"#;
    let facts = RequestFacts::parse_in(messages, ClientApi::Messages, Operation::Create).unwrap();
    assert_eq!(
        facts.max_output_tokens,
        Some(300),
        "Messages' cap is max_tokens"
    );
    assert!(
        facts.include_usage,
        "a Messages stream always reports usage"
    );
    assert_eq!(
        facts.capabilities,
        Capabilities::of(&[Capability::Streaming, Capability::Tools, Capability::Vision])
    );
    let count =
        RequestFacts::parse_in(messages, ClientApi::Messages, Operation::CountTokens).unwrap();
    assert_eq!(
        count.max_output_tokens,
        Some(0),
        "counting tokens writes none"
    );
    let responses = br#"{"model":"m","max_output_tokens":77,"max_tokens":5,"input":"hi"}"#;
    let facts = RequestFacts::parse_in(responses, ClientApi::Responses, Operation::Create).unwrap();
    assert_eq!(facts.max_output_tokens, Some(77));
    let chat = br#"{"model":"m","stream":true,"max_output_tokens":77,"messages":[]}"#;
    let facts = RequestFacts::parse(chat).unwrap();
    assert_eq!(facts.max_output_tokens, None);
    assert!(
        !facts.include_usage,
        "a Chat stream reports usage when asked"
    );
}

#[test]
fn a_messages_client_is_refused_in_anthropics_format() {
    let body = r#"{"model":"nope","max_tokens":5,"messages":[]}"#;
    let mut filter = root().new_filter();
    let mut host = FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/messages")
        .with_request_body(body.as_bytes().to_vec());
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    assert_eq!(
        filter.on_request_body(&mut host, body.len(), true),
        Flow::Pause
    );
    let reply = host.local_response.as_ref().unwrap();
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.json(),
        serde_json::json!({"type": "error", "error": {"type": "not_found_error",
            "message": "The model `nope` does not exist or you do not have access to it."}})
    );
    // A path under /v1/messages llmgw does not serve: Anthropic's 404 too.
    let mut filter = root().new_filter();
    let mut host = FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/messages/batches");
    filter.on_request_headers(&mut host, true);
    let reply = host.local_response.as_ref().unwrap();
    assert_eq!(
        (reply.status, &reply.json()["type"]),
        (404, &serde_json::json!("error"))
    );
}

#[test]
fn cheapest_through_the_filter_says_why_nothing_fits() {
    let big = "x".repeat(900_000);
    let body = format!(r#"{{"model":"cheap","messages":[{{"role":"user","content":"{big}"}}]}}"#);
    let (flow, host) = route(&body, FakeHost::new());
    assert_eq!(flow, Flow::Pause);
    let reply = host.local_response.unwrap();
    assert_eq!(reply.status, 400);
    let json = reply.json();
    assert_eq!(json["error"]["code"], "no_deployment_can_serve");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("context window of 200000"), "{message}");

    let body = r#"{"model":"cheap","messages":[{"role":"user","content":"hi"}]}"#;
    let (flow, host) = route(body, FakeHost::new());
    assert_eq!(flow, Flow::Continue);
    assert_eq!(host.routed().upstream_model.as_deref(), Some("small"));
}

#[test]
fn ordered_takes_the_first_healthy_target() {
    let root = root();
    let first = model(&root, "first");
    let mut state = State::default();
    assert_eq!(
        select(&first, &Needs::default(), &state, 3).unwrap().model,
        "a"
    );
    state.down.insert("a".into(), 1);
    assert_eq!(
        select(&first, &Needs::default(), &state, 3).unwrap().model,
        "b"
    );
}

#[test]
fn fastest_measures_unknown_targets_then_prefers_the_lowest_latency() {
    let root = root();
    let quick = model(&root, "quick");
    let mut state = State::default();
    let pick = |s: &State, draw: u64| select(&quick, &Needs::default(), s, draw).unwrap();
    state.latency.insert("a".into(), 300.0);
    assert_eq!(pick(&state, 1).model, "b", "unmeasured b gets tried");
    state.latency.insert("b".into(), 120.0);
    assert_eq!(pick(&state, 1).model, "b");
    state.latency.insert("b".into(), 500.0);
    assert_eq!(pick(&state, 1).model, "a");
    // One draw in 20 explores by weight, so a slow target is measured again.
    let explored = draws(2000)
        .filter(|&d| pick(&state, d).model == "b")
        .count();
    assert!((20..=80).contains(&explored), "{explored}");
}

#[test]
fn fastest_learns_latency_from_responses_in_shared_data() {
    let root = root();
    // A draw that does not explore: the choice is by latency alone.
    let exploit = (1..).find(|&d| host_draw(d) % 20 != 0).unwrap();
    let respond = |host: FakeHost, started: u64, took: u64| -> FakeHost {
        let (_, mut filter, mut host) = run(
            &root,
            post(
                "/v1/chat/completions",
                r#"{"model":"quick"}"#,
                host.with_randoms(&[exploit]),
            ),
        );
        let _ = started;
        host.now_ms = NOW + took;
        host.response_headers = vec![(":status".into(), "200".into())];
        host.properties.insert(
            vec!["response".into(), "code_details".into()],
            b"via_upstream".to_vec(),
        );
        filter.on_response_headers(&mut host, false);
        host.now_ms = NOW;
        host
    };
    // a is tried first (both unmeasured), answers in 400 ms; b is then unmeasured → tried.
    let host = respond(FakeHost::new(), NOW, 400);
    assert_eq!(host.routed().upstream_model.as_deref(), Some("a"));
    let host = respond(host, NOW, 100);
    assert_eq!(host.routed().upstream_model.as_deref(), Some("b"));
    let host = respond(host, NOW, 100);
    assert_eq!(host.routed().upstream_model.as_deref(), Some("b"));
    let state = health::SharedState {
        host: &host,
        now_ms: NOW,
    };
    let quick = model(&root, "quick");
    assert_eq!(state.latency_ms(&quick.targets[0]), Some(400.0));
    assert_eq!(state.latency_ms(&quick.targets[1]), Some(100.0));
}

// ---------------------------------------------------------------------------------------------
// Health

#[test]
fn health_trips_after_the_threshold_cools_down_and_recovers() {
    let policy = HealthPolicy {
        failure_threshold: 3,
        cooldown_ms: 10_000,
        panic_threshold_percent: 50,
        max_retry_after_ms: 60_000,
    };
    let h = Health::default();
    let h = h.after(Outcome::Failure, &policy, 0, None);
    let h = h.after(Outcome::Failure, &policy, 1, None);
    assert_eq!(h.unhealthy_for_ms(2), None, "below the threshold");
    let h = h.after(Outcome::Neutral, &policy, 2, None);
    assert_eq!(h.consecutive_failures, 2, "a client error changes nothing");
    let tripped = h.after(Outcome::Failure, &policy, 3, None);
    assert_eq!(tripped.unhealthy_for_ms(3), Some(10_000));
    assert_eq!(tripped.unhealthy_for_ms(10_002), Some(1));
    // Failures during the cool-down do not extend it.
    let same = tripped.after(Outcome::Failure, &policy, 5_000, None);
    assert_eq!(same, tripped);
    // After the cool-down: half-open. One failure trips it again at once…
    assert_eq!(tripped.unhealthy_for_ms(10_003), None);
    let again = tripped.after(Outcome::Failure, &policy, 10_003, None);
    assert_eq!(again.unhealthy_for_ms(10_003), Some(10_000));
    // …one success resets it.
    let recovered = tripped.after(Outcome::Success, &policy, 10_003, None);
    assert_eq!(recovered, Health::default());
    let h = recovered.after(Outcome::Failure, &policy, 10_004, None);
    assert_eq!(h.unhealthy_for_ms(10_004), None);
}

#[test]
fn outcomes_by_status() {
    assert_eq!(Outcome::of_status(200), Outcome::Success);
    assert_eq!(Outcome::of_status(429), Outcome::Failure);
    assert_eq!(Outcome::of_status(503), Outcome::Failure);
    assert_eq!(Outcome::of_status(400), Outcome::Neutral);
    assert_eq!(Outcome::of_status(404), Outcome::Neutral);
}

/// Sends `model` through router and answers with `status`; returns the host (shared data kept).
fn exchange(
    root: &RouterRoot,
    host: FakeHost,
    model: &str,
    status: u16,
    details: &str,
) -> FakeHost {
    let body = format!(r#"{{"model":"{model}"}}"#);
    let (flow, mut filter, mut host) = run(root, post("/v1/chat/completions", &body, host));
    if flow == Flow::Continue {
        host.response_headers = vec![(":status".into(), status.to_string())];
        host.properties.insert(
            vec!["response".into(), "code_details".into()],
            details.as_bytes().to_vec(),
        );
        filter.on_response_headers(&mut host, false);
    }
    host
}

#[test]
fn failing_target_goes_unhealthy_then_503_with_retry_after_then_recovers() {
    let root = root_without_panic();
    let host = FakeHost::new();
    // threshold 2: two 5xx from the provider trip gpt-4o-mini.
    let host = exchange(&root, host, "fast", 500, "via_upstream");
    let host = exchange(&root, host, "fast", 503, "via_upstream");
    let mut host = exchange(&root, host, "fast", 200, "via_upstream");
    let reply = host.local_response.take().unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("10"));
    assert_eq!(reply.json()["error"]["code"], "all_deployments_unhealthy");
    // Another model on another target is not affected.
    let mut host = exchange(&root, host, "claude-haiku", 200, "via_upstream");
    assert!(host.local_response.take().is_none());
    // After the cool-down the target serves again.
    host.now_ms = NOW + 10_001;
    let (flow, _, _) = run(
        &root,
        post("/v1/chat/completions", r#"{"model":"fast"}"#, host).with_now_ms(NOW + 10_001),
    );
    assert_eq!(flow, Flow::Continue);
}

#[test]
fn local_replies_of_other_filters_do_not_count_against_a_target() {
    let root = root_without_panic();
    let host = FakeHost::new();
    // ratelimit's own 429s: a wasm local reply (empty details), not the provider.
    let host = exchange(&root, host, "fast", 429, "");
    let host = exchange(&root, host, "fast", 429, "");
    let host = exchange(&root, host, "fast", 429, "");
    assert!(host.local_response.is_none());
    // Envoy giving up on the provider does count.
    let host = exchange(
        &root,
        host,
        "fast",
        503,
        "upstream_reset_before_response_started",
    );
    let host = exchange(
        &root,
        host,
        "fast",
        503,
        "upstream_reset_before_response_started",
    );
    let host = exchange(&root, host, "fast", 200, "via_upstream");
    assert_eq!(host.local_response.unwrap().status, 503);
}

#[test]
fn a_single_deployment_that_failed_keeps_taking_traffic_in_panic_mode() {
    let root = root();
    let host = FakeHost::new();
    let host = exchange(&root, host, "fast", 500, "via_upstream");
    let host = exchange(&root, host, "fast", 503, "via_upstream");
    let gpt = model(&root, "gpt-4o-mini");
    let state = health::SharedState {
        host: &host,
        now_ms: NOW,
    };
    assert_eq!(
        state.unhealthy_for_ms(&gpt.targets[0]),
        Some(10_000),
        "it tripped"
    );
    // Its only target is cooling down: 0% healthy is under 50%, so it is tried anyway.
    let stat = "model=.=gpt-4o-mini;.;llmgw_router_panic_total";
    let host = exchange(&root, host, "fast", 200, "via_upstream");
    assert!(host.local_response.is_none());
    assert_eq!(host.routed().provider.as_deref(), Some("openai"));
    assert_eq!(host.counter(stat), Some(1));
    // The provider answered: the target is healthy again, no more panic.
    let host = exchange(&root, host, "fast", 200, "via_upstream");
    assert!(host.local_response.is_none());
    assert_eq!(host.counter(stat), Some(1));
}

#[test]
fn panic_follows_envoys_rule_on_the_share_of_healthy_targets() {
    let root = root();
    let cheap = model(&root, "cheap"); // three targets
    let all: Vec<&Target> = cheap.targets.iter().collect();
    let mut state = State::default();
    let models = |h: &Healthy| -> String {
        h.targets
            .iter()
            .map(|t| t.model.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    state.down.insert("small".into(), 4_000);
    // 2 of 3 healthy (67%) is not under 50%: the cooling one is skipped.
    let h = policy::healthy(all.clone(), &state, 50).unwrap();
    assert_eq!((models(&h), h.panic), ("medium,large".to_string(), false));
    // 1 of 3 (33%) is: every target takes traffic, by the model's policy.
    state.down.insert("medium".into(), 2_000);
    let h = policy::healthy(all.clone(), &state, 50).unwrap();
    assert_eq!(
        (models(&h), h.panic),
        ("small,medium,large".to_string(), true)
    );
    let picked = policy::select(&cheap, &Needs::default(), &state, 0, 50).unwrap();
    assert_eq!(
        (picked.target.model.as_str(), picked.panic),
        ("small", true)
    );
    // A threshold of 30% keeps skipping them.
    let h = policy::healthy(all.clone(), &state, 30).unwrap();
    assert_eq!((models(&h), h.panic), ("large".to_string(), false));
    // 0 turns panic off: all down is a 503 saying when the first is back.
    state.down.insert("large".into(), 9_000);
    assert_eq!(
        policy::healthy(all.clone(), &state, 0).unwrap_err(),
        SelectError::AllUnhealthy {
            retry_after_ms: 2_000
        }
    );
    // 100: panic as soon as one target is down.
    state.down.clear();
    state.down.insert("large".into(), 9_000);
    assert!(policy::healthy(all, &state, 100).unwrap().panic);
}

/// Sends `model` through router and answers `status` with `retry-after`; returns the host.
fn retry_after(
    root: &RouterRoot,
    host: FakeHost,
    model: &str,
    status: u16,
    retry_after: &str,
) -> FakeHost {
    let body = format!(r#"{{"model":"{model}"}}"#);
    let (flow, mut filter, mut host) = run(root, post("/v1/chat/completions", &body, host));
    assert_eq!(flow, Flow::Continue);
    host.response_headers = vec![
        (":status".into(), status.to_string()),
        ("retry-after".into(), retry_after.into()),
    ];
    host.properties.insert(
        vec!["response".into(), "code_details".into()],
        b"via_upstream".to_vec(),
    );
    filter.on_response_headers(&mut host, false);
    host
}

#[test]
fn a_429_with_retry_after_cools_the_target_for_that_long_within_the_bound() {
    let root = root();
    let gpt = model(&root, "gpt-4o-mini");
    let cooling = |host: &FakeHost| {
        health::SharedState { host, now_ms: NOW }.unhealthy_for_ms(&gpt.targets[0])
    };
    // Seconds: the tripping 429's wait, not cooldown_seconds (10).
    let host = retry_after(&root, FakeHost::new(), "fast", 429, "1");
    let host = retry_after(&root, host, "fast", 429, "3");
    assert_eq!(cooling(&host), Some(3_000));
    // An HTTP date: NOW is 2023-11-14T22:13:20Z.
    let host = retry_after(&root, FakeHost::new(), "fast", 429, "1");
    let host = retry_after(&root, host, "fast", 429, "Tue, 14 Nov 2023 22:14:00 GMT");
    assert_eq!(cooling(&host), Some(40_000));
    // Past the bound (max_retry_after_seconds, default 300): the bound.
    let host = retry_after(&root, FakeHost::new(), "fast", 429, "1");
    let host = retry_after(&root, host, "fast", 429, "86400");
    assert_eq!(cooling(&host), Some(300_000));
    // Unreadable: cooldown_seconds.
    let host = retry_after(&root, FakeHost::new(), "fast", 429, "1");
    let host = retry_after(&root, host, "fast", 429, "later");
    assert_eq!(cooling(&host), Some(10_000));
    // A 5xx's Retry-After is not read: cooldown_seconds.
    let host = retry_after(&root, FakeHost::new(), "fast", 503, "2");
    let host = retry_after(&root, host, "fast", 503, "2");
    assert_eq!(cooling(&host), Some(10_000));
}

#[test]
fn trailers_end_the_body_like_end_of_stream() {
    let root = root();
    let mut host = post(
        "/v1/chat/completions",
        r#"{"model":"fast"}"#,
        FakeHost::new(),
    );
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    let size = host.request_body.len();
    assert_eq!(filter.on_request_body(&mut host, size, false), Flow::Pause);
    assert_eq!(filter.on_request_trailers(&mut host), Flow::Continue);
    assert_eq!(host.req(facts::CLUSTER_HEADER), Some("openai"));
    // A request that is only headers and trailers has no body: 400, as without trailers.
    let mut host = post("/v1/chat/completions", "", FakeHost::new());
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    assert_eq!(filter.on_request_trailers(&mut host), Flow::Pause);
    assert_eq!(host.local_response.unwrap().status, 400);
    // After router answered by itself, trailers change nothing.
    let mut host = FakeHost::new()
        .with_request_header(":method", "GET")
        .with_request_header(":path", "/v1/models");
    let mut filter = root.new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    assert_eq!(filter.on_request_trailers(&mut host), Flow::Continue);
    assert_eq!(host.local_response.unwrap().status, 200);
}

#[test]
fn weighted_model_skips_the_unhealthy_target() {
    let root = root();
    let mut host = FakeHost::new();
    // Trip the anthropic target of `split` through the model `claude-haiku` (same target key).
    for _ in 0..2 {
        host = exchange(&root, host, "claude-haiku", 529, "via_upstream");
    }
    for draw in [3, 7, 11] {
        let (_, _, h) = run(
            &root,
            post(
                "/v1/chat/completions",
                r#"{"model":"split"}"#,
                host.clone().with_randoms(&[draw]),
            ),
        );
        assert_eq!(
            h.routed().provider.as_deref(),
            Some("openai"),
            "draw {draw}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Fallback chains and response headers

#[test]
fn fallback_chain_selects_the_aggregate_cluster_and_lists_the_targets_in_order() {
    let (flow, host) = route(r#"{"model":"resilient","stream":true}"#, FakeHost::new());
    assert_eq!(flow, Flow::Continue);
    assert_eq!(host.req(facts::CLUSTER_HEADER), Some("llm-fallback"));
    assert_eq!(
        host.routed().targets.as_deref(),
        Some("openai=gpt-4o-mini,anthropic=claude-haiku-4-5")
    );
    assert_eq!(host.routed().provider.as_deref(), Some("openai"));
    assert_eq!(host.routed().upstream_model.as_deref(), Some("gpt-4o-mini"));
}

#[test]
fn exposed_model_names_the_step_of_the_chain_that_answered() {
    let root = root();
    let (_, mut filter, mut host) = run(
        &root,
        post(
            "/v1/chat/completions",
            r#"{"model":"resilient"}"#,
            FakeHost::new(),
        ),
    );
    host.response_headers = vec![(":status".into(), "200".into())];
    host = host.with_property(&UPSTREAM_PROVIDER, b"anthropic");
    filter.on_response_headers(&mut host, false);
    assert_eq!(host.resp(EXPOSED_MODEL), Some("claude-haiku-4-5"));
    assert_eq!(host.resp(EXPOSED_PROVIDER), None, "not asked for");
}

#[test]
fn each_request_is_counted_once_by_model_answering_provider_consumer_and_status() {
    let request_stat = |provider: &str, consumer: &str, team: &str, status: &str| {
        crate::metrics::stat_name(
            "llmgw_requests_total",
            &[
                ("model", "resilient"),
                ("provider", provider),
                ("consumer", consumer),
                ("team", team),
                ("status", status),
            ],
        )
    };
    let identified = FakeHost::new().with_consumer("alice").with_team("ml");
    let root = root();
    let (_, mut filter, mut host) = run(
        &root,
        post(
            "/v1/chat/completions",
            r#"{"model":"resilient"}"#,
            identified,
        ),
    );
    host.response_headers = vec![(":status".into(), "200".into())];
    host = host.with_property(&UPSTREAM_PROVIDER, b"anthropic");
    filter.on_response_headers(&mut host, false);
    assert_eq!(
        host.counter(&request_stat("anthropic", "alice", "ml", "200")),
        Some(1)
    );

    // Consumer labels off: one series for everybody.
    let quiet = RouterRoot::configure(
        CONFIG
            .replace(
                r#""default_output_tokens": 100"#,
                r#""default_output_tokens": 100, "metrics": {"consumer_labels": false}"#,
            )
            .as_bytes(),
        &|_: &str| None,
    )
    .unwrap();
    let (_, mut filter, mut host) = run(
        &quiet,
        post(
            "/v1/chat/completions",
            r#"{"model":"resilient"}"#,
            FakeHost::new().with_consumer("alice"),
        ),
    );
    host.response_headers = vec![(":status".into(), "429".into())];
    filter.on_response_headers(&mut host, false);
    assert_eq!(
        host.counter(&request_stat("openai", "-", "-", "429")),
        Some(1)
    );
}

// ---------------------------------------------------------------------------------------------
// Config refusals

#[test]
fn config_refusals_name_the_field() {
    let t = r#"[{"provider":"p","model":"m"}]"#;
    for (json, path, reason) in [
        (
            r#"{"models":[{"name":"a","targets":[{"provider":"p","model":"m","weight":0}]}]}"#
                .to_string(),
            "models[0].targets",
            "weight 0",
        ),
        (
            format!(r#"{{"models":[{{"name":"a","targets":{t}}}],"aliases":{{"b":"c"}}}}"#),
            "aliases.b",
            "not in `models`",
        ),
        (
            r#"{"models":[{"name":"a","targets":[{"provider":"p","model":"m","wieght":1}]}]}"#
                .to_string(),
            "models[0].targets[0].wieght",
            "unknown field",
        ),
        (
            r#"{"models":[{"name":"a","targets":[]}]}"#.to_string(),
            "models[0].targets",
            "at least one",
        ),
        (r#"{"models":[]}"#.to_string(), "models", "at least one"),
        (
            format!(r#"{{"models":[{{"name":"a","targets":{t}}},{{"name":"a","targets":{t}}}]}}"#),
            "models[1].name",
            "twice",
        ),
        (
            format!(r#"{{"models":[{{"name":"a b","targets":{t}}}]}}"#),
            "models[0].name",
            "letters",
        ),
        (
            format!(
                r#"{{"models":[{{"name":"a","targets":{t}}}],
                    "aliases":{{"x":{{"version":"a","rollout":{{"version":"zz","percent":5}}}}}}}}"#
            ),
            "aliases.x.rollout.version",
            "not in `models`",
        ),
        (
            format!(
                r#"{{"models":[{{"name":"a","targets":{t}}},{{"name":"b","targets":{t}}}],
                    "aliases":{{"x":{{"version":"a","rollout":{{"version":"b","percent":0}}}}}}}}"#
            ),
            "aliases.x.rollout.percent",
            "more than 0",
        ),
        (
            format!(
                r#"{{"models":[{{"name":"a","targets":{t}}}],
                    "aliases":{{"x":{{"version":"nope"}}}}}}"#
            ),
            "aliases.x.version",
            "not in `models`",
        ),
        (
            format!(
                r#"{{"models":[{{"name":"a","targets":{t}}}],
                    "aliases":{{"x":{{"versoin":"a"}}}}}}"#
            ),
            "aliases.x.versoin",
            "unknown field",
        ),
        (
            format!(r#"{{"models":[{{"name":"a","targets":{t}}}],"aliases":{{"x":7}}}}"#),
            "aliases.x",
            "expected a model name or an object",
        ),
        (
            r#"{"models":[{"name":"a","policy":"cheapest","targets":[
                {"provider":"p","model":"m","price":{"input":1,"output":2}},
                {"provider":"q","model":"m"}]}]}"#
                .to_string(),
            "models[0].targets[1].price",
            "cheapest",
        ),
        (
            r#"{"models":[{"name":"a","targets":[
                {"provider":"p","model":"m","price":{"input":-1,"output":2}}]}]}"#
                .to_string(),
            "models[0].targets[0].price.input",
            "0 or more",
        ),
        (
            r#"{"models":[{"name":"a","targets":[
                {"provider":"p","model":"m","price":{"input":1,"output":2,"cache_read":-0.1}}]}]}"#
                .to_string(),
            "models[0].targets[0].price.cache_read",
            "0 or more",
        ),
        (
            r#"{"models":[{"name":"a","targets":[
                {"provider":"p","model":"m","capabilities":["telepathy"]}]}]}"#
                .to_string(),
            "models[0].targets[0].capabilities[0]",
            "unknown variant",
        ),
        (
            r#"{"models":[{"name":"a","policy":"random","targets":[
                {"provider":"p","model":"m"}]}]}"#
                .to_string(),
            "models[0].policy",
            "unknown variant",
        ),
        (
            r#"{"models":[{"name":"a","fallback":{"cluster":"agg"},"targets":[
                {"provider":"p","model":"m"},{"provider":"p","model":"n"}]}]}"#
                .to_string(),
            "models[0].targets[1].provider",
            "each provider once",
        ),
        (
            r#"{"models":[{"name":"a","fallback":{"cluster":"agg"},"policy":"cheapest","targets":[
                {"provider":"p","model":"m","price":{"input":1,"output":1}}]}]}"#
                .to_string(),
            "models[0].policy",
            "ordered",
        ),
        (
            r#"{"models":[{"name":"a","fallback":{"cluster":"agg"},"targets":[
                {"provider":"p","model":"m"},{"provider":"q","model":"m"}]}],
                "clusters":{"p":"c","q":"c"}}"#
                .to_string(),
            "models[0].targets[1].provider",
            "own member cluster",
        ),
        (
            r#"{"models":[{"name":"a","fallback":{"cluster":"p"},"targets":[
                {"provider":"p","model":"m"},{"provider":"q","model":"m"}]}]}"#
                .to_string(),
            "models[0].fallback.cluster",
            "aggregate cluster",
        ),
        (
            format!(
                r#"{{"models":[{{"name":"a","targets":{t}}}],"health":{{"failure_threshold":0}}}}"#
            ),
            "health.failure_threshold",
            "at least 1",
        ),
        (
            format!(
                r#"{{"models":[{{"name":"a","targets":{t}}}],"health":{{"panic_threshold_percent":101}}}}"#
            ),
            "health.panic_threshold_percent",
            "between 0 and 100",
        ),
        (
            format!(
                r#"{{"models":[{{"name":"a","targets":{t}}}],"health":{{"panic_threshold_percent":-1}}}}"#
            ),
            "health.panic_threshold_percent",
            "invalid value",
        ),
        (
            format!(
                r#"{{"models":[{{"name":"a","targets":{t}}}],"health":{{"max_retry_after_seconds":"1m"}}}}"#
            ),
            "health.max_retry_after_seconds",
            "invalid type",
        ),
        (
            format!(r#"{{"models":[{{"name":"a","targets":{t}}}],"expose":{{"modle":true}}}}"#),
            "expose.modle",
            "unknown field",
        ),
    ] {
        let err = refusal(&json);
        assert_eq!(err.path, path, "{json}");
        assert!(err.reason.contains(reason), "{path}: {}", err.reason);
    }
}

#[test]
fn an_image_counts_its_pixels_not_its_base64_bytes() {
    // A 1024×1024 PNG whose base64 is ~1 MB: bytes / 4 made it ~262k tokens, over the context
    // window of most models. By its pixels it counts 1,399 (the largest provider rule).
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&1024u32.to_be_bytes());
    png.extend_from_slice(&1024u32.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.resize(786_432, 0x5a);
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data: String = png
        .chunks(3)
        .flat_map(|g| {
            let n = (u32::from(g[0]) << 16) | (u32::from(g[1]) << 8) | u32::from(g[2]);
            (0..4).map(move |i| ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char)
        })
        .collect();
    let body = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":[{{"type":"text","text":"What is in this image?"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{data}"}}}}]}}]}}"#
    );
    assert!(body.len() > 1_000_000);
    let facts = RequestFacts::parse(body.as_bytes()).unwrap();
    assert_eq!(facts.capabilities, Capabilities::of(&[Capability::Vision]));
    let text = (body.len() - data.len() - "data:image/png;base64,".len()).div_ceil(4) as u64;
    assert_eq!(facts.needs(body.len(), 7).input_tokens, text + 1_399);
    assert!(facts.input_tokens(body.len()) < 1_500);
}
