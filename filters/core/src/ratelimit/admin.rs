//! The admin read path of local mode: `GET /llmgw/budgets` answers every budget counter this
//! Envoy keeps in shared data, as JSON, in the shape of llmgw-rls's `GET /budgets` (global
//! mode), so a platform team's portal works against either.
//!
//! ```json
//! {"admin": {"key_sha256": "<hex SHA-256 of the admin key>"}}
//! ```
//! A ratelimit configured so (the *admin role*) goes on a listener of its own, never the public
//! one (envoy/gateway.yaml's `llmgw-admin`), and answers every request there itself: the budgets
//! for `GET /llmgw/budgets` with `Authorization: Bearer <admin key>`, 401 for a wrong or
//! missing key, 405 for another method, 404 for another path. It shares the public listener's
//! ratelimit's `vm_id`, so it reads the same shared data (Envoy keys shared data by `vm_id`).
//!
//! It lists the index of budget counters that the public ratelimit keeps
//! ([`super::budget_index`]). The role is Cargo feature `admin` of llmgw-core: ratelimit.wasm
//! and the native build have it; gateway.wasm (auth, router and ratelimit as one module) is
//! built without it, ~44 KB smaller, and refuses an `admin` section (`ratelimit.admin`): there
//! the admin listener loads ratelimit.wasm with the gateway module's `vm_id` (README, "Budgets").

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::budget_index::{read_index, Entry, INDEX_KEY, MAX_INDEXED};
use super::store::Counter;
use super::window::{format_usd, format_utc, Window};
use crate::config::ConfigError;
use crate::error::{ApiError, ErrorType};
use crate::host::{self, Host};

/// The one path the admin role answers.
pub use super::budget_index::ADMIN_PATH as PATH;

/// `admin`: the admin role's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Lower-case hex SHA-256 of the admin key (`make key` prints a key and its hash).
    pub key_sha256: String,
}

impl AdminConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
        if self.key_sha256.len() != 64 || !self.key_sha256.bytes().all(hex) {
            return Err(ConfigError::new(
                "admin.key_sha256",
                "must be the admin key's SHA-256 as 64 lower-case hex digits (`make key`)",
            ));
        }
        Ok(())
    }
}

/// Does `authorization` (`Bearer <key>`) carry the key whose SHA-256 is `expected_sha256`?
/// Compared in full, in constant time (llmgw-rls checks its admin key the same way).
pub fn authorized(authorization: Option<&str>, expected_sha256: &str) -> bool {
    let Some(key) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
        return false;
    };
    let hash = crate::auth::hash_key(key.trim());
    let mut diff = u8::from(hash.len() != expected_sha256.len());
    for (a, b) in hash.bytes().zip(expected_sha256.bytes()) {
        diff |= a ^ b;
    }
    std::hint::black_box(diff) == 0
}

/// The budgets as JSON at `now_ms`: every indexed counter with its current window's figures (a
/// counter not charged yet in this window has spent 0).
pub fn budgets(host: &dyn Host, now_ms: u64) -> Value {
    let index = read_index(host.shared_data(INDEX_KEY).data.as_deref());
    let complete = index.len() < MAX_INDEXED;
    let mut budgets: Vec<(String, Value)> = index
        .into_iter()
        .filter_map(|e| {
            let window = Window::parse(&e.window)?;
            let stored = host.shared_data(&e.counter);
            let spent = Counter::count_in(stored.data.as_deref(), window.start(now_ms));
            Some((e.counter.clone(), budget(&e, window, spent, now_ms)))
        })
        .collect();
    budgets.sort_by(|a, b| a.0.cmp(&b.0));
    let budgets: Vec<Value> = budgets.into_iter().map(|(_, b)| b).collect();
    json!({"budgets": budgets, "complete": complete})
}

/// One counter, in llmgw-rls's shape; local mode has no rate limit service domain (`null`).
fn budget(e: &Entry, window: Window, spent: u64, now_ms: u64) -> Value {
    let key: Map<String, Value> = e
        .key
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let remaining = e.max.saturating_sub(spent);
    json!({
        "domain": null,
        "budget": e.rule,
        "period": e.window,
        "key": key,
        "limit_usd": format_usd(e.max),
        "spent_usd": format_usd(spent),
        "remaining_usd": format_usd(remaining),
        "limit_micros": e.max,
        "spent_micros": spent,
        "remaining_micros": remaining,
        "resets_at": format_utc(window.end(now_ms)),
    })
}

/// The admin role's answer to any request.
pub fn serve(host: &mut dyn Host, admin: &AdminConfig) {
    let path = host.request_header(":path").unwrap_or_default();
    let path = crate::dialect::without_query(&path);
    if path != PATH {
        let err = ApiError::new(
            404,
            ErrorType::NotFoundError,
            format!("This is llmgw's admin listener: it serves GET {PATH} only."),
        );
        return host::send_error(host, &err);
    }
    if !authorized(
        host.request_header("authorization").as_deref(),
        &admin.key_sha256,
    ) {
        let err = ApiError::new(
            401,
            ErrorType::AuthenticationError,
            "A valid admin key is required (Authorization: Bearer <admin key>).",
        )
        .with_code("invalid_admin_key");
        return host::send_error(host, &err);
    }
    let method = host.request_header(":method").unwrap_or_default();
    if method != "GET" {
        let err = ApiError::new(
            405,
            ErrorType::InvalidRequestError,
            format!("{PATH} answers GET only, not {method}."),
        )
        .with_code("method_not_allowed")
        .with_header("allow", "GET");
        return host::send_error(host, &err);
    }
    let body = budgets(host, host.now_ms()).to_string();
    host.send_response(
        200,
        &[
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        body.as_bytes(),
    );
}
