//! The Bedrock Converse translator never panics on any answer, error or event stream.
#![no_main]

#[path = "common.rs"]
mod common;

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use llmgw_core::translate::openai_bedrock::{BedrockEndpoint, OpenAiBedrock};
use llmgw_core::translate::{Secret, Translator};

fuzz_target!(|data: &[u8]| {
    common::run(
        &|| {
            let endpoint = Rc::new(BedrockEndpoint {
                region: "us-east-1".into(),
                host: "bedrock-runtime.us-east-1.amazonaws.com".into(),
                access_key_id: "AKID".into(),
                secret_access_key: Secret::new("secret"),
                session_token: None,
            });
            let mut t = OpenAiBedrock::new(endpoint);
            let _ = t.request_body(
                br#"{"messages":[{"role":"user","content":"hi"}],"stream":true,
                    "stream_options":{"include_usage":true}}"#,
                Some("anthropic.claude-3-haiku-20240307-v1:0"),
            );
            t.note_response_header("x-amzn-errortype", "ThrottlingException");
            Box::new(t)
        },
        "application/vnd.amazon.eventstream",
        data,
    );
});
