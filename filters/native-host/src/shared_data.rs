//! Shared data in process memory: what proxy-wasm's shared data is to the wasm filters (one
//! store for every worker thread), with the same compare-and-swap contract, so
//! `llmgw_core::ratelimit`'s local counters work unchanged. A native module lives in Envoy's
//! process, so plain memory shared by the workers replaces the host's key-value store.
//!
//! Sharded by key hash: workers updating different consumers' counters rarely share a lock.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, PoisonError};

use llmgw_core::host::{SharedDataError, SharedValue};

const SHARDS: usize = 16;

/// A stored value and its version; a write bumps the version (the CAS token).
type Entry = (Vec<u8>, u32);

static STORE: [Mutex<Option<HashMap<String, Entry>>>; SHARDS] =
    [const { Mutex::new(None) }; SHARDS];

fn shard(key: &str) -> &'static Mutex<Option<HashMap<String, Entry>>> {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    &STORE[(hasher.finish() as usize) % SHARDS]
}

/// The value under `key` and its CAS token.
pub fn get(key: &str) -> SharedValue {
    // A poisoned lock only means a panic elsewhere (none is expected: panics abort); the map
    // itself is still consistent, so keep serving it.
    let guard = shard(key).lock().unwrap_or_else(PoisonError::into_inner);
    match guard.as_ref().and_then(|map| map.get(key)) {
        Some((data, version)) => SharedValue {
            data: Some(data.clone()),
            cas: Some(*version),
        },
        None => SharedValue::default(),
    }
}

/// Write `value`; with `cas`, only if nobody wrote the key since that token was read.
pub fn set(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedDataError> {
    let mut guard = shard(key).lock().unwrap_or_else(PoisonError::into_inner);
    let map = guard.get_or_insert_with(HashMap::new);
    let current = map.get(key).map(|(_, version)| *version);
    if let (Some(expected), Some(current)) = (cas, current) {
        if expected != current {
            return Err(SharedDataError::CasMismatch);
        }
    }
    // Tokens start at 1 and skip 0: proxy-wasm reads a CAS of 0 as "no check".
    let next = match current.unwrap_or(0).wrapping_add(1) {
        0 => 1,
        n => n,
    };
    // An existing key keeps its entry (and its buffer): a counter is rewritten on every
    // request, and a new key string and value buffer per write were two allocations more.
    match map.get_mut(key) {
        Some(entry) => {
            entry.0.clear();
            entry.0.extend_from_slice(value);
            entry.1 = next;
        }
        None => {
            map.insert(key.to_string(), (value.to_vec(), next));
        }
    }
    Ok(())
}
