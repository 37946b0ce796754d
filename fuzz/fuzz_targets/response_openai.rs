//! The OpenAI passthrough watcher never panics on any stream.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use llmgw_core::translate::openai_openai::OpenAiOpenAi;

fuzz_target!(|data: &[u8]| {
    common::run(
        &|| Box::new(OpenAiOpenAi::new("/v1".into())),
        "text/event-stream",
        data,
    );
});
