//! Keys read per try from a request header (`key_header`) that Envoy's credential_injector
//! fills from an SDS secret: a rotated key counts from the next try, each provider of a
//! fallback chain gets its own key, and no key header reaches a provider.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::testing::FakeHost;

const CONFIG: &str = r#"{"providers": [
  {"name": "openai", "schema": "openai", "key_header": "x-llmgw-key-openai"},
  {"name": "anthropic", "schema": "anthropic", "key_header": "X-LLMGW-Key-Anthropic"},
  {"name": "bedrock", "schema": "bedrock", "region": "us-east-1", "key_header": "x-llmgw-key-bedrock"}
]}"#;

fn no_env(_: &str) -> Option<String> {
    None
}

/// One try to `provider` with the key headers Envoy's credential_injectors set before translate.
fn try_with(provider: &str, keys: &[(&str, &str)]) -> FakeHost {
    let body = r#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#;
    let model = if provider == "bedrock" {
        "anthropic.claude-3-haiku-20240307-v1:0"
    } else {
        "m"
    };
    let mut host = FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/chat/completions")
        .with_request_header("authorization", "Bearer client-key")
        .with_provider(provider)
        .with_upstream_model(model)
        .with_request_body(body.as_bytes().to_vec());
    for (name, value) in keys {
        host = host.with_request_header(name, value);
    }
    let mut filter = TranslateRoot::configure(CONFIG.as_bytes(), &no_env)
        .unwrap()
        .new_filter();
    if filter.on_request_headers(&mut host, false) == Flow::Pause {
        let size = host.request_body.len();
        filter.on_request_body(&mut host, size, true);
    }
    host
}

const BOTH: [(&str, &str); 2] = [
    ("x-llmgw-key-openai", "sk-openai-1"),
    ("x-llmgw-key-anthropic", "sk-ant-1"),
];

#[test]
fn each_try_sends_the_key_its_header_holds_now() {
    let host = try_with("openai", &[("x-llmgw-key-openai", "sk-openai-1")]);
    assert_eq!(host.req("authorization"), Some("Bearer sk-openai-1"));
    // The secret was rotated: the next try carries the new key, no reconfiguration.
    let host = try_with("openai", &[("x-llmgw-key-openai", " sk-openai-2 ")]);
    assert_eq!(host.req("authorization"), Some("Bearer sk-openai-2"));
}

#[test]
fn a_fallback_try_gets_its_own_providers_key_and_no_key_header_leaves() {
    let host = try_with("anthropic", &BOTH);
    assert_eq!(host.req("x-api-key"), Some("sk-ant-1"));
    assert_eq!(host.req("authorization"), None);
    let host2 = try_with("openai", &BOTH);
    assert_eq!(host2.req("authorization"), Some("Bearer sk-openai-1"));
    assert_eq!(host2.req("x-api-key"), None);
    for host in [host, host2] {
        let leaked: Vec<_> = host
            .request_headers
            .iter()
            .filter(|(n, _)| n.starts_with("x-llmgw-"))
            .collect();
        assert!(leaked.is_empty(), "{leaked:?}");
    }
}

#[test]
fn an_empty_key_header_is_a_500_naming_the_header_not_a_key() {
    for keys in [&[][..], &[("x-llmgw-key-openai", " ")][..], &BOTH[1..]] {
        let host = try_with("openai", keys);
        let reply = host.local_response.as_ref().expect("answered locally");
        assert_eq!(reply.status, 500);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "provider_credentials_unavailable");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("x-llmgw-key-openai"), "{message}");
        assert!(!message.contains("sk-"), "{message}");
    }
}

#[test]
fn key_header_refusals_name_the_field() {
    let cases = [
        (
            r#"{"name":"o","schema":"openai","key_env":"K","key_header":"x-llmgw-key"}"#,
            "not both",
        ),
        (
            r#"{"name":"o","schema":"openai","key_header":"authorization"}"#,
            "must be a header name starting with `x-llmgw-`",
        ),
        (
            r#"{"name":"o","schema":"openai","key_header":"x-llmgw-"}"#,
            "must be a header name",
        ),
        (
            r#"{"name":"o","schema":"openai","key_header":"x-llmgw-key openai"}"#,
            "must be a header name",
        ),
        (
            r#"{"name":"o","schema":"openai","auth":"none","key_header":"x-llmgw-key"}"#,
            "must be absent",
        ),
        (
            r#"{"name":"b","schema":"bedrock","region":"us-east-1","key_header":"x-llmgw-key","secret_key_env":"S"}"#,
            "not both",
        ),
    ];
    for (provider, reason) in cases {
        let json = format!(r#"{{"providers":[{provider}]}}"#);
        let err = TranslateRoot::configure(json.as_bytes(), &no_env).unwrap_err();
        assert_eq!(err.path, "providers[0].key_header", "{provider}: {err:?}");
        assert!(err.reason.contains(reason), "{provider}: {err:?}");
    }
}

#[test]
fn a_key_header_provider_needs_no_environment_and_shows_no_key() {
    let root = TranslateRoot::configure(CONFIG.as_bytes(), &no_env).unwrap();
    let anthropic = &root.providers()[1];
    assert_eq!(
        anthropic.key_header.as_deref(),
        Some("x-llmgw-key-anthropic")
    );
    assert_eq!(anthropic.key.expose(), "");
}

#[test]
fn bedrock_signs_each_try_with_the_credentials_its_header_holds_now() {
    for (value, key_id, token) in [
        ("AKIDFIRST:secret-1", "AKIDFIRST", None),
        ("ASIASECOND:secret-2:token-2", "ASIASECOND", Some("token-2")),
    ] {
        let host = try_with("bedrock", &[("x-llmgw-key-bedrock", value)]);
        assert!(host.local_response.is_none(), "{:?}", host.local_response);
        let authorization = host.req("authorization").unwrap_or_default();
        assert!(
            authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={key_id}/")),
            "{authorization}"
        );
        assert_eq!(host.req("x-amz-security-token"), token);
        assert_eq!(host.req("x-llmgw-key-bedrock"), None);
    }
}

#[test]
fn a_malformed_bedrock_header_is_a_500_that_shows_no_part_of_it() {
    for value in [
        "AKIDONLY",
        "AKIDX::",
        ":sekrit",
        "AKIDX:sekrit:t:d",
        "AKIDX:sekrit:",
    ] {
        let host = try_with("bedrock", &[("x-llmgw-key-bedrock", value)]);
        let reply = host.local_response.as_ref().expect("answered locally");
        assert_eq!(reply.status, 500, "{value}");
        let message = reply.json()["error"]["message"].to_string();
        assert!(message.contains("x-llmgw-key-bedrock"), "{message}");
        assert!(
            !message.contains("AKID") && !message.contains("sekrit"),
            "{message}"
        );
    }
}
