//! The auth filter: who is calling.
//!
//! The client presents an llmgw key (a "virtual key") as `Authorization: Bearer <key>` (what
//! OpenAI SDKs send) or `x-api-key: <key>` (what Anthropic SDKs send). The config holds only the
//! keys' SHA-256 hashes with their metadata; the filter hashes the presented key and looks it up
//! in constant time. On success it strips the client's credential (it must never reach a
//! provider; translate adds the provider's own key) and tells the later filters who is calling
//! through its [`AuthFacts`] in filter state.
//!
//! Why not Envoy's native `api_key_auth`: it compares plaintext keys from its config, has no
//! expiry, team or model list, and is missing from older Envoy and Istio proxies. Model
//! allow-lists are enforced by router (the one filter that parses the body's `model`) with
//! [`model_allowed`] and [`model_not_allowed`].
//!
//! No filter reads a fact from a request header, so a client cannot speak for auth; auth still
//! drops every `x-llmgw-*` header a client sent, so none reaches a service behind it.

mod config;
mod glob;
mod rfc3339;

use sha2::{Digest, Sha256};

pub(crate) use self::config::check_id;
pub use self::config::is_valid_id;
pub use self::glob::{glob_match, model_allowed};
pub use self::rfc3339::parse_rfc3339_ms;

use self::config::{AuthConfig, Key};
use crate::access_log::{self, Field};
use crate::config::ConfigError;
use crate::dialect::ClientApi;
use crate::error::{ApiError, ErrorType};
use crate::facts::{self, AuthFacts};
use crate::filter::{Callback, Env, FilterRoot, Flow, HttpFilter};
use crate::headers::{self, HeaderMap};
use crate::host::{self, Host};

/// The client's credential headers, removed once the key is accepted.
const AUTHORIZATION: &str = "authorization";
const X_API_KEY: &str = "x-api-key";

/// The SHA-256 of `key` in lower-case hex, the form the config holds.
pub fn hash_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// The 403 router answers when the key's allow-list does not cover `model`.
pub fn model_not_allowed(model: &str) -> ApiError {
    ApiError::new(
        403,
        ErrorType::PermissionError,
        format!("This API key is not allowed to use the model `{model}`."),
    )
    .with_code("model_not_allowed")
    .with_param("model")
}

/// Why a request was refused, before it becomes an OpenAI error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no API key")]
    Missing,
    #[error("unknown API key")]
    Unknown,
    #[error("API key of consumer {consumer} expired at {expires_at}")]
    Expired {
        consumer: String,
        expires_at: String,
    },
}

impl From<&AuthError> for ApiError {
    /// OpenAI answers bad keys with 401 and type `invalid_request_error`
    /// (<https://platform.openai.com/docs/guides/error-codes#api-errors>); so do we. The key is
    /// never echoed back.
    fn from(err: &AuthError) -> Self {
        let (message, code) = match err {
            AuthError::Missing => (
                "You didn't provide an API key. Pass it in an Authorization header using Bearer \
                 auth (Authorization: Bearer YOUR_KEY) or in an x-api-key header."
                    .to_string(),
                "missing_api_key",
            ),
            AuthError::Unknown => ("Incorrect API key provided.".to_string(), "invalid_api_key"),
            AuthError::Expired { expires_at, .. } => (
                format!("The API key provided expired at {expires_at}."),
                "expired_api_key",
            ),
        };
        ApiError::new(401, ErrorType::InvalidRequestError, message).with_code(code)
    }
}

/// auth's compiled configuration.
#[derive(Debug, Clone)]
pub struct AuthRoot {
    keys: std::rc::Rc<[Key]>,
    metrics: crate::metrics::Metrics,
}

