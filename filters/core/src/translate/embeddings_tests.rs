//! Gemini API and Vertex AI embeddings, Azure OpenAI embeddings and Azure error bodies: golden
//! fixtures (`fixtures/translate/embeddings/*gemini*`, `*vertex*`, `openai_azure/`) and
//! filter-level tests with the fake host (key headers, paths set once the body was read).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::json;

use super::embeddings::GeminiEmbeddings;
use super::golden::{check_errors, json_bytes, respond};
use super::openai_gemini::Endpoint;
use super::options::VertexBackend;
use super::*;
use crate::testing::FakeHost;

fn vertex() -> Endpoint {
    Endpoint::Vertex(VertexBackend {
        project: "proj-1".into(),
        region: "europe-west4".into(),
    })
}

// ---------------------------------------------------------------------------------------------
// Golden: Gemini API and Vertex AI embeddings

#[test]
fn google_embeddings_requests_and_responses() {
    let cases = [
        (
            "gemini one input",
            Endpoint::AiStudio,
            "gemini-embedding-001",
            fixture!("embeddings", "request_gemini_one.in.json"),
            fixture!("embeddings", "request_gemini_one.out.json"),
            "/v1beta/models/gemini-embedding-001:embedContent",
            fixture!("embeddings", "response_gemini_one.in.json"),
            fixture!("embeddings", "response_gemini_one.out.json"),
        ),
        (
            "gemini several inputs",
            Endpoint::AiStudio,
            "gemini-embedding-001",
            fixture!("embeddings", "request_gemini_batch.in.json"),
            fixture!("embeddings", "request_gemini_batch.out.json"),
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
            fixture!("embeddings", "response_gemini_batch.in.json"),
            fixture!("embeddings", "response_gemini_batch.out.json"),
        ),
        (
            "vertex",
            vertex(),
            "text-embedding-005",
            fixture!("embeddings", "request_vertex.in.json"),
            fixture!("embeddings", "request_vertex.out.json"),
            "/v1/projects/proj-1/locations/europe-west4/publishers/google/models/text-embedding-005:predict",
            fixture!("embeddings", "response_vertex.in.json"),
            fixture!("embeddings", "response_vertex.out.json"),
        ),
    ];
    for (name, endpoint, model, req_in, req_out, path, resp_in, resp_out) in cases {
        let mut t = GeminiEmbeddings::new(endpoint);
        let body = t
            .request_body(req_in.as_bytes(), Some(model))
            .unwrap()
            .unwrap();
        assert_eq!(json_bytes(&body), json_bytes(req_out.as_bytes()), "{name}");
        assert_eq!(t.request_path().as_deref(), Some(path), "{name}");
        let plan = t.response_headers(200, Some("application/json; charset=UTF-8"), false, 0);
        assert_eq!(plan.mode, ResponseMode::Buffer, "{name}");
        let out = t.response_body(resp_in.as_bytes());
        assert_eq!(out.status, None, "{name}");
        let want = json_bytes(resp_out.as_bytes());
        assert_eq!(json_bytes(&out.body), want, "{name}");
        assert_eq!(
            t.usage().map(|u| (u.prompt_tokens, u.completion_tokens)),
            Some((want["usage"]["prompt_tokens"].as_u64().unwrap(), 0)),
            "{name}"
        );
    }
}

