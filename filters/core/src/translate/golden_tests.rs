//! Golden fixtures: `fixtures/translate/<pair>/*.in.*` → `*.out.*`. See the README there.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::Value;

use super::golden::{
    assert_sse_eq, check_answers, check_errors, json, json_bytes, respond, run_stream, Answer,
};
use super::openai_anthropic::OpenAiAnthropic;
use super::openai_openai::OpenAiOpenAi;
use super::{Translator, Usage};
use crate::schema::openai::PromptTokensDetails;

/// Gemini and Vertex, and the tool / vision / structured output fixtures.
mod providers;

fn anthropic() -> OpenAiAnthropic {
    OpenAiAnthropic::new(4096)
}

/// Prime a translator as if the client had asked for a stream (with or without usage).
fn streaming(include_usage: bool) -> OpenAiAnthropic {
    let mut t = anthropic();
    let request = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"stream":true,
            "stream_options":{{"include_usage":{include_usage}}}}}"#
    );
    t.request_body(request.as_bytes(), None).unwrap();
    t
}

// ---------------------------------------------------------------------------------------------
// openai → anthropic

fn anthropic_request(input: &str, upstream_model: Option<&str>) -> Value {
    let mut t = anthropic();
    let out = t
        .request_body(input.as_bytes(), upstream_model)
        .unwrap()
        .unwrap();
    json_bytes(&out)
}

#[test]
fn anthropic_request_basic() {
    let got = anthropic_request(fixture!("openai_anthropic", "request_basic.in.json"), None);
    assert_eq!(
        got,
        json(fixture!("openai_anthropic", "request_basic.out.json"))
    );
}

#[test]
fn anthropic_request_full() {
    let got = anthropic_request(
        fixture!("openai_anthropic", "request_full.in.json"),
        Some("claude-3-5-haiku-20241022"),
    );
    assert_eq!(
        got,
        json(fixture!("openai_anthropic", "request_full.out.json"))
    );
}

#[test]
fn anthropic_request_stop_string() {
    let got = anthropic_request(
        fixture!("openai_anthropic", "request_stop_string.in.json"),
        None,
    );
    assert_eq!(
        got,
        json(fixture!("openai_anthropic", "request_stop_string.out.json"))
    );
}

fn anthropic_response(status: u16, input: &str) -> Answer {
    respond(&mut anthropic(), status, "application/json", input)
}

#[test]
fn anthropic_responses() {
    let cases = [
        (
            "response_basic",
            fixture!("openai_anthropic", "response_basic.in.json"),
            fixture!("openai_anthropic", "response_basic.out.json"),
        ),
        (
            "response_cache_max_tokens",
            fixture!("openai_anthropic", "response_cache_max_tokens.in.json"),
            fixture!("openai_anthropic", "response_cache_max_tokens.out.json"),
        ),
        (
            "response_tool_use",
            fixture!("openai_anthropic", "response_tool_use.in.json"),
            fixture!("openai_anthropic", "response_tool_use.out.json"),
        ),
    ];
    // The usage recorded is the usage the client sees.
    check_answers(&cases, anthropic_response);
}

#[test]
fn anthropic_errors() {
    let cases = [
        (
            529,
            503,
            fixture!("openai_anthropic", "error_overloaded.in.json"),
            fixture!("openai_anthropic", "error_overloaded.out.json"),
        ),
        (
            429,
            429,
            fixture!("openai_anthropic", "error_rate_limit.in.json"),
            fixture!("openai_anthropic", "error_rate_limit.out.json"),
        ),
        (
            400,
            400,
            fixture!("openai_anthropic", "error_invalid_request.in.json"),
            fixture!("openai_anthropic", "error_invalid_request.out.json"),
        ),
        (
            503,
            503,
            fixture!("openai_anthropic", "error_html.in.json"),
            fixture!("openai_anthropic", "error_html.out.json"),
        ),
        (
            200,
            502,
            fixture!("openai_anthropic", "response_unreadable.in.json"),
            fixture!("openai_anthropic", "response_unreadable.out.json"),
        ),
    ];
    check_errors(&cases, anthropic_response);
}

#[test]
fn anthropic_stream_basic() {
    let (out, usage) = run_stream(
        || Box::new(streaming(false)),
        fixture!("openai_anthropic", "stream_basic.in.sse"),
        "stream_basic",
    );
    assert_sse_eq(
        &out,
        fixture!("openai_anthropic", "stream_basic.out.sse"),
        "stream_basic",
    );
    assert_eq!(
        usage,
        Some(Usage {
            prompt_tokens: 25,
            completion_tokens: 15,
            total_tokens: 40,
            prompt_tokens_details: Some(PromptTokensDetails::default()),
            completion_tokens_details: None,
        })
    );
}

