//! The limit model and its arithmetic: no host, no storage, just numbers.
//!
//! A [`Limit`] is "at most `max` units of `kind` per `window`". Windows are fixed and aligned
//! to the epoch (a minute window starts at every whole minute of UTC), so every worker and every
//! Envoy agrees on where a window starts without talking to each other. Budgets add two
//! calendar windows: the week (Monday 00:00 UTC to the next) and the calendar month (the 1st
//! 00:00 UTC to the next 1st), computed with real calendar arithmetic, not a fixed 30 days.

/// What a limit counts. Token kinds are admitted against an estimate before the request goes
/// upstream and reconciled with the response's `usage` when it ends (see [`super::estimate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitKind {
    Requests,
    InputTokens,
    OutputTokens,
    TotalTokens,
    /// Spend, in micro-USD (integers: no float drift); a budget. Admitted at the request's
    /// worst-case cost and settled at its real cost, like tokens.
    Usd,
}

impl LimitKind {
    /// Every kind.
    pub const ALL: [LimitKind; 5] = [
        LimitKind::Requests,
        LimitKind::InputTokens,
        LimitKind::OutputTokens,
        LimitKind::TotalTokens,
        LimitKind::Usd,
    ];

    /// The name used in config fields (`input_tokens_per_minute`), shared-data keys and
    /// rate limit service descriptors.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitKind::Requests => "requests",
            LimitKind::InputTokens => "input_tokens",
            LimitKind::OutputTokens => "output_tokens",
            LimitKind::TotalTokens => "total_tokens",
            LimitKind::Usd => "usd",
        }
    }

    /// The unit in messages ("60 requests per minute", "1000 input tokens per hour").
    pub const fn unit(self) -> &'static str {
        match self {
            LimitKind::Requests => "requests",
            LimitKind::InputTokens => "input tokens",
            LimitKind::OutputTokens => "output tokens",
            LimitKind::TotalTokens => "tokens",
            LimitKind::Usd => "micro-USD",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// A token kind (OpenAI's token header trio reports it).
    pub const fn is_tokens(self) -> bool {
        matches!(
            self,
            LimitKind::InputTokens | LimitKind::OutputTokens | LimitKind::TotalTokens
        )
    }

    /// Admitted at an estimate and settled with the real usage when the response ends:
    /// tokens and budgets (a request counts 1 request, known at once).
    pub const fn is_settled(self) -> bool {
        !matches!(self, LimitKind::Requests)
    }

    /// The windows a rate of this kind may use: budgets per hour, day, week or month; requests
    /// and tokens per second, minute, hour or day.
    pub fn allows(self, window: Window) -> bool {
        match self {
            LimitKind::Usd => !matches!(window, Window::Second | Window::Minute),
            _ => !matches!(window, Window::Week | Window::Month),
        }
    }

    /// OpenAI's response headers for this kind: limit, remaining, reset
    /// (<https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers>). OpenAI
    /// has one token trio; every token kind reports through it (the tightest one wins).
    pub const fn headers(self) -> [&'static str; 3] {
        match self {
            LimitKind::Requests => [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
            LimitKind::InputTokens | LimitKind::OutputTokens | LimitKind::TotalTokens => [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ],
            // llmgw's own budget headers (README "Budgets"): OpenAI has none for spend.
            LimitKind::Usd => [
                "x-llmgw-budget-limit-usd",
                "x-llmgw-budget-remaining-usd",
                "x-llmgw-budget-reset",
            ],
        }
    }
}

use crate::calendar::{civil_from_days, days_from_civil};
use crate::text;

const DAY_MS: u64 = 86_400_000;
const WEEK_MS: u64 = 7 * DAY_MS;

/// A fixed window length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    Second,
    Minute,
    Hour,
    Day,
    /// Monday 00:00 UTC to the next Monday (ISO 8601 weeks).
    Week,
    /// The calendar month in UTC: 28 to 31 days.
    Month,
}

impl Window {
    pub const ALL: [Window; 6] = [
        Window::Second,
        Window::Minute,
        Window::Hour,
        Window::Day,
        Window::Week,
        Window::Month,
    ];

    /// The window's length; a month's is that of the month containing `now_ms`.
    pub fn millis(self, now_ms: u64) -> u64 {
        self.end(now_ms) - self.start(now_ms)
    }

