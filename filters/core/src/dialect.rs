//! The client's API dialect: which API the client speaks, learnt from the request's `:path`.
//!
//! Every filter that answers a request itself (auth's 401, router's 400/404, ratelimit's 429,
//! translate's 4xx/5xx) answers in the client's dialect, so the client's SDK raises its own
//! typed error: OpenAI's `{"error":{…}}` for Chat Completions and Responses, Anthropic's
//! `{"type":"error","error":{…}}` for Messages. Reading the dialect from `:path` costs nothing:
//! every filter reads `:path` already. translate also picks per try, from the dialect and the
//! provider's schema, either a passthrough (the client speaks the provider's own dialect) or a
//! client adapter around the Chat ↔ provider translator.

use serde::Serialize;

use crate::error::{ApiError, ErrorType};

/// The API a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientApi {
    /// OpenAI Chat Completions (`/v1/chat/completions`); also embeddings and `/v1/models`,
    /// whose errors are OpenAI's too.
    #[default]
    ChatCompletions,
    /// Anthropic Messages (`/v1/messages`, `/v1/messages/count_tokens`).
    Messages,
    /// OpenAI Responses (`/v1/responses`).
    Responses,
}

/// What the request asks of its API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Create a completion / message / response.
    Create,
    /// Count a request's input tokens without running it (`/v1/messages/count_tokens`).
    CountTokens,
}

/// `POST` paths of the client dialects.
pub const CHAT_COMPLETIONS: &str = "/v1/chat/completions";
pub const MESSAGES: &str = "/v1/messages";
pub const MESSAGES_COUNT_TOKENS: &str = "/v1/messages/count_tokens";
pub const RESPONSES: &str = "/v1/responses";

/// `path` without its query string or fragment. A byte search: `split(['?', '#'])` (a pattern
/// of chars) cost ~330 instructions a call, and every filter asks this of each request.
pub fn without_query(path: &str) -> &str {
    let end = path
        .bytes()
        .position(|b| b == b'?' || b == b'#')
        .unwrap_or(path.len());
    // `?` and `#` are ASCII, so `end` is a character boundary and `get` always succeeds.
    path.get(..end).unwrap_or(path)
}

impl ClientApi {
    /// The dialect and operation a request path names (query string ignored); `None` for
    /// every other path (embeddings, models and unknown ones).
    pub fn from_path(path: &str) -> Option<(ClientApi, Operation)> {
        match without_query(path) {
            CHAT_COMPLETIONS => Some((ClientApi::ChatCompletions, Operation::Create)),
            MESSAGES => Some((ClientApi::Messages, Operation::Create)),
            MESSAGES_COUNT_TOKENS => Some((ClientApi::Messages, Operation::CountTokens)),
            RESPONSES => Some((ClientApi::Responses, Operation::Create)),
            _ => None,
        }
    }

    /// The dialect a local answer to a request for `path` is rendered in: the path's dialect,
    /// also for paths under it that llmgw does not serve (`/v1/messages/batches` gets
    /// Anthropic's 404), else OpenAI's.
    pub fn for_errors(path: &str) -> ClientApi {
        if let Some((api, _)) = Self::from_path(path) {
            return api;
        }
        let path = without_query(path);
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under(MESSAGES) {
            ClientApi::Messages
        } else if under(RESPONSES) {
            ClientApi::Responses
        } else {
            ClientApi::ChatCompletions
        }
    }

    /// The error body this dialect's clients parse.
    pub fn error_body(self, error: &ApiError) -> Vec<u8> {
        match self {
            ClientApi::ChatCompletions | ClientApi::Responses => error.body(),
            ClientApi::Messages => anthropic_error_body(error),
        }
    }
}

/// Anthropic's error `type` for an answer of `status`
/// (<https://docs.anthropic.com/en/api/errors>): the status decides, as it does for Anthropic
/// (a 404 for an unknown model is `not_found_error` there, where OpenAI says
/// `invalid_request_error`); the OpenAI kind only breaks ties among other statuses.
pub fn anthropic_error_type(status: u16, kind: ErrorType) -> &'static str {
    match status {
        400 | 409 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        503 | 529 => "overloaded_error",
        _ => match kind {
            ErrorType::InvalidRequestError => "invalid_request_error",
            ErrorType::AuthenticationError => "authentication_error",
            ErrorType::PermissionError => "permission_error",
            ErrorType::NotFoundError => "not_found_error",
            ErrorType::RateLimitError | ErrorType::InsufficientQuota => "rate_limit_error",
            ErrorType::ServiceUnavailableError => "overloaded_error",
            ErrorType::ApiError => "api_error",
        },
    }
}