#[test]
fn google_embeddings_base64_matches_openai_encoding() {
    let mut t = GeminiEmbeddings::new(Endpoint::AiStudio);
    t.request_body(
        br#"{"model":"m","input":"x","encoding_format":"base64"}"#,
        None,
    )
    .unwrap();
    t.response_headers(200, Some("application/json"), false, 0);
    let out = t.response_body(br#"{"embedding":{"values":[1.0,2.0]}}"#);
    // 1.0f32, 2.0f32 little-endian = 00 00 80 3f 00 00 00 40.
    assert_eq!(
        json_bytes(&out.body)["data"][0]["embedding"],
        "AACAPwAAAEA="
    );
}

#[test]
fn google_embeddings_refusals_name_the_field() {
    let cases = [
        (r#"{"model":"m","input":[1,2,3]}"#, "input"),
        (r#"{"model":"m","input":[[1,2],[3]]}"#, "input"),
        (r#"{"model":"m","input":[]}"#, "input"),
        (r#"{"model":"m","input":["a",""]}"#, "input"),
        (
            r#"{"model":"m","input":"a","encoding_format":"int8"}"#,
            "encoding_format",
        ),
        (
            r#"{"model":"m","input":"a","input_type":"query"}"#,
            "input_type",
        ),
        (r#"{"model":"../x","input":"a"}"#, "model"),
        (r#"{"input":"a"}"#, "model"),
    ];
    for endpoint in [Endpoint::AiStudio, vertex()] {
        for (body, param) in cases {
            let mut t = GeminiEmbeddings::new(endpoint.clone());
            let err = t.request_body(body.as_bytes(), None).unwrap_err();
            assert_eq!(err.status, 400, "{body}");
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
        }
    }
}

#[test]
fn google_embeddings_errors_and_short_answers() {
    let mut t = GeminiEmbeddings::new(Endpoint::AiStudio);
    t.request_body(br#"{"model":"m","input":["a","b"]}"#, None)
        .unwrap();
    t.response_headers(429, Some("application/json"), false, 0);
    let out = t.response_body(fixture!("openai_gemini", "error_rate_limit.in.json").as_bytes());
    assert_eq!(out.status, None, "the 429 stays a 429");
    assert_eq!(json_bytes(&out.body)["error"]["type"], "rate_limit_error");
    assert_eq!(t.usage(), None);

    // One vector for two inputs would pair vectors with the wrong texts: a 502, not a list.
    let mut t = GeminiEmbeddings::new(Endpoint::AiStudio);
    t.request_body(br#"{"model":"m","input":["a","b"]}"#, None)
        .unwrap();
    t.response_headers(200, Some("application/json"), false, 0);
    let out = t.response_body(br#"{"embeddings":[{"values":[0.1]}]}"#);
    assert_eq!(out.status, Some(502));
    assert_eq!(
        json_bytes(&out.body)["error"]["code"],
        "upstream_unreadable"
    );
}

// ---------------------------------------------------------------------------------------------
// Golden: Azure errors

#[test]
fn azure_errors_become_openai_errors_with_the_same_status() {
    let cases = [
        (
            429,
            429,
            fixture!("openai_azure", "error_rate_limit.in.json"),
            fixture!("openai_azure", "error_rate_limit.out.json"),
        ),
        (
            400,
            400,
            fixture!("openai_azure", "error_content_filter.in.json"),
            fixture!("openai_azure", "error_content_filter.out.json"),
        ),
        (
            404,
            404,
            fixture!("openai_azure", "error_deployment_not_found.in.json"),
            fixture!("openai_azure", "error_deployment_not_found.out.json"),
        ),
        (
            401,
            401,
            fixture!("openai_azure", "error_unauthorized.in.json"),
            fixture!("openai_azure", "error_unauthorized.out.json"),
        ),
    ];
    check_errors(&cases, |status, input| {
        let mut t = openai_azure::OpenAiAzure::new(
            options::AzureBackend {
                api_version: "2024-10-21".into(),
                deployments: Default::default(),
            },
            openai_azure::Operation::ChatCompletions,
            Some("gpt-4o"),
            Vec::new(),
        );
        respond(&mut t, status, "application/json", input)
    });
}

// ---------------------------------------------------------------------------------------------
// Through the filter

// The providers of `provider_tests` (Azure maps `gpt-4o` to deployment `prod-4o`).
use super::provider_tests::root;

fn embed(provider: &str, upstream_model: &str, body: &str) -> FakeHost {
    let mut host = FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/embeddings")
        .with_request_header("content-length", &body.len().to_string())
        .with_request_header("authorization", "Bearer client-key")
        .with_provider(provider)
        .with_upstream_model(upstream_model)
        .with_request_body(body.as_bytes().to_vec());
    let mut filter = root().new_filter();
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    let size = host.request_body.len();
    assert_eq!(
        filter.on_request_body(&mut host, size, true),
        Flow::Continue
    );
    host
}

#[test]
fn gemini_embeddings_get_the_key_header_and_method_path() {
    let host = embed(
        "gemini",
        "gemini-embedding-001",
        r#"{"model":"emb","input":["a","b"]}"#,
    );
    assert_eq!(host.req("x-goog-api-key"), Some("gemini-secret"));
    assert_eq!(host.req("authorization"), None);
    assert_eq!(
        host.req(":path"),
        Some("/v1beta/models/gemini-embedding-001:batchEmbedContents")
    );
    assert_eq!(
        json_bytes(&host.request_body)["requests"][1]["model"],
        "models/gemini-embedding-001"
    );
    assert_eq!(
        host.req("content-length"),
        Some(host.request_body.len().to_string().as_str())
    );
}

#[test]
fn vertex_embeddings_get_the_bearer_token_and_predict_path() {
    let host = embed("vertex", "text-embedding-005", r#"{"input":"a"}"#);
    assert_eq!(host.req("authorization"), Some("Bearer ya29.vertex-secret"));
    assert_eq!(
        host.req(":path"),
        Some("/v1/projects/proj-1/locations/europe-west4/publishers/google/models/text-embedding-005:predict")
    );
    assert_eq!(
        json_bytes(&host.request_body),
        json!({"instances":[{"content":"a"}]})
    );
}

#[test]
fn azure_embeddings_use_the_deployment_and_api_key() {
    let host = embed(
        "azure",
        "gpt-4o",
        r#"{"model":"small","input":"a","dimensions":8}"#,
    );
    assert_eq!(host.req("api-key"), Some("azure-secret"));
    assert_eq!(host.req("authorization"), None);
    assert_eq!(
        host.req(":path"),
        Some("/openai/deployments/prod-4o/embeddings?api-version=2024-10-21")
    );
    // Azure takes OpenAI's body: only the model name is the upstream one.
    assert_eq!(
        json_bytes(&host.request_body),
        json!({"model":"gpt-4o","input":"a","dimensions":8})
    );
}

#[test]
fn token_arrays_are_refused_before_leaving() {
    let body = r#"{"model":"m","input":[[1,2,3]]}"#;
    let mut host = FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/embeddings")
        .with_provider("gemini")
        .with_request_header("authorization", "Bearer client-key")
        .with_request_body(body.as_bytes().to_vec());
    let mut filter = root().new_filter();
    filter.on_request_headers(&mut host, false);
    let size = host.request_body.len();
    assert_eq!(filter.on_request_body(&mut host, size, true), Flow::Pause);
    let reply = host.local_response.unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["param"], "input");
}
