//! Counters in Envoy shared data, common to every worker thread of the VM.
//!
//! One key per (kind, window, consumer): `llmgw.rl.v1.requests.minute.alice`. The value is a
//! fixed 16 bytes: the window start (ms since the epoch) and the count, both u64 little-endian.
//! A value from an older window, or one we cannot read (wrong length, a future format), counts
//! as empty: the next write replaces it.
//!
//! Updates are compare-and-swap loops: read value and CAS token, compute, write with the token,
//! and start over when another worker wrote in between. The one gap is a key's very first write,
//! which Envoy cannot make conditional (no token exists yet): two workers racing on a brand-new
//! key may lose one count, once.

use super::window::Limit;
use crate::host::{Host, SharedDataError};

/// How often a CAS write is retried before giving up (and failing open).
pub const MAX_CAS_ATTEMPTS: u32 = 32;

/// Shared-data key of a consumer's counter for `limit`.
pub fn counter_key(limit: &Limit, consumer: &str) -> String {
    format!(
        "llmgw.rl.v1.{}.{}.{consumer}",
        limit.kind.as_str(),
        limit.window.as_str()
    )
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
