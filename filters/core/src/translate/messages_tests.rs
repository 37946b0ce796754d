//! The Messages client dialect through the translate filter, with the fake host.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::testing::FakeHost;

const CONFIG: &str = r#"{"providers": [
  {"name": "openai", "schema": "openai", "key_env": "OPENAI_API_KEY"},
  {"name": "anthropic", "schema": "anthropic", "key_env": "ANTHROPIC_API_KEY",
   "anthropic_version": "2023-06-01"}
]}"#;

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-openai-secret".into()),
        "ANTHROPIC_API_KEY" => Some("sk-ant-secret".into()),
        _ => None,
    }
}

fn filter() -> TranslateFilter {
    TranslateRoot::configure(CONFIG.as_bytes(), &env)
        .unwrap()
        .new_filter()
}

/// A thinking block with its signature and a `cache_control`, in the client's own spacing.
const BODY: &str = r#"{"model": "claude-sonnet-4-5", "max_tokens": 2048,
 "thinking": {"type": "enabled", "budget_tokens": 1024},
 "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]},
  {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "EqQBCgIYAhIM"}, {"type": "text", "text": "Hello"}]},
  {"role": "user", "content": "Again"}], "new_field_of_2027": {"x": 1.50}}"#;

fn messages_host(path: &str, provider: &str, upstream_model: &str) -> FakeHost {
    FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", path)
        .with_request_header("content-type", "application/json")
        .with_request_header("content-length", &BODY.len().to_string())
        .with_request_header("x-api-key", "client-virtual-key")
        .with_request_header("anthropic-version", "2023-06-01")
        .with_request_header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .with_provider(provider)
        .with_routed(|r| r.requested_model = Some("claude-sonnet-4-5".to_string()))
        .with_upstream_model(upstream_model)
        .with_request_body(BODY.as_bytes().to_vec())
}

fn send(filter: &mut TranslateFilter, host: &mut FakeHost) -> (Flow, Flow) {
    let headers = filter.on_request_headers(host, false);
    let size = host.request_body.len();
    let body = filter.on_request_body(host, size, true);
    (headers, body)
}

#[test]
fn messages_to_anthropic_pass_through_unread_with_the_providers_key() {
    let mut f = filter();
    let mut host = messages_host("/v1/messages", "anthropic", "claude-sonnet-4-5");
    let (headers, _) = send(&mut f, &mut host);
    assert_eq!(headers, Flow::Continue, "the body is not even read");
    assert_eq!(host.request_body, BODY.as_bytes());
    assert_eq!(host.req("x-api-key"), Some("sk-ant-secret"));
    assert_eq!(host.req("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        host.req("anthropic-beta"),
        Some("interleaved-thinking-2025-05-14")
    );
    assert_eq!(host.req(":path"), Some("/v1/messages"));
    assert_eq!(host.req("content-length"), Some(&*BODY.len().to_string()));
    assert!(host.req("authorization").is_none());
}

#[test]
fn only_the_model_changes_when_router_renamed_it() {
    let mut f = filter();
    let mut host = messages_host(
        "/v1/messages?beta=true",
        "anthropic",
        "claude-sonnet-4-5-20250929",
    );
    let (headers, body) = send(&mut f, &mut host);
    assert_eq!((headers, body), (Flow::Pause, Flow::Continue));
    let expected = BODY.replacen(
        r#""model": "claude-sonnet-4-5""#,
        r#""model": "claude-sonnet-4-5-20250929""#,
        1,
    );
    assert_eq!(String::from_utf8_lossy(&host.request_body), expected);
    assert_eq!(host.req(":path"), Some("/v1/messages?beta=true"));
}

#[test]
fn the_configured_version_is_set_when_the_client_sent_none() {
    let mut f = filter();
    let mut host = messages_host(
        "/v1/messages/count_tokens",
        "anthropic",
        "claude-sonnet-4-5",
    );
    host.request_headers
        .retain(|(n, _)| n != "anthropic-version");
    send(&mut f, &mut host);
    assert_eq!(host.req("anthropic-version"), Some("2023-06-01"));
    assert_eq!(host.req(":path"), Some("/v1/messages/count_tokens"));
}

#[test]
fn the_answers_usage_is_handed_on_in_filter_state() {
    let mut f = filter();
    let mut host = messages_host("/v1/messages", "anthropic", "claude-sonnet-4-5");
    send(&mut f, &mut host);
    let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":5,"output_tokens":6}}"#;
    host.response_headers = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
    ];
    host.response_body = answer.to_vec();
    assert_eq!(f.on_response_headers(&mut host, false), Flow::Continue);
    assert_eq!(
        f.on_response_body(&mut host, answer.len(), true),
        Flow::Continue
    );
    assert_eq!(host.response_body, answer, "the answer passes unchanged");
    let usage = crate::facts::read_usage(&host).unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (17, 6));
}

