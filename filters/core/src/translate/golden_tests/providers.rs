//! Golden fixtures of the Gemini translator (AI Studio and Vertex share it), and of the tool,
//! vision and structured output mappings of the Anthropic translator. Same harness as the
//! parent module: JSON compared semantically, streams fed whole and byte by byte.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::translate::golden::{
    assert_sse_eq, check_answers, check_errors, json, json_bytes, respond, run_stream, Answer,
    CREATED,
};
use crate::translate::openai_anthropic::OpenAiAnthropic;
use crate::translate::openai_gemini::{Endpoint, OpenAiGemini};
use crate::translate::Translator;

// ---------------------------------------------------------------------------------------------
// openai → gemini

fn gemini() -> OpenAiGemini {
    OpenAiGemini::new(Endpoint::AiStudio, Vec::new())
}

/// A translator that has seen a request for `gemini-2.5-flash` (streamed or not).
fn gemini_after_request(stream: bool) -> OpenAiGemini {
    let mut t = gemini();
    let request = format!(
        r#"{{"model":"gemini-2.5-flash","messages":[{{"role":"user","content":"hi"}}],
            "stream":{stream}{}}}"#,
        if stream {
            r#","stream_options":{"include_usage":true}"#
        } else {
            ""
        }
    );
    t.request_body(request.as_bytes(), None).unwrap();
    t
}

#[test]
fn gemini_requests() {
    let cases = [
        (
            "request_basic",
            fixture!("openai_gemini", "request_basic.in.json"),
            fixture!("openai_gemini", "request_basic.out.json"),
        ),
        (
            "request_tools",
            fixture!("openai_gemini", "request_tools.in.json"),
            fixture!("openai_gemini", "request_tools.out.json"),
        ),
        (
            "request_json_schema",
            fixture!("openai_gemini", "request_json_schema.in.json"),
            fixture!("openai_gemini", "request_json_schema.out.json"),
        ),
    ];
    for (name, input, want) in cases {
        let mut t = gemini();
        let out = t.request_body(input.as_bytes(), None).unwrap().unwrap();
        assert_eq!(json_bytes(&out), json(want), "{name}");
    }
}

fn gemini_response(status: u16, input: &str) -> Answer {
    respond(
        &mut gemini_after_request(false),
        status,
        "application/json; charset=UTF-8",
        input,
    )
}

#[test]
fn gemini_responses() {
    let cases = [
        (
            "response_basic (thought parts, cached and thinking tokens)",
            fixture!("openai_gemini", "response_basic.in.json"),
            fixture!("openai_gemini", "response_basic.out.json"),
        ),
        (
            "response_function_call",
            fixture!("openai_gemini", "response_function_call.in.json"),
            fixture!("openai_gemini", "response_function_call.out.json"),
        ),
        (
            "response_safety",
            fixture!("openai_gemini", "response_safety.in.json"),
            fixture!("openai_gemini", "response_safety.out.json"),
        ),
        (
            "response_prompt_blocked",
            fixture!("openai_gemini", "response_prompt_blocked.in.json"),
            fixture!("openai_gemini", "response_prompt_blocked.out.json"),
        ),
        (
            "response_max_tokens",
            fixture!("openai_gemini", "response_max_tokens.in.json"),
            fixture!("openai_gemini", "response_max_tokens.out.json"),
        ),
    ];
    check_answers(&cases, gemini_response);
}

#[test]
fn gemini_errors_keep_their_status() {
    let cases = [
        (
            429,
            429,
            fixture!("openai_gemini", "error_rate_limit.in.json"),
            fixture!("openai_gemini", "error_rate_limit.out.json"),
        ),
        // Our API key refused: the gateway's 502, not the provider's 400 (account_headers.rs).
        (
            400,
            502,
            fixture!("openai_gemini", "error_invalid_key.in.json"),
            fixture!("openai_gemini", "error_invalid_key.out.json"),
        ),
        (
            503,
            503,
            fixture!("openai_gemini", "error_array.in.json"),
            fixture!("openai_gemini", "error_array.out.json"),
        ),
        (
            502,
            502,
            fixture!("openai_gemini", "error_html.in.json"),
            fixture!("openai_gemini", "error_html.out.json"),
        ),
    ];
    check_errors(&cases, gemini_response);
}

#[test]
fn gemini_unreadable_answer_is_a_502() {
    let (status, got, _) = gemini_response(200, "{\"candidates\": 7}");
    assert_eq!(status, Some(502));
    assert_eq!(got["error"]["code"], "upstream_unreadable");
}

