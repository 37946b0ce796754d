//! Azure OpenAI, strict like the real one
//! (<https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference>):
//! `POST /openai/deployments/{deployment}/chat/completions` and `/embeddings`, the key in the
//! `api-key` header, `api-version` required, the deployment in the path; the bodies and
//! successful answers are OpenAI's (shared with the OpenAI mock, which names itself `azure`
//! here). Errors are Azure's own shape, `{"error":{"code","message"}}`: `[mock:status=NNN]`
//! answers 429 with code `"429"` and `retry-after: 7`, 400 as a content filter refusal
//! (`code: content_filter` with an `innererror`), others with Azure's codes.

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use crate::body::MockBody;
use crate::{header_str, json_response, leak_check, openai, set_header, status_from, State};

/// The Azure operations the mock serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ChatCompletions,
    Embeddings,
}

/// The deployment and operation named in `path`, if it is an Azure OpenAI path.
pub fn route(path: &str) -> Option<(&str, Operation)> {
    let rest = path.strip_prefix("/openai/deployments/")?;
    let (deployment, operation) = if let Some(d) = rest.strip_suffix("/chat/completions") {
        (d, Operation::ChatCompletions)
    } else {
        (rest.strip_suffix("/embeddings")?, Operation::Embeddings)
    };
    (!deployment.is_empty() && !deployment.contains('/')).then_some((deployment, operation))
}

fn azure_error(status: StatusCode, code: &str, message: &str) -> Response<MockBody> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// The error Azure answers with `code` as its status (`[mock:status=NNN]`).
pub fn status_error(code: u16) -> Response<MockBody> {
    let status = status_from(code);
    match code {
        429 => {
            let mut r = azure_error(
                status,
                "429",
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 7 seconds. (mock)",
            );
            set_header(&mut r, "retry-after", "7");
            set_header(&mut r, "retry-after-ms", "7000");
            r
        }
        400 => json_response(
            status,
            &json!({"error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. (mock)",
                "type": null, "param": "prompt", "code": "content_filter", "status": 400,
                "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
                    "hate": {"filtered": true, "severity": "high"},
                    "self_harm": {"filtered": false, "severity": "safe"},
                    "sexual": {"filtered": false, "severity": "safe"},
                    "violence": {"filtered": false, "severity": "safe"}}}}}),
        ),
        401 => azure_error(
            status,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. (mock)",
        ),
        404 => azure_error(
            status,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist. (mock)",
        ),
        500..=599 => azure_error(
            status,
            "InternalServerError",
            "The server had an error while processing your request. (mock)",
        ),
        _ => azure_error(status, "BadRequest", "Mock error."),
    }
}

pub fn handle(
    state: &State,
    headers: &HeaderMap,
    query: Option<&str>,
    (deployment, operation): (&str, Operation),
    body: &Bytes,
) -> Response<MockBody> {
    if let Some(msg) = leak_check(state, headers, body) {
        return azure_error(StatusCode::BAD_REQUEST, "BadRequest", &msg);
    }
    if headers.contains_key("authorization") {
        // A bearer token is an Entra ID token to Azure; a key in it is refused.
        return azure_error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint.",
        );
    }
    if header_str(headers, "api-key") != Some(state.azure_key.as_str()) {
        return azure_error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        );
    }
    let version = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="));
    if version.is_none_or(str::is_empty) {
        return azure_error(
            StatusCode::NOT_FOUND,
            "404",
            "Resource not found (api-version query parameter is required)",
        );
    }
    if deployment.starts_with("missing") {
        return azure_error(
            StatusCode::NOT_FOUND,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist.",
        );
    }
    let reply = match operation {
        Operation::ChatCompletions => openai::chat(state, body, "azure", Some(deployment)),
        Operation::Embeddings => crate::embeddings::embed(body, Some(deployment), status_error),
    };
    match reply {
        Ok(r) | Err(r) => r,
    }
}

// ---------------------------------------------------------------------------------------------
// The content filter's stream chunks (`[mock:content_filter=1]`), as Azure sends them
// (<https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter#streaming>,
// <https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-streaming>;
// recorded in lobehub/lobe-chat#2752): first a chunk with only the prompt's results and blank
// identity, then `content_filter_results` on each choice, and with the asynchronous filter an
// annotation chunk after the content, blank identity again and a choice without `delta`.

/// Every category passed.
pub fn safe_filter_results() -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe})
}

/// The stream's first chunk: the prompt's filter results, nothing else.
pub fn prompt_filter_chunk() -> Value {
    json!({
        "choices": [], "created": 0, "id": "", "model": "", "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": safe_filter_results()}]
    })
}

/// The asynchronous filter's verdict on the first `length` bytes of the answer.
pub fn annotation_chunk(length: usize) -> Value {
    json!({
        "choices": [{
            "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": length},
            "content_filter_results": safe_filter_results(),
            "finish_reason": null,
            "index": 0
        }],
        "created": 0, "id": "", "model": "", "object": ""
    })
}
