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
//! Shared data cannot list its keys (proxy-wasm has no such call), so the public ratelimit keeps
//! an index: one shared-data entry, [`INDEX_KEY`], listing each budget counter it has charged
//! with what the answer needs (rule, window, limit, key). A worker adds a counter the first time
//! it charges it (or sees its limit changed) and remembers that it did, so the index costs
//! nothing per request after a counter's first. It holds at most [`MAX_INDEXED`] counters;
//! past that, new budget counters are still counted and enforced but not listed, and the answer
//! says `"complete": false`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::config::Applied;
use super::store::Counter;
use super::window::{format_usd, format_utc, Window};
use crate::config::ConfigError;
use crate::error::{ApiError, ErrorType};
use crate::host::{self, Host, SharedDataError};

/// The one path the admin role answers.
pub const PATH: &str = "/llmgw/budgets";
/// The shared-data key of the budget counter index.
pub const INDEX_KEY: &str = "llmgw.rl.v1.budget-index";
/// The most budget counters the index lists (about 150 bytes each).
pub const MAX_INDEXED: usize = 10_000;

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

/// One indexed budget counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// The counter's shared-data key.
    counter: String,
    /// The rule: `consumer` or the `limits[]` name (llmgw-rls's `budget`).
    rule: String,
    window: String,
    /// The limit in micro-USD.
    max: u64,
    /// The key's dimensions and values.
    key: Vec<(String, String)>,
}

/// What one worker has put in the index: `(counter, max)` pairs, so it touches the index once
/// per counter (and again only when a reconfiguration changes the limit).
#[derive(Debug, Clone, Default)]
pub struct Indexed(Rc<RefCell<HashSet<(String, u64)>>>);

impl Indexed {
    /// Make sure budget counter `counter` of `a` is in the index.
    pub fn note(&self, host: &mut dyn Host, a: &Applied, counter: &str) {
        let memo = (counter.to_string(), a.limit.max);
        {
            let seen = self.0.borrow();
            // Full here means full there too: each remembered counter is listed or was refused.
            if seen.contains(&memo) || seen.len() >= MAX_INDEXED {
                return;
            }
        }
        let entry = Entry {
            counter: memo.0.clone(),
            rule: a.rule.clone(),
            window: a.limit.window.as_str().to_string(),
            max: a.limit.max,
            key: a
                .key
                .iter()
                .map(|(d, v)| ((*d).to_string(), v.clone()))
                .collect(),
        };
        match add(host, entry) {
            Ok(added) => {
                if !added {
                    log::warn!(
                        "llmgw.ratelimit: the budget index is full ({MAX_INDEXED} counters): \
                         {counter} is counted but not listed by {PATH}"
                    );
                }
                self.0.borrow_mut().insert(memo);
            }
            // Retried at this counter's next request.
            Err(err) => log::warn!("llmgw.ratelimit: budget index not updated ({err})"),
        }
    }
}

fn read_index(stored: Option<&[u8]>) -> Vec<Entry> {
    stored
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default()
}

/// Add or update `entry` (compare-and-swap, like the counters). `Ok(false)`: the index is full.
fn add(host: &mut dyn Host, entry: Entry) -> Result<bool, SharedDataError> {
    for _ in 0..super::store::MAX_CAS_ATTEMPTS {
        let current = host.shared_data(INDEX_KEY);
        let mut index = read_index(current.data.as_deref());
        match index.iter_mut().find(|e| e.counter == entry.counter) {
            Some(e) if *e == entry => return Ok(true),
            Some(e) => *e = entry.clone(),
            None => {
                if index.len() >= MAX_INDEXED {
                    return Ok(false);
                }
                index.push(entry.clone());
            }
        }
        let bytes = serde_json::to_vec(&index).map_err(|_| SharedDataError::Unavailable)?;
        match host.set_shared_data(INDEX_KEY, &bytes, current.cas) {
            Ok(()) => return Ok(true),
            Err(SharedDataError::CasMismatch) => continue,
            Err(err) => return Err(err),
        }
    }
    Err(SharedDataError::CasMismatch)
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
    let path = path.split(['?', '#']).next().unwrap_or_default();
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
