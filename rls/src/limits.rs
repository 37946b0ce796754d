//! What a `ShouldRateLimit` request asks, in Redis terms: one counter per descriptor, keyed by
//! the domain, the window and the descriptor's entries, and the Lua script that checks and
//! counts them all at once.
//!
//! Limits come from the request itself, the way llmgw's ratelimit filter sends them: each
//! descriptor carries its limit in the standard `limit` override (`requests_per_unit`, `unit`)
//! and its cost in `hits_addend` (tokens for token limits). So the service needs no
//! configuration of its own: llmgw's JSON stays the one place where limits are written.
//!
//! Windows are fixed and aligned to the epoch, like llmgw's local mode; `MONTH` is the calendar
//! month in UTC, and a descriptor whose `window` entry (llmgw's descriptors carry one) says
//! `week` or `month` counts in that calendar window (budgets: a week has no `RateLimitUnit`).
//! `is_negative_hits` gives units back (llmgw settles budgets with it), never below zero.
//!
//! A budget's amount in micro-USD outgrows the override's 32-bit `requests_per_unit` at
//! 4294.967295 USD, so llmgw's budget descriptors also carry their max in full in an entry
//! `max` (`llmgw_core::ratelimit::global::MAX_ENTRY`): counted against instead of the override,
//! and left out of the counter's key so a raised budget keeps what was spent. Counts are exact
//! up to 2^53 (the script compares in Lua numbers; llmgw refuses larger budgets at load). The
//! answer's `limit_remaining` is 32-bit too: for such a descriptor the exact remaining also
//! goes in `response_headers_to_add` (`x-llmgw-rls-remaining: <index>:<remaining>`).

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::r#type::v3::RateLimitUnit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit;
use llmgw_core::ratelimit::global::MAX_ENTRY;
use llmgw_core::ratelimit::Window;
use tonic::Status;

/// Check every counter (KEYS), and add the hits to all of them only when none would pass its
/// max: a request refused by one limit consumes none of the others, atomically across
/// descriptors, services and Envoys. ARGV, per key: hits, max, window end (Unix seconds),
/// 1 for a refund (`is_negative_hits`: never refused, never below zero, nothing written
/// when the window's counter is gone), and 1 to remember the max and window end beside the
/// counter (`<key>|limit`, for `GET /budgets`). Returns the number of counters over, then each
/// counter's value.
pub const CHECK_AND_COUNT: &str = r"
local over = 0
local counts = {}
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  counts[i] = count
  if ARGV[5 * i - 1] == '0' and count + tonumber(ARGV[5 * i - 4]) > tonumber(ARGV[5 * i - 3]) then
    over = over + 1
  end
end
if over == 0 then
  for i = 1, #KEYS do
    local hits = tonumber(ARGV[5 * i - 4])
    local expires = tonumber(ARGV[5 * i - 2]) + 1
    if ARGV[5 * i - 1] == '0' then
      counts[i] = redis.call('INCRBY', KEYS[i], ARGV[5 * i - 4])
      redis.call('EXPIREAT', KEYS[i], expires)
    elseif counts[i] > 0 then
      counts[i] = math.max(0, counts[i] - hits)
      redis.call('SET', KEYS[i], string.format('%d', counts[i]))
      redis.call('EXPIREAT', KEYS[i], expires)
    end
    if ARGV[5 * i] == '1' then
      redis.call('SET', KEYS[i] .. '|limit', ARGV[5 * i - 3] .. ':' .. ARGV[5 * i - 2])
      redis.call('EXPIREAT', KEYS[i] .. '|limit', expires)
    end
  end
end
local out = {over}
for i = 1, #KEYS do out[#out + 1] = counts[i] end
return out
";

/// One descriptor, understood.
pub struct Check {
    pub key: String,
    pub hits: u64,
    /// The `max` entry where the descriptor has one, else the override's `requests_per_unit`.
    pub max: u64,
    /// The max came from a `max` entry: the answer carries the exact remaining.
    pub exact: bool,
    pub unit: RateLimitUnit,
    pub window_end: u64,
    /// `is_negative_hits`: give `hits` back.
    pub refund: bool,
    /// A budget's admission (llmgw's `kind=usd` with its real max, not the settling call's
    /// `u32::MAX`): the max is remembered for `GET /budgets`.
    pub remember_limit: bool,
}

