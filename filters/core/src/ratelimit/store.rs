//! Counters in Envoy shared data, common to every worker thread of the VM.
//!
//! One key per (kind, window, counter): `llmgw.rl.v1.requests.minute.alice` for the per-consumer
//! limits, `llmgw.rl.v1.total_tokens.hour.@team-tokens:ml` for a `limits[]` entry (its name,
//! then the values of its `by` dimensions; `@` cannot start a consumer id, so the two never
//! meet). The value is a
//! fixed 16 bytes: the window start (ms since the epoch) and the count, both u64 little-endian.
//! A value from an older window, or one we cannot read (wrong length, a future format), counts
//! as empty: the next write replaces it.
//!
//! Updates are compare-and-swap loops: read value and CAS token, compute, write with the token,
//! and start over when another worker wrote in between. The one gap is a key's very first write,
//! which Envoy cannot make conditional (no token exists yet): two workers racing on a brand-new
//! key may lose one count, once.

use super::config::{Applied, CONSUMER_RULE};
use super::window::Limit;
use crate::host::{Host, SharedDataError};
use crate::text;

/// How often a CAS write is retried before giving up (and failing open).
pub const MAX_CAS_ATTEMPTS: u32 = 32;

/// Shared-data key of a consumer's counter for `limit`.
pub fn counter_key(limit: &Limit, consumer: &str) -> String {
    text::concat(&[
        "llmgw.rl.v1.",
        limit.kind.as_str(),
        ".",
        limit.window.as_str(),
        ".",
        consumer,
    ])
}

/// Shared-data key of the counter an applied limit spends from.
pub fn applied_key(applied: &Applied) -> String {
    if applied.rule == CONSUMER_RULE {
        if let Some((_, consumer)) = applied.key.first() {
            return counter_key(&applied.limit, consumer);
        }
    }
    let mut key = text::concat(&[
        "llmgw.rl.v1.",
        applied.limit.kind.as_str(),
        ".",
        applied.limit.window.as_str(),
        ".@",
        &applied.rule,
        ":",
    ]);
    for (i, (_, value)) in applied.key.iter().enumerate() {
        if i > 0 {
            key.push('|');
        }
        key.push_str(value);
    }
    key
}

/// A stored counter: the window it belongs to and what was counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub window_start: u64,
    pub count: u64,
}

impl Counter {
    pub const ENCODED_LEN: usize = 16;

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..8].copy_from_slice(&self.window_start.to_le_bytes());
        out[8..].copy_from_slice(&self.count.to_le_bytes());
        out
    }

    /// `None` for anything but exactly 16 bytes.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::ENCODED_LEN] = bytes.try_into().ok()?;
        let mut start = [0u8; 8];
        let mut count = [0u8; 8];
        start.copy_from_slice(&bytes[..8]);
        count.copy_from_slice(&bytes[8..]);
        Some(Self {
            window_start: u64::from_le_bytes(start),
            count: u64::from_le_bytes(count),
        })
    }

    /// What has been counted in the window starting at `window_start`, given the stored value.
    pub fn count_in(stored: Option<&[u8]>, window_start: u64) -> u64 {
        stored
            .and_then(Self::decode)
            .filter(|c| c.window_start == window_start)
            .map_or(0, |c| c.count)
    }
}

/// The result of trying to spend from a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// Spent; the count now includes it.
    Admitted { count: u64 },
    /// Spending would exceed the limit; nothing was written.
    Denied { count: u64 },
    /// Shared data failed or stayed contended: the caller fails open.
    Unavailable(SharedDataError),
}

/// Spend `cost` units from `key`'s counter for the window starting at `window_start`, unless
/// that would take it past `max`.
pub fn try_acquire(
    host: &mut dyn Host,
    key: &str,
    window_start: u64,
    max: u64,
    cost: u64,
) -> Acquire {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let current = host.shared_data(key);
        let count = Counter::count_in(current.data.as_deref(), window_start);
        let next = count.saturating_add(cost);
        if next > max {
            return Acquire::Denied { count };
        }
        let value = Counter {
            window_start,
            count: next,
        }
        .encode();
        match host.set_shared_data(key, &value, current.cas) {
            Ok(()) => return Acquire::Admitted { count: next },
            Err(SharedDataError::CasMismatch) => continue,
            Err(err @ SharedDataError::Unavailable) => return Acquire::Unavailable(err),
        }
    }
    Acquire::Unavailable(SharedDataError::CasMismatch)
}

