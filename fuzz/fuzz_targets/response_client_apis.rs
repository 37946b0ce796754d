//! What a provider answers, as the Messages and Responses clients see it: the two client
//! adapters over an OpenAI Chat answer or stream, and the two passthroughs over Anthropic's
//! and OpenAI Responses' own, never panic. The first byte also picks the translator.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use llmgw_core::dialect::Operation;
use llmgw_core::translate::messages_anthropic::MessagesAnthropic;
use llmgw_core::translate::messages_chat::MessagesChat;
use llmgw_core::translate::openai_openai::OpenAiOpenAi;
use llmgw_core::translate::responses_chat::ResponsesChat;
use llmgw_core::translate::responses_openai::{ResponsesOpenAi, Target};
use llmgw_core::translate::Translator;

const MESSAGES: &[u8] =
    br#"{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"hi"}],"stream":true}"#;
const RESPONSES: &[u8] = br#"{"model":"m","input":"hi","stream":true}"#;

fn with_request(mut t: Box<dyn Translator>, body: &[u8]) -> Box<dyn Translator> {
    let _ = t.request_body(body, None);
    t
}

fuzz_target!(|data: &[u8]| {
    let Some(&which) = data.first() else {
        return;
    };
    let make: &dyn Fn() -> Box<dyn Translator> = match which % 4 {
        0 => &|| {
            let chat = Box::new(OpenAiOpenAi::new("/v1".into()));
            with_request(Box::new(MessagesChat::new(chat)), MESSAGES)
        },
        1 => &|| {
            let chat = Box::new(OpenAiOpenAi::new("/v1".into()));
            with_request(Box::new(ResponsesChat::new(chat, "openai")), RESPONSES)
        },
        2 => &|| {
            with_request(
                Box::new(MessagesAnthropic::new(Operation::Create)),
                MESSAGES,
            )
        },
        _ => &|| {
            let target = Target::OpenAi {
                base_path: "/v1".into(),
            };
            with_request(Box::new(ResponsesOpenAi::new(target)), RESPONSES)
        },
    };
    common::run(make, "text/event-stream", data);
});