impl FilterRoot for AuthRoot {
    type Filter = AuthFilter;
    const NAME: &'static str = "llmgw.auth";
    const UNUSED_CALLBACKS: &'static [Callback] = &[
        Callback::RequestBody,
        Callback::RequestTrailers,
        Callback::ResponseHeaders,
        Callback::ResponseBody,
        Callback::StreamDone,
    ];

    fn configure(json: &[u8], _env: &dyn Env) -> Result<Self, ConfigError> {
        let keys = crate::config::parse::<AuthConfig>(json)?.compile()?;
        Ok(Self {
            keys: keys.into(),
            metrics: crate::metrics::Metrics::default(),
        })
    }

    fn new_filter(&self) -> AuthFilter {
        AuthFilter {
            keys: self.keys.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// One request through auth.
#[derive(Debug)]
pub struct AuthFilter {
    keys: std::rc::Rc<[Key]>,
    metrics: crate::metrics::Metrics,
}

impl AuthFilter {
    /// Check the key presented in `all` (the request headers).
    fn authenticate(&self, host: &dyn Host, all: &HeaderMap) -> Result<&Key, AuthError> {
        let presented = presented_key(all).ok_or(AuthError::Missing)?;
        let key = find_key(&self.keys, &Sha256::digest(presented.as_bytes()).into())
            .ok_or(AuthError::Unknown)?;
        if let Some((expires_ms, expires_at)) = &key.expires {
            let now = i64::try_from(host.now_ms()).unwrap_or(i64::MAX);
            if now >= *expires_ms {
                return Err(AuthError::Expired {
                    consumer: key.consumer.clone(),
                    expires_at: expires_at.clone(),
                });
            }
        }
        Ok(key)
    }
}

impl HttpFilter for AuthFilter {
    fn on_request_headers(&mut self, host: &mut dyn Host, _end_of_stream: bool) -> Flow {
        // One copy of the headers: the key is read from it, and only headers it shows are
        // removed (each host call is a crossing out of the VM).
        let all = host.request_headers();
        // Client-sent x-llmgw-* headers are dropped, whatever happens next.
        let mut spoofed: Vec<&str> = Vec::new();
        for (name, _) in all.iter() {
            if facts::is_reserved_header(name) && !spoofed.contains(&name) {
                host.remove_request_header(name);
                spoofed.push(name);
            }
        }

        match self.authenticate(host, &all) {
            Ok(key) => {
                for name in [AUTHORIZATION, X_API_KEY] {
                    if headers::find(&all, name).is_some() {
                        host.remove_request_header(name);
                    }
                }
                AuthFacts {
                    consumer: Some(key.consumer.as_str()),
                    team: key.team.as_deref(),
                    allowed_models: key.allowed_models.as_deref(),
                }
                .publish(host);
                access_log::record(host, Field::Consumer, &key.consumer);
                if let Some(team) = &key.team {
                    access_log::record(host, Field::Team, team);
                }
                Flow::Continue
            }
            Err(err) => {
                log::debug!("llmgw.auth: refused: {err}");
                let reason = match err {
                    AuthError::Missing => "missing_key",
                    AuthError::Unknown => "invalid_key",
                    AuthError::Expired { .. } => "expired_key",
                };
                self.metrics
                    .count(host, "llmgw_auth_failures_total", &[("reason", reason)], 1);
                // An Anthropic SDK (`/v1/messages`) gets Anthropic's 401 shape.
                let path = headers::find(&all, ":path").unwrap_or_default();
                let api = ClientApi::for_errors(path);
                host::send_error_in(host, api, &ApiError::from(&err));
                Flow::Pause
            }
        }
    }
}

/// The key the client presented: `Authorization: Bearer <key>` (scheme in any case), else
/// `x-api-key: <key>`. Empty values count as absent.
fn presented_key(all: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers::find(all, AUTHORIZATION) {
        let value = value.trim();
        if let Some((scheme, rest)) = value.split_once([' ', '\t']) {
            let key = rest.trim();
            if scheme.eq_ignore_ascii_case("bearer") && !key.is_empty() {
                return Some(key);
            }
        }
    }
    headers::find(all, X_API_KEY)
        .map(str::trim)
        .filter(|key| !key.is_empty())
}

/// Find the key whose hash is `hash`, comparing against every entry in full so the time taken
/// says nothing about how close a guess came.
fn find_key<'a>(keys: &'a [Key], hash: &[u8; 32]) -> Option<&'a Key> {
    let mut found = None;
    for key in keys {
        let mut diff = 0u8;
        for (a, b) in key.hash.iter().zip(hash) {
            diff |= a ^ b;
        }
        // Keep the compiler from turning the accumulation into an early exit.
        if std::hint::black_box(diff) == 0 {
            found = Some(key);
        }
    }
    found
}

#[cfg(test)]
mod tests;
