//! A small, strict RFC 3339 timestamp parser (<https://www.rfc-editor.org/rfc/rfc3339#section-5.6>),
//! enough for key expiry dates in config without pulling a date crate into every filter.
//!
//! Accepted: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)`; `t` and `z` may be lower-case
//! (RFC 3339 §5.6 note). Refused: anything else, including a space instead of `T`, a missing
//! offset, and impossible dates (month 13, February 30th, hour 24). A leap second (`:60`) is
//! accepted and counts as the first second of the next minute. Fractions are truncated to
//! milliseconds.

/// Parse an RFC 3339 timestamp into milliseconds since the Unix epoch (negative before 1970).
pub fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    let b = text.as_bytes();
    let shape = || {
        format!(
            "expected an RFC 3339 timestamp like 2027-01-01T00:00:00Z or \
             2027-01-01T09:00:00+09:00, got {text:?}"
        )
    };
    if b.len() < 20 {
        return Err(shape());
    }
    let year = digits(b, 0, 4).ok_or_else(shape)?;
    let month = digits(b, 5, 2).ok_or_else(shape)?;
    let day = digits(b, 8, 2).ok_or_else(shape)?;
    let hour = digits(b, 11, 2).ok_or_else(shape)?;
    let minute = digits(b, 14, 2).ok_or_else(shape)?;
    let second = digits(b, 17, 2).ok_or_else(shape)?;
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(shape());
    }

    let mut pos = 19;
    let mut millis = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            if pos - start < 3 {
                millis = millis * 10 + i64::from(b[pos] - b'0');
            }
            pos += 1;
        }
        if pos == start {
            return Err(shape());
        }
        // Scale what we kept to milliseconds: ".5" is 500 ms, ".05" is 50 ms.
        for _ in (pos - start)..3 {
            millis *= 10;
        }
    }

    let offset_minutes = match &b[pos..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let oh = digits(b, pos + 1, 2).ok_or_else(shape)?;
            let om = digits(b, pos + 4, 2).ok_or_else(shape)?;
            if oh > 23 || om > 59 {
                return Err(format!("offset out of range in {text:?}"));
            }
            let total = i64::from(oh * 60 + om);
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return Err(shape()),
    };

    if !(1..=12).contains(&month) {
        return Err(format!("month {month} out of range in {text:?}"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!(
            "day {day} out of range for {year:04}-{month:02} in {text:?}"
        ));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!("time of day out of range in {text:?}"));
    }

    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    let seconds =
        days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

/// `n` ASCII digits at `at`, as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let slice = b.get(at..at + n)?;
    slice.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn is_leap(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date
/// (Howard Hinnant, <https://howardhinnant.github.io/date_algorithms.html#days_from_civil>).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn utc_timestamps() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_ms("2027-01-01T00:00:00Z"),
            Ok(1_798_761_600_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T12:34:56Z"),
            Ok(1_709_210_096_000)
        );
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59Z"), Ok(-1000));
        assert_eq!(
            parse_rfc3339_ms("2000-03-01t00:00:00z"),
            Ok(951_868_800_000)
        );
    }

    #[test]
    fn offsets_shift_to_utc() {
        let utc = parse_rfc3339_ms("2027-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_rfc3339_ms("2027-01-01T09:00:00+09:00"), Ok(utc));
        assert_eq!(parse_rfc3339_ms("2026-12-31T19:30:00-04:30"), Ok(utc));
        assert_eq!(parse_rfc3339_ms("2027-01-01T00:00:00+00:00"), Ok(utc));
        assert_eq!(parse_rfc3339_ms("2027-01-01T00:00:00-00:00"), Ok(utc));
    }

    #[test]
    fn fractions_are_truncated_to_milliseconds() {
        let base = parse_rfc3339_ms("2027-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_rfc3339_ms("2027-01-01T00:00:00.5Z"), Ok(base + 500));
        assert_eq!(parse_rfc3339_ms("2027-01-01T00:00:00.05Z"), Ok(base + 50));
        assert_eq!(parse_rfc3339_ms("2027-01-01T00:00:00.123Z"), Ok(base + 123));
        assert_eq!(
            parse_rfc3339_ms("2027-01-01T00:00:00.123999999+00:00"),
            Ok(base + 123)
        );
    }

    #[test]
    fn leap_second_is_the_next_minute() {
        assert_eq!(
            parse_rfc3339_ms("2016-12-31T23:59:60Z"),
            parse_rfc3339_ms("2017-01-01T00:00:00Z")
        );
    }

    #[test]
    fn garbage_and_impossible_dates_are_refused() {
        for bad in [
            "",
            "tomorrow",
            "2027-01-01",
            "2027-01-01T00:00:00",
            "2027-01-01 00:00:00Z",
            "2027-1-01T00:00:00Z",
            "2027-01-01T00:00:00.Z",
            "2027-01-01T00:00:00+0900",
            "2027-01-01T00:00:00+09",
            "2027-01-01T00:00:00Zjunk",
            "2027-01-01T00:00:00 Z",
            "+027-01-01T00:00:00Z",
            "2027-13-01T00:00:00Z",
            "2027-00-10T00:00:00Z",
            "2027-02-29T00:00:00Z",
            "2027-04-31T00:00:00Z",
            "2027-01-00T00:00:00Z",
            "2027-01-01T24:00:00Z",
            "2027-01-01T00:60:00Z",
            "2027-01-01T00:00:61Z",
            "2027-01-01T00:00:00+24:00",
            "2027-01-01T00:00:00+01:60",
            "2027-01-01T00:00:00\u{e9}",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_rfc3339_ms("2027-13-01T00:00:00Z")
            .unwrap_err()
            .contains("month 13"));
        assert!(parse_rfc3339_ms("2100-02-29T00:00:00Z")
            .unwrap_err()
            .contains("day 29"));
    }
}