/// The entries of a counter's key, unescaped: `(key, value)` pairs after the domain, the window
/// length and the window; `None` for a key this service did not write.
pub fn entries_of(key: &str) -> Option<(String, Vec<(String, String)>)> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.push(chars.next()?),
            '|' => fields.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    fields.push(current);
    let mut fields = fields.into_iter();
    if fields.next()? != "llmgw-rls" {
        return None;
    }
    let domain = fields.next()?;
    fields.next()?; // window length
    fields.next()?; // window
    let mut entries = Vec::new();
    for field in fields {
        let (k, v) = field.split_once('=')?;
        entries.push((k.to_string(), v.to_string()));
    }
    Some((domain, entries))
}

/// A descriptor's window at `now` (Unix seconds): its start and end, and its name in keys.
fn window_of(d: &RateLimitDescriptor, unit: RateLimitUnit, now: u64) -> Option<(u64, u64, u64)> {
    let named = d
        .entries
        .iter()
        .find(|e| e.key == "window")
        .map(|e| e.value.as_str());
    let calendar = match (named, unit) {
        (Some("week"), _) => Some(Window::Week),
        (Some("month"), _) | (_, RateLimitUnit::Month) => Some(Window::Month),
        _ => None,
    };
    if let Some(window) = calendar {
        let now_ms = now.saturating_mul(1000);
        let (start, end) = (window.start(now_ms) / 1000, window.end(now_ms) / 1000);
        // Named by its start: a calendar window has no fixed length to divide by.
        return Some((start, end, start));
    }
    let seconds = match unit {
        RateLimitUnit::Second => 1,
        RateLimitUnit::Minute => 60,
        RateLimitUnit::Hour => 3600,
        RateLimitUnit::Day => 86_400,
        RateLimitUnit::Year => 365 * 86_400,
        RateLimitUnit::Month | RateLimitUnit::Unknown => return None,
    };
    let window = now / seconds;
    Some((window * seconds, (window + 1) * seconds, window))
}

pub fn response_unit(unit: RateLimitUnit) -> rate_limit::Unit {
    match unit {
        RateLimitUnit::Second => rate_limit::Unit::Second,
        RateLimitUnit::Minute => rate_limit::Unit::Minute,
        RateLimitUnit::Hour => rate_limit::Unit::Hour,
        RateLimitUnit::Day => rate_limit::Unit::Day,
        RateLimitUnit::Month => rate_limit::Unit::Month,
        RateLimitUnit::Year => rate_limit::Unit::Year,
        RateLimitUnit::Unknown => rate_limit::Unit::Unknown,
    }
}

/// Escape `|`, `=` and `\` so entries cannot be forged into another counter's key.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('=', "\\=")
}

