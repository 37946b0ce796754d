//! The router filter: which provider and model serve the request. See `llmgw_core::router`.
llmgw_wasm_host::export_filter!(llmgw_core::router::RouterRoot);
