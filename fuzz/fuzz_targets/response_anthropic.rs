//! The Anthropic response translator never panics on any answer, error or stream.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use llmgw_core::translate::openai_anthropic::OpenAiAnthropic;
use llmgw_core::translate::Translator;

fuzz_target!(|data: &[u8]| {
    common::run(
        &|| {
            let mut t = OpenAiAnthropic::new(1024);
            let _ = t.request_body(
                br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,
                    "stream_options":{"include_usage":true}}"#,
                None,
            );
            Box::new(t)
        },
        "text/event-stream",
        data,
    );
});
