//! The limit model and its arithmetic: no host, no storage, just numbers.
//!
//! A [`Limit`] is "at most `max` units of `kind` per `window`". Windows are fixed and aligned
//! to the epoch (a minute window starts at every whole minute of UTC), so every worker and every
//! Envoy agrees on where a window starts without talking to each other.

/// What a limit counts. Token kinds are admitted against an estimate before the request goes
/// upstream and reconciled with the response's `usage` when it ends (see [`super::estimate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitKind {
    Requests,
    InputTokens,
    OutputTokens,
    TotalTokens,
}

impl LimitKind {
    /// Every kind.
    pub const ALL: [LimitKind; 4] = [
        LimitKind::Requests,
        LimitKind::InputTokens,
        LimitKind::OutputTokens,
        LimitKind::TotalTokens,
    ];

    /// The name used in config fields (`input_tokens_per_minute`), shared-data keys and
    /// rate limit service descriptors.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitKind::Requests => "requests",
            LimitKind::InputTokens => "input_tokens",
            LimitKind::OutputTokens => "output_tokens",
            LimitKind::TotalTokens => "total_tokens",
        }
    }

    /// The unit in messages ("60 requests per minute", "1000 input tokens per hour").
    pub const fn unit(self) -> &'static str {
        match self {
            LimitKind::Requests => "requests",
            LimitKind::InputTokens => "input tokens",
            LimitKind::OutputTokens => "output tokens",
            LimitKind::TotalTokens => "tokens",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub const fn is_tokens(self) -> bool {
        !matches!(self, LimitKind::Requests)
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
        }
    }
}

/// A fixed window length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    Second,
    Minute,
    Hour,
    Day,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::Second, Window::Minute, Window::Hour, Window::Day];

    pub const fn millis(self) -> u64 {
        match self {
            Window::Second => 1_000,
            Window::Minute => 60_000,
            Window::Hour => 3_600_000,
            Window::Day => 86_400_000,
        }
    }

    /// The name used in config fields, shared-data keys and messages ("per minute"); also the
    /// rate limit service's `unit` enum name, lower-cased.
    pub const fn as_str(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == name)
    }

    /// Start of the window that contains `now_ms`.
    pub const fn start(self, now_ms: u64) -> u64 {
        now_ms - now_ms % self.millis()
    }

    /// End (exclusive) of the window that contains `now_ms`.
    pub const fn end(self, now_ms: u64) -> u64 {
        self.start(now_ms).saturating_add(self.millis())
    }

    /// Milliseconds until the window that contains `now_ms` ends; always at least 1.
    pub const fn reset_ms(self, now_ms: u64) -> u64 {
        self.end(now_ms) - now_ms
    }
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

    /// The three OpenAI headers (limit, remaining, reset) with their values.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        let [limit, remaining, reset] = self.limit.kind.headers();
        [
            (limit, self.limit.max.to_string()),
            (remaining, self.remaining().to_string()),
            (reset, format_duration_ms(self.reset_ms)),
        ]
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
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let seconds = ms / 1000 % 60;
    let frac = ms % 1000;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&seconds.to_string());
    if frac > 0 {
        let digits = format!("{frac:03}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('s');
    out
}

#[cfg(test)]
mod tests {
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
            assert!(w.reset_ms(now) >= 1 && w.reset_ms(now) <= w.millis());
        }
        assert_eq!(Window::parse("week"), None);
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
