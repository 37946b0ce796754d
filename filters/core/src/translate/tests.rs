//! Filter-level tests with the fake host: config, headers, keys, paths, bodies, responses.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value};

use super::*;
use crate::testing::FakeHost;

const CONFIG: &str = r#"{"providers": [
  {"name": "openai", "schema": "openai", "key_env": "OPENAI_API_KEY"},
  {"name": "groq", "schema": "openai", "key_env": "GROQ_API_KEY", "base_path": "/openai/v1/"},
  {"name": "anthropic", "schema": "anthropic", "key_env": "ANTHROPIC_API_KEY",
   "anthropic_version": "2023-06-01", "default_max_tokens": 1024}
]}"#;

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-openai-secret".into()),
        "GROQ_API_KEY" => Some("gsk-groq-secret".into()),
        "ANTHROPIC_API_KEY" => Some("sk-ant-secret".into()),
        "EMPTY" => Some("  ".into()),
        _ => None,
    }
}

fn root() -> TranslateRoot {
    TranslateRoot::configure(CONFIG.as_bytes(), &env).unwrap()
}

fn refusal(json: &str) -> ConfigError {
    TranslateRoot::configure(json.as_bytes(), &env).unwrap_err()
}

fn chat_host(provider: &str, body: &str) -> FakeHost {
    FakeHost::new()
        .with_now_ms(1_700_000_000_123)
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/chat/completions")
        .with_request_header("content-type", "application/json")
        .with_request_header("content-length", &body.len().to_string())
        .with_request_header("authorization", "Bearer client-virtual-key")
        .with_request_header("x-api-key", "client-key")
        .with_request_header("api-key", "client-azure-key")
        .with_request_header("openai-organization", "org-client")
        .with_request_header("accept-encoding", "gzip")
        .with_consumer("alice")
        .with_provider(provider)
        .with_request_header("X-LLMGW-Something-New", "x")
        .with_request_body(body.as_bytes().to_vec())
}

/// Runs the request path to the end; returns the flows of headers and body.
fn send_request(filter: &mut TranslateFilter, host: &mut FakeHost) -> (Flow, Flow) {
    let headers = filter.on_request_headers(host, false);
    let size = host.request_body.len();
    let body = filter.on_request_body(host, size, true);
    (headers, body)
}

fn body_json(host: &FakeHost) -> Value {
    serde_json::from_slice(&host.request_body).unwrap()
}

fn no_reserved_headers(host: &FakeHost) -> bool {
    !host
        .request_headers
        .iter()
        .any(|(n, _)| facts::is_reserved_header(n))
}

const SIMPLE: &str =
    r#"{"model":"claude-3-5-haiku-latest","messages":[{"role":"user","content":"Hi"}]}"#;

// ---------------------------------------------------------------------------------------------
// Config

#[test]
fn config_compiles_with_defaults() {
    let root = TranslateRoot::configure(
        br#"{"providers":[{"name":"a","schema":"anthropic","key_env":"ANTHROPIC_API_KEY"},
                          {"name":"o","schema":"openai","key_env":"OPENAI_API_KEY"}]}"#,
        &env,
    )
    .unwrap();
    assert_eq!(
        root.providers()[0].backend,
        Backend::Anthropic {
            version: "2023-06-01".into(),
            default_max_tokens: 4096
        }
    );
    assert_eq!(
        root.providers()[1].backend,
        Backend::OpenAi {
            base_path: "/v1".into()
        }
    );
    let root = self::root();
    assert_eq!(
        root.providers()[1].backend,
        Backend::OpenAi {
            base_path: "/openai/v1".into()
        }
    );
}

#[test]
fn keys_never_show_in_debug_output() {
    let debug = format!("{:?}", root());
    assert!(!debug.contains("secret"), "{debug}");
    assert!(debug.contains("***"));
}

