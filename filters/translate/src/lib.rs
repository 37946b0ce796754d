//! The translate filter: speaks each provider's wire format. See `llmgw_core::translate`.
llmgw_wasm_host::export_filter!(llmgw_core::translate::TranslateRoot);
