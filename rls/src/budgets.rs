//! `GET /budgets`: every budget counter llmgw's filters have counted here (descriptors with
//! `kind=usd`), with its limit, spent and remaining micro-USD and when it resets, as JSON, for a
//! platform team's portal. On the HTTP port (health, metrics), never the gRPC one Envoy calls;
//! only with `--admin-key-sha256`, and only for a bearer key of that hash.

use llmgw_core::ratelimit::{format_usd, format_utc};
use redis::RedisResult;
use serde_json::{json, Map, Value};

use crate::limits::entries_of;
use crate::store::Store;

/// The admin key check, shared with local mode's admin listener (constant time, by hash).
pub use llmgw_core::ratelimit::admin::authorized;

/// The budget counters in Redis, as `{"budgets": [...]}`.
pub async fn list(store: &Store) -> RedisResult<Value> {
    let mut connection = store.connection().await?;
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("llmgw-rls|*|kind=usd|*")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await?;
        keys.extend(batch.into_iter().filter(|k| !k.ends_with("|limit")));
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    let mut budgets = Vec::new();
    for key in keys {
        let (spent, limit): (Option<u64>, Option<String>) = redis::cmd("MGET")
            .arg(&key)
            .arg(format!("{key}|limit"))
            .query_async(&mut connection)
            .await?;
        let Some((max, end)) = limit.as_deref().and_then(|l| l.split_once(':')) else {
            continue; // counted before this version remembered limits, or just expired
        };
        let (Ok(max), Ok(end), Some((domain, entries))) =
            (max.parse::<u64>(), end.parse::<u64>(), entries_of(&key))
        else {
            continue;
        };
        budgets.push(budget(&domain, &entries, spent.unwrap_or(0), max, end));
    }
    Ok(json!({ "budgets": budgets }))
}

/// One counter as JSON: amounts in USD (6 places, as llmgw's headers write them) and in
/// micro-USD.
fn budget(domain: &str, entries: &[(String, String)], spent: u64, max: u64, end: u64) -> Value {
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let key: Map<String, Value> = entries
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "llmgw_limit" | "kind" | "window"))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let remaining = max.saturating_sub(spent);
    json!({
        "domain": domain,
        "budget": get("llmgw_limit"),
        "period": get("window"),
        "key": key,
        "limit_usd": format_usd(max),
        "spent_usd": format_usd(spent),
        "remaining_usd": format_usd(remaining),
        "limit_micros": max,
        "spent_micros": spent,
        "remaining_micros": remaining,
        "resets_at": format_utc(end.saturating_mul(1000)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_the_admin_key_is_authorized() {
        let hash = llmgw_core::auth::hash_key("sk-admin");
        assert!(authorized(Some("Bearer sk-admin"), &hash));
        assert!(!authorized(Some("Bearer sk-admin2"), &hash));
        assert!(!authorized(Some("sk-admin"), &hash));
        assert!(!authorized(None, &hash));
        assert!(!authorized(Some("Bearer sk-admin"), &hash[..63]));
    }

    #[test]
    fn a_counter_becomes_a_budget() {
        let entries = [
            ("llmgw_limit".to_string(), "keys".to_string()),
            ("kind".to_string(), "usd".to_string()),
            ("window".to_string(), "day".to_string()),
            ("consumer".to_string(), "bob".to_string()),
        ];
        let b = budget("llmgw", &entries, 8554, 10_000, 1_796_342_400);
        assert_eq!(b["budget"], "keys");
        assert_eq!(b["period"], "day");
        assert_eq!(b["key"], json!({"consumer": "bob"}));
        assert_eq!(b["spent_usd"], "0.008554");
        assert_eq!(b["remaining_micros"], 1446);
        assert_eq!(b["resets_at"], "2026-12-04T00:00:00Z");
    }
}
