//! Short strings built on request paths without the formatter: `format!` goes through
//! `core::fmt` (a dynamic call per piece, a guessed capacity that may grow), ~900 instructions
//! for a key of three pieces natively, where copying the pieces into one allocation of the
//! right size costs a fraction of that (bench/analysis.md, "Issue 16, llmgw's own code").

/// The pieces one after the other, in one allocation.
pub fn concat(pieces: &[&str]) -> String {
    let mut out = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
    for piece in pieces {
        out.push_str(piece);
    }
    out
}

/// Digits of the largest `u64`.
pub const MAX_DIGITS: usize = 20;

/// `n` in decimal, written into `buf` (a `to_string` would be an allocation and a formatter
/// call for a few digits).
pub fn decimal(mut n: u64, buf: &mut [u8; MAX_DIGITS]) -> &[u8] {
    let mut start = MAX_DIGITS;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}

/// Append `n` in decimal, padded with leading zeros to `width` digits (`format!("{n:0width$}")`).
pub fn push_decimal(out: &mut String, n: u64, width: usize) {
    let mut buf = [0u8; MAX_DIGITS];
    let digits = decimal(n, &mut buf);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.extend(digits.iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut digits = [0u8; MAX_DIGITS];
        assert_eq!(decimal(0, &mut digits), b"0");
        assert_eq!(decimal(1_000, &mut digits), b"1000");
        assert_eq!(
            decimal(u64::MAX, &mut digits),
            u64::MAX.to_string().as_bytes()
        );
        for (n, width) in [
            (0, 0),
            (0, 9),
            (450_000, 9),
            (7, 3),
            (123_456, 3),
            (u64::MAX, 25),
        ] {
            let mut out = String::from("x");
            push_decimal(&mut out, n, width);
            assert_eq!(out, format!("x{n:0width$}"));
        }
    }

    #[test]
    fn pieces_are_joined_in_order() {
        assert_eq!(concat(&["Bearer ", "sk-1"]), "Bearer sk-1");
        assert_eq!(concat(&[]), "");
        let joined = concat(&["a", "", "bc"]);
        assert_eq!(joined, "abc");
        assert_eq!(joined.capacity(), 3);
    }
}