/// The counter a descriptor names at `now` (Unix seconds). `request_hits` is the request-level
/// `hits_addend`, used where a descriptor sets none (0 counts as 1, as in Envoy's API).
pub fn check_of(
    domain: &str,
    d: &RateLimitDescriptor,
    request_hits: u32,
    now: u64,
) -> Result<Check, Status> {
    let limit = d.limit.ok_or_else(|| {
        Status::invalid_argument(
            "every descriptor needs its `limit` override (requests_per_unit, unit)",
        )
    })?;
    let unit = RateLimitUnit::try_from(limit.unit).unwrap_or(RateLimitUnit::Unknown);
    let (start, window_end, window) = window_of(d, unit, now)
        .ok_or_else(|| Status::invalid_argument("descriptor limit has no unit"))?;
    let seconds = window_end - start;
    let max_entry = d
        .entries
        .iter()
        .find(|e| e.key == MAX_ENTRY)
        .map(|e| {
            e.value.parse::<u64>().map_err(|_| {
                Status::invalid_argument(format!(
                    "descriptor entry `{MAX_ENTRY}` must be a whole number, not {:?}",
                    e.value
                ))
            })
        })
        .transpose()?;
    let entries: Vec<String> = d
        .entries
        .iter()
        .filter(|e| e.key != MAX_ENTRY)
        .map(|e| format!("{}={}", escape(&e.key), escape(&e.value)))
        .collect();
    let hits = d
        .hits_addend
        .map(|h| h.value)
        .unwrap_or(u64::from(request_hits.max(1)));
    Ok(Check {
        key: format!(
            "llmgw-rls|{}|{seconds}|{window}|{}",
            escape(domain),
            entries.join("|")
        ),
        hits,
        max: max_entry.unwrap_or(u64::from(limit.requests_per_unit)),
        exact: max_entry.is_some(),
        unit,
        window_end,
        refund: d.is_negative_hits,
        // A settling call goes with the largest max (u64::MAX in the entry, u32::MAX in the
        // override from llmgw before the entry): not the budget's.
        remember_limit: !d.is_negative_hits
            && max_entry.map_or(limit.requests_per_unit != u32::MAX, |m| m != u64::MAX)
            && d.entries
                .iter()
                .any(|e| e.key == "kind" && e.value == "usd"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::{
        Entry, RateLimitOverride,
    };

    fn descriptor(k: &str, v: &str) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: vec![Entry {
                key: k.into(),
                value: v.into(),
            }],
            limit: Some(RateLimitOverride {
                requests_per_unit: 5,
                unit: RateLimitUnit::Minute as i32,
            }),
            hits_addend: None,
            is_negative_hits: false,
        }
    }

    #[test]
    fn keys_cannot_be_forged() {
        let a = check_of("d", &descriptor("a", "b|c=d"), 0, 120).unwrap();
        let b = check_of("d", &descriptor("a", "b"), 0, 120).unwrap();
        assert_ne!(a.key, b.key);
        assert_eq!(a.hits, 1);
        assert_eq!(a.window_end, 180);
    }

    #[test]
    fn descriptor_hits_win_over_the_request_s() {
        let mut d = descriptor("a", "b");
        assert_eq!(check_of("d", &d, 7, 0).unwrap().hits, 7);
        d.hits_addend = Some(envoy_types::pb::google::protobuf::UInt64Value { value: 4321 });
        assert_eq!(check_of("d", &d, 7, 0).unwrap().hits, 4321);
    }

    #[test]
    fn calendar_windows_for_budgets() {
        // 2026-12-03T07:31:10Z.
        let now = 1_796_283_070;
        let mut d = descriptor("window", "month");
        d.limit.as_mut().unwrap().unit = RateLimitUnit::Month as i32;
        let month = check_of("d", &d, 0, now).unwrap();
        // 2026-12-01 to 2027-01-01: 31 days, not 30.
        assert_eq!(month.window_end, 1_798_761_600);
        assert!(month.key.contains("|2678400|1796083200|"), "{}", month.key);
        let week = check_of("d", &descriptor("window", "week"), 0, now).unwrap();
        // Monday 2026-11-30 to Monday 2026-12-07.
        assert!(week.key.contains("|604800|1795996800|"), "{}", week.key);
        assert_eq!(week.window_end, 1_796_601_600);
        let mut refund = descriptor("a", "b");
        refund.is_negative_hits = true;
        assert!(check_of("d", &refund, 0, now).unwrap().refund);
    }

    #[test]
    fn keys_parse_back_into_their_entries() {
        let mut d = descriptor("consumer", "a|b=c\\d");
        d.entries.insert(
            0,
            Entry {
                key: "kind".into(),
                value: "usd".into(),
            },
        );
        let check = check_of("dom|x", &d, 0, 120).unwrap();
        assert!(check.remember_limit);
        let (domain, entries) = entries_of(&check.key).unwrap();
        assert_eq!(domain, "dom|x");
        assert_eq!(
            entries,
            [
                ("kind".to_string(), "usd".to_string()),
                ("consumer".to_string(), "a|b=c\\d".to_string())
            ]
        );
        assert!(entries_of("other|x").is_none());
        d.limit.as_mut().unwrap().requests_per_unit = u32::MAX;
        assert!(!check_of("d", &d, 0, 120).unwrap().remember_limit);
    }

    #[test]
    fn a_budget_s_max_entry_is_its_max_and_not_its_key() {
        let mut d = descriptor("kind", "usd");
        d.limit.as_mut().unwrap().requests_per_unit = u32::MAX;
        let plain = check_of("d", &d, 0, 120).unwrap();
        d.entries.push(Entry {
            key: "max".into(),
            value: "50000000000".into(),
        });
        let check = check_of("d", &d, 0, 120).unwrap();
        assert_eq!(check.max, 50_000_000_000);
        assert!(check.exact && check.remember_limit);
        assert_eq!(check.key, plain.key, "a raised budget keeps its counter");
        d.entries[1].value = u64::MAX.to_string();
        assert!(!check_of("d", &d, 0, 120).unwrap().remember_limit);
        d.entries[1].value = "5e10".into();
        let err = check_of("d", &d, 0, 120).err().unwrap();
        assert!(err.message().contains("whole number"), "{err:?}");
    }

    #[test]
    fn refuses_what_it_cannot_count() {
        let mut d = descriptor("a", "b");
        d.limit = None;
        let err = check_of("d", &d, 0, 0).err().unwrap();
        assert!(err.message().contains("`limit` override"), "{err:?}");
    }
}
