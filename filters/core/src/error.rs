//! The error every filter answers with: an OpenAI-format body and the right HTTP status.
//!
//! Each layer has its own `thiserror` enum and converts into [`ApiError`] at the edge, so a
//! client sees the same shape whichever filter refused it:
//! `{"error":{"message":…,"type":…,"param":…,"code":…}}`
//! (<https://platform.openai.com/docs/guides/error-codes>).

use serde::Serialize;

/// OpenAI's error `type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    AuthenticationError,
    PermissionError,
    NotFoundError,
    RateLimitError,
    /// A budget is spent (OpenAI's type when an account's quota is).
    InsufficientQuota,
    ApiError,
    ServiceUnavailableError,
}

impl ErrorType {
    /// The `type` string OpenAI clients see.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequestError => "invalid_request_error",
            ErrorType::AuthenticationError => "authentication_error",
            ErrorType::PermissionError => "permission_error",
            ErrorType::NotFoundError => "not_found_error",
            ErrorType::RateLimitError => "rate_limit_error",
            ErrorType::InsufficientQuota => "insufficient_quota",
            ErrorType::ApiError => "api_error",
            ErrorType::ServiceUnavailableError => "service_unavailable_error",
        }
    }

    /// The type an HTTP error status means when the provider's body names none (or names one
    /// llmgw does not know); every translator maps provider errors through this.
    pub fn for_status(status: u16) -> Self {
        match status {
            400 | 413 | 422 => Self::InvalidRequestError,
            401 => Self::AuthenticationError,
            403 => Self::PermissionError,
            404 => Self::NotFoundError,
            429 => Self::RateLimitError,
            503 => Self::ServiceUnavailableError,
            _ => Self::ApiError,
        }
    }
}

/// An error ready to be sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub kind: ErrorType,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<String>,
    /// Extra response headers, e.g. `retry-after` on a 429.
    pub headers: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(status: u16, kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            param: None,
            code: None,
            headers: Vec::new(),
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// What the access log names this error by: its `code`, else its `type`.
    pub fn class(&self) -> &str {
        self.code.as_deref().unwrap_or(self.kind.as_str())
    }

    /// 400 `invalid_request_error`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, ErrorType::InvalidRequestError, message)
    }

    /// The JSON body OpenAI clients parse.
    pub fn body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Inner<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            kind: ErrorType,
            param: Option<&'a str>,
            code: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Outer<'a> {
            error: Inner<'a>,
        }
        let outer = Outer {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code.as_deref(),
            },
        };
        // Serializing plain strings and enums into a Vec cannot fail.
        serde_json::to_vec(&outer).unwrap_or_default()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.status, self.kind, self.message)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn type_names_match_the_serialized_ones() {
        for kind in [
            ErrorType::InvalidRequestError,
            ErrorType::AuthenticationError,
            ErrorType::PermissionError,
            ErrorType::NotFoundError,
            ErrorType::RateLimitError,
            ErrorType::ApiError,
            ErrorType::ServiceUnavailableError,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        let err = ApiError::invalid_request("x");
        assert_eq!(err.class(), "invalid_request_error");
        assert_eq!(err.with_code("model_not_found").class(), "model_not_found");
    }

    #[test]
    fn body_is_openai_shaped() {
        let err = ApiError::new(
            404,
            ErrorType::NotFoundError,
            "The model `x` does not exist",
        )
        .with_code("model_not_found")
        .with_param("model");
        let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {
                "message": "The model `x` does not exist",
                "type": "not_found_error",
                "param": "model",
                "code": "model_not_found"
            }})
        );
    }

    #[test]
    fn absent_param_and_code_are_null() {
        let body: serde_json::Value =
            serde_json::from_slice(&ApiError::invalid_request("bad").body()).unwrap();
        assert!(body["error"]["param"].is_null());
        assert!(body["error"]["code"].is_null());
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
}
