//! The Gemini translator never panics on any answer, error or stream.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use llmgw_core::translate::openai_gemini::{Endpoint, OpenAiGemini};
use llmgw_core::translate::Translator;

fuzz_target!(|data: &[u8]| {
    common::run(
        &|| {
            let mut t = OpenAiGemini::new(Endpoint::AiStudio, Vec::new());
            let _ = t.request_body(
                br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,
                    "stream_options":{"include_usage":true}}"#,
                Some("gemini-2.5-flash"),
            );
            Box::new(t)
        },
        "text/event-stream",
        data,
    );
});
