//! What of a provider's response headers reaches the client, and what a refused provider key
//! becomes. Both are about the provider *account* llmgw calls with, which is the operator's and
//! none of the client's business (README, "Provider errors and headers").

use crate::error::{ApiError, ErrorType};
use crate::headers::HeaderMap;

/// Where a provider's own id of the request reaches the client (for a support ticket with the
/// provider); the client's `x-request-id` is the gateway's.
pub const PROVIDER_REQUEST_ID: &str = "x-provider-request-id";

/// The providers' names for their request id: OpenAI `x-request-id`, Anthropic `request-id`,
/// Azure OpenAI `apim-request-id`, Amazon Bedrock `x-amzn-requestid`.
pub const REQUEST_ID_HEADERS: [&str; 4] = [
    "x-request-id",
    "request-id",
    "apim-request-id",
    "x-amzn-requestid",
];

/// Name prefixes of the account's headers: its limits and usage (`x-ratelimit-*`,
/// `anthropic-ratelimit-*`), organisation and project (`openai-organization`,
/// `openai-project`, `anthropic-organization-id`), the provider's internals
/// (`openai-processing-ms`, `x-ms-*`, `azureml-*`, `x-amzn-*`, `cf-ray`).
///
/// envoy/gateway.yaml has Envoy remove those of them no translator reads before translate sees
/// the answer (`envoy.filters.http.header_mutation`; `envoy_removal_tests` holds the two lists
/// together), which saves translate a host call per header; translate's own removal stays for
/// deployments without it.
pub const ACCOUNT_PREFIXES: [&str; 8] = [
    "x-ratelimit-",
    "openai-",
    "anthropic-",
    "x-ms-",
    "azureml-",
    "x-amzn-",
    "x-goog-",
    "cf-",
];

/// The account's headers by exact name, besides its request id ([`REQUEST_ID_HEADERS`]):
/// the provider's cookies.
pub const ACCOUNT_NAMES: [&str; 1] = ["set-cookie"];

/// Headers about the provider account ([`ACCOUNT_PREFIXES`], [`ACCOUNT_NAMES`], its request id
/// under any provider's name), which is none of the client's business. The gateway's own
/// rate-limit headers are ratelimit's, added after this on the way out. `retry-after` stays:
/// the client should wait that long.
pub fn is_account_header(name: &str) -> bool {
    let has_prefix = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    ACCOUNT_PREFIXES.iter().any(|prefix| has_prefix(prefix))
        || ACCOUNT_NAMES
            .iter()
            .chain(REQUEST_ID_HEADERS.iter())
            .any(|exact| name.eq_ignore_ascii_case(exact))
}

/// The provider's request id among its response headers, under whichever name it uses.
pub fn provider_request_id(headers: &HeaderMap) -> Option<&str> {
    REQUEST_ID_HEADERS
        .iter()
        .find_map(|wanted| headers.get(wanted).filter(|value| !value.is_empty()))
}

/// Whether a provider answer says our credentials were refused: HTTP 401 or 403 from every
/// provider family (a wrong key, an expired token, a bad AWS signature, a key without access).
pub fn refused_our_credentials(status: u16) -> bool {
    matches!(status, 401 | 403)
}

/// What the client gets when the provider refused the gateway's key: a gateway error (502), not
/// the provider's `invalid_api_key`, which the client would take for its own key's.
pub fn upstream_auth_failed(status: u16) -> ApiError {
    ApiError::new(
        502,
        ErrorType::ApiError,
        format!(
            "upstream authentication failed: the model provider refused the gateway's \
             credentials (HTTP {status}); the gateway's operator must fix them"
        ),
    )
    .with_code("upstream_auth_failed")
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().copied().collect()
    }

    #[test]
    fn account_headers_are_recognised() {
        for name in [
            "x-ratelimit-remaining-tokens",
            "openai-organization",
            "openai-project",
            "OpenAI-Processing-Ms",
            "anthropic-organization-id",
            "anthropic-ratelimit-tokens-remaining",
            "request-id",
            "x-request-id",
            "apim-request-id",
            "x-ms-region",
            "x-amzn-requestid",
            "set-cookie",
            "cf-ray",
        ] {
            assert!(is_account_header(name), "{name}");
        }
        for name in [
            "content-type",
            "retry-after",
            "date",
            "x-provider-request-id",
            "cache-control",
        ] {
            assert!(!is_account_header(name), "{name}");
        }
    }

    #[test]
    fn the_request_id_is_found_under_each_providers_name() {
        let anthropic = headers(&[("content-type", "x"), ("request-id", "req_01")]);
        assert_eq!(provider_request_id(&anthropic), Some("req_01"));
        let bedrock = headers(&[("X-Amzn-RequestId", "a1b2")]);
        assert_eq!(provider_request_id(&bedrock), Some("a1b2"));
        assert_eq!(provider_request_id(&headers(&[("date", "now")])), None);
    }

    #[test]
    fn refused_credentials_become_a_gateway_error() {
        assert!(refused_our_credentials(401) && refused_our_credentials(403));
        assert!(!refused_our_credentials(400) && !refused_our_credentials(429));
        let error = upstream_auth_failed(401);
        assert_eq!((error.status, error.kind), (502, ErrorType::ApiError));
        assert_eq!(error.code.as_deref(), Some("upstream_auth_failed"));
        assert!(error.message.starts_with("upstream authentication failed"));
        assert!(!String::from_utf8_lossy(&error.body()).contains("invalid_api_key"));
    }
}