/// Add `delta` (negative: give back) to `key`'s counter of the window starting at
/// `window_start`, never below zero. A counter already in a later window is left alone when
/// giving back (that window never held this charge); an extra charge then goes to the current
/// window. Returns false when shared data stayed unavailable.
pub fn adjust(host: &mut dyn Host, key: &str, window_start: u64, delta: i128) -> bool {
    if delta == 0 {
        return true;
    }
    for _ in 0..MAX_CAS_ATTEMPTS {
        let current = host.shared_data(key);
        let stored = current.data.as_deref().and_then(Counter::decode);
        let (start, count) = match stored {
            Some(c) if c.window_start == window_start => (window_start, c.count),
            Some(c) if c.window_start > window_start => {
                if delta < 0 {
                    return true;
                }
                (c.window_start, c.count)
            }
            // Empty or older: the window we charged is gone; nothing to give back.
            _ if delta < 0 => return true,
            _ => (window_start, 0),
        };
        let next = if delta < 0 {
            count.saturating_sub(u64::try_from(-delta).unwrap_or(u64::MAX))
        } else {
            count.saturating_add(u64::try_from(delta).unwrap_or(u64::MAX))
        };
        let value = Counter {
            window_start: start,
            count: next,
        }
        .encode();
        match host.set_shared_data(key, &value, current.cas) {
            Ok(()) => return true,
            Err(SharedDataError::CasMismatch) => continue,
            Err(SharedDataError::Unavailable) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::ratelimit::window::{LimitKind, Window};
    use crate::testing::FakeHost;

    #[test]
    fn key_names_kind_window_and_consumer() {
        let limit = Limit {
            kind: LimitKind::Requests,
            window: Window::Minute,
            max: 1,
        };
        assert_eq!(
            counter_key(&limit, "alice"),
            "llmgw.rl.v1.requests.minute.alice"
        );
    }

    #[test]
    fn rule_keys_name_the_rule_and_its_values() {
        let limit = Limit {
            kind: LimitKind::TotalTokens,
            window: Window::Hour,
            max: 1,
        };
        let applied = Applied {
            name: "limits.t.total_tokens_per_hour".into(),
            limit,
            rule: "t".into(),
            key: vec![("team", "ml".into()), ("model", "gpt-4o".into())],
        };
        assert_eq!(
            applied_key(&applied),
            "llmgw.rl.v1.total_tokens.hour.@t:ml|gpt-4o"
        );
        let consumer = Applied {
            rule: CONSUMER_RULE.into(),
            key: vec![("consumer", "bob".into())],
            ..applied
        };
        assert_eq!(applied_key(&consumer), "llmgw.rl.v1.total_tokens.hour.bob");
    }

    #[test]
    fn adjust_reconciles_within_the_window_only() {
        let mut host = FakeHost::new();
        try_acquire(&mut host, "k", 60_000, 1000, 500);
        // Usage below the estimate: give back.
        assert!(adjust(&mut host, "k", 60_000, -300));
        assert_eq!(
            Counter::count_in(host.shared_data("k").data.as_deref(), 60_000),
            200
        );
        // Above: charge more, past max if need be (the next request is then refused).
        assert!(adjust(&mut host, "k", 60_000, 900));
        assert_eq!(
            Counter::count_in(host.shared_data("k").data.as_deref(), 60_000),
            1100
        );
        // Never below zero.
        assert!(adjust(&mut host, "k", 60_000, -5000));
        assert_eq!(
            Counter::count_in(host.shared_data("k").data.as_deref(), 60_000),
            0
        );
        // The window moved on: nothing to give back; an extra charge lands in the new one.
        try_acquire(&mut host, "k", 120_000, 1000, 10);
        assert!(adjust(&mut host, "k", 60_000, -10));
        assert_eq!(
            Counter::count_in(host.shared_data("k").data.as_deref(), 120_000),
            10
        );
        assert!(adjust(&mut host, "k", 60_000, 7));
        assert_eq!(
            Counter::count_in(host.shared_data("k").data.as_deref(), 120_000),
            17
        );
        // A missing counter and a refund: nothing written.
        assert!(adjust(&mut host, "new", 0, -3));
        assert!(!host.shared.contains_key("new"));
        host.cas_conflicts = 2;
        assert!(adjust(&mut host, "k", 120_000, 1));
        assert_eq!(
            Counter::count_in(host.shared_data("k").data.as_deref(), 120_000),
            18
        );
    }

    #[test]
    fn encoding_round_trips() {
        let c = Counter {
            window_start: 1_780_272_000_000,
            count: 42,
        };
        let bytes = c.encode();
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[8..], &42u64.to_le_bytes());
        assert_eq!(Counter::decode(&bytes), Some(c));
    }

    #[test]
    fn garbage_decodes_to_nothing() {
        assert_eq!(Counter::decode(b""), None);
        assert_eq!(Counter::decode(b"not a counter"), None);
        assert_eq!(Counter::decode(&[0u8; 17]), None);
        assert_eq!(Counter::count_in(Some(b"garbage".as_slice()), 0), 0);
        assert_eq!(Counter::count_in(None, 0), 0);
        let old = Counter {
            window_start: 0,
            count: 9,
        }
        .encode();
        assert_eq!(Counter::count_in(Some(old.as_slice()), 60_000), 0);
        assert_eq!(Counter::count_in(Some(old.as_slice()), 0), 9);
    }

    #[test]
    fn acquire_counts_until_max_then_denies_without_writing() {
        let mut host = FakeHost::new();
        for expected in 1..=3 {
            assert_eq!(
                try_acquire(&mut host, "k", 0, 3, 1),
                Acquire::Admitted { count: expected }
            );
        }
        let before = host.shared.get("k").cloned();
        assert_eq!(
            try_acquire(&mut host, "k", 0, 3, 1),
            Acquire::Denied { count: 3 }
        );
        assert_eq!(host.shared.get("k").cloned(), before);
    }

    #[test]
    fn cas_conflicts_are_retried_then_given_up() {
        let mut host = FakeHost::new();
        assert_eq!(
            try_acquire(&mut host, "k", 0, 100, 1),
            Acquire::Admitted { count: 1 }
        );
        host.cas_conflicts = 5;
        assert_eq!(
            try_acquire(&mut host, "k", 0, 100, 1),
            Acquire::Admitted { count: 2 }
        );
        assert_eq!(host.cas_conflicts, 0);
        host.cas_conflicts = MAX_CAS_ATTEMPTS;
        assert_eq!(
            try_acquire(&mut host, "k", 0, 100, 1),
            Acquire::Unavailable(SharedDataError::CasMismatch)
        );
        let stored = host.shared.get("k").unwrap().0.clone();
        assert_eq!(Counter::decode(&stored).unwrap().count, 2);
    }
}
