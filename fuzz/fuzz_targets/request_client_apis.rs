//! Any Messages or Responses request body: router's read of it in that dialect, the
//! count_tokens estimate, both passthroughs and both client adapters around every Chat
//! translator answer or refuse it, never panic.
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use llmgw_core::dialect::{ClientApi, Operation};
use llmgw_core::router::RequestFacts;
use llmgw_core::translate::count_tokens::estimate_input_tokens;
use llmgw_core::translate::messages_anthropic::MessagesAnthropic;
use llmgw_core::translate::messages_chat::MessagesChat;
use llmgw_core::translate::openai_anthropic::OpenAiAnthropic;
use llmgw_core::translate::openai_bedrock::{BedrockEndpoint, OpenAiBedrock};
use llmgw_core::translate::openai_gemini::{Endpoint, OpenAiGemini};
use llmgw_core::translate::openai_openai::OpenAiOpenAi;
use llmgw_core::translate::responses_chat::ResponsesChat;
use llmgw_core::translate::responses_openai::{ResponsesOpenAi, Target};
use llmgw_core::translate::{Secret, Translator};

/// One of each Chat translator, fresh: the adapters wrap them.
fn chat_translators() -> [Box<dyn Translator>; 4] {
    let bedrock = Rc::new(BedrockEndpoint {
        region: "us-east-1".into(),
        host: "bedrock-runtime.us-east-1.amazonaws.com".into(),
        access_key_id: "AKID".into(),
        secret_access_key: Secret::new("secret"),
        session_token: None,
    });
    [
        Box::new(OpenAiOpenAi::new("/v1".into())),
        Box::new(OpenAiAnthropic::new(1024)),
        Box::new(OpenAiGemini::new(Endpoint::AiStudio, Vec::new())),
        Box::new(OpenAiBedrock::new(bedrock)),
    ]
}

fn translate(mut t: Box<dyn Translator>, body: &[u8]) {
    if let Ok(Some(out)) = t.request_body(body, Some("model-1")) {
        let _ = t.finish_request(&out, 1_700_000_000_000);
        let _ = t.request_path();
    }
}

fuzz_target!(|body: &[u8]| {
    for api in [ClientApi::Messages, ClientApi::Responses] {
        if let Ok(facts) = RequestFacts::parse_in(body, api, Operation::Create) {
            let _ = facts.needs(body.len(), 1024);
        }
    }
    let _ = RequestFacts::parse_in(body, ClientApi::Messages, Operation::CountTokens);
    let _ = estimate_input_tokens(body);

    translate(Box::new(MessagesAnthropic::new(Operation::Create)), body);
    translate(
        Box::new(ResponsesOpenAi::new(Target::OpenAi {
            base_path: "/v1".into(),
        })),
        body,
    );
    for inner in chat_translators() {
        translate(Box::new(MessagesChat::new(inner)), body);
    }
    for inner in chat_translators() {
        translate(Box::new(ResponsesChat::new(inner, "provider-1")), body);
    }
});
