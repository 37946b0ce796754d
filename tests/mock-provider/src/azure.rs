//! `POST /openai/deployments/{deployment}/chat/completions?api-version=…`, strict like Azure
//! OpenAI (<https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference>): the key in
//! the `api-key` header, `api-version` required, the deployment in the path; the body and the
//! answers are OpenAI's (shared with the OpenAI mock, which names itself `azure` here).

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use serde_json::json;

use crate::body::MockBody;
use crate::{header_str, json_response, leak_check, openai, State};

/// The deployment named in `path`, if `path` is a chat completions path.
pub fn deployment(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/openai/deployments/")?;
    let deployment = rest.strip_suffix("/chat/completions")?;
    (!deployment.is_empty() && !deployment.contains('/')).then_some(deployment)
}

fn azure_error(status: StatusCode, code: &str, message: &str) -> Response<MockBody> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

pub fn handle(
    state: &State,
    headers: &HeaderMap,
    query: Option<&str>,
    deployment: &str,
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
    match openai::chat(state, body, "azure", Some(deployment)) {
        Ok(r) | Err(r) => r,
    }
}
