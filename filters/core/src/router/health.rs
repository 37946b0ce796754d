//! Each target's health and latency, kept in Envoy shared data so every worker thread sees
//! the same state (`vm_id` `llmgw.router`).
//!
//! Health is a small circuit breaker: `failure_threshold` consecutive failures (429 or 5xx seen
//! on the response path) make a target unhealthy for `cooldown_ms`, or, when the failure that
//! trips it is a 429 with `Retry-After`, for as long as the provider asked (at most
//! `max_retry_after_ms`). After the cool-down it takes traffic again ("half-open"): one more
//! failure trips it at once, one success resets it. Whether unhealthy targets are skipped at
//! all is [`super::policy::healthy`]'s panic rule.
//! Values are short ASCII strings, written with compare-and-swap so concurrent workers do not
//! lose each other's updates.

use super::catalogue::Target;
use super::policy::TargetState;
use crate::host::{Host, SharedDataError};

const HEALTH_PREFIX: &str = "llmgw.router.health.";
const LATENCY_PREFIX: &str = "llmgw.router.latency.";
/// Compare-and-swap attempts before an update is dropped (it is only statistics).
const CAS_ATTEMPTS: usize = 8;
/// Weight of the newest latency sample in the moving average.
const LATENCY_ALPHA: f64 = 0.3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    pub failure_threshold: u32,
    pub cooldown_ms: u64,
    /// Below this share of healthy targets (percent), route to all of them (Envoy's
    /// `healthy_panic_threshold`); 0 turns panic mode off.
    pub panic_threshold_percent: u8,
    /// The longest cool-down a provider's `Retry-After` can ask for.
    pub max_retry_after_ms: u64,
}

impl HealthPolicy {
    /// How long a target that just tripped cools: the provider's `Retry-After` (bounded) when
    /// it sent one, else `cooldown_ms`.
    fn cooldown_ms(&self, retry_after_ms: Option<u64>) -> u64 {
        retry_after_ms.map_or(self.cooldown_ms, |ms| ms.min(self.max_retry_after_ms))
    }
}

/// How one response went for the target that served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// A client error (400, 404, …): says nothing about the target.
    Neutral,
}

impl Outcome {
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => Outcome::Success,
            429 | 500..=599 => Outcome::Failure,
            _ => Outcome::Neutral,
        }
    }
}

/// One target's health record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    pub consecutive_failures: u32,
    /// Unix ms until which the target is skipped; 0 when it never tripped.
    pub unhealthy_until_ms: u64,
}

impl Health {
    fn parse(bytes: &[u8]) -> Self {
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        let mut parts = text.split(' ').map(|p| p.parse::<u64>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(failures), Some(until)) => Health {
                consecutive_failures: u32::try_from(failures).unwrap_or(u32::MAX),
                unhealthy_until_ms: until,
            },
            _ => Health::default(),
        }
    }

    fn encode(self) -> String {
        format!("{} {}", self.consecutive_failures, self.unhealthy_until_ms)
    }

    /// The record after `outcome` at `now_ms`; `retry_after_ms` is the provider's
    /// `Retry-After` on a 429.
    pub fn after(
        self,
        outcome: Outcome,
        policy: &HealthPolicy,
        now_ms: u64,
        retry_after_ms: Option<u64>,
    ) -> Self {
        match outcome {
            Outcome::Neutral => self,
            Outcome::Success => Health::default(),
            Outcome::Failure => {
                if self.unhealthy_until_ms > now_ms {
                    return self; // already cooling down
                }
                let failures = self.consecutive_failures.saturating_add(1);
                if failures >= policy.failure_threshold {
                    Health {
                        consecutive_failures: failures,
                        unhealthy_until_ms: now_ms
                            .saturating_add(policy.cooldown_ms(retry_after_ms)),
                    }
                } else {
                    Health {
                        consecutive_failures: failures,
                        unhealthy_until_ms: self.unhealthy_until_ms,
                    }
                }
            }
        }
    }

    pub fn unhealthy_for_ms(self, now_ms: u64) -> Option<u64> {
        (self.unhealthy_until_ms > now_ms).then(|| self.unhealthy_until_ms - now_ms)
    }
}

