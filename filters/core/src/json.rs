//! The one JSON reader the filters parse bodies and events with.
//!
//! Every type read through `serde_json` gets its own copy of the parser's code for each reader
//! it is read from (`serde_json::from_str` and `from_slice` are two readers). Text goes through
//! the byte reader too, so each type is compiled once. Same results: a `&str` is valid UTF-8,
//! which the byte reader checks again where a string is read.

use serde::Deserialize;

/// `serde_json::from_str`, through the byte reader ([`serde_json::from_slice`]).
pub fn from_str<'a, T: Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    serde_json::from_slice(text.as_bytes())
}
