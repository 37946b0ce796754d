//! The index of local mode's budget counters, for the admin role's `GET /llmgw/budgets`
//! ([`super::admin`], Cargo feature `admin`).
//!
//! Shared data cannot list its keys (proxy-wasm has no such call), so the public ratelimit keeps
//! an index: one shared-data entry, [`INDEX_KEY`], listing each budget counter it has charged
//! with what the answer needs (rule, window, limit, key). A worker adds a counter the first time
//! it charges it (or sees its limit changed) and remembers that it did, so the index costs
//! nothing per request after a counter's first. It holds at most [`MAX_INDEXED`] counters;
//! past that, new budget counters are still counted and enforced but not listed, and the answer
//! says `"complete": false`.
//!
//! Every build writes the index, the one without the admin role too: gateway.wasm counts on the
//! public listener, and ratelimit.wasm in the admin role, with the same `vm_id`, reads the index
//! and the counters this module and [`super::store`] write (README, "Budgets").

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::config::Applied;
use crate::host::{Host, SharedDataError};

/// The path the admin role lists the index on.
pub const ADMIN_PATH: &str = "/llmgw/budgets";
/// The shared-data key of the budget counter index.
pub const INDEX_KEY: &str = "llmgw.rl.v1.budget-index";
/// The most budget counters the index lists (about 150 bytes each).
pub const MAX_INDEXED: usize = 10_000;

/// One indexed budget counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Entry {
    /// The counter's shared-data key.
    pub(super) counter: String,
    /// The rule: `consumer` or the `limits[]` name (llmgw-rls's `budget`).
    pub(super) rule: String,
    pub(super) window: String,
    /// The limit in micro-USD.
    pub(super) max: u64,
    /// The key's dimensions and values.
    pub(super) key: Vec<(String, String)>,
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
                         {counter} is counted but not listed by {ADMIN_PATH}"
                    );
                }
                self.0.borrow_mut().insert(memo);
            }
            // Retried at this counter's next request.
            Err(err) => log::warn!("llmgw.ratelimit: budget index not updated ({err})"),
        }
    }
}

pub(super) fn read_index(stored: Option<&[u8]>) -> Vec<Entry> {
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
