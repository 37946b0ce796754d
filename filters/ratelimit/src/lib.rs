//! The rate limit filter: how much each consumer may spend. See `llmgw_core::ratelimit`.
llmgw_wasm_host::export_filter!(llmgw_core::ratelimit::RateLimitRoot);