#[test]
fn config_refusals_name_the_field() {
    let cases = [
        (
            r#"{"providers":[]}"#,
            "providers",
            "at least one provider is required",
        ),
        (
            r#"{"providers":[{"name":"o","schema":"openai","key_env":"OPENAI_API_KEY"},
                {"name":"a","schema":"anthropic","key_env":"MISSING_KEY"}]}"#,
            "providers[1].key_env",
            "environment variable MISSING_KEY is not set or empty",
        ),
        (
            r#"{"providers":[{"name":"o","schema":"openai","key_env":"EMPTY"}]}"#,
            "providers[0].key_env",
            "environment variable EMPTY is not set or empty",
        ),
        (
            r#"{"providers":[{"name":"o","schema":"openai","key_env":"OPENAI_API_KEY"},
                {"name":"o","schema":"openai","key_env":"GROQ_API_KEY"}]}"#,
            "providers[1].name",
            "duplicate provider name `o` (also providers[0].name)",
        ),
        (
            r#"{"providers":[{"name":"o","schema":"openai","key_env":"OPENAI_API_KEY",
                "anthropic_version":"2023-06-01"}]}"#,
            "providers[0].anthropic_version",
            "only valid for schema `anthropic`, this provider's schema is `openai`",
        ),
        (
            r#"{"providers":[{"name":"o","schema":"openai","key_env":"OPENAI_API_KEY",
                "default_max_tokens":10}]}"#,
            "providers[0].default_max_tokens",
            "only valid for schema `anthropic`, this provider's schema is `openai`",
        ),
        (
            r#"{"providers":[{"name":"a","schema":"anthropic","key_env":"ANTHROPIC_API_KEY",
                "base_path":"/v2"}]}"#,
            "providers[0].base_path",
            "only valid for schema `openai`, this provider's schema is `anthropic`",
        ),
        (
            r#"{"providers":[{"name":"a","schema":"anthropic","key_env":"ANTHROPIC_API_KEY",
                "default_max_tokens":0}]}"#,
            "providers[0].default_max_tokens",
            "must be at least 1",
        ),
        (
            r#"{"providers":[{"name":"o","schema":"openai","key_env":"OPENAI_API_KEY",
                "base_path":"v1"}]}"#,
            "providers[0].base_path",
            "`v1` must be a path starting with `/`, without query",
        ),
        (
            r#"{"providers":[{"name":"","schema":"openai","key_env":"OPENAI_API_KEY"}]}"#,
            "providers[0].name",
            "must not be empty",
        ),
    ];
    for (json, path, reason) in cases {
        let err = refusal(json);
        assert_eq!(
            (err.path.as_str(), err.reason.as_str()),
            (path, reason),
            "{json}"
        );
    }
}

