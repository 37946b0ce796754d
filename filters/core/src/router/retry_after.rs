//! A provider's `Retry-After` header ([RFC 9110 §10.2.3](https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3)):
//! delay-seconds or an HTTP date, as milliseconds from now.
//!
//! Only the date format senders must generate (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`)
//! is read; the two obsolete ones are ignored, and the target then cools for the configured
//! `cooldown_seconds` as it would without the header.

/// `value` as milliseconds from `now_ms`; a date in the past is 0. `None` when unreadable.
pub fn parse(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Longer than u64 seconds: as far away as it gets (the caller bounds it anyway).
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(seconds.saturating_mul(1000));
    }
    let at_ms = imf_fixdate_ms(value)?;
    Some(at_ms.saturating_sub(now_ms))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` as Unix milliseconds.
fn imf_fixdate_ms(value: &str) -> Option<u64> {
    let mut parts = value.split(' ');
    let weekday = parts.next()?;
    let (day, month, year, time, zone) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some() || zone != "GMT" || weekday.len() != 4 || !weekday.ends_with(',') {
        return None;
    }
    let number = |s: &str, len: usize| -> Option<u64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let (day, year) = (number(day, 2)?, number(year, 4)?);
    let mut clock = time.split(':');
    let (h, m, s) = (
        number(clock.next()?, 2)?,
        number(clock.next()?, 2)?,
        number(clock.next()?, 2)?,
    );
    if clock.next().is_some() || day == 0 || day > 31 || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = crate::calendar::days_from_civil(year, month, day)?;
    Some((days * 86_400 + h * 3_600 + m * 60 + s) * 1000)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::parse;

    // 2026-12-02T16:00:00Z
    const NOW: u64 = 1_796_227_200_000;

    #[test]
    fn delay_seconds() {
        assert_eq!(parse("7", NOW), Some(7_000));
        assert_eq!(parse(" 0 ", NOW), Some(0));
        assert_eq!(parse("99999999999999999999999", NOW), Some(u64::MAX));
    }

    #[test]
    fn imf_fixdate() {
        // RFC 9110's example, long past: no wait.
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT", NOW), Some(0));
        assert_eq!(parse("Wed, 02 Dec 2026 16:00:42 GMT", NOW), Some(42_000));
        assert_eq!(
            parse("Thu, 03 Dec 2026 16:00:00 GMT", NOW),
            Some(86_400_000)
        );
        assert_eq!(
            parse("Mon, 01 Mar 2027 00:00:00 GMT", NOW),
            Some(7_632_000_000)
        );
    }

    #[test]
    fn unreadable_values_are_none() {
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Wed, 02 Dec 2026 16:00:42 UTC",
            "Wed, 02 Foo 2026 16:00:42 GMT",
            "Wed, 32 Dec 2026 16:00:42 GMT",
            "Wed, 02 Dec 2026 24:00:00 GMT",
            "Wed, 02 Dec 2026 16:00 GMT",
            "Wed, 02 Dec 1969 16:00:00 GMT",
        ] {
            assert_eq!(parse(bad, NOW), None, "{bad:?}");
        }
    }
}
