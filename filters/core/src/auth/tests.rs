#![allow(clippy::unwrap_used)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::access_log::Field;
use crate::testing::FakeHost;

const ALICE_KEY: &str = "sk-llmgw-alice";
const BOB_KEY: &str = "sk-llmgw-bob";
const OLD_KEY: &str = "sk-llmgw-old";

/// 2026-06-01T00:00:00Z
const NOW_MS: u64 = 1_780_272_000_000;

fn no_env(_: &str) -> Option<String> {
    None
}

fn configure(json: &str) -> Result<AuthRoot, ConfigError> {
    AuthRoot::configure(json.as_bytes(), &no_env)
}

fn root() -> AuthRoot {
    let json = serde_json::json!({"keys": [
        {"sha256": hash_key(ALICE_KEY), "consumer": "alice", "team": "ml",
         "models": ["gpt-4o*", "fast", "claude-*"], "expires_at": "2027-01-01T00:00:00Z"},
        {"sha256": hash_key(BOB_KEY).to_uppercase(), "consumer": "bob"},
        {"sha256": hash_key(OLD_KEY), "consumer": "old", "expires_at": "2026-01-01T00:00:00+01:00"},
    ]});
    configure(&json.to_string()).unwrap()
}

fn run(host: FakeHost) -> (Flow, FakeHost) {
    let mut host = host.with_now_ms(NOW_MS);
    let flow = root().new_filter().on_request_headers(&mut host, true);
    (flow, host)
}

fn refused(host: FakeHost, code: &str) -> FakeHost {
    let (flow, host) = run(host);
    assert_eq!(flow, Flow::Pause);
    let reply = host.local_response.clone().unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], code);
    // The access log names the refusal, and nobody.
    assert_eq!(logged(&host, Field::Error).as_deref(), Some(code));
    assert_eq!(logged(&host, Field::Consumer), None);
    host
}

