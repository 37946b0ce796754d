//! Filter-level tests of the Gemini, Vertex, Azure and keyless OpenAI-compatible providers:
//! config, key headers, paths set once the body was read.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::testing::FakeHost;

const CONFIG: &str = r#"{"providers": [
  {"name": "gemini", "schema": "gemini", "key_env": "GEMINI_API_KEY"},
  {"name": "vertex", "schema": "vertex", "key_env": "VERTEX_TOKEN",
   "project": "proj-1", "region": "europe-west4"},
  {"name": "azure", "schema": "azure", "key_env": "AZURE_KEY",
   "deployments": {"gpt-4o": "prod-4o"}},
  {"name": "ollama", "schema": "openai", "auth": "none", "refuse_fields": ["logprobs"],
   "drop_fields": ["store"]},
  {"name": "gemini-lenient", "schema": "gemini", "key_env": "GEMINI_API_KEY",
   "drop_fields": ["logprobs", "temperature"]},
  {"name": "claude-lenient", "schema": "anthropic", "key_env": "GEMINI_API_KEY",
   "drop_fields": ["seed"]}
]}"#;

fn env(name: &str) -> Option<String> {
    match name {
        "GEMINI_API_KEY" => Some("gemini-secret".into()),
        "VERTEX_TOKEN" => Some("ya29.vertex-secret".into()),
        "AZURE_KEY" => Some("azure-secret".into()),
        _ => None,
    }
}

pub(super) fn root() -> TranslateRoot {
    TranslateRoot::configure(CONFIG.as_bytes(), &env).unwrap()
}

/// Sends a chat request through a fresh filter; returns the host afterwards.
fn send(provider: &str, upstream_model: Option<&str>, body: &str) -> FakeHost {
    let mut host = FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/chat/completions")
        .with_request_header("content-length", &body.len().to_string())
        .with_request_header("authorization", "Bearer client-key")
        .with_provider(provider)
        .with_request_body(body.as_bytes().to_vec());
    if let Some(model) = upstream_model {
        host = host.with_upstream_model(model);
    }
    let mut filter = root().new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    let size = host.request_body.len();
    filter.on_request_body(&mut host, size, true);
    host
}

const CHAT: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;

#[test]
fn config_compiles_each_backend() {
    let root = root();
    let backends: Vec<&Backend> = root.providers().iter().map(|p| &p.backend).collect();
    assert_eq!(backends[0], &Backend::Gemini);
    assert_eq!(
        backends[1],
        &Backend::Vertex(options::VertexBackend {
            project: "proj-1".into(),
            region: "europe-west4".into()
        })
    );
    assert!(
        matches!(backends[2], Backend::Azure(a) if a.api_version == options::AZURE_DEFAULT_API_VERSION)
    );
    assert_eq!(root.providers()[3].options.auth, options::Auth::None);
    assert_eq!(root.providers()[3].key.expose(), "");
}