#[test]
fn messages_to_openai_become_chat_requests_with_the_providers_key() {
    let mut f = filter();
    let mut host = messages_host("/v1/messages?beta=true", "openai", "gpt-4o-mini");
    let (headers, body) = send(&mut f, &mut host);
    assert_eq!(
        (headers, body),
        (Flow::Pause, Flow::Pause),
        "answered locally"
    );
    assert_eq!(host.req(":path"), Some("/v1/chat/completions"));
    assert_eq!(host.req("authorization"), Some("Bearer sk-openai-secret"));
    assert!(host.req("x-api-key").is_none());
    // Anthropic's headers mean nothing to OpenAI.
    assert!(host.req("anthropic-version").is_none() && host.req("anthropic-beta").is_none());
    // A field that cannot be carried (here the unknown one; `thinking` enabled would be too) is
    // refused by name, in Anthropic's shape.
    let reply = host.local_response.as_ref().unwrap();
    assert_eq!(reply.status, 400);
    let json = reply.json();
    assert_eq!(json["type"], "error");
    assert_eq!(json["error"]["type"], "invalid_request_error");
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`new_field_of_2027`"));

    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"system":"Be brief.",
        "messages":[{"role":"user","content":"Hi"}]}"#;
    let mut f = filter();
    let mut host = messages_host("/v1/messages", "openai", "gpt-4o-mini")
        .with_request_body(body.as_bytes().to_vec());
    send(&mut f, &mut host);
    assert!(host.local_response.is_none());
    let sent: serde_json::Value = serde_json::from_slice(&host.request_body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"model": "gpt-4o-mini", "max_completion_tokens": 64,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Hi"}]})
    );
    assert_eq!(
        host.req("content-length"),
        Some(&*host.request_body.len().to_string())
    );
}

#[test]
fn an_unknown_provider_is_an_anthropic_error_for_a_messages_client() {
    let mut f = filter();
    let mut host = messages_host("/v1/messages", "nobody", "x");
    send(&mut f, &mut host);
    let json = host.local_response.as_ref().unwrap().json();
    assert_eq!(json["type"], "error");
    assert_eq!(json["error"]["type"], "api_error");
}

#[test]
fn count_tokens_elsewhere_is_an_estimate_answered_here() {
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, world"}]}"#;
    let mut f = filter();
    let mut host = messages_host("/v1/messages/count_tokens", "openai", "gpt-4o-mini")
        .with_request_body(body.as_bytes().to_vec());
    let (headers, body_flow) = send(&mut f, &mut host);
    assert_eq!((headers, body_flow), (Flow::Pause, Flow::Pause));
    let reply = host.local_response.as_ref().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), serde_json::json!({"input_tokens": 6}));
    // Counting spends nothing: ratelimit charges it no tokens.
    assert_eq!(facts::read_usage(&host), Some(Usage::default()));
}

#[test]
fn only_the_beta_flags_a_provider_accepts_reach_it() {
    let config = r#"{"providers": [{"name": "anthropic", "schema": "anthropic",
        "key_env": "ANTHROPIC_API_KEY", "anthropic_betas": ["prompt-caching-2024-07-31"]}]}"#;
    let root = TranslateRoot::configure(config.as_bytes(), &env).unwrap();
    for (sent, kept) in [
        (
            "prompt-caching-2024-07-31, brand-new-2099-01-01",
            Some("prompt-caching-2024-07-31"),
        ),
        ("brand-new-2099-01-01", None),
    ] {
        let mut f = root.new_filter();
        let mut host = messages_host("/v1/messages", "anthropic", "claude-sonnet-4-5");
        host.request_headers.retain(|(n, _)| n != "anthropic-beta");
        host.request_headers
            .push(("anthropic-beta".into(), sent.into()));
        send(&mut f, &mut host);
        assert_eq!(host.req("anthropic-beta"), kept, "{sent}");
    }
    let refused = TranslateRoot::configure(
        br#"{"providers":[{"name":"o","schema":"openai","key_env":"OPENAI_API_KEY",
            "anthropic_betas":["x"]}]}"#,
        &env,
    )
    .unwrap_err();
    assert!(
        refused.to_string().contains("providers[0].anthropic_betas"),
        "{refused}"
    );
}