fn logged(host: &FakeHost, field: Field) -> Option<String> {
    host.property(&[field.property()])
        .map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn hash_key_is_lower_hex_sha256() {
    assert_eq!(
        hash_key("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(hash_key("").len(), 64);
}

#[test]
fn bearer_key_is_accepted_and_identity_set() {
    let (flow, host) =
        run(FakeHost::new().with_request_header("authorization", &format!("Bearer {ALICE_KEY}")));
    assert_eq!(flow, Flow::Continue);
    assert!(host.local_response.is_none());
    assert_eq!(host.auth_facts().consumer.as_deref(), Some("alice"));
    assert_eq!(host.auth_facts().team.as_deref(), Some("ml"));
    assert_eq!(
        host.auth_facts().allowed_models.as_deref(),
        Some("gpt-4o*,fast,claude-*")
    );
    assert!(host.req("authorization").is_none());
    assert_eq!(logged(&host, Field::Consumer).as_deref(), Some("alice"));
    assert_eq!(logged(&host, Field::Team).as_deref(), Some("ml"));
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let (flow, host) = run(FakeHost::new()
            .with_request_header("authorization", &format!("{scheme}  {ALICE_KEY} ")));
        assert_eq!(flow, Flow::Continue, "{scheme}");
        assert_eq!(host.auth_facts().consumer.as_deref(), Some("alice"));
    }
}

#[test]
fn x_api_key_is_accepted_and_removed() {
    let (flow, host) = run(FakeHost::new()
        .with_request_header("x-api-key", BOB_KEY)
        .with_request_header("anthropic-version", "2023-06-01"));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(host.auth_facts().consumer.as_deref(), Some("bob"));
    // bob has no team and no model list: neither fact is set.
    assert!(host.auth_facts().team.as_deref().is_none());
    assert!(host.auth_facts().allowed_models.as_deref().is_none());
    assert!(host.req("x-api-key").is_none());
    assert_eq!(host.req("anthropic-version"), Some("2023-06-01"));
}

#[test]
fn both_credentials_are_removed() {
    let (flow, host) = run(FakeHost::new()
        .with_request_header("authorization", &format!("Bearer {ALICE_KEY}"))
        .with_request_header("x-api-key", "something-else"));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(host.auth_facts().consumer.as_deref(), Some("alice"));
    assert!(host.req("authorization").is_none());
    assert!(host.req("x-api-key").is_none());
}

#[test]
fn non_bearer_authorization_falls_back_to_x_api_key() {
    let (flow, host) = run(FakeHost::new()
        .with_request_header("authorization", "Basic dXNlcjpwYXNz")
        .with_request_header("x-api-key", BOB_KEY));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(host.auth_facts().consumer.as_deref(), Some("bob"));
}

#[test]
fn spoofed_llmgw_headers_are_removed() {
    let (flow, host) = run(FakeHost::new()
        .with_request_header("x-api-key", BOB_KEY)
        .with_request_header("x-llmgw-consumer", "admin")
        .with_request_header("X-LLMGW-Team", "root")
        .with_request_header("x-llmgw-allowed-models", "*")
        .with_request_header("x-llmgw-cluster", "internal")
        .with_request_header("x-llmgw-whatever", "1")
        .with_request_header("x-other", "kept"));
    assert_eq!(flow, Flow::Continue);
    // The facts are bob's key's, whatever the headers said…
    assert_eq!(
        host.auth_facts(),
        AuthFacts {
            consumer: Some("bob".into()),
            team: None,
            allowed_models: None,
        }
    );
    // …and none of the headers reaches the service behind auth.
    assert!(!host
        .request_headers
        .iter()
        .any(|(n, _)| facts::is_reserved_header(n)));
    assert_eq!(host.req("x-other"), Some("kept"));
}

#[test]
fn spoofed_headers_are_removed_even_when_refused() {
    let host = refused(
        FakeHost::new().with_request_header("x-llmgw-consumer", "admin"),
        "missing_api_key",
    );
    assert!(host.req("x-llmgw-consumer").is_none());
}

#[test]
fn missing_key_is_401_missing_api_key() {
    let host = refused(FakeHost::new(), "missing_api_key");
    let message = host.local_response.unwrap().json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("Authorization: Bearer"), "{message}");
    assert!(message.contains("x-api-key"), "{message}");
    refused(
        FakeHost::new().with_request_header("authorization", "Bearer   "),
        "missing_api_key",
    );
    refused(
        FakeHost::new().with_request_header("authorization", "Bearer"),
        "missing_api_key",
    );
    refused(
        FakeHost::new().with_request_header("x-api-key", ""),
        "missing_api_key",
    );
}

#[test]
fn unknown_key_is_401_invalid_api_key_without_echo() {
    let host = refused(
        FakeHost::new().with_request_header("authorization", "Bearer sk-guess-12345"),
        "invalid_api_key",
    );
    let reply = host.local_response.clone().unwrap();
    assert!(!String::from_utf8_lossy(&reply.body).contains("sk-guess"));
    // Nothing identifies anyone, and the bad credential is left as it was.
    assert!(host.auth_facts().consumer.as_deref().is_none());
}

#[test]
fn expired_key_is_401_expired_api_key() {
    let host = refused(
        FakeHost::new().with_request_header("x-api-key", OLD_KEY),
        "expired_api_key",
    );
    let body = host.local_response.unwrap().json();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("expired"), "{message}");
    assert!(message.contains("2026-01-01T00:00:00+01:00"), "{message}");
    assert!(!message.contains(OLD_KEY));
}

#[test]
fn expiry_is_exclusive_at_the_instant() {
    let expires = parse_rfc3339_ms("2027-01-01T00:00:00Z").unwrap() as u64;
    let header = format!("Bearer {ALICE_KEY}");
    let mut before = FakeHost::new()
        .with_request_header("authorization", &header)
        .with_now_ms(expires - 1);
    assert_eq!(
        root().new_filter().on_request_headers(&mut before, true),
        Flow::Continue
    );
    let mut at = FakeHost::new()
        .with_request_header("authorization", &header)
        .with_now_ms(expires);
    assert_eq!(
        root().new_filter().on_request_headers(&mut at, true),
        Flow::Pause
    );
    assert_eq!(
        at.local_response.unwrap().json()["error"]["code"],
        "expired_api_key"
    );
}

#[test]
fn model_not_allowed_is_403() {
    let err = model_not_allowed("o3");
    assert_eq!(err.status, 403);
    let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
    assert_eq!(body["error"]["type"], "permission_error");
    assert_eq!(body["error"]["code"], "model_not_allowed");
    assert_eq!(body["error"]["param"], "model");
    assert!(body["error"]["message"].as_str().unwrap().contains("`o3`"));
}

#[test]
fn allowed_models_fact_round_trips() {
    let (_, host) =
        run(FakeHost::new().with_request_header("authorization", &format!("Bearer {ALICE_KEY}")));
    let facts = host.auth_facts();
    let allowed = facts.allowed_models.as_deref().unwrap();
    assert!(model_allowed(allowed, "gpt-4o-mini"));
    assert!(model_allowed(allowed, "fast"));
    assert!(model_allowed(allowed, "claude-sonnet-4"));
    assert!(!model_allowed(allowed, "o3"));
}