#[test]
fn gemini_streams() {
    let cases = [
        (
            "stream_basic",
            fixture!("openai_gemini", "stream_basic.in.sse"),
            fixture!("openai_gemini", "stream_basic.out.sse"),
            Some((8, 19, 12)),
        ),
        (
            "stream_function_call",
            fixture!("openai_gemini", "stream_function_call.in.sse"),
            fixture!("openai_gemini", "stream_function_call.out.sse"),
            Some((70, 20, 0)),
        ),
        (
            "stream_recorded_function_call",
            fixture!("openai_gemini", "stream_recorded_function_call.in.sse"),
            fixture!("openai_gemini", "stream_recorded_function_call.out.sse"),
            Some((83, 118, 104)),
        ),
        (
            "stream_recorded_text",
            fixture!("openai_gemini", "stream_recorded_text.in.sse"),
            fixture!("openai_gemini", "stream_recorded_text.out.sse"),
            Some((138, 15, 0)),
        ),
        (
            "stream_truncated",
            fixture!("openai_gemini", "stream_truncated.in.sse"),
            fixture!("openai_gemini", "stream_truncated.out.sse"),
            None,
        ),
        (
            "stream_error",
            fixture!("openai_gemini", "stream_error.in.sse"),
            fixture!("openai_gemini", "stream_error.out.sse"),
            None,
        ),
    ];
    for (name, input, want, usage) in cases {
        let (out, got_usage) = run_stream(|| Box::new(gemini_after_request(true)), input, name);
        assert_sse_eq(&out, want, name);
        let got_usage = got_usage.map(|u| {
            let reasoning = u
                .completion_tokens_details
                .map_or(0, |d| d.reasoning_tokens);
            (u.prompt_tokens, u.completion_tokens, reasoning)
        });
        assert_eq!(got_usage, usage, "{name}");
    }
}

/// A stream that ends in an error frame (the provider's, or a cut stream's) is counted as an
/// error by telemetry (`llmgw_upstream_errors_total{class="stream_error"}`).
#[test]
fn gemini_stream_failures_are_reported() {
    for (name, input, failed) in [
        (
            "stream_basic",
            fixture!("openai_gemini", "stream_basic.in.sse"),
            false,
        ),
        (
            "stream_truncated",
            fixture!("openai_gemini", "stream_truncated.in.sse"),
            true,
        ),
        (
            "stream_error",
            fixture!("openai_gemini", "stream_error.in.sse"),
            true,
        ),
    ] {
        let mut t = gemini_after_request(true);
        t.response_headers(200, Some("text/event-stream"), false, 1);
        t.response_chunk(input.as_bytes(), true);
        assert_eq!(t.stream_failed(), failed, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// openai → anthropic: tools, vision, structured output

fn anthropic_request(input: &str) -> serde_json::Value {
    let mut t = OpenAiAnthropic::new(4096);
    json_bytes(&t.request_body(input.as_bytes(), None).unwrap().unwrap())
}

#[test]
fn anthropic_tools_images_and_tool_results() {
    assert_eq!(
        anthropic_request(fixture!("openai_anthropic", "request_tools.in.json")),
        json(fixture!("openai_anthropic", "request_tools.out.json"))
    );
}

#[test]
fn anthropic_json_schema_becomes_a_forced_tool() {
    assert_eq!(
        anthropic_request(fixture!("openai_anthropic", "request_json_schema.in.json")),
        json(fixture!("openai_anthropic", "request_json_schema.out.json"))
    );
}

/// A translator that has seen a request with `response_format` (the forced tool `person`).
fn anthropic_json(stream: bool) -> OpenAiAnthropic {
    let mut t = OpenAiAnthropic::new(4096);
    let request = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"stream":{stream},
            "response_format":{{"type":"json_schema","json_schema":{{"name":"person",
            "schema":{{"type":"object"}}}}}}}}"#
    );
    t.request_body(request.as_bytes(), None).unwrap();
    t
}

#[test]
fn anthropic_forced_tool_answer_is_message_content() {
    let mut t = anthropic_json(false);
    t.response_headers(200, Some("application/json"), false, CREATED);
    let out =
        t.response_body(fixture!("openai_anthropic", "response_json_answer.in.json").as_bytes());
    assert_eq!(
        json_bytes(&out.body),
        json(fixture!(
            "openai_anthropic",
            "response_json_answer.out.json"
        ))
    );
}

#[test]
fn anthropic_streamed_tool_use_and_json_answer() {
    let streaming = || {
        let mut t = OpenAiAnthropic::new(4096);
        t.request_body(
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            None,
        )
        .unwrap();
        t
    };
    let (out, _) = run_stream(
        || Box::new(streaming()),
        fixture!("openai_anthropic", "stream_tool_use.in.sse"),
        "stream_tool_use",
    );
    assert_sse_eq(
        &out,
        fixture!("openai_anthropic", "stream_tool_use.out.sse"),
        "stream_tool_use",
    );
    let (out, usage) = run_stream(
        || Box::new(anthropic_json(true)),
        fixture!("openai_anthropic", "stream_json_answer.in.sse"),
        "stream_json_answer",
    );
    assert_sse_eq(
        &out,
        fixture!("openai_anthropic", "stream_json_answer.out.sse"),
        "stream_json_answer",
    );
    assert_eq!(usage.map(|u| u.completion_tokens), Some(30));
}

#[test]
fn gemini_unknown_parts_and_finish_reasons_are_counted() {
    use crate::translate::dropped::what;
    let mut t = gemini_after_request(true);
    t.response_headers(200, Some("text/event-stream"), false, CREATED);
    let input = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"executableCode\": {\"language\": \"PYTHON\", \"code\": \"print(1)\"}}, {\"text\": \"1\"}], \"role\": \"model\"}, \"index\": 0}], \"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}], \"role\": \"model\"}, \"finishReason\": \"SOMETHING_NEW\", \"index\": 0}], \"usageMetadata\": {\"promptTokenCount\": 2, \"candidatesTokenCount\": 1, \"totalTokenCount\": 3}, \"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n",
    );
    let out = t.response_chunk(input.as_bytes(), true).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#""content":"1""#) && text.contains(r#""finish_reason":"stop""#));
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(t.dropped(), [(what::CONTENT, 1), (what::STOP_REASON, 1)]);
}
