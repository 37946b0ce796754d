//! The auth filter: who is calling. See `llmgw_core::auth`.
llmgw_wasm_host::export_filter!(llmgw_core::auth::AuthRoot);