#[test]
fn find_key_checks_every_entry() {
    let keys = root().keys;
    let hash: [u8; 32] = Sha256::digest(OLD_KEY.as_bytes()).into();
    assert_eq!(find_key(&keys, &hash).unwrap().consumer, "old");
    assert!(find_key(&keys, &[0u8; 32]).is_none());
}

// ---- configuration refusals ----

fn refusal(json: serde_json::Value) -> ConfigError {
    configure(&json.to_string()).unwrap_err()
}

fn good_hash() -> String {
    hash_key(ALICE_KEY)
}

#[test]
fn short_hash_is_refused_with_path() {
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "a"},
        {"sha256": hash_key(BOB_KEY), "consumer": "b"},
        {"sha256": "0123456789ab", "consumer": "c"},
    ]}));
    assert_eq!(err.path, "keys[2].sha256");
    assert_eq!(
        err.reason,
        "expected 64 hexadecimal characters (the SHA-256 of the key), got 12"
    );
}

#[test]
fn non_hex_hash_is_refused() {
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": "z".repeat(64), "consumer": "a"},
    ]}));
    assert_eq!(err.path, "keys[0].sha256");
    assert!(err.reason.contains("non-hexadecimal"), "{}", err.reason);
}

#[test]
fn duplicate_hash_is_refused() {
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "a"},
        {"sha256": good_hash().to_uppercase(), "consumer": "b"},
    ]}));
    assert_eq!(err.path, "keys[1].sha256");
    assert!(err.reason.contains("keys[0]"), "{}", err.reason);
}

#[test]
fn bad_consumer_and_team_are_refused() {
    let err = refusal(serde_json::json!({"keys": [{"sha256": good_hash(), "consumer": ""}]}));
    assert_eq!(err.path, "keys[0].consumer");
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "alice smith"}
    ]}));
    assert_eq!(err.path, "keys[0].consumer");
    assert!(err.reason.contains("letters, digits"), "{}", err.reason);
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "alice", "team": "ml\r\nx-evil: 1"}
    ]}));
    assert_eq!(err.path, "keys[0].team");
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "a".repeat(129)}
    ]}));
    assert_eq!(err.path, "keys[0].consumer");
    assert!(configure(
        &serde_json::json!({"keys": [
            {"sha256": good_hash(), "consumer": "Alice_01.svc-x", "team": "ML-2"}
        ]})
        .to_string()
    )
    .is_ok());
}

#[test]
fn bad_models_are_refused() {
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "a", "models": []}
    ]}));
    assert_eq!(err.path, "keys[0].models");
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "a", "models": ["gpt-4o", "a,b"]}
    ]}));
    assert_eq!(err.path, "keys[0].models[1]");
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "a", "models": [""]}
    ]}));
    assert_eq!(err.path, "keys[0].models[0]");
}

#[test]
fn bad_expiry_is_refused() {
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "a", "expires_at": "next year"}
    ]}));
    assert_eq!(err.path, "keys[0].expires_at");
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "a", "expires_at": "2027-13-01T00:00:00Z"}
    ]}));
    assert_eq!(err.path, "keys[0].expires_at");
    assert!(err.reason.contains("month 13"), "{}", err.reason);
}

#[test]
fn unknown_fields_and_empty_key_lists_are_refused() {
    let err = refusal(serde_json::json!({"keys": [
        {"sha256": good_hash(), "consumer": "a", "key": "sk-plaintext"}
    ]}));
    assert_eq!(err.path, "keys[0].key");
    let err = refusal(serde_json::json!({"keys": []}));
    assert_eq!(err.path, "keys");
    let err = refusal(serde_json::json!({}));
    assert!(
        err.reason.contains("missing field `keys`"),
        "{}",
        err.reason
    );
    let err = refusal(serde_json::json!({"keys": [{"consumer": "a"}]}));
    assert!(err.reason.contains("sha256"), "{}", err.reason);
}

#[test]
fn refusals_are_counted_by_reason() {
    let root = root();
    let mut host = FakeHost::new();
    let mut filter = root.new_filter();
    filter.on_request_headers(&mut host, false);
    let mut host2 = FakeHost::new().with_request_header("authorization", "Bearer nope");
    filter.on_request_headers(&mut host2, false);
    assert_eq!(
        host.counter("reason=.=missing_key;.;llmgw_auth_failures_total"),
        Some(1)
    );
    assert_eq!(
        host2.counter("reason=.=invalid_key;.;llmgw_auth_failures_total"),
        Some(1)
    );
}
