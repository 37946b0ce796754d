//! A header map in proxy-wasm's wire form, as Envoy hands it to a filter: any bytes are read
//! or refused, never a panic, and a map that was read serializes and reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmgw_core::headers::{to_wire, HeaderMap};

fuzz_target!(|data: &[u8]| {
    if let Some(map) = HeaderMap::from_wire(data) {
        let pairs: Vec<(&str, &str)> = map.iter().collect();
        assert_eq!(pairs.len(), map.len());
        if let Some(wire) = to_wire(&pairs) {
            assert_eq!(HeaderMap::from_wire(&wire).as_ref(), Some(&map));
        }
    }
});