#[test]
fn anthropic_stream_with_usage_crlf_and_unknown_events() {
    let (out, usage) = run_stream(
        || Box::new(streaming(true)),
        fixture!("openai_anthropic", "stream_usage.in.sse"),
        "stream_usage",
    );
    assert_sse_eq(
        &out,
        fixture!("openai_anthropic", "stream_usage.out.sse"),
        "stream_usage",
    );
    assert_eq!(
        usage.map(|u| (u.total_tokens, u.cached_tokens())),
        Some((322, 300))
    );
}

#[test]
fn anthropic_stream_error_event() {
    let (out, _) = run_stream(
        || Box::new(streaming(false)),
        fixture!("openai_anthropic", "stream_error.in.sse"),
        "stream_error",
    );
    assert_sse_eq(
        &out,
        fixture!("openai_anthropic", "stream_error.out.sse"),
        "stream_error",
    );
}

#[test]
fn anthropic_stream_truncated() {
    let (out, _) = run_stream(
        || Box::new(streaming(false)),
        fixture!("openai_anthropic", "stream_truncated.in.sse"),
        "stream_truncated",
    );
    assert_sse_eq(
        &out,
        fixture!("openai_anthropic", "stream_truncated.out.sse"),
        "stream_truncated",
    );
}

// ---------------------------------------------------------------------------------------------
// openai → openai

#[test]
fn openai_request_model_rewrite_keeps_every_other_field() {
    let mut t = OpenAiOpenAi::new("/v1".into());
    let out = t
        .request_body(
            fixture!("openai_openai", "request_model.in.json").as_bytes(),
            Some("gpt-4o-2024-08-06"),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        json_bytes(&out),
        json(fixture!("openai_openai", "request_model.out.json"))
    );
}

#[test]
fn openai_stream_done_passes_unchanged_and_records_usage() {
    let input = fixture!("openai_openai", "stream_done.in.sse");
    let (out, usage) = run_stream(|| Box::new(OpenAiOpenAi::new("/v1".into())), input, "done");
    assert_eq!(
        out,
        fixture!("openai_openai", "stream_done.out.sse").as_bytes()
    );
    assert_eq!(usage.map(|u| u.total_tokens), Some(11));
}

#[test]
fn openai_stream_truncated_gets_an_error_frame() {
    let input = fixture!("openai_openai", "stream_truncated.in.sse");
    let (out, usage) = run_stream(|| Box::new(OpenAiOpenAi::new("/v1".into())), input, "trunc");
    assert_sse_eq(
        &out,
        fixture!("openai_openai", "stream_truncated.out.sse"),
        "trunc",
    );
    assert_eq!(usage, None);
}

// ---------------------------------------------------------------------------------------------
// openai → anthropic: streams recorded from the real API (README names each source)

#[test]
fn anthropic_recorded_streams() {
    let cases = [
        (
            "stream_sdk_tool_use",
            fixture!("openai_anthropic", "stream_sdk_tool_use.in.sse"),
            fixture!("openai_anthropic", "stream_sdk_tool_use.out.sse"),
        ),
        (
            "stream_sdk_refusal",
            fixture!("openai_anthropic", "stream_sdk_refusal.in.sse"),
            fixture!("openai_anthropic", "stream_sdk_refusal.out.sse"),
        ),
        (
            "stream_sdk_server_tool_use",
            fixture!("openai_anthropic", "stream_sdk_server_tool_use.in.sse"),
            fixture!("openai_anthropic", "stream_sdk_server_tool_use.out.sse"),
        ),
        (
            "stream_tool_no_input",
            fixture!("openai_anthropic", "stream_tool_no_input.in.sse"),
            fixture!("openai_anthropic", "stream_tool_no_input.out.sse"),
        ),
    ];
    for (name, input, want) in cases {
        let (out, usage) = run_stream(|| Box::new(streaming(false)), input, name);
        assert_sse_eq(&out, want, name);
        assert!(usage.is_some(), "{name}");
    }
}

/// The tool calls' `arguments` as a client assembles them from the chunks, by call index.
pub(super) fn streamed_arguments(out: &[u8]) -> Vec<String> {
    let mut arguments: Vec<String> = Vec::new();
    for event in crate::sse::Decoder::new().feed(out) {
        let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = call["index"].as_u64().unwrap() as usize;
            if arguments.len() <= index {
                arguments.resize(index + 1, String::new());
            }
            arguments[index].push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    arguments
}

/// A call without arguments reaches the client with `arguments: "{}"`, as OpenAI sends it, on
/// every path Anthropic has for it (one empty `input_json_delta`, or none at all).
#[test]
fn anthropic_tool_call_without_input_has_empty_object_arguments() {
    let (out, _) = run_stream(
        || Box::new(streaming(false)),
        fixture!("openai_anthropic", "stream_tool_no_input.in.sse"),
        "stream_tool_no_input",
    );
    assert_eq!(streamed_arguments(&out), ["{}", "{}"]);
    // Not streamed: an absent `input` is no arguments too, not `null`.
    let (_, body, _) = anthropic_response(
        200,
        r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[
            {"type":"tool_use","id":"toolu_1","name":"magic_function"}],
            "stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":1}}"#,
    );
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
}

