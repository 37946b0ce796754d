//! The facts the filters hand each other in filter state: any bytes decode to a fact or to
//! nothing, never panic, and what decodes encodes back to a record that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmgw_core::facts::{AuthFacts, Fact, RateLimitFacts, RouterFacts, UsageFact};

fn round_trip<F: Fact + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Some(fact) = F::decode(bytes) {
        assert_eq!(F::decode(&fact.encode()).as_ref(), Some(&fact));
    }
}

fuzz_target!(|bytes: &[u8]| {
    round_trip::<AuthFacts>(bytes);
    round_trip::<RouterFacts>(bytes);
    round_trip::<RateLimitFacts>(bytes);
    round_trip::<UsageFact>(bytes);
});
