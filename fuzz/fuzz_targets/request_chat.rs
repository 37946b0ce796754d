//! Any client request body: router's read of it, ratelimit's usage rewrite and every
//! translator's request mapping answer or refuse it, never panic. The client controls these
//! bytes completely, so this is the most exposed surface of the gateway.
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use llmgw_core::ratelimit::estimate::force_include_usage;
use llmgw_core::router::RequestFacts;
use llmgw_core::translate::openai_anthropic::OpenAiAnthropic;
use llmgw_core::translate::openai_bedrock::{BedrockEndpoint, OpenAiBedrock};
use llmgw_core::translate::openai_gemini::{Endpoint, OpenAiGemini};
use llmgw_core::translate::openai_openai::OpenAiOpenAi;
use llmgw_core::translate::{Secret, Translator};

fuzz_target!(|body: &[u8]| {
    if let Ok(facts) = RequestFacts::parse(body) {
        let _ = facts.needs(body.len(), 1024);
    }
    let _ = force_include_usage(body);

    let bedrock = Rc::new(BedrockEndpoint {
        region: "us-east-1".into(),
        host: "bedrock-runtime.us-east-1.amazonaws.com".into(),
        access_key_id: "AKID".into(),
        secret_access_key: Secret::new("secret"),
        session_token: None,
    });
    let translators: [Box<dyn Translator>; 4] = [
        Box::new(OpenAiOpenAi::new("/v1".into())),
        Box::new(OpenAiAnthropic::new(1024)),
        Box::new(OpenAiGemini::new(Endpoint::AiStudio, Vec::new())),
        Box::new(OpenAiBedrock::new(bedrock)),
    ];
    for mut t in translators {
        if let Ok(Some(out)) = t.request_body(body, Some("model-1")) {
            let _ = t.finish_request(&out, 1_700_000_000_000);
            let _ = t.request_path();
        }
    }
});