    /// The name used in config fields, shared-data keys and messages ("per minute"); also the
    /// rate limit service's `unit` enum name, lower-cased.
    pub const fn as_str(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Week => "week",
            Window::Month => "month",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == name)
    }

    /// Start of the window that contains `now_ms`.
    pub fn start(self, now_ms: u64) -> u64 {
        match self {
            Window::Second => now_ms - now_ms % 1_000,
            Window::Minute => now_ms - now_ms % 60_000,
            Window::Hour => now_ms - now_ms % 3_600_000,
            Window::Day => now_ms - now_ms % DAY_MS,
            // 1970-01-01 was a Thursday: Mondays are 4 days (mod 7) after the epoch.
            Window::Week => {
                let since_monday = (now_ms + 3 * DAY_MS) % WEEK_MS;
                now_ms.saturating_sub(since_monday)
            }
            Window::Month => {
                let (y, m, _) = civil_from_days(now_ms / DAY_MS);
                days_from_civil(y, m, 1).unwrap_or(0) * DAY_MS
            }
        }
    }

    /// End (exclusive) of the window that contains `now_ms`.
    pub fn end(self, now_ms: u64) -> u64 {
        let start = self.start(now_ms);
        match self {
            Window::Second => start + 1_000,
            Window::Minute => start + 60_000,
            Window::Hour => start + 3_600_000,
            Window::Day => start + DAY_MS,
            Window::Week => start + WEEK_MS,
            Window::Month => {
                let (y, m, _) = civil_from_days(now_ms / DAY_MS);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1).unwrap_or(0) * DAY_MS
            }
        }
    }

    /// Milliseconds until the window that contains `now_ms` ends; always at least 1.
    pub fn reset_ms(self, now_ms: u64) -> u64 {
        self.end(now_ms) - now_ms
    }
}

/// A moment as RFC 3339 UTC to the second (`2027-01-01T00:00:00Z`), for "resets at".
pub fn format_utc(ms: u64) -> String {
    let (y, m, d) = civil_from_days(ms / DAY_MS);
    let secs = ms % DAY_MS / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Micro-USD as a USD amount with 6 places: `10000` → `0.010000`.
pub fn format_usd(micros: u64) -> String {
    let mut out = String::with_capacity(24);
    text::push_decimal(&mut out, micros / 1_000_000, 0);
    out.push('.');
    text::push_decimal(&mut out, micros % 1_000_000, 6);
    out
}

/// At most `max` units of `kind` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    pub kind: LimitKind,
    pub window: Window,
    pub max: u64,
}

/// Where a counter stands after a request was counted (or refused), for response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub limit: Limit,
    /// Units counted in the current window, this request included when it was admitted.
    pub used: u64,
    /// Milliseconds until the window resets.
    pub reset_ms: u64,
}

impl Usage {
    pub fn remaining(&self) -> u64 {
        remaining(self.limit.max, self.used)
    }

    /// The three OpenAI headers (limit, remaining, reset) with their values; a budget's in
    /// USD.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        let [limit, remaining, reset] = self.limit.kind.headers();
        // Digits without the formatter: every limited request answers with these.
        let amount = |v: u64| match self.limit.kind {
            LimitKind::Usd => format_usd(v),
            _ => {
                let mut out = String::with_capacity(text::MAX_DIGITS);
                text::push_decimal(&mut out, v, 0);
                out
            }
        };
        [
            (limit, amount(self.limit.max)),
            (remaining, amount(self.remaining())),
            (reset, format_duration_ms(self.reset_ms)),
        ]
    }

    /// Per mille of the limit used (1000 = all of it; more when over).
    pub fn used_permille(&self) -> u64 {
        let permille = u128::from(self.used) * 1000 / u128::from(self.limit.max.max(1));
        u64::try_from(permille).unwrap_or(u64::MAX)
    }
}

/// What is left of `max` once `used` is spent, never below zero.
pub const fn remaining(max: u64, used: u64) -> u64 {
    max.saturating_sub(used)
}

/// `retry-after` in whole seconds, rounded up so a client that waits that long is admitted.
pub const fn retry_after_secs(reset_ms: u64) -> u64 {
    reset_ms.div_ceil(1000)
}