/// `{"type":"error","error":{"type":…,"message":…}}`, what the Anthropic SDKs parse
/// (<https://docs.anthropic.com/en/api/errors#error-shapes>). llmgw's own `code` has no field
/// there: it stays in the access log.
pub fn anthropic_error_body(error: &ApiError) -> Vec<u8> {
    serde_json::to_vec(&anthropic_error(error)).unwrap_or_default()
}

/// The Anthropic error envelope of `error`, for bodies and for a stream's `error` event.
pub fn anthropic_error(error: &ApiError) -> AnthropicError<'_> {
    AnthropicError {
        kind: "error",
        error: AnthropicErrorBody {
            kind: anthropic_error_type(error.status, error.kind),
            message: &error.message,
        },
    }
}

#[derive(Debug, Serialize)]
pub struct AnthropicError<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: AnthropicErrorBody<'a>,
}

#[derive(Debug, Serialize)]
struct AnthropicErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn paths_name_dialect_and_operation() {
        use ClientApi::*;
        assert_eq!(
            ClientApi::from_path("/v1/chat/completions?x=1"),
            Some((ChatCompletions, Operation::Create))
        );
        assert_eq!(
            ClientApi::from_path("/v1/messages"),
            Some((Messages, Operation::Create))
        );
        assert_eq!(
            ClientApi::from_path("/v1/messages/count_tokens?beta=true"),
            Some((Messages, Operation::CountTokens))
        );
        assert_eq!(
            ClientApi::from_path("/v1/responses"),
            Some((Responses, Operation::Create))
        );
        for other in [
            "/v1/embeddings",
            "/v1/models",
            "/v1/messagesx",
            "/v1/messages/",
        ] {
            assert_eq!(ClientApi::from_path(other), None, "{other}");
        }
        assert_eq!(ClientApi::for_errors("/v1/messages/batches"), Messages);
        assert_eq!(ClientApi::for_errors("/v1/messagesx"), ChatCompletions);
        assert_eq!(ClientApi::for_errors("/v1/responses/resp_1"), Responses);
        assert_eq!(ClientApi::for_errors("/v1/embeddings"), ChatCompletions);
    }

    #[test]
    fn messages_errors_are_anthropic_shaped() {
        let error = ApiError::new(404, ErrorType::InvalidRequestError, "no model `x`")
            .with_code("model_not_found");
        let body: serde_json::Value =
            serde_json::from_slice(&ClientApi::Messages.error_body(&error)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "error",
                "error": {"type": "not_found_error", "message": "no model `x`"}})
        );
        let openai: serde_json::Value =
            serde_json::from_slice(&ClientApi::Responses.error_body(&error)).unwrap();
        assert_eq!(openai["error"]["code"], "model_not_found");
    }

    #[test]
    fn anthropic_types_follow_the_status() {
        let cases = [
            (400, ErrorType::InvalidRequestError, "invalid_request_error"),
            (401, ErrorType::AuthenticationError, "authentication_error"),
            (403, ErrorType::PermissionError, "permission_error"),
            (404, ErrorType::InvalidRequestError, "not_found_error"),
            (413, ErrorType::InvalidRequestError, "request_too_large"),
            (429, ErrorType::RateLimitError, "rate_limit_error"),
            (500, ErrorType::ApiError, "api_error"),
            (502, ErrorType::ApiError, "api_error"),
            (503, ErrorType::ServiceUnavailableError, "overloaded_error"),
            (504, ErrorType::ApiError, "timeout_error"),
            (529, ErrorType::ApiError, "overloaded_error"),
        ];
        for (status, kind, expected) in cases {
            assert_eq!(anthropic_error_type(status, kind), expected, "{status}");
        }
    }
}