#[test]
fn config_refusals_name_the_field() {
    let cases = [
        (
            r#"{"name":"v","schema":"vertex","key_env":"VERTEX_TOKEN","region":"us-central1"}"#,
            "providers[0].project",
            "required for schema `vertex`",
        ),
        (
            r#"{"name":"v","schema":"vertex","key_env":"VERTEX_TOKEN","project":"a/b","region":"r"}"#,
            "providers[0].project",
            "not a valid project",
        ),
        (
            r#"{"name":"o","schema":"openai","auth":"none","key_env":"AZURE_KEY"}"#,
            "providers[0].key_env",
            "must be absent",
        ),
        (
            r#"{"name":"o","schema":"openai"}"#,
            "providers[0].key_env",
            "required",
        ),
        (
            r#"{"name":"a","schema":"anthropic","auth":"none"}"#,
            "providers[0].auth",
            "only valid for schema",
        ),
        (
            r#"{"name":"g","schema":"gemini","key_env":"GEMINI_API_KEY","refuse_fields":["n"]}"#,
            "providers[0].refuse_fields",
            "only valid for schema `openai`",
        ),
        (
            r#"{"name":"g","schema":"gemini","key_env":"GEMINI_API_KEY","api_version":"1"}"#,
            "providers[0].api_version",
            "only valid for schema `azure`",
        ),
        (
            r#"{"name":"g","schema":"gemini","key_env":"GEMINI_API_KEY","base_path":"/x"}"#,
            "providers[0].base_path",
            "only valid for schema `openai`, this provider's schema is `gemini`",
        ),
        (
            r#"{"name":"v","schema":"vertex","key_env":"VERTEX_TOKEN","project":"p","region":"r","default_max_tokens":5}"#,
            "providers[0].default_max_tokens",
            "only valid for schema `anthropic`, this provider's schema is `vertex`",
        ),
        (
            r#"{"name":"z","schema":"azure","key_env":"AZURE_KEY","project":"p"}"#,
            "providers[0].project",
            "only valid for schema `vertex`, this provider's schema is `azure`",
        ),
        (
            r#"{"name":"a","schema":"anthropic","key_env":"ANTHROPIC_API_KEY","host":"h"}"#,
            "providers[0].host",
            "only valid for schema `bedrock`, this provider's schema is `anthropic`",
        ),
        (
            r#"{"name":"z","schema":"azure","key_env":"AZURE_KEY","deployments":{"m":"a b"}}"#,
            "providers[0].deployments.m",
            "not a deployment name",
        ),
        (
            r#"{"name":"o","schema":"openai","auth":"none","refuse_fields":["n"],"drop_fields":["n"]}"#,
            "providers[0].drop_fields",
            "also in refuse_fields",
        ),
        (
            r#"{"name":"o","schema":"openai","auth":"none","drop_fields":["model"]}"#,
            "providers[0].drop_fields[0]",
            "cannot be refused or dropped",
        ),
    ];
    for (provider, path, reason) in cases {
        let json = format!(r#"{{"providers":[{provider}]}}"#);
        let err = TranslateRoot::configure(json.as_bytes(), &env).unwrap_err();
        assert_eq!(err.path, path, "{provider}: {err:?}");
        assert!(err.reason.contains(reason), "{provider}: {err:?}");
    }
}

#[test]
fn gemini_gets_its_key_header_and_model_path() {
    let host = send("gemini", Some("gemini-2.5-flash"), CHAT);
    assert_eq!(host.req("x-goog-api-key"), Some("gemini-secret"));
    assert_eq!(host.req("authorization"), None);
    assert_eq!(
        host.req(":path"),
        Some("/v1beta/models/gemini-2.5-flash:generateContent")
    );
    let body: serde_json::Value = serde_json::from_slice(&host.request_body).unwrap();
    assert_eq!(body["contents"][0]["parts"][0]["text"], "Hi");
    assert_eq!(
        host.req("content-length"),
        Some(host.request_body.len().to_string().as_str())
    );
}

#[test]
fn vertex_gets_a_bearer_token_and_project_path() {
    let body =
        r#"{"model":"gemini-2.5-pro","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
    let host = send("vertex", None, body);
    assert_eq!(host.req("authorization"), Some("Bearer ya29.vertex-secret"));
    assert_eq!(
        host.req(":path"),
        Some("/v1/projects/proj-1/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse")
    );
}

#[test]
fn azure_gets_api_key_and_deployment_path() {
    let host = send("azure", Some("gpt-4o"), CHAT);
    assert_eq!(host.req("api-key"), Some("azure-secret"));
    assert_eq!(host.req("authorization"), None);
    assert_eq!(
        host.req(":path"),
        Some("/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21")
    );
}

#[test]
fn keyless_server_gets_no_credential_and_its_field_policy() {
    let host = send(
        "ollama",
        None,
        r#"{"model":"llama3.2","messages":[],"store":true}"#,
    );
    assert_eq!(host.req("authorization"), None);
    assert!(host.local_response.is_none());
    let body: serde_json::Value = serde_json::from_slice(&host.request_body).unwrap();
    assert!(body.get("store").is_none());
    let host = send(
        "ollama",
        None,
        r#"{"model":"llama3.2","messages":[],"logprobs":true}"#,
    );
    let reply = host.local_response.unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["param"], "logprobs");
}

#[test]
fn gemini_refusals_are_local_400s() {
    let body = r#"{"model":"g","messages":[{"role":"user","content":[
        {"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}"#;
    let host = send("gemini", None, body);
    let reply = host.local_response.unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["error"]["param"],
        "messages[0].content[0].image_url.url"
    );
    let host = send(
        "gemini",
        None,
        r#"{"model":"g","messages":[{"role":"user","content":"x"}],"n":3}"#,
    );
    assert_eq!(host.local_response.unwrap().json()["error"]["param"], "n");
}

#[test]
fn configured_drops_apply_to_translated_schemas_too() {
    let body = r#"{"model":"g","messages":[{"role":"user","content":"x"}],"logprobs":true,
        "temperature":0.3,"top_p":0.5}"#;
    let host = send("gemini-lenient", None, body);
    assert!(host.local_response.is_none());
    let sent: serde_json::Value = serde_json::from_slice(&host.request_body).unwrap();
    assert_eq!(sent["generationConfig"], serde_json::json!({"topP": 0.5}));
    // Without the drop, the same field is refused by name.
    let host = send("gemini", None, body);
    assert_eq!(
        host.local_response.unwrap().json()["error"]["param"],
        "logprobs"
    );

    let body = r#"{"model":"c","messages":[{"role":"user","content":"x"}],"seed":7}"#;
    let host = send("claude-lenient", None, body);
    assert!(host.local_response.is_none());
    let sent: serde_json::Value = serde_json::from_slice(&host.request_body).unwrap();
    assert!(sent.get("seed").is_none());
}
