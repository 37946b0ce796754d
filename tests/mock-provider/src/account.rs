//! The account headers real providers send with every answer (errors too): the gateway must
//! keep them from its clients (README, "Provider errors and headers"). Names and value shapes
//! from the providers' documentation:
//! - OpenAI: <https://platform.openai.com/docs/api-reference/debugging-requests> (organization,
//!   project, processing time, version, `x-request-id`) and
//!   <https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers>;
//! - Anthropic: <https://docs.anthropic.com/en/api/rate-limits#response-headers> and
//!   `request-id` (<https://docs.anthropic.com/en/api/errors#request-id>), the organisation in
//!   `anthropic-organization-id`;
//! - Azure OpenAI: `apim-request-id`, `x-ms-region`, `x-ratelimit-remaining-*`;
//! - Amazon Bedrock: `x-amzn-requestid` (set by `bedrock.rs`).

use hyper::header::{HeaderName, HeaderValue};
use hyper::Response;

use crate::body::MockBody;

/// OpenAI's, as a recorded api.openai.com answer has them (`scenario::OPENAI_HEADERS` names the
/// recording; the fake-host scenarios answer with the same headers).
const OPENAI: &[(&str, &str)] = &llmgw_core::testing::scenario::OPENAI_HEADERS;

const ANTHROPIC: &[(&str, &str)] = &[
    (
        "anthropic-organization-id",
        "00000000-0000-4000-8000-000000000000",
    ),
    ("anthropic-ratelimit-requests-limit", "4000"),
    ("anthropic-ratelimit-requests-remaining", "3999"),
    ("anthropic-ratelimit-requests-reset", "2026-01-01T00:00:00Z"),
    ("anthropic-ratelimit-tokens-limit", "400000"),
    ("anthropic-ratelimit-tokens-remaining", "399990"),
    ("cf-ray", "8f00000000000001-SJC"),
];

const AZURE: &[(&str, &str)] = &[
    ("apim-request-id", "00000000-0000-4000-8000-0000000000a2"),
    ("x-ms-region", "East US"),
    ("x-ratelimit-remaining-requests", "99"),
    ("x-ratelimit-remaining-tokens", "99990"),
];

/// Adds the account headers of the API `path` belongs to (none for Gemini, Vertex, local).
pub fn add(path: &str, id: u64, resp: &mut Response<MockBody>) {
    let (fixed, request_id_header): (&[(&str, &str)], Option<&'static str>) = match path {
        "/v1/chat/completions" | "/v1/embeddings" => (OPENAI, Some("x-request-id")),
        "/v1/messages" => (ANTHROPIC, Some("request-id")),
        p if p.starts_with("/openai/deployments/") => (AZURE, None),
        _ => return,
    };
    let headers = resp.headers_mut();
    for (name, value) in fixed {
        // `append`: a name listed twice (`set-cookie`) is sent twice, as OpenAI does.
        headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if let Some(name) = request_id_header {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            if let Ok(value) = HeaderValue::from_str(&format!("req_mock{id:016x}")) {
                headers.insert(name, value);
            }
        }
    }
}