/// A duration the way OpenAI writes `x-ratelimit-reset-*` (Go's `time.Duration` format at
/// millisecond precision): `250ms`, `1s`, `17.5s`, `1m0s`, `1h2m3s`.
pub fn format_duration_ms(ms: u64) -> String {
    // Written without the formatter (`text`): every limited answer carries one or two.
    let mut out = String::with_capacity(24);
    if ms == 0 {
        out.push_str("0s");
        return out;
    }
    if ms < 1000 {
        text::push_decimal(&mut out, ms, 0);
        out.push_str("ms");
        return out;
    }
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let seconds = ms / 1000 % 60;
    let frac = ms % 1000;
    if hours > 0 {
        text::push_decimal(&mut out, hours, 0);
        out.push('h');
    }
    if hours > 0 || minutes > 0 {
        text::push_decimal(&mut out, minutes, 0);
        out.push('m');
    }
    text::push_decimal(&mut out, seconds, 0);
    if frac > 0 {
        // Milliseconds as three digits, trailing zeros dropped (`17.5s`, not `17.500s`):
        // 1000 + frac is "1" and the three digits.
        let mut buf = [0u8; text::MAX_DIGITS];
        let digits = text::decimal(1000 + frac, &mut buf)
            .get(1..)
            .unwrap_or_default();
        let zeros = digits.iter().rev().take_while(|&&d| d == b'0').count();
        let kept = digits.get(..digits.len() - zeros).unwrap_or_default();
        out.push('.');
        out.extend(kept.iter().map(|&d| char::from(d)));
    }
    out.push('s');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn minute_windows_are_aligned() {
        let w = Window::Minute;
        assert_eq!(w.start(0), 0);
        assert_eq!(w.start(59_999), 0);
        assert_eq!(w.start(60_000), 60_000);
        assert_eq!(w.start(1_780_272_043_250), 1_780_272_000_000);
        assert_eq!(w.end(1_780_272_043_250), 1_780_272_060_000);
        assert_eq!(w.reset_ms(1_780_272_043_250), 16_750);
        assert_eq!(w.reset_ms(60_000), 60_000);
        assert_eq!(w.reset_ms(59_999), 1);
    }

    #[test]
    fn every_window_is_aligned_to_the_epoch() {
        let now = 1_780_272_043_250; // 2026-06-01T00:00:43.250Z
        assert_eq!(Window::Second.start(now), 1_780_272_043_000);
        assert_eq!(Window::Second.reset_ms(now), 750);
        assert_eq!(Window::Hour.start(now), 1_780_272_000_000);
        assert_eq!(Window::Hour.reset_ms(now), 3_600_000 - 43_250);
        assert_eq!(Window::Day.start(now), 1_780_272_000_000);
        assert_eq!(Window::Day.reset_ms(now), 86_400_000 - 43_250);
        for w in Window::ALL {
            assert_eq!(Window::parse(w.as_str()), Some(w));
            assert_eq!(w.start(w.start(now)), w.start(now));
            assert!(w.reset_ms(now) >= 1 && w.reset_ms(now) <= w.millis(now));
        }
        assert_eq!(Window::parse("fortnight"), None);
    }

    const DAY: u64 = 86_400_000;

    #[test]
    fn calendar_months_have_their_own_lengths() {
        let at = |y, m, d| days_from_civil(y, m, d).unwrap() * DAY;
        assert_eq!(at(1970, 1, 1), 0);
        assert_eq!(at(2026, 6, 1), 1_780_272_000_000);
        assert_eq!(
            format_utc(at(2026, 12, 3) + 27_070_000),
            "2026-12-03T07:31:10Z"
        );
        // December 2026 runs to 2027-01-01; February 2028 (leap) has 29 days, 2027's 28.
        let mid_december = at(2026, 12, 3) + 12_345;
        assert_eq!(Window::Month.start(mid_december), at(2026, 12, 1));
        assert_eq!(Window::Month.end(mid_december), at(2027, 1, 1));
        assert_eq!(
            format_utc(Window::Month.end(mid_december)),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(Window::Month.millis(at(2028, 2, 10)), 29 * DAY);
        assert_eq!(Window::Month.millis(at(2027, 2, 10)), 28 * DAY);
        assert_eq!(Window::Month.millis(at(2027, 4, 30) + DAY - 1), 30 * DAY);
        assert_eq!(Window::Month.start(at(2027, 3, 1)), at(2027, 3, 1));
        assert_eq!(Window::Month.reset_ms(at(2027, 3, 1)), 31 * DAY);
        // 2100 is not a leap year, 2000 was.
        assert_eq!(Window::Month.millis(at(2100, 2, 1)), 28 * DAY);
        assert_eq!(Window::Month.millis(at(2000, 2, 1)), 29 * DAY);
    }

    #[test]
    fn weeks_start_on_monday_utc() {
        let at = |y, m, d| days_from_civil(y, m, d).unwrap() * DAY;
        // 2026-12-03 is a Thursday; its week began Monday 2026-11-30.
        let thursday = at(2026, 12, 3) + 3_600_000;
        assert_eq!(Window::Week.start(thursday), at(2026, 11, 30));
        assert_eq!(Window::Week.end(thursday), at(2026, 12, 7));
        assert_eq!(Window::Week.start(at(2026, 12, 7)), at(2026, 12, 7));
        assert_eq!(Window::Week.end(at(2026, 12, 7) - 1), at(2026, 12, 7));
        assert_eq!(Window::Week.millis(thursday), 7 * DAY);
    }

    #[test]
    fn budgets_use_hours_to_months_and_rates_seconds_to_days() {
        assert!(LimitKind::Usd.allows(Window::Month));
        assert!(LimitKind::Usd.allows(Window::Hour));
        assert!(!LimitKind::Usd.allows(Window::Minute));
        assert!(!LimitKind::Requests.allows(Window::Week));
        assert!(LimitKind::TotalTokens.allows(Window::Second));
        assert!(!LimitKind::Usd.is_tokens());
        assert!(LimitKind::Usd.is_settled());
        assert!(!LimitKind::Requests.is_settled());
    }

    #[test]
    fn budget_headers_are_in_usd() {
        let usage = Usage {
            limit: Limit {
                kind: LimitKind::Usd,
                window: Window::Day,
                max: 10_000,
            },
            used: 8_500,
            reset_ms: 3_600_000,
        };
        assert_eq!(
            usage.headers(),
            [
                ("x-llmgw-budget-limit-usd", "0.010000".to_string()),
                ("x-llmgw-budget-remaining-usd", "0.001500".to_string()),
                ("x-llmgw-budget-reset", "1h0m0s".to_string()),
            ]
        );
        assert_eq!(usage.used_permille(), 850);
        assert_eq!(format_usd(500_000_000), "500.000000");
    }

    #[test]
    fn kinds_parse_and_share_the_token_headers() {
        for k in LimitKind::ALL {
            assert_eq!(LimitKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(LimitKind::parse("tokens"), None);
        assert_eq!(
            LimitKind::InputTokens.headers(),
            LimitKind::TotalTokens.headers()
        );
        assert!(!LimitKind::Requests.is_tokens());
        assert!(LimitKind::OutputTokens.is_tokens());
    }

    #[test]
    fn remaining_never_goes_negative() {
        assert_eq!(remaining(60, 0), 60);
        assert_eq!(remaining(60, 59), 1);
        assert_eq!(remaining(60, 60), 0);
        assert_eq!(remaining(60, 61), 0);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1000), 1);
        assert_eq!(retry_after_secs(1001), 2);
        assert_eq!(retry_after_secs(16_750), 17);
        assert_eq!(retry_after_secs(60_000), 60);
    }

    /// The formatter's spelling of every amount and duration, checked against what is
    /// written without it.
    fn with_format(ms: u64) -> String {
        if ms == 0 {
            return "0s".to_string();
        }
        if ms < 1000 {
            return format!("{ms}ms");
        }
        let (hours, minutes, seconds, frac) =
            (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let mut out = String::new();
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        if hours > 0 || minutes > 0 {
            out.push_str(&format!("{minutes}m"));
        }
        out.push_str(&seconds.to_string());
        if frac > 0 {
            out.push('.');
            out.push_str(format!("{frac:03}").trim_end_matches('0'));
        }
        out.push('s');
        out
    }

    #[test]
    fn amounts_and_durations_read_as_the_formatter_wrote_them() {
        let mut samples: Vec<u64> = (0..2_500)
            .chain([59_999, 60_000, 3_600_000, 3_723_450])
            .collect();
        samples.extend([86_400_000 * 400 + 17, u64::MAX]);
        for ms in samples {
            assert_eq!(format_duration_ms(ms), with_format(ms), "{ms}");
            let usd = format!("{}.{:06}", ms / 1_000_000, ms % 1_000_000);
            assert_eq!(format_usd(ms), usd, "{ms}");
        }
    }

    #[test]
    fn durations_in_openai_format() {
        assert_eq!(format_duration_ms(0), "0s");
        assert_eq!(format_duration_ms(1), "1ms");
        assert_eq!(format_duration_ms(250), "250ms");
        assert_eq!(format_duration_ms(999), "999ms");
        assert_eq!(format_duration_ms(1000), "1s");
        assert_eq!(format_duration_ms(17_000), "17s");
        assert_eq!(format_duration_ms(17_500), "17.5s");
        assert_eq!(format_duration_ms(16_750), "16.75s");
        assert_eq!(format_duration_ms(8_640), "8.64s");
        assert_eq!(format_duration_ms(59_999), "59.999s");
        assert_eq!(format_duration_ms(60_000), "1m0s");
        assert_eq!(format_duration_ms(61_050), "1m1.05s");
        assert_eq!(format_duration_ms(360_000), "6m0s");
        assert_eq!(format_duration_ms(3_723_000), "1h2m3s");
        assert_eq!(format_duration_ms(3_600_000), "1h0m0s");
    }

    #[test]
    fn usage_headers() {
        let usage = Usage {
            limit: Limit {
                kind: LimitKind::Requests,
                window: Window::Minute,
                max: 60,
            },
            used: 43,
            reset_ms: 17_000,
        };
        assert_eq!(
            usage.headers(),
            [
                ("x-ratelimit-limit-requests", "60".to_string()),
                ("x-ratelimit-remaining-requests", "17".to_string()),
                ("x-ratelimit-reset-requests", "17s".to_string()),
            ]
        );
    }
}
