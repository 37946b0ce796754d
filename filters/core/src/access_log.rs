//! Facts about a request for Envoy's access log, kept in the stream's filter state.
//!
//! Each filter writes what it alone knows, when it learns it: auth the consumer and team, router
//! the requested model, translate (once per try; the last try's values win) the provider, model,
//! tokens, cost, time to first token and error class, and every filter that answers a request
//! itself its error code ([`crate::host::send_error`]). A proxy-wasm property `llmgw.<field>` is
//! Envoy filter state `wasm.llmgw.<field>`, which an access log reads with
//! `%FILTER_STATE(wasm.llmgw.<field>:PLAIN)%` (the JSON format in `envoy/gateway.yaml`). Upstream
//! filters share the downstream stream's filter state, so translate's values reach the
//! connection manager's access log.
//!
//! Only facts go here, never a prompt, a completion or a key.

use crate::host::Host;
use crate::text;

/// One access-log field: its filter-state name is `wasm.` + [`Field::property`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// auth: the key's consumer.
    Consumer,
    /// auth: the consumer's team.
    Team,
    /// router: the model name as the client wrote it (exact name or alias).
    RequestedModel,
    /// router, then translate per try: the provider the request went to.
    Provider,
    /// router, then translate per try: the model name the provider was asked for.
    Model,
    /// translate: tokens as the provider counted them.
    InputTokens,
    OutputTokens,
    TotalTokens,
    /// translate: tokens × the catalogue's price, in USD (decimal, 9 places).
    CostUsd,
    /// translate: milliseconds from the try's start to the provider's first body byte.
    TimeToFirstTokenMs,
    /// The error class of a failed try (translate) or the error code of a local reply.
    Error,
}

impl Field {
    /// Every field, in the order the README documents them.
    pub const ALL: [Field; 11] = [
        Field::Consumer,
        Field::Team,
        Field::RequestedModel,
        Field::Provider,
        Field::Model,
        Field::InputTokens,
        Field::OutputTokens,
        Field::TotalTokens,
        Field::CostUsd,
        Field::TimeToFirstTokenMs,
        Field::Error,
    ];

    /// The proxy-wasm property path (one segment; Envoy adds the `wasm.` prefix).
    pub const fn property(self) -> &'static str {
        match self {
            Field::Consumer => "llmgw.consumer",
            Field::Team => "llmgw.team",
            Field::RequestedModel => "llmgw.requested_model",
            Field::Provider => "llmgw.provider",
            Field::Model => "llmgw.model",
            Field::InputTokens => "llmgw.input_tokens",
            Field::OutputTokens => "llmgw.output_tokens",
            Field::TotalTokens => "llmgw.total_tokens",
            Field::CostUsd => "llmgw.cost_usd",
            Field::TimeToFirstTokenMs => "llmgw.ttft_ms",
            Field::Error => "llmgw.error",
        }
    }
}

/// Write one field. An empty value blanks what an earlier try wrote (the access log's
/// `omit_empty_values` then leaves the field out).
pub fn record(host: &mut dyn Host, field: Field, value: &str) {
    host.set_property(&[field.property()], value.as_bytes());
}

/// Write a number.
pub fn record_u64(host: &mut dyn Host, field: Field, value: u64) {
    let mut digits = [0u8; text::MAX_DIGITS];
    host.set_property(&[field.property()], text::decimal(value, &mut digits));
}

/// Nanos of a USD as a decimal USD amount: `450000` → `0.000450000`.
pub fn usd(nanos: u64) -> String {
    // Digits on the stack, not `format!`: once per answer that has a price.
    let mut out = String::with_capacity(24);
    text::push_decimal(&mut out, nanos / 1_000_000_000, 0);
    out.push('.');
    text::push_decimal(&mut out, nanos % 1_000_000_000, 9);
    out
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn fields_have_distinct_llmgw_properties() {
        let mut names: Vec<&str> = Field::ALL.iter().map(|f| f.property()).collect();
        assert!(names.iter().all(|n| n.starts_with("llmgw.")));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Field::ALL.len());
    }

    #[test]
    fn usd_keeps_nine_places() {
        assert_eq!(usd(0), "0.000000000");
        assert_eq!(usd(450_000), "0.000450000");
        assert_eq!(usd(12_345_678_901), "12.345678901");
    }

    #[test]
    fn records_land_in_filter_state() {
        let mut host = FakeHost::default();
        record(&mut host, Field::Consumer, "dora");
        record_u64(&mut host, Field::TotalTokens, 42);
        assert_eq!(
            host.property(&["llmgw.consumer"]).as_deref(),
            Some(&b"dora"[..])
        );
        assert_eq!(
            host.property(&["llmgw.total_tokens"]).as_deref(),
            Some(&b"42"[..])
        );
    }
}
