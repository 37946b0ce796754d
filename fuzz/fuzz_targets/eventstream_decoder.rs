//! The event-stream decoder never panics, and gives the same frames (or the same error)
//! whole or cut anywhere.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmgw_core::eventstream::Decoder;

fuzz_target!(|data: &[u8]| {
    let whole = Decoder::new().feed(data);
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (a, b) = data.split_at(cut);
    let mut dec = Decoder::new();
    let mut split = dec.feed(a);
    split.extend(dec.feed(b));
    assert_eq!(whole, split);
});
