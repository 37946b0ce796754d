//! Golden fixtures of the Messages ↔ Chat adapter (`fixtures/translate/messages_chat/`), around
//! the OpenAI passthrough and, composed, around the Gemini and Anthropic Chat translators.

#[cfg(all(target_arch = "wasm32", test))]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::messages_chat::{to_chat_request, MessagesChat};
use super::{ResponseMode, Translator};
use crate::translate::golden::{assert_sse_eq, json, json_bytes, run_stream, CREATED};
use crate::translate::openai_gemini::{Endpoint, OpenAiGemini};
use crate::translate::openai_openai::OpenAiOpenAi;

fn openai() -> MessagesChat {
    MessagesChat::new(Box::new(OpenAiOpenAi::new("/v1".into())))
}

fn request(input: &str) -> Value {
    json_bytes(
        &openai()
            .request_body(input.as_bytes(), None)
            .unwrap()
            .unwrap(),
    )
}

use serde_json::Value;

#[test]
fn requests_become_chat_requests() {
    let cases = [
        (
            fixture!("messages_chat", "request_basic.in.json"),
            fixture!("messages_chat", "request_basic.out.json"),
        ),
        (
            fixture!("messages_chat", "request_tools.in.json"),
            fixture!("messages_chat", "request_tools.out.json"),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(request(input), json(want), "{input}");
    }
}

#[test]
fn what_cannot_be_carried_is_refused_by_name() {
    let base = r#""model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]"#;
    let cases = [
        (r#""top_k":5"#, "top_k"),
        (
            r#""thinking":{"type":"enabled","budget_tokens":512}"#,
            "thinking.budget_tokens",
        ),
        (r#""thinking":{"type":"on"}"#, "thinking.type"),
        (r#""container":"c_1""#, "container"),
        (r#""brand_new_field":true"#, "brand_new_field"),
        (
            r#""tools":[{"type":"web_search_20250305","name":"web_search"}]"#,
            "tools[0].type",
        ),
        (r#""metadata":{"tenant":"x"}"#, "metadata.tenant"),
    ];
    for (extra, param) in cases {
        let body = format!("{{{base},{extra}}}");
        let err = openai().request_body(body.as_bytes(), None).unwrap_err();
        assert_eq!(err.status, 400, "{extra}");
        assert_eq!(err.param.as_deref(), Some(param), "{extra}");
        assert!(
            err.message.contains(&format!("`{param}`")),
            "{}",
            err.message
        );
    }
    let document = r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
        {"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]}"#;
    let err = openai()
        .request_body(document.as_bytes(), None)
        .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("messages[0].content[0].type"));
    let image_result = r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
        {"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{}}]}]}]}"#;
    let err = openai()
        .request_body(image_result.as_bytes(), None)
        .unwrap_err();
    assert_eq!(
        err.param.as_deref(),
        Some("messages[0].content[0].content[0].type")
    );
    let no_max = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let err = openai().request_body(no_max.as_bytes(), None).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("max_tokens"));
}

/// A buffered answer through a fresh adapter: (status when changed, body, usage).
fn answer(status: u16, input: &str) -> (Option<u16>, Value, Option<crate::translate::Usage>) {
    let mut t = openai();
    let plan = t.response_headers(status, Some("application/json"), false, CREATED);
    assert_eq!(plan.mode, ResponseMode::Buffer, "{input}");
    assert_eq!(plan.content_type, Some("application/json"));
    let out = t.response_body(input.as_bytes());
    (out.status.or(plan.status), json_bytes(&out.body), t.usage())
}

#[test]
fn answers_become_messages() {
    let cases = [
        (
            fixture!("messages_chat", "response_basic.in.json"),
            fixture!("messages_chat", "response_basic.out.json"),
            (19, 10),
        ),
        (
            fixture!("messages_chat", "response_tool_calls.in.json"),
            fixture!("messages_chat", "response_tool_calls.out.json"),
            (2082, 17),
        ),
        (
            fixture!("messages_chat", "response_empty_length.in.json"),
            fixture!("messages_chat", "response_empty_length.out.json"),
            (12, 1),
        ),
    ];
    for (input, want, (prompt, completion)) in cases {
        let (status, got, usage) = answer(200, input);
        assert_eq!(status, None);
        assert_eq!(got, json(want), "{input}");
        let usage = usage.unwrap();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens),
            (prompt, completion)
        );
    }
}

#[test]
fn errors_become_anthropic_errors() {
    let cases = [
        (
            429,
            fixture!("messages_chat", "error_rate_limit.in.json"),
            fixture!("messages_chat", "error_rate_limit.out.json"),
        ),
        (
            401,
            fixture!("messages_chat", "error_invalid_key.in.json"),
            fixture!("messages_chat", "error_invalid_key.out.json"),
        ),
        (
            502,
            fixture!("messages_chat", "error_html.in.json"),
            fixture!("messages_chat", "error_html.out.json"),
        ),
    ];
    for (status, input, want) in cases {
        let (changed, got, usage) = answer(status, input);
        assert_eq!(changed, None, "{input}");
        assert_eq!(got, json(want), "{input}");
        assert_eq!(usage, None);
    }
    // A 2xx that is no chat completion: Anthropic's 502.
    let (status, got, _) = answer(200, r#"{"object":"list"}"#);
    assert_eq!(status, Some(502));
    assert_eq!(got["error"]["type"], "api_error");
    // A tool call without the function's name: the client could not route it, so 502.
    let nameless = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#;
    let (status, got, _) = answer(200, nameless);
    assert_eq!(status, Some(502));
    assert_eq!(got["error"]["type"], "api_error");
    assert!(
        got["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("a tool call without a function name")),
        "{got}"
    );
}

fn stream(make: impl Fn() -> MessagesChat, input: &str, want: &str, name: &str) -> MessagesChat {
    let (out, _) = run_stream(|| Box::new(make()), input, name);
    assert_sse_eq(&out, want, name);
    make()
}

#[test]
fn chat_streams_become_anthropic_event_sequences() {
    let cases = [
        (
            "stream_basic",
            fixture!("messages_chat", "stream_basic.in.sse"),
            fixture!("messages_chat", "stream_basic.out.sse"),
        ),
        (
            "stream_tool_calls",
            fixture!("messages_chat", "stream_tool_calls.in.sse"),
            fixture!("messages_chat", "stream_tool_calls.out.sse"),
        ),
        (
            "stream_empty_text",
            fixture!("messages_chat", "stream_empty_text.in.sse"),
            fixture!("messages_chat", "stream_empty_text.out.sse"),
        ),
        (
            "stream_error",
            fixture!("messages_chat", "stream_error.in.sse"),
            fixture!("messages_chat", "stream_error.out.sse"),
        ),
        (
            "stream_truncated",
            fixture!("messages_chat", "stream_truncated.in.sse"),
            fixture!("messages_chat", "stream_truncated.out.sse"),
        ),
    ];
    for (name, input, want) in cases {
        stream(openai, input, want, name);
    }
}

#[test]
fn stream_usage_and_failure_are_recorded() {
    let (_, usage) = run_stream(
        || Box::new(openai()),
        fixture!("messages_chat", "stream_tool_calls.in.sse"),
        "usage",
    );
    assert_eq!(usage.map(|u| u.total_tokens), Some(112));
    let mut t = openai();
    t.response_headers(200, Some("text/event-stream"), false, CREATED);
    t.response_chunk(
        fixture!("messages_chat", "stream_error.in.sse").as_bytes(),
        true,
    );
    assert!(t.stream_failed());
}

/// Composition: Gemini's stream (parallel function calls) through the Gemini Chat translator
/// and this adapter.
#[test]
fn a_gemini_stream_composes() {
    let gemini = || {
        let mut inner = OpenAiGemini::new(Endpoint::AiStudio, Vec::new());
        let chat = to_chat_request(
            br#"{"model":"gemini-2.5-flash","max_tokens":100,"stream":true,
                 "messages":[{"role":"user","content":"Weather?"}]}"#,
        )
        .unwrap();
        inner.request_body(&chat, None).unwrap();
        MessagesChat::new(Box::new(inner))
    };
    stream(
        gemini,
        fixture!("openai_gemini", "stream_function_call.in.sse"),
        fixture!("messages_chat", "stream_gemini_function_call.out.sse"),
        "gemini",
    );
}

/// `thinking` becomes `reasoning_effort` by its budget; the backend's reasoning comes back as a
/// thinking block (Gemini thought summaries, composed through the Gemini Chat translator).
#[test]
fn thinking_maps_to_reasoning_effort_and_back() {
    let effort = |thinking: &str| {
        let body = format!(
            r#"{{"model":"m","max_tokens":20000,"thinking":{thinking},
                "messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        request(&body).get("reasoning_effort").cloned()
    };
    let budget = |n: u32| effort(&format!(r#"{{"type":"enabled","budget_tokens":{n}}}"#));
    assert_eq!(budget(1024), Some("low".into()));
    assert_eq!(budget(2048), Some("medium".into()));
    assert_eq!(budget(4096), Some("medium".into()));
    assert_eq!(budget(10000), Some("high".into()));
    assert_eq!(effort(r#"{"type":"disabled"}"#), None);
    assert_eq!(effort(r#"{"type":"adaptive"}"#), None);
    let err = openai()
        .request_body(
            br#"{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":2000},
                "messages":[{"role":"user","content":"hi"}]}"#,
            None,
        )
        .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("max_tokens"));

    let (_, got, _) = answer(200, fixture!("messages_chat", "response_reasoning.in.json"));
    assert_eq!(
        got,
        json(fixture!("messages_chat", "response_reasoning.out.json"))
    );

    let gemini = || {
        let mut inner = OpenAiGemini::new(Endpoint::AiStudio, Vec::new());
        let chat = to_chat_request(
            br#"{"model":"gemini-2.5-flash","max_tokens":8192,"stream":true,
                 "thinking":{"type":"enabled","budget_tokens":1024},
                 "messages":[{"role":"user","content":"What is the sum of the first 50 primes?"}]}"#,
        )
        .unwrap();
        let sent = json_bytes(&inner.request_body(&chat, None).unwrap().unwrap());
        assert_eq!(
            sent["generationConfig"]["thinkingConfig"],
            serde_json::json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
        MessagesChat::new(Box::new(inner))
    };
    stream(
        gemini,
        fixture!("openai_gemini", "stream_thoughts.in.sse"),
        fixture!("messages_chat", "stream_gemini_thoughts.out.sse"),
        "stream_gemini_thoughts",
    );
}