#[test]
fn config_refuses_unknown_fields_and_schemas_with_paths() {
    let err = refusal(
        r#"{"providers":[{"name":"o","schema":"openai","key_env":"OPENAI_API_KEY","kye":1}]}"#,
    );
    assert_eq!(err.path, "providers[0].kye");
    let err = refusal(r#"{"providers":[{"name":"g","schema":"palm","key_env":"K"}]}"#);
    assert_eq!(err.path, "providers[0].schema");
    assert!(
        err.reason.contains("unknown variant `palm`"),
        "{}",
        err.reason
    );
    let err = refusal(r#"{"provider":[]}"#);
    assert_eq!(err.path, "provider");
}

// ---------------------------------------------------------------------------------------------
// Request path

#[test]
fn anthropic_request_gets_its_key_path_and_body() {
    let mut filter = root().new_filter();
    let mut host = chat_host("anthropic", SIMPLE).with_upstream_model("claude-3-5-haiku-20241022");
    let (headers_flow, body_flow) = send_request(&mut filter, &mut host);
    assert_eq!((headers_flow, body_flow), (Flow::Pause, Flow::Continue));
    assert_eq!(filter.provider(), Some("anthropic"));

    assert_eq!(host.req("x-api-key"), Some("sk-ant-secret"));
    assert_eq!(host.req("anthropic-version"), Some("2023-06-01"));
    assert_eq!(host.req("authorization"), None);
    assert_eq!(host.req("api-key"), None);
    assert_eq!(host.req("accept-encoding"), None);
    assert!(no_reserved_headers(&host), "{:?}", host.request_headers);
    assert_eq!(host.req(":path"), Some("/v1/messages"));
    assert_eq!(
        body_json(&host),
        json!({"model":"claude-3-5-haiku-20241022","max_tokens":1024,
               "messages":[{"role":"user","content":"Hi"}]})
    );
    assert_eq!(
        host.req("content-length"),
        Some(host.request_body.len().to_string().as_str())
    );
    assert!(host.local_response.is_none());
}

#[test]
fn openai_request_gets_bearer_key_and_model_from_header() {
    let body = r#"{"model":"fast","messages":[{"role":"user","content":"Hi"}],"n":2}"#;
    let mut filter = root().new_filter();
    let mut host = chat_host("groq", body).with_upstream_model("llama-3.3-70b-versatile");
    send_request(&mut filter, &mut host);
    assert_eq!(host.req("authorization"), Some("Bearer gsk-groq-secret"));
    assert_eq!(host.req("x-api-key"), None);
    assert_eq!(host.req("api-key"), None);
    assert_eq!(host.req("openai-organization"), None);
    assert_eq!(host.req("anthropic-version"), None);
    assert!(no_reserved_headers(&host));
    assert_eq!(host.req(":path"), Some("/openai/v1/chat/completions"));
    assert_eq!(
        body_json(&host),
        json!({"model":"llama-3.3-70b-versatile","messages":[{"role":"user","content":"Hi"}],"n":2})
    );
    assert_eq!(
        host.req("content-length"),
        Some(host.request_body.len().to_string().as_str())
    );
}

#[test]
fn openai_request_without_upstream_model_is_not_rewritten() {
    let body = r#"{"model":"gpt-4o" , "messages":[]}"#;
    let mut filter = root().new_filter();
    let mut host = chat_host("openai", body);
    host.set_request_header(":path", "/v1/chat/completions?trace=1");
    send_request(&mut filter, &mut host);
    assert_eq!(host.request_body, body.as_bytes());
    assert_eq!(
        host.req("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(host.req(":path"), Some("/v1/chat/completions?trace=1"));
    assert_eq!(host.req("authorization"), Some("Bearer sk-openai-secret"));
}

#[test]
fn endpoint_metadata_beats_the_header() {
    let mut filter = root().new_filter();
    let mut host = chat_host("openai", SIMPLE).with_property(&PROVIDER_METADATA, b"\"anthropic\"");
    send_request(&mut filter, &mut host);
    assert_eq!(filter.provider(), Some("anthropic"));
    assert_eq!(host.req("x-api-key"), Some("sk-ant-secret"));
    assert_eq!(host.req("authorization"), None);
    assert_eq!(host.req(":path"), Some("/v1/messages"));
}

#[test]
fn unknown_or_missing_provider_is_a_500() {
    let check = |mut host: FakeHost| {
        let mut filter = root().new_filter();
        assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
        let reply = host.local_response.clone().unwrap();
        assert_eq!(reply.status, 500);
        assert_eq!(
            reply.json()["error"],
            json!({"message":"llmgw translate: no provider configured for this upstream",
                   "type":"api_error","param":null,"code":null})
        );
        // Nothing else happens for this try.
        let size = host.request_body.len();
        assert_eq!(
            filter.on_request_body(&mut host, size, true),
            Flow::Continue
        );
        assert_eq!(filter.on_response_headers(&mut host, false), Flow::Continue);
    };
    check(chat_host("mistral", SIMPLE));
    check(chat_host("openai", SIMPLE).with_property(&PROVIDER_METADATA, b"mistral"));
    check(chat_host("openai", SIMPLE).with_routed(|r| r.provider = None));
}

#[test]
fn a_single_provider_needs_no_header() {
    let root = TranslateRoot::configure(
        br#"{"providers":[{"name":"a","schema":"anthropic","key_env":"ANTHROPIC_API_KEY"}]}"#,
        &env,
    )
    .unwrap();
    let mut filter = root.new_filter();
    let mut host = chat_host("ignored", SIMPLE).with_routed(|r| r.provider = None);
    send_request(&mut filter, &mut host);
    assert_eq!(filter.provider(), Some("a"));
    assert_eq!(body_json(&host)["max_tokens"], 4096);
}

#[test]
fn body_is_awaited_until_end_of_stream() {
    let mut filter = root().new_filter();
    let mut host = chat_host("anthropic", SIMPLE);
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    assert_eq!(filter.on_request_body(&mut host, 10, false), Flow::Pause);
    assert_eq!(host.request_body, SIMPLE.as_bytes());
    // The headers waited with the body: they leave with the rewritten body's length.
    let size = host.request_body.len();
    assert_eq!(
        filter.on_request_body(&mut host, size, true),
        Flow::Continue
    );
    assert_ne!(host.request_body, SIMPLE.as_bytes());
    assert_eq!(
        host.req("content-length"),
        Some(host.request_body.len().to_string().as_str())
    );
}

#[test]
fn trailers_end_the_body_like_end_of_stream() {
    let mut filter = root().new_filter();
    let mut host = chat_host("anthropic", SIMPLE);
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    let size = host.request_body.len();
    assert_eq!(filter.on_request_body(&mut host, size, false), Flow::Pause);
    assert_eq!(filter.on_request_trailers(&mut host), Flow::Continue);
    assert_eq!(host.req(":path"), Some("/v1/messages"));
    assert_eq!(body_json(&host)["max_tokens"], 1024);
    assert_eq!(
        host.req("content-length"),
        Some(host.request_body.len().to_string().as_str())
    );
}

#[test]
fn other_paths_pass_through_for_openai_and_404_for_anthropic() {
    let mut filter = root().new_filter();
    let mut host = FakeHost::new()
        .with_request_header(":method", "GET")
        .with_request_header(":path", "/v1/models?limit=2")
        .with_request_header("authorization", "Bearer client")
        .with_provider("groq");
    assert_eq!(filter.on_request_headers(&mut host, true), Flow::Continue);
    assert_eq!(host.req(":path"), Some("/openai/v1/models?limit=2"));
    assert_eq!(host.req("authorization"), Some("Bearer gsk-groq-secret"));
    assert!(no_reserved_headers(&host));
    // The answer is not read.
    host.response_headers = vec![(":status".into(), "200".into())];
    assert_eq!(filter.on_response_headers(&mut host, false), Flow::Continue);
    assert_eq!(filter.on_response_body(&mut host, 0, true), Flow::Continue);

    let mut filter = root().new_filter();
    let mut host = FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/embeddings")
        .with_provider("anthropic");
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    let reply = host.local_response.unwrap();
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["type"], "not_found_error");
    assert_eq!(
        reply.json()["error"]["message"],
        "`/v1/embeddings` is not supported by provider anthropic"
    );
}

fn refused(provider: &str, body: &str) -> LocalResponseView {
    let mut filter = root().new_filter();
    let mut host = chat_host(provider, body);
    let (_, flow) = send_request(&mut filter, &mut host);
    assert_eq!(flow, Flow::Pause);
    let reply = host.local_response.unwrap();
    let json = reply.json();
    LocalResponseView {
        status: reply.status,
        kind: json["error"]["type"].as_str().unwrap_or_default().into(),
        param: json["error"]["param"].as_str().map(str::to_string),
        message: json["error"]["message"].as_str().unwrap_or_default().into(),
    }
}

#[derive(Debug)]
struct LocalResponseView {
    status: u16,
    kind: String,
    param: Option<String>,
    message: String,
}

#[test]
fn malformed_json_is_a_400() {
    for provider in ["anthropic", "openai"] {
        let mut filter = root().new_filter();
        let mut host = chat_host(provider, "{\"model\": ").with_upstream_model("m");
        send_request(&mut filter, &mut host);
        let reply = host.local_response.unwrap();
        assert_eq!(reply.status, 400, "{provider}");
        assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    }
}

#[test]
fn what_anthropic_cannot_honour_is_refused_by_name() {
    let base = r#""model":"m","messages":[{"role":"user","content":"Hi"}]"#;
    let cases = [
        (r#""temperature":1.5"#, "temperature"),
        (r#""n":2"#, "n"),
        (r#""logprobs":true"#, "logprobs"),
        (r#""top_logprobs":2"#, "top_logprobs"),
        (r#""presence_penalty":0.5"#, "presence_penalty"),
        (r#""frequency_penalty":-1"#, "frequency_penalty"),
        (r#""seed":42"#, "seed"),
        (r#""functions":[{"name":"f"}]"#, "functions"),
        (
            r#""tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}"#,
            "response_format",
        ),
        (r#""brand_new_option":true"#, "brand_new_option"),
    ];
    for (field, param) in cases {
        let view = refused("anthropic", &format!("{{{base},{field}}}"));
        assert_eq!(view.status, 400, "{field}");
        assert_eq!(view.kind, "invalid_request_error", "{field}");
        assert_eq!(view.param.as_deref(), Some(param), "{field}: {view:?}");
    }
    let view = refused(
        "anthropic",
        r#"{"model":"m","messages":[{"role":"user","content":"Hi"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"1"}]}]}"#,
    );
    assert_eq!(view.param.as_deref(), Some("messages[1].tool_calls"));
    let view = refused(
        "anthropic",
        r#"{"model":"m","messages":[{"role":"function","content":"x","name":"f"}]}"#,
    );
    assert_eq!(view.param.as_deref(), Some("messages[0].role"));
    let view = refused(
        "anthropic",
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}"#,
    );
    assert_eq!(view.param.as_deref(), Some("messages[0].content[0]"));
    let view = refused(
        "anthropic",
        r#"{"model":"m","messages":[{"role":"system","content":"s"}]}"#,
    );
    assert_eq!(view.param.as_deref(), Some("messages"));
    let view = refused(
        "anthropic",
        r#"{"messages":[{"role":"user","content":"Hi"}]}"#,
    );
    assert_eq!(view.param.as_deref(), Some("model"));
    let view = refused("anthropic", &format!("{{{base},\"temperature\":1.5}}"));
    assert!(view.message.contains("temperature"), "{}", view.message);
}

#[test]
fn defaults_sent_explicitly_are_accepted() {
    let body = r#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"n":1,
        "presence_penalty":0,"frequency_penalty":0.0,"logprobs":false,"tools":[],
        "tool_choice":"none","response_format":{"type":"text"},"seed":null,"temperature":1}"#;
    let mut filter = root().new_filter();
    let mut host = chat_host("anthropic", body);
    send_request(&mut filter, &mut host);
    assert!(host.local_response.is_none(), "{:?}", host.local_response);
    assert_eq!(body_json(&host)["temperature"], 1.0);
}

// ---------------------------------------------------------------------------------------------
// Response path

fn anthropic_try(body: &str) -> (TranslateFilter, FakeHost) {
    let mut filter = root().new_filter();
    let mut host = chat_host("anthropic", body);
    send_request(&mut filter, &mut host);
    assert!(host.local_response.is_none());
    (filter, host)
}

#[test]
fn anthropic_answer_is_translated_and_usage_recorded() {
    let (mut filter, mut host) = anthropic_try(SIMPLE);
    let answer = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022",
        "content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,
        "usage":{"input_tokens":12,"output_tokens":3}}"#;
    host.response_headers = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
        ("content-length".into(), answer.len().to_string()),
    ];
    host.response_body = answer.as_bytes().to_vec();
    // The headers wait for the body, which sets their length (checked below).
    assert_eq!(filter.on_response_headers(&mut host, false), Flow::Pause);
    assert_eq!(filter.on_response_body(&mut host, 10, false), Flow::Pause);
    assert_eq!(filter.usage(), None);
    let size = host.response_body.len();
    assert_eq!(
        filter.on_response_body(&mut host, size, true),
        Flow::Continue
    );
    let body: Value = serde_json::from_slice(&host.response_body).unwrap();
    assert_eq!(body["id"], "chatcmpl-msg_1");
    assert_eq!(body["created"], 1_700_000_000);
    assert_eq!(body["choices"][0]["message"]["content"], "Hello!");
    assert_eq!(
        host.resp("content-length"),
        Some(host.response_body.len().to_string().as_str())
    );
    assert_eq!(host.resp("content-type"), Some("application/json"));
    let usage = filter.usage().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (12, 3, 15)
    );
}

#[test]
fn anthropic_529_becomes_503() {
    let (mut filter, mut host) = anthropic_try(SIMPLE);
    let answer = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    host.response_headers = vec![
        (":status".into(), "529".into()),
        ("content-type".into(), "application/json".into()),
    ];
    host.response_body = answer.as_bytes().to_vec();
    assert_eq!(filter.on_response_headers(&mut host, false), Flow::Pause);
    assert_eq!(host.resp(":status"), Some("503"));
    let size = host.response_body.len();
    filter.on_response_body(&mut host, size, true);
    assert_eq!(host.resp(":status"), Some("503"));
    let body: Value = serde_json::from_slice(&host.response_body).unwrap();
    assert_eq!(body["error"]["code"], "overloaded_error");
}

#[test]
fn anthropic_unreadable_answer_becomes_502() {
    let (mut filter, mut host) = anthropic_try(SIMPLE);
    host.response_headers = vec![(":status".into(), "200".into())];
    host.response_body = b"<html>oops</html>".to_vec();
    filter.on_response_headers(&mut host, false);
    filter.on_response_body(&mut host, 17, true);
    assert_eq!(host.resp(":status"), Some("502"));
    let body: Value = serde_json::from_slice(&host.response_body).unwrap();
    assert_eq!(body["error"]["type"], "api_error");
}

#[test]
fn anthropic_stream_is_translated_piece_by_piece() {
    let request = r#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true,
        "stream_options":{"include_usage":true}}"#;
    let (mut filter, mut host) = anthropic_try(request);
    assert_eq!(body_json(&host)["stream"], true);
    host.response_headers = vec![
        (":status".into(), "200".into()),
        (
            "content-type".into(),
            "text/event-stream; charset=utf-8".into(),
        ),
    ];
    assert_eq!(filter.on_response_headers(&mut host, false), Flow::Continue);
    assert_eq!(host.resp("content-type"), Some("text/event-stream"));
    let stream = include_str!("../../fixtures/translate/openai_anthropic/stream_basic.in.sse");
    let mut out = Vec::new();
    // Pieces of 7 bytes: frames split mid-line and mid-field.
    let pieces: Vec<&[u8]> = stream.as_bytes().chunks(7).collect();
    for (i, piece) in pieces.iter().enumerate() {
        host.response_body = piece.to_vec();
        let flow = filter.on_response_body(&mut host, piece.len(), i + 1 == pieces.len());
        assert_eq!(flow, Flow::Continue);
        out.extend_from_slice(&host.response_body);
    }
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("data: {"), "{text}");
    assert!(text.contains(r#""content":"Hello""#), "{text}");
    assert!(text.contains(r#""usage":null"#), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(filter.usage().map(|u| u.total_tokens), Some(40));
}

/// A streamed try of `provider` with usage forced by ratelimit (the client did not ask): what
/// the client receives, fed in pieces of `step`, and the host after it.
fn forced_usage_stream(provider: &str, stream: &str, step: usize) -> (String, FakeHost) {
    let request = r#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
    let mut filter = root().new_filter();
    let mut host = chat_host(provider, request)
        .with_stream_usage(false)
        .with_fact(&crate::facts::RateLimitFacts { force_usage: true });
    send_request(&mut filter, &mut host);
    if provider == "openai" {
        assert_eq!(body_json(&host)["stream_options"]["include_usage"], true);
    }
    host.response_headers = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "text/event-stream".into()),
    ];
    assert_eq!(filter.on_response_headers(&mut host, false), Flow::Continue);
    assert_eq!(
        host.fact::<UsageFact>(),
        Some(UsageFact::Pending),
        "translate says at the headers that it reports the usage"
    );
    let mut out = Vec::new();
    let pieces: Vec<&[u8]> = stream.as_bytes().chunks(step).collect();
    for (i, piece) in pieces.iter().enumerate() {
        host.response_body = piece.to_vec();
        filter.on_response_body(&mut host, piece.len(), i + 1 == pieces.len());
        out.extend_from_slice(&host.response_body);
    }
    (String::from_utf8(out).unwrap(), host)
}

fn usage_fact(host: &FakeHost) -> Option<Usage> {
    crate::facts::read_usage(host)
}

#[test]
fn forced_usage_is_handed_on_as_a_fact_and_its_chunk_dropped_by_translate() {
    let openai = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"total_tokens\":10}}\n\n",
        "data: [DONE]\n\n"
    );
    for step in [1, 7, openai.len()] {
        let (out, host) = forced_usage_stream("openai", openai, step);
        assert!(!out.contains("prompt_tokens"), "step {step}: {out}");
        assert!(out.contains("\"content\":\"Hi\""), "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
        assert_eq!(usage_fact(&host).map(|u| u.total_tokens), Some(10));
    }
    let anthropic = include_str!("../../fixtures/translate/openai_anthropic/stream_basic.in.sse");
    for step in [7, anthropic.len()] {
        let (out, host) = forced_usage_stream("anthropic", anthropic, step);
        assert!(!out.contains("prompt_tokens"), "{out}");
        assert!(!out.contains("\"usage\""), "the client did not ask: {out}");
        assert!(out.contains(r#""content":"Hello""#), "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
        assert_eq!(usage_fact(&host).map(|u| u.total_tokens), Some(40));
    }
}

#[test]
fn a_failed_answer_hands_on_no_usage_fact() {
    let (mut filter, mut host) = anthropic_try(SIMPLE);
    host.response_headers = vec![
        (":status".into(), "529".into()),
        ("content-type".into(), "application/json".into()),
    ];
    filter.on_response_headers(&mut host, false);
    assert_eq!(host.fact::<UsageFact>(), None);
}

#[test]
fn openai_answers_pass_untouched_but_streams_are_watched() {
    let body = r#"{"model":"gpt-4o","messages":[]}"#;
    let mut filter = root().new_filter();
    let mut host = chat_host("openai", body);
    send_request(&mut filter, &mut host);
    host.response_headers = vec![
        (":status".into(), "429".into()),
        ("content-type".into(), "application/json".into()),
        ("content-length".into(), "20".into()),
    ];
    assert_eq!(filter.on_response_headers(&mut host, false), Flow::Continue);
    assert_eq!(host.resp("content-length"), Some("20"));
    host.response_body = b"{\"error\":{\"x\":1}}   ".to_vec();
    assert_eq!(filter.on_response_body(&mut host, 20, true), Flow::Continue);
    assert_eq!(host.response_body, b"{\"error\":{\"x\":1}}   ");

    let mut filter = root().new_filter();
    let mut host = chat_host("openai", body);
    send_request(&mut filter, &mut host);
    host.response_headers = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "text/event-stream".into()),
    ];
    assert_eq!(filter.on_response_headers(&mut host, false), Flow::Continue);
    host.response_body = b"data: {\"choices\":[]}\n\n".to_vec();
    filter.on_response_body(&mut host, 22, false);
    assert_eq!(host.response_body, b"data: {\"choices\":[]}\n\n");
    host.response_body = Vec::new();
    filter.on_response_body(&mut host, 0, true);
    let tail = String::from_utf8(host.response_body.clone()).unwrap();
    assert!(tail.contains("upstream_stream_truncated"), "{tail}");
}

#[test]
fn anthropic_answer_without_body_still_gets_an_openai_one() {
    let (mut filter, mut host) = anthropic_try(SIMPLE);
    host.response_headers = vec![(":status".into(), "529".into())];
    assert_eq!(filter.on_response_headers(&mut host, true), Flow::Pause);
    let reply = host.local_response.clone().unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"]["type"], "service_unavailable_error");
    assert_eq!(filter.on_response_body(&mut host, 0, true), Flow::Continue);
}

#[test]
fn provider_metadata_without_quotes_and_a_non_chat_method() {
    // GET on the chat path is not a chat completion: Anthropic has nothing for it.
    let mut filter = root().new_filter();
    let mut host = FakeHost::new()
        .with_request_header(":method", "GET")
        .with_request_header(":path", "/v1/chat/completions")
        .with_property(&PROVIDER_METADATA, b"anthropic");
    assert_eq!(filter.on_request_headers(&mut host, true), Flow::Pause);
    assert_eq!(host.local_response.unwrap().status, 404);
}

#[test]
fn each_try_of_a_fallback_chain_gets_the_model_of_its_provider() {
    // router's chain header: openai first, anthropic on the retry (Envoy's aggregate cluster).
    let chain = "openai=gpt-4o-mini,anthropic=claude-3-5-haiku-20241022";
    for (provider, path, model) in [
        ("openai", "/v1/chat/completions", "gpt-4o-mini"),
        ("anthropic", "/v1/messages", "claude-3-5-haiku-20241022"),
    ] {
        let mut filter = root().new_filter();
        let mut host = chat_host("openai", SIMPLE)
            .with_property(&PROVIDER_METADATA, provider.as_bytes())
            .with_upstream_model("gpt-4o-mini")
            .with_routed(|r| r.targets = Some(chain.to_string()));
        send_request(&mut filter, &mut host);
        assert_eq!(filter.provider(), Some(provider));
        assert_eq!(host.req(":path"), Some(path));
        assert_eq!(body_json(&host)["model"], model, "{provider}");
        assert!(no_reserved_headers(&host));
    }
}

#[test]
fn media_types_match_case_insensitively_with_parameters() {
    assert!(has_media_type(
        Some("text/event-stream; charset=utf-8"),
        "text/event-stream"
    ));
    assert!(has_media_type(
        Some(" Application/JSON"),
        "application/json"
    ));
    assert!(!has_media_type(Some("text/plain"), "text/event-stream"));
    assert!(!has_media_type(Some("text"), "text/event-stream"));
    assert!(!has_media_type(
        Some("téxt/event-stream"),
        "text/event-stream"
    ));
    assert!(!has_media_type(None, "application/json"));
}

fn logged(host: &FakeHost, field: crate::access_log::Field) -> Option<String> {
    host.property(&[field.property()])
        .map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn a_finished_try_puts_its_tokens_cost_and_provider_in_the_access_log() {
    use crate::access_log::Field;
    let mut filter = root().new_filter();
    let mut host = chat_host("anthropic", SIMPLE)
        .with_upstream_model("claude-haiku-4-5")
        .with_team("research")
        .with_routed(|r| r.prices = Some("openai=0.15/0.6,anthropic=1/5".to_string()));
    send_request(&mut filter, &mut host);
    assert_eq!(logged(&host, Field::Provider).as_deref(), Some("anthropic"));
    assert_eq!(
        logged(&host, Field::Model).as_deref(),
        Some("claude-haiku-4-5")
    );
    assert_eq!(
        logged(&host, Field::TotalTokens),
        None,
        "not before the answer"
    );

    let answer = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5",
        "content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,
        "usage":{"input_tokens":1200,"output_tokens":300}}"#;
    host.response_headers = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
    ];
    host.response_body = answer.as_bytes().to_vec();
    filter.on_response_headers(&mut host, false);
    host.now_ms += 250;
    let size = host.response_body.len();
    filter.on_response_body(&mut host, size, true);

    assert_eq!(logged(&host, Field::InputTokens).as_deref(), Some("1200"));
    assert_eq!(logged(&host, Field::OutputTokens).as_deref(), Some("300"));
    assert_eq!(logged(&host, Field::TotalTokens).as_deref(), Some("1500"));
    // 1200 × $1/M + 300 × $5/M = $0.0012 + $0.0015.
    assert_eq!(
        logged(&host, Field::CostUsd).as_deref(),
        Some("0.002700000")
    );
    assert_eq!(
        logged(&host, Field::TimeToFirstTokenMs).as_deref(),
        Some("250")
    );
    assert_eq!(
        logged(&host, Field::Error),
        None,
        "no error, nothing logged"
    );

    filter.on_stream_done(&mut host);
    let cost = crate::metrics::stat_name(
        "llmgw_cost_usd_nanos_total",
        &[
            ("provider", "anthropic"),
            ("model", "claude-haiku-4-5"),
            ("consumer", "alice"),
            ("team", "research"),
        ],
    );
    assert_eq!(host.counter(&cost), Some(2_700_000));
}

#[test]
fn a_failed_try_logs_its_error_class_and_the_next_try_clears_it() {
    use crate::access_log::Field;
    let root = root();
    let mut host = chat_host("anthropic", SIMPLE).with_routed(|r| {
        r.targets = Some("anthropic=claude-haiku-4-5,openai=gpt-4o-mini".to_string())
    });
    let mut first = root.new_filter();
    send_request(&mut first, &mut host);
    host.response_headers = vec![(":status".into(), "429".into())];
    host.response_body =
        br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#.to_vec();
    first.on_response_headers(&mut host, false);
    let size = host.response_body.len();
    first.on_response_body(&mut host, size, true);
    assert_eq!(logged(&host, Field::Error).as_deref(), Some("rate_limited"));
    assert_eq!(logged(&host, Field::CostUsd), None, "no usage, no cost");

    // The retry reaches OpenAI (endpoint metadata) and succeeds.
    let mut retry = root.new_filter();
    let mut host = host.with_property(&PROVIDER_METADATA, b"openai");
    host.request_body = SIMPLE.as_bytes().to_vec();
    send_request(&mut retry, &mut host);
    assert_eq!(logged(&host, Field::Provider).as_deref(), Some("openai"));
    assert_eq!(logged(&host, Field::Model).as_deref(), Some("gpt-4o-mini"));
    host.response_headers = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
    ];
    host.response_body = br#"{"id":"c","object":"chat.completion","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}"#.to_vec();
    retry.on_response_headers(&mut host, false);
    let size = host.response_body.len();
    retry.on_response_body(&mut host, size, true);
    assert_eq!(
        logged(&host, Field::Error).as_deref(),
        Some(""),
        "the retry blanks it"
    );
    assert_eq!(logged(&host, Field::TotalTokens).as_deref(), Some("6"));
}

#[test]
fn a_local_reply_logs_its_error_code() {
    use crate::access_log::Field;
    let mut filter = root().new_filter();
    let mut host = chat_host("anthropic", r#"{"model":"m","messages":[],"n":3}"#);
    send_request(&mut filter, &mut host);
    let reply = host.local_response.clone().unwrap();
    assert_eq!(reply.status, 400);
    let code = reply.json()["error"]["code"]
        .as_str()
        .or(reply.json()["error"]["type"].as_str())
        .map(str::to_string);
    assert_eq!(logged(&host, Field::Error), code);
    filter.on_stream_done(&mut host);
    assert_eq!(
        logged(&host, Field::Error),
        code,
        "not overwritten when the try ends"
    );
}

// ---------------------------------------------------------------------------------------------
// The passthrough fast path: the body is neither buffered nor read when nothing in it changes.

/// An OpenAI-schema request as router hands it on, asking for `requested` and routed to
/// `upstream`.
fn routed_host(requested: &str, upstream: &str) -> FakeHost {
    chat_host("openai", SIMPLE)
        .with_routed(|r| r.requested_model = Some(requested.to_string()))
        .with_upstream_model(upstream)
}

#[test]
fn same_model_on_an_openai_backend_skips_the_body() {
    let mut filter = root().new_filter();
    let mut host = routed_host("claude-3-5-haiku-latest", "claude-3-5-haiku-latest");
    let length = SIMPLE.len().to_string();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Continue);
    // Not paused for the body: a first chunk passes on at once.
    assert_eq!(filter.on_request_body(&mut host, 10, false), Flow::Continue);
    assert_eq!(
        filter.on_request_body(&mut host, SIMPLE.len(), true),
        Flow::Continue
    );
    assert_eq!(host.request_body, SIMPLE.as_bytes());
    assert_eq!(host.req("content-length"), Some(length.as_str()));
    // Headers are handled as on the full path.
    assert_eq!(host.req(":path"), Some("/v1/chat/completions"));
    assert_eq!(host.req("authorization"), Some("Bearer sk-openai-secret"));
    assert_eq!(host.req("x-api-key"), None);
    assert_eq!(host.req("openai-organization"), None);
    assert_eq!(host.req("accept-encoding"), None);
    assert!(no_reserved_headers(&host));
    // The answer is still watched for usage.
    host.response_headers = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
    ];
    host.response_body =
        br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#
            .to_vec();
    assert_eq!(filter.on_response_headers(&mut host, false), Flow::Continue);
    let size = host.response_body.len();
    assert_eq!(
        filter.on_response_body(&mut host, size, true),
        Flow::Continue
    );
    assert_eq!(filter.usage().map(|u| u.prompt_tokens), Some(3));
}

#[test]
fn another_model_forced_usage_or_a_field_policy_reads_the_body() {
    // Router chose another name: the body is rewritten.
    let mut filter = root().new_filter();
    let mut host = routed_host("fast", "gpt-4o-mini");
    assert_eq!(
        send_request(&mut filter, &mut host),
        (Flow::Pause, Flow::Continue)
    );
    assert_eq!(body_json(&host)["model"], "gpt-4o-mini");
    assert_eq!(
        host.req("content-length"),
        Some(host.request_body.len().to_string().as_str())
    );

    // Same model, but ratelimit needs the stream's usage.
    let mut filter = root().new_filter();
    let model = "claude-3-5-haiku-latest";
    let mut host = routed_host(model, model)
        .with_stream_usage(false)
        .with_fact(&crate::facts::RateLimitFacts { force_usage: true });
    assert_eq!(
        send_request(&mut filter, &mut host),
        (Flow::Pause, Flow::Continue)
    );
    assert_eq!(body_json(&host)["stream_options"]["include_usage"], true);

    // Same model, but the provider drops a field.
    let config = r#"{"providers": [{"name": "openai", "schema": "openai",
        "key_env": "OPENAI_API_KEY", "drop_fields": ["user"]}]}"#;
    let root = TranslateRoot::configure(config.as_bytes(), &env).unwrap();
    let mut filter = root.new_filter();
    let body = r#"{"model":"m","messages":[],"user":"u1"}"#;
    let mut host = chat_host("openai", body)
        .with_routed(|r| r.requested_model = Some("m".to_string()))
        .with_upstream_model("m");
    assert_eq!(
        send_request(&mut filter, &mut host),
        (Flow::Pause, Flow::Continue)
    );
    assert_eq!(body_json(&host), json!({"model":"m","messages":[]}));
}

#[test]
fn a_retry_after_a_fast_first_try_skips_the_body_too() {
    let model = "claude-3-5-haiku-latest";
    let mut host = routed_host(model, model);
    let mut first = root().new_filter();
    assert_eq!(first.on_request_headers(&mut host, false), Flow::Continue);
    // The retry sees the header map as the first try left it, and router's facts as router
    // wrote them: the model is unchanged, so the body passes unread again.
    let mut retry = root().new_filter();
    assert_eq!(
        send_request(&mut retry, &mut host),
        (Flow::Continue, Flow::Continue)
    );
    assert_eq!(host.request_body, SIMPLE.as_bytes());
    assert_eq!(
        host.req("content-length"),
        Some(SIMPLE.len().to_string().as_str())
    );
    assert_eq!(retry.upstream_model.as_deref(), Some(model));
}

#[test]
fn without_router_the_body_is_read_to_compare_the_model() {
    let mut filter = root().new_filter();
    let mut host = chat_host("openai", SIMPLE).with_fact(&crate::facts::RouterFacts::default());
    host.properties.clear();
    assert_eq!(
        send_request(&mut filter, &mut host),
        (Flow::Pause, Flow::Continue)
    );
    assert_eq!(host.request_body, SIMPLE.as_bytes());
}