// ---------------------------------------------------------------------------------------------
// openai → azure: a recorded stream with the content filter's chunks

#[test]
fn azure_content_filter_chunks_become_openai_chunks() {
    use super::openai_azure::{OpenAiAzure, Operation};
    let azure = || {
        let backend = super::options::AzureBackend {
            api_version: "2024-10-21".into(),
            deployments: Default::default(),
        };
        Box::new(OpenAiAzure::new(
            backend,
            Operation::ChatCompletions,
            Some("gpt-4o"),
            Vec::new(),
        )) as Box<dyn Translator>
    };
    let name = "stream_content_filter";
    let (out, _) = run_stream(
        azure,
        fixture!("openai_azure", "stream_content_filter.in.sse"),
        name,
    );
    assert_sse_eq(
        &out,
        fixture!("openai_azure", "stream_content_filter.out.sse"),
        name,
    );
    // What a client reading `chunk.choices[0].delta` needs, on every chunk.
    for event in crate::sse::Decoder::new().feed(&out) {
        if event.data == "[DONE]" {
            continue;
        }
        let chunk = json(&event.data);
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
        assert!(chunk["choices"][0]["delta"].is_object(), "{chunk}");
        assert!(!chunk["id"].as_str().unwrap().is_empty(), "{chunk}");
    }
}

// ---------------------------------------------------------------------------------------------
// What has no place in the OpenAI answer is tolerated, mapped, and counted

/// A stream through a fresh streaming translator: its output and what it dropped.
fn anthropic_stream_dropped(input: &str) -> (Vec<u8>, Vec<(&'static str, u64)>) {
    let mut t = streaming(false);
    t.response_headers(
        200,
        Some("text/event-stream"),
        false,
        super::golden::CREATED,
    );
    let out = t.response_chunk(input.as_bytes(), true).unwrap();
    (out, t.dropped().to_vec())
}

fn finish_reasons(out: &[u8]) -> Vec<String> {
    crate::sse::Decoder::new()
        .feed(out)
        .into_iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|c| {
            c["choices"][0]["finish_reason"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn anthropic_unknown_events_blocks_and_stop_reasons_are_counted() {
    use super::dropped::what;
    // Recorded: a server tool's block (its query has no place in a chat completion).
    let (out, dropped) = anthropic_stream_dropped(fixture!(
        "openai_anthropic",
        "stream_sdk_server_tool_use.in.sse"
    ));
    assert_eq!(dropped, [(what::CONTENT, 1)]);
    assert_eq!(finish_reasons(&out), ["stop"]);
    // Recorded refusal stream (an empty text block) with a new event type and a stop reason
    // never seen: tolerated, `stop`, both counted; the empty block is not a drop.
    let input = fixture!("openai_anthropic", "stream_sdk_refusal.in.sse")
        .replace("\"refusal\",\"stop_sequence\"", "\"model_took_a_break\",\"stop_sequence\"")
        .replace(
            "event: content_block_stop",
            "event: content_block_annotation\ndata: {\"type\":\"content_block_annotation\",\"index\":0}\n\nevent: content_block_stop",
        );
    let (out, dropped) = anthropic_stream_dropped(&input);
    assert_eq!(dropped, [(what::EVENT, 1), (what::STOP_REASON, 1)]);
    assert_eq!(finish_reasons(&out), ["stop"]);
    assert!(out.ends_with(crate::sse::DONE));
    // A documented newer stop reason maps to what it means.
    let input = fixture!("openai_anthropic", "stream_sdk_refusal.in.sse").replace(
        "\"refusal\",\"stop_sequence\"",
        "\"model_context_window_exceeded\",\"stop_sequence\"",
    );
    let (out, dropped) = anthropic_stream_dropped(&input);
    assert_eq!(
        (finish_reasons(&out), dropped),
        (vec!["length".to_string()], vec![])
    );
    // Not streamed: a thinking block (carried as `reasoning_content`), a redacted one (no
    // place in a chat completion: counted) and an unknown stop reason.
    let mut t = anthropic();
    let (_, body, _) = respond(
        &mut t,
        200,
        "application/json",
        r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[
            {"type":"thinking","thinking":"Let me see.","signature":"c2ln"},
            {"type":"redacted_thinking","data":"ZW5jcnlwdGVk"},
            {"type":"text","text":"Hi"}],
            "stop_reason":"brand_new_reason","usage":{"input_tokens":1,"output_tokens":1}}"#,
    );
    assert_eq!(body["choices"][0]["message"]["content"], "Hi");
    assert_eq!(
        body["choices"][0]["message"]["reasoning_content"],
        "Let me see."
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(t.dropped(), [(what::CONTENT, 1), (what::STOP_REASON, 1)]);
}
