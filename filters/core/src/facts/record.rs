//! The encoding of one writer's facts in one filter-state value.
//!
//! A record is a sequence of fields, each `<name>:<length>:<value>\n`: the name (no `:`), the
//! value's length in bytes in decimal, the value itself, then a line break. The length makes any
//! value safe, whatever bytes it holds (no escaping), and a reader finds each field without
//! scanning the value; the line breaks keep a record readable in a debug log. Fields are looked
//! up by name, so a reader ignores fields it does not know and reads a missing one as absent
//! (modules of different versions can share a request). Absent and empty values are not
//! written.

use crate::text::{decimal, MAX_DIGITS};

/// Builds a record.
#[derive(Debug)]
pub struct Record {
    out: Vec<u8>,
}

/// A record's size before it grows: router's, the longest, is ~150 bytes with a fallback
/// chain and prices, so one allocation holds any record of the bench's requests.
const RECORD_CAPACITY: usize = 192;

impl Default for Record {
    fn default() -> Self {
        Self {
            out: Vec::with_capacity(RECORD_CAPACITY),
        }
    }
}

impl Record {
    pub fn new() -> Self {
        Self::default()
    }

    /// A text field; absent or empty values are left out.
    pub fn text(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            self.field(name, value.as_bytes());
        }
    }

    /// A number field; absent values are left out.
    pub fn number(&mut self, name: &str, value: Option<u64>) {
        if let Some(value) = value {
            let mut digits = [0u8; MAX_DIGITS];
            self.field(name, decimal(value, &mut digits));
        }
    }

    /// A flag: written as `1` when set, left out when not.
    pub fn flag(&mut self, name: &str, set: bool) {
        if set {
            self.field(name, b"1");
        }
    }

    fn field(&mut self, name: &str, value: &[u8]) {
        let mut digits = [0u8; MAX_DIGITS];
        let length = decimal(value.len() as u64, &mut digits);
        self.out
            .reserve(name.len() + length.len() + value.len() + 3);
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b':');
        self.out.extend_from_slice(length);
        self.out.push(b':');
        self.out.extend_from_slice(value);
        self.out.push(b'\n');
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Room for every field of the longest record (router's has 10) on the stack: a record is
/// parsed on every read (5 a request), and a vector for its fields was an allocation each.
const FIELDS_ON_STACK: usize = 12;

/// A field's length: 1 to 10 decimal digits, nothing else (no sign, no space).
fn length(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    digits.iter().try_fold(0usize, |len, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        // Checked: ten digits overflow a 32-bit `usize` (wasm32), which reads as no record.
        len.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// A parsed record: its fields, borrowed from the bytes. The first [`FIELDS_ON_STACK`] are
/// held inline; a record with more (a newer writer's) spills the rest into a vector.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    inline: [Field<'a>; FIELDS_ON_STACK],
    len: usize,
    more: Vec<Field<'a>>,
}

/// One field: its name, its value, and the value as text when the whole record is UTF-8.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Field<'a> {
    name: &'a str,
    value: &'a [u8],
    text: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// `None` when `bytes` is not a whole record (a length that runs past the end, a missing
    /// separator): a record is read whole or not at all.
    ///
    /// The record's UTF-8 is checked once, not per name and value (a call each, ~90
    /// instructions, ~40 a request): in a UTF-8 record every name and value is UTF-8 too,
    /// since each starts and ends at an ASCII separator.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let whole = std::str::from_utf8(bytes).ok();
        let mut fields = Self::default();
        let mut at = 0;
        while at < bytes.len() {
            let rest = bytes.get(at..)?;
            let name_end = at + rest.iter().position(|&b| b == b':')?;
            let name = match whole {
                Some(whole) => whole.get(at..name_end)?,
                None => std::str::from_utf8(bytes.get(at..name_end)?).ok()?,
            };
            let len_start = name_end + 1;
            let rest = bytes.get(len_start..)?;
            let len_end = len_start + rest.iter().position(|&b| b == b':')?;
            let len = length(bytes.get(len_start..len_end)?)?;
            let value_start = len_end + 1;
            let value_end = value_start.checked_add(len)?;
            let value = bytes.get(value_start..value_end)?;
            if bytes.get(value_end) != Some(&b'\n') {
                return None;
            }
            let text = whole.and_then(|whole| whole.get(value_start..value_end));
            fields.push(Field { name, value, text });
            at = value_end + 1;
        }
        Some(fields)
    }

    fn push(&mut self, field: Field<'a>) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = field;
                self.len += 1;
            }
            None => self.more.push(field),
        }
    }

    fn get(&self, name: &str) -> Option<&Field<'a>> {
        let inline = self.inline.get(..self.len).unwrap_or_default();
        inline.iter().chain(&self.more).find(|f| f.name == name)
    }

    /// A text field, borrowed from the record; `None` when absent, empty or not UTF-8.
    pub fn text(&self, name: &str) -> Option<&'a str> {
        let field = self.get(name)?;
        let value = match field.text {
            Some(text) => text,
            None => std::str::from_utf8(field.value).ok()?,
        };
        (!value.is_empty()).then_some(value)
    }

    /// A text field as an owned string ([`Fields::text`]).
    pub fn string(&self, name: &str) -> Option<String> {
        self.text(name).map(str::to_string)
    }

    /// A number field; `None` when absent or not a number.
    pub fn number(&self, name: &str) -> Option<u64> {
        std::str::from_utf8(self.get(name)?.value)
            .ok()?
            .parse()
            .ok()
    }

    /// A flag: set when the field is `1`.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).map(|f| f.value) == Some(b"1")
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn a_record_reads_back_what_was_written() {
        let mut record = Record::new();
        record.text("consumer", Some("alice"));
        record.text("team", None);
        record.text("empty", Some(""));
        record.number("input", Some(31));
        record.number("max", None);
        record.flag("stream", true);
        record.flag("forced", false);
        let bytes = record.finish();
        assert_eq!(bytes, b"consumer:5:alice\ninput:2:31\nstream:1:1\n");
        let fields = Fields::parse(&bytes).unwrap();
        assert_eq!(fields.string("consumer").as_deref(), Some("alice"));
        assert_eq!(fields.string("team"), None);
        assert_eq!(fields.string("empty"), None);
        assert_eq!(fields.number("input"), Some(31));
        assert_eq!(fields.number("max"), None);
        assert!(fields.flag("stream"));
        assert!(!fields.flag("forced"));
        assert_eq!(Fields::parse(b""), Some(Fields::default()));
    }

    #[test]
    fn big_numbers_and_long_values_read_back() {
        let mut record = Record::new();
        record.number("big", Some(u64::MAX));
        let long = "x".repeat(1_234);
        record.text("long", Some(&long));
        let bytes = record.finish();
        assert!(bytes.starts_with(b"big:20:18446744073709551615\nlong:1234:x"));
        let fields = Fields::parse(&bytes).unwrap();
        assert_eq!(fields.number("big"), Some(u64::MAX));
        assert_eq!(fields.string("long"), Some(long));
        assert_eq!(length(b"0000000007"), Some(7));
        // Ten digits fit a 64-bit length but not a 32-bit one (wasm32): no record either way.
        assert!(Fields::parse(b"a:9999999999:x\n").is_none());
    }

    #[test]
    fn values_may_hold_any_bytes() {
        let tricky = "a:1:b\nc:99:\u{0}é,=/";
        let mut record = Record::new();
        record.text("x", Some(tricky));
        record.text("y", Some("after"));
        let bytes = record.finish();
        let fields = Fields::parse(&bytes).unwrap();
        assert_eq!(fields.string("x").as_deref(), Some(tricky));
        assert_eq!(fields.string("y").as_deref(), Some("after"));
        // Only whole names match: no field is found inside another's value.
        assert_eq!(fields.string("a"), None);
        assert_eq!(fields.string("c"), None);
    }

    #[test]
    fn records_with_more_fields_than_the_stack_holds_read_whole() {
        let mut record = Record::new();
        let names: Vec<String> = (0..FIELDS_ON_STACK + 3).map(|i| format!("f{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            record.number(name, Some(i as u64));
        }
        record.text("last", Some("here"));
        let bytes = record.finish();
        let fields = Fields::parse(&bytes).unwrap();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(fields.number(name), Some(i as u64), "{name}");
        }
        assert_eq!(fields.text("last"), Some("here"));
        assert_eq!(fields.text("absent"), None);
    }

    #[test]
    fn fields_a_reader_does_not_know_are_skipped() {
        let fields = Fields::parse(b"future:3:abc\nconsumer:3:bob\n").unwrap();
        assert_eq!(fields.string("consumer").as_deref(), Some("bob"));
    }

    #[test]
    fn anything_but_a_whole_record_is_refused() {
        let good = b"consumer:5:alice\nteam:2:ml\n";
        assert!(Fields::parse(good).is_some());
        let first_field = good.iter().position(|&b| b == b'\n').unwrap() + 1;
        for cut in (1..good.len()).filter(|&cut| cut != first_field) {
            let refused = Fields::parse(&good[..cut]).is_none();
            assert!(refused, "cut at {cut}: {:?}", &good[..cut]);
        }
        for bad in [
            &b"consumer:6:alice\n"[..],
            b"consumer:4:alice\n",
            b"consumer::alice\n",
            b"consumer:-5:alice\n",
            b"consumer:+5:alice\n",
            b"consumer:99999999999:x\n",
            b"consumer 5 alice\n",
            b"\xff:1:a\n",
        ] {
            assert_eq!(Fields::parse(bad), None, "{bad:?}");
        }
        // A value that is not UTF-8 reads as absent, not as a lossy copy, and the record's
        // other fields still read (each checked on its own when the whole is not UTF-8).
        let fields = Fields::parse(b"consumer:2:\xff\xfe\nteam:2:ml\nn:2:42\nf:1:1\n").unwrap();
        assert_eq!(fields.string("consumer"), None);
        assert_eq!(fields.string("team").as_deref(), Some("ml"));
        assert_eq!(fields.number("n"), Some(42));
        assert!(fields.flag("f"));
    }
}
