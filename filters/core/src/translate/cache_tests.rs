//! Prompt caching: a Chat part's `cache_control` (the LiteLLM / OpenRouter convention) passed to
//! Anthropic, made a Converse `cachePoint` for the Bedrock models that cache, dropped elsewhere;
//! a Messages client's breakpoints carried to those translators; cache reads and writes
//! counted in the usage of every client API.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json as js, Value};

use super::golden::{json, json_bytes, respond};
use super::messages_chat::{to_chat_request, MessagesChat};
use super::openai_anthropic::OpenAiAnthropic;
use super::openai_bedrock::{BedrockEndpoint, OpenAiBedrock};
use super::openai_gemini::{Endpoint, OpenAiGemini};
use super::openai_openai::OpenAiOpenAi;
use super::{Secret, Translator};

fn bedrock() -> OpenAiBedrock {
    OpenAiBedrock::new(std::rc::Rc::new(BedrockEndpoint {
        region: "us-east-1".into(),
        host: "bedrock-runtime.us-east-1.amazonaws.com".into(),
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("secret"),
        session_token: None,
    }))
}

fn sent(t: &mut dyn Translator, body: &str, model: Option<&str>) -> Value {
    json_bytes(&t.request_body(body.as_bytes(), model).unwrap().unwrap())
}

#[test]
fn anthropic_gets_the_breakpoints_where_the_client_put_them() {
    let got = sent(
        &mut OpenAiAnthropic::new(4096),
        fixture!("openai_anthropic", "request_cache_control.in.json"),
        None,
    );
    assert_eq!(
        got,
        json(fixture!(
            "openai_anthropic",
            "request_cache_control.out.json"
        ))
    );
    // Without a breakpoint the system prompt stays one string, as before.
    let plain = r#"{"model":"m","messages":[
        {"role":"system","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
        {"role":"system","content":"c"},{"role":"user","content":"hi"}]}"#;
    assert_eq!(
        sent(&mut OpenAiAnthropic::new(10), plain, None)["system"],
        "ab\n\nc"
    );
}

#[test]
fn bedrock_gets_cache_points_on_the_models_that_cache() {
    let input = fixture!("openai_bedrock", "request_cache_points.in.json");
    let want = json(fixture!("openai_bedrock", "request_cache_points.out.json"));
    for model in [
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "amazon.nova-pro-v1:0",
    ] {
        assert_eq!(sent(&mut bedrock(), input, Some(model)), want, "{model}");
    }
    // Bedrock refuses a cache point for a model without prompt caching: dropped there.
    for model in [
        "anthropic.claude-3-haiku-20240307-v1:0",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "meta.llama3-70b-instruct-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc",
    ] {
        let got = sent(&mut bedrock(), input, Some(model));
        assert!(!got.to_string().contains("cachePoint"), "{model}: {got}");
        assert_eq!(
            got["system"][1],
            js!({"text": "<the entire contents of Pride and Prejudice>"})
        );
    }
}

#[test]
fn gemini_drops_cache_control() {
    let got = sent(
        &mut OpenAiGemini::new(Endpoint::AiStudio, Vec::new()),
        fixture!("openai_anthropic", "request_cache_control.in.json"),
        Some("gemini-2.5-flash"),
    );
    assert!(!got.to_string().contains("cache"), "{got}");
    assert_eq!(
        got["contents"][0]["parts"][0]["text"],
        "Analyze the major themes in 'Pride and Prejudice'."
    );
}

const MESSAGES: &str = r#"{"model":"m","max_tokens":100,
    "system":[{"type":"text","text":"Rules."},{"type":"text","text":"A long book.","cache_control":{"type":"ephemeral"}}],
    "messages":[{"role":"user","content":[
        {"type":"text","text":"Summarize it.","cache_control":{"type":"ephemeral"}},
        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="},"cache_control":{"type":"ephemeral"}}]}]}"#;

#[test]
fn a_messages_clients_breakpoints_reach_the_translators_that_read_them() {
    // Composed with Bedrock: cache points after the marked system and user blocks.
    let mut adapter = MessagesChat::new(Box::new(bedrock())).with_cache_hints();
    let got = sent(
        &mut adapter,
        MESSAGES,
        Some("anthropic.claude-sonnet-4-20250514-v1:0"),
    );
    assert_eq!(
        got["system"],
        js!([{"text": "Rules."}, {"text": "A long book."}, {"cachePoint": {"type": "default"}}])
    );
    let kinds: Vec<String> = got["messages"][0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_object().unwrap().keys().next().unwrap().clone())
        .collect();
    assert_eq!(kinds, ["text", "cachePoint", "image", "cachePoint"]);
    // The OpenAI passthrough gets no `cache_control` (OpenAI refuses unknown part fields).
    let got = sent(
        &mut MessagesChat::new(Box::new(OpenAiOpenAi::new("/v1".into()))),
        MESSAGES,
        None,
    );
    assert!(!got.to_string().contains("cache_control"), "{got}");
    assert_eq!(got["messages"][0]["content"], "Rules.\n\nA long book.");
    let plain: Value =
        serde_json::from_slice(&to_chat_request(MESSAGES.as_bytes()).unwrap()).unwrap();
    assert!(!plain.to_string().contains("cache_control"));
}

#[test]
fn cache_writes_are_counted_in_every_client_api() {
    // Anthropic: 50 input + 100 written + 2000 read.
    let (_, chat, usage) = respond(
        &mut OpenAiAnthropic::new(4096),
        200,
        "application/json",
        fixture!("openai_anthropic", "response_cache_max_tokens.in.json"),
    );
    assert_eq!(
        chat["usage"]["prompt_tokens_details"],
        js!({"cached_tokens": 2000, "cache_write_tokens": 100})
    );
    let usage = usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.cached_tokens(),
            usage.cache_write_tokens()
        ),
        (2150, 2000, 100)
    );
    // Bedrock: 20 input + 5 written + 300 read.
    let mut t = bedrock();
    t.request_body(
        br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        Some("anthropic.claude-sonnet-4-20250514-v1:0"),
    )
    .unwrap();
    let (_, chat, _) = respond(
        &mut t,
        200,
        "application/json",
        fixture!("openai_bedrock", "response_cache_max_tokens.in.json"),
    );
    assert_eq!(chat["usage"]["prompt_tokens"], 325);
    assert_eq!(
        chat["usage"]["prompt_tokens_details"],
        js!({"cached_tokens": 300, "cache_write_tokens": 5})
    );
    // Messages client, Bedrock backend: Anthropic's three counts back apart.
    let mut adapter = MessagesChat::new(Box::new(bedrock())).with_cache_hints();
    adapter
        .request_body(
            MESSAGES.as_bytes(),
            Some("anthropic.claude-sonnet-4-20250514-v1:0"),
        )
        .unwrap();
    let (_, message, _) = respond(
        &mut adapter,
        200,
        "application/json",
        fixture!("openai_bedrock", "response_cache_max_tokens.in.json"),
    );
    assert_eq!(
        message["usage"],
        js!({"input_tokens": 20, "output_tokens": 5,
             "cache_read_input_tokens": 300, "cache_creation_input_tokens": 5})
    );
    // Responses: `input_tokens_details.cache_write_tokens`.
    let responses = crate::schema::responses::ResponseUsage::from(usage);
    assert_eq!(responses.input_tokens_details.cache_write_tokens, 100);
    assert_eq!(responses.input_tokens_details.cached_tokens, 2000);
}
