//! The embeddings translators never panic on any answer: Bedrock (Titan, Cohere), the Gemini
//! API (one input, a batch) and Vertex AI.
#![no_main]

#[path = "common.rs"]
mod common;

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use llmgw_core::translate::embeddings::{BedrockEmbeddings, GeminiEmbeddings};
use llmgw_core::translate::openai_bedrock::BedrockEndpoint;
use llmgw_core::translate::openai_gemini::Endpoint;
use llmgw_core::translate::options::VertexBackend;
use llmgw_core::translate::{Secret, Translator};

fuzz_target!(|data: &[u8]| {
    for (model, request) in [
        (
            "amazon.titan-embed-text-v2:0",
            r#"{"input":"x","encoding_format":"base64"}"#,
        ),
        ("cohere.embed-english-v3", r#"{"input":["x","y"]}"#),
    ] {
        common::run(
            &|| {
                let endpoint = Rc::new(BedrockEndpoint {
                    region: "us-east-1".into(),
                    host: "h".into(),
                    access_key_id: "AKID".into(),
                    secret_access_key: Secret::new("secret"),
                    session_token: None,
                });
                let mut t = BedrockEmbeddings::new(endpoint);
                let _ = t.request_body(request.as_bytes(), Some(model));
                Box::new(t)
            },
            "application/json",
            data,
        );
    }
    let vertex = || {
        Endpoint::Vertex(VertexBackend {
            project: "p".into(),
            region: "r".into(),
        })
    };
    for (endpoint, request) in [
        (
            Endpoint::AiStudio,
            r#"{"input":"x","encoding_format":"base64"}"#,
        ),
        (Endpoint::AiStudio, r#"{"input":["x","y"]}"#),
        (vertex(), r#"{"input":["x","y"],"dimensions":3}"#),
    ] {
        common::run(
            &|| {
                let mut t = GeminiEmbeddings::new(endpoint.clone());
                let _ = t.request_body(request.as_bytes(), Some("m"));
                Box::new(t)
            },
            "application/json",
            data,
        );
    }
});