/// Read-modify-write of one shared-data key with compare-and-swap.
fn update(host: &mut dyn Host, key: &str, change: impl Fn(Option<&[u8]>) -> Option<String>) {
    for _ in 0..CAS_ATTEMPTS {
        let current = host.shared_data(key);
        let Some(next) = change(current.data.as_deref()) else {
            return; // nothing to write
        };
        match host.set_shared_data(key, next.as_bytes(), current.cas) {
            Err(SharedDataError::CasMismatch) => continue,
            Ok(()) | Err(SharedDataError::Unavailable) => return,
        }
    }
}

/// The shared-data key of a target's health record (one per `provider/model`, shared by the
/// workers and every catalogue entry that names the target).
pub fn health_key(provider: &str, model: &str) -> String {
    crate::text::concat(&[HEALTH_PREFIX, provider, "/", model])
}

/// The shared-data key of a target's latency average.
pub fn latency_key(provider: &str, model: &str) -> String {
    crate::text::concat(&[LATENCY_PREFIX, provider, "/", model])
}

/// Record how a response went for `target` (`retry_after_ms`: see [`Health::after`]).
pub fn record_outcome(
    host: &mut dyn Host,
    target: &Target,
    outcome: Outcome,
    policy: &HealthPolicy,
    now_ms: u64,
    retry_after_ms: Option<u64>,
) {
    if outcome == Outcome::Neutral {
        return;
    }
    update(host, &target.health_key, |data| {
        let before = data.map(Health::parse).unwrap_or_default();
        let after = before.after(outcome, policy, now_ms, retry_after_ms);
        // A healthy target answering well is the common case: no write at all.
        (after != before).then(|| after.encode())
    });
}

/// Fold one latency sample into `target`'s moving average.
pub fn record_latency(host: &mut dyn Host, target: &Target, sample_ms: u64) {
    update(host, &target.latency_key, |data| {
        let sample = sample_ms as f64;
        let average = match data.and_then(parse_latency) {
            Some(old) => old + LATENCY_ALPHA * (sample - old),
            None => sample,
        };
        // Tenths of a millisecond, printed and read back with integer code: `f64`'s `Display`
        // and `FromStr` would add ~9 KB to router for this one value.
        let tenths = (average * 10.0).round() as u64;
        Some(format!("{}.{}", tenths / 10, tenths % 10))
    });
}

/// `123.4` (what [`record_latency`] writes) or `123`.
fn parse_latency(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole = whole.parse::<u64>().ok()? as f64;
    let fraction = fraction.parse::<u64>().ok()? as f64 / 10f64.powi(fraction.len() as i32);
    Some(whole + fraction)
}

/// [`TargetState`] read from shared data at one moment.
pub struct SharedState<'a> {
    pub host: &'a dyn Host,
    pub now_ms: u64,
}

impl TargetState for SharedState<'_> {
    fn unhealthy_for_ms(&self, target: &Target) -> Option<u64> {
        let data = self.host.shared_data(&target.health_key).data?;
        Health::parse(&data).unhealthy_for_ms(self.now_ms)
    }

    fn latency_ms(&self, target: &Target) -> Option<f64> {
        let data = self.host.shared_data(&target.latency_key).data?;
        parse_latency(&data)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::parse_latency;

    #[test]
    fn latency_text_reads_back() {
        assert_eq!(parse_latency(b"123.4"), Some(123.4));
        assert_eq!(parse_latency(b"250"), Some(250.0));
        assert_eq!(parse_latency(b"0.25"), Some(0.25));
        for bad in [&b""[..], b".5", b"1.", b"-1.0", b"1e3", b"nan", b"1.2.3"] {
            assert_eq!(parse_latency(bad), None, "{bad:?}");
        }
    }
}
