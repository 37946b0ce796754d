//! auth → router → ratelimit in one module (one VM instead of three). See `llmgw_core::gateway`.
llmgw_wasm_host::export_filter!(llmgw_core::gateway::GatewayRoot);
