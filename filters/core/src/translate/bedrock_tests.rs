//! Bedrock and embeddings: golden fixtures (`fixtures/translate/openai_bedrock`, `embeddings`)
//! and filter-level tests with the fake host (config, signing, paths, responses).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json, Value};

use super::golden::{
    assert_sse_eq, check_answers, check_errors, json, json_bytes, respond, Answer, CREATED,
};
use super::openai_bedrock::{BedrockEndpoint, OpenAiBedrock};
use super::*;
use crate::aws::sigv4;
use crate::eventstream;
use crate::testing::FakeHost;

const REQUEST_ID: &str = "5f7a2c1e-0d2b-4c3e-9b5a-1e2f3a4b5c6d";
const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn endpoint() -> Rc<BedrockEndpoint> {
    Rc::new(BedrockEndpoint {
        region: "us-east-1".into(),
        host: "bedrock-runtime.us-east-1.amazonaws.com".into(),
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: Some(Secret::new("session-token")),
    })
}

fn bedrock(stream: bool, include_usage: bool) -> OpenAiBedrock {
    bedrock_with(stream, include_usage, "")
}

/// [`bedrock`] for a request with `extra` fields (`,"name":value…`).
fn bedrock_with(stream: bool, include_usage: bool, extra: &str) -> OpenAiBedrock {
    let mut t = OpenAiBedrock::new(endpoint());
    let request = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"stream":{stream},
            "stream_options":{{"include_usage":{include_usage}}}{extra}}}"#
    );
    t.request_body(request.as_bytes(), Some(MODEL)).unwrap();
    t.note_response_header("x-amzn-requestid", REQUEST_ID);
    t
}

/// A `.jsonl` stream fixture → event-stream bytes. Each line is one frame:
/// `{"event": <:event-type>, "payload": {…}}` or `{"exception": <:exception-type>, "payload"}`,
/// optionally `"corrupt": "prelude" | "message"` (flip a bit under that CRC) and `"cut": N`
/// (keep only the first N bytes of the frame, as a connection that ends mid-frame).
pub(super) fn event_stream(source: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in source.lines().filter(|l| !l.trim().is_empty()) {
        let frame: Value = json(line);
        let payload = serde_json::to_vec(&frame["payload"]).unwrap();
        let mut bytes = if let Some(event) = frame["event"].as_str() {
            eventstream::encode(
                &[
                    (":event-type", event),
                    (":content-type", "application/json"),
                    (":message-type", "event"),
                ],
                &payload,
            )
        } else {
            let exception = frame["exception"].as_str().unwrap();
            eventstream::encode(
                &[
                    (":exception-type", exception),
                    (":content-type", "application/json"),
                    (":message-type", "exception"),
                ],
                &payload,
            )
        };
        match frame["corrupt"].as_str() {
            Some("prelude") => bytes[2] ^= 0x40,
            Some("message") => {
                let at = bytes.len() - 6;
                bytes[at] ^= 0x01;
            }
            _ => {}
        }
        if let Some(cut) = frame["cut"].as_u64() {
            bytes.truncate(cut as usize);
        }
        out.extend(bytes);
    }
    out
}

fn feed(make: &dyn Fn() -> OpenAiBedrock, pieces: &[&[u8]]) -> (Vec<u8>, Option<Usage>) {
    let mut t = make();
    let plan = t.response_headers(
        200,
        Some("application/vnd.amazon.eventstream"),
        false,
        CREATED,
    );
    assert_eq!(plan.mode, ResponseMode::Stream);
    assert_eq!(plan.content_type, Some("text/event-stream"));
    let mut out = Vec::new();
    let last = pieces.len().saturating_sub(1);
    for (i, piece) in pieces.iter().enumerate() {
        out.extend(t.response_chunk(piece, i == last).unwrap());
    }
    (out, t.usage())
}

/// Feed the stream whole, byte by byte (with an empty last piece, as Envoy may end a stream),
/// and cut in two at every position: every way must give the same output.
fn run_stream(make: &dyn Fn() -> OpenAiBedrock, input: &[u8]) -> (Vec<u8>, Option<Usage>) {
    let whole = feed(make, &[input]);
    let mut bytewise: Vec<&[u8]> = input.chunks(1).collect();
    bytewise.push(&[]);
    assert_eq!(whole, feed(make, &bytewise), "whole vs byte by byte");
    for split in (0..=input.len()).step_by(7) {
        let (a, b) = input.split_at(split);
        assert_eq!(whole, feed(make, &[a, b]), "split at {split}");
    }
    whole
}

// ---------------------------------------------------------------------------------------------
// Golden: requests

#[test]
fn converse_requests() {
    let cases = [
        (
            fixture!("openai_bedrock", "request_basic.in.json"),
            fixture!("openai_bedrock", "request_basic.out.json"),
            false,
        ),
        (
            fixture!("openai_bedrock", "request_full.in.json"),
            fixture!("openai_bedrock", "request_full.out.json"),
            true,
        ),
        (
            fixture!("openai_bedrock", "request_tools.in.json"),
            fixture!("openai_bedrock", "request_tools.out.json"),
            false,
        ),
        (
            fixture!("openai_bedrock", "request_json_schema.in.json"),
            fixture!("openai_bedrock", "request_json_schema.out.json"),
            false,
        ),
        (
            fixture!("openai_bedrock", "request_json_object.in.json"),
            fixture!("openai_bedrock", "request_json_object.out.json"),
            false,
        ),
        (
            fixture!("openai_bedrock", "request_reasoning.in.json"),
            fixture!("openai_bedrock", "request_reasoning.out.json"),
            false,
        ),
    ];
    for (input, want, stream) in cases {
        let mut t = OpenAiBedrock::new(endpoint());
        let out = t
            .request_body(input.as_bytes(), Some(MODEL))
            .unwrap()
            .unwrap();
        assert_eq!(json_bytes(&out), json(want));
        let headers = t.finish_request(&out, 1_440_938_160_000);
        let path = &headers[0];
        let action = if stream {
            "converse-stream"
        } else {
            "converse"
        };
        assert_eq!(
            (path.0.as_str(), path.1.as_str()),
            (
                ":path",
                format!("/model/anthropic.claude-3-haiku-20240307-v1%3A0/{action}").as_str()
            )
        );
    }
}

#[test]
fn converse_request_refusals_name_the_field() {
    let cases = [
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"n":2}"#,
            "n",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],
                "tools":[{"type":"function","function":{"name":"get weather"}}]}"#,
            "tools[0].function.name",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],
                "tools":[{"type":"function","function":{"name":"f","parameters":[]}}]}"#,
            "tools[0].function.parameters",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"parallel_tool_calls":false,
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            "parallel_tool_calls",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},
                {"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                {"role":"tool","tool_call_id":"t1","content":"42"}],
                "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}"#,
            "tool_choice",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},
                {"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"[1]"}}]}],
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"tool","content":"x"}],
                "tools":[{"type":"function","function":{"name":"f"}}]}"#,
            "messages[1].tool_call_id",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"seed":3}"#,
            "seed",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"presence_penalty":0.5}"#,
            "presence_penalty",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"logprobs":true}"#,
            "logprobs",
        ),
        (
            // A forced answer tool leaves the model no other tool to call.
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],
                "tools":[{"type":"function","function":{"name":"f"}}],
                "response_format":{"type":"json_object"}}"#,
            "response_format",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],
                "response_format":{"type":"json_schema","json_schema":{"name":"a b"}}}"#,
            "response_format.json_schema.name",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],
                "response_format":{"type":"json_schema","json_schema":{"name":"list",
                "schema":{"type":"array","items":{"type":"string"}}}}}"#,
            "response_format.json_schema.schema",
        ),
        (
            // Tool results need the tools they answer, answer tool or not.
            r#"{"model":"m","messages":[{"role":"tool","content":"x","tool_call_id":"1"}],
                "response_format":{"type":"json_object"}}"#,
            "tools",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[
                {"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[
                {"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}"#,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
            "messages[1].content[0]",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":[
                {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}"#,
            "messages[0].content[0]",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},
                {"role":"assistant","tool_calls":[{"id":"1"}]}]}"#,
            "messages[1].tool_calls",
        ),
        (
            // Tool results without the tools they answer: Converse needs `toolConfig` then.
            r#"{"model":"m","messages":[{"role":"tool","content":"x","tool_call_id":"1"}]}"#,
            "tools",
        ),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"function","name":"f","content":"x"}]}"#,
            "messages[1].role",
        ),
        (
            r#"{"model":"m","messages":[{"role":"assistant","content":"hi"}]}"#,
            "messages",
        ),
        (
            r#"{"model":"m","messages":[{"role":"system","content":"x"}]}"#,
            "messages",
        ),
    ];
    for (body, param) in cases {
        let mut t = OpenAiBedrock::new(endpoint());
        let err = t.request_body(body.as_bytes(), None).unwrap_err();
        assert_eq!(err.status, 400, "{body}");
        assert_eq!(err.param.as_deref(), Some(param), "{body}");
    }
}

#[test]
fn converse_tool_choice_maps_or_is_left_out() {
    let tools = r#""tools":[{"type":"function","function":{"name":"f"}}]"#;
    let cases = [
        (r#""auto""#, Some(json!({"auto": {}}))),
        (r#""required""#, Some(json!({"any": {}}))),
        (
            r#"{"type":"function","function":{"name":"f"}}"#,
            Some(json!({"tool": {"name": "f"}})),
        ),
    ];
    for (choice, want) in cases {
        let body = format!(
            r#"{{"messages":[{{"role":"user","content":"hi"}}],{tools},"tool_choice":{choice}}}"#
        );
        let mut t = OpenAiBedrock::new(endpoint());
        let out = json_bytes(
            &t.request_body(body.as_bytes(), Some(MODEL))
                .unwrap()
                .unwrap(),
        );
        assert_eq!(
            out["toolConfig"].get("toolChoice").cloned(),
            want,
            "{choice}"
        );
        assert_eq!(out["toolConfig"]["tools"][0]["toolSpec"]["name"], "f");
    }
    // No choice: Converse's default (auto), not written.
    let body = format!(r#"{{"messages":[{{"role":"user","content":"hi"}}],{tools}}}"#);
    let out = json_bytes(
        &OpenAiBedrock::new(endpoint())
            .request_body(body.as_bytes(), Some(MODEL))
            .unwrap()
            .unwrap(),
    );
    assert!(out["toolConfig"].get("toolChoice").is_none());
    // `none` before any tool call: the tools are left out, so the model cannot call one.
    let body = format!(
        r#"{{"messages":[{{"role":"user","content":"hi"}}],{tools},"tool_choice":"none"}}"#
    );
    let out = json_bytes(
        &OpenAiBedrock::new(endpoint())
            .request_body(body.as_bytes(), Some(MODEL))
            .unwrap()
            .unwrap(),
    );
    assert!(out.get("toolConfig").is_none(), "{out}");
}

#[test]
fn converse_stream_input_for_an_unknown_tool_block_is_an_error() {
    let input = r#"{"event": "messageStart", "payload": {"role": "assistant"}}
{"event": "contentBlockDelta", "payload": {"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}}
"#;
    let mut t = bedrock(true, false);
    t.response_headers(
        200,
        Some("application/vnd.amazon.eventstream"),
        false,
        CREATED,
    );
    let out = t.response_chunk(&event_stream(input), false).unwrap();
    assert!(t.stream_failed());
    assert!(String::from_utf8_lossy(&out).contains("upstream_unreadable"));
}

// ---------------------------------------------------------------------------------------------
// Golden: responses and errors

fn converse_response(status: u16, error_type: Option<&str>, input: &str) -> Answer {
    let mut t = bedrock(false, false);
    if let Some(e) = error_type {
        t.note_response_header("x-amzn-errortype", e);
    }
    respond(&mut t, status, "application/json", input)
}

#[test]
fn converse_responses() {
    let cases = [
        (
            "response_basic",
            fixture!("openai_bedrock", "response_basic.in.json"),
            fixture!("openai_bedrock", "response_basic.out.json"),
        ),
        (
            "response_cache_max_tokens",
            fixture!("openai_bedrock", "response_cache_max_tokens.in.json"),
            fixture!("openai_bedrock", "response_cache_max_tokens.out.json"),
        ),
        (
            "response_reasoning",
            fixture!("openai_bedrock", "response_reasoning.in.json"),
            fixture!("openai_bedrock", "response_reasoning.out.json"),
        ),
        (
            "response_tool_use",
            fixture!("openai_bedrock", "response_tool_use.in.json"),
            fixture!("openai_bedrock", "response_tool_use.out.json"),
        ),
        (
            "response_guardrail",
            fixture!("openai_bedrock", "response_guardrail.in.json"),
            fixture!("openai_bedrock", "response_guardrail.out.json"),
        ),
    ];
    check_answers(&cases, |status, input| {
        converse_response(status, None, input)
    });
}

#[test]
fn converse_errors() {
    let validation = "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/";
    let cases = [
        (
            429,
            Some("ThrottlingException"),
            429,
            fixture!("openai_bedrock", "error_throttling.in.json"),
            fixture!("openai_bedrock", "error_throttling.out.json"),
        ),
        (
            400,
            Some(validation),
            400,
            fixture!("openai_bedrock", "error_validation.in.json"),
            fixture!("openai_bedrock", "error_validation.out.json"),
        ),
        (
            403,
            Some("AccessDeniedException"),
            403,
            fixture!("openai_bedrock", "error_access_denied.in.json"),
            fixture!("openai_bedrock", "error_access_denied.out.json"),
        ),
        (
            429,
            Some("ModelNotReadyException"),
            503,
            fixture!("openai_bedrock", "error_model_not_ready.in.json"),
            fixture!("openai_bedrock", "error_model_not_ready.out.json"),
        ),
        (
            502,
            None,
            502,
            fixture!("openai_bedrock", "error_html.in.json"),
            fixture!("openai_bedrock", "error_html.out.json"),
        ),
        (
            200,
            None,
            502,
            fixture!("openai_bedrock", "response_unreadable.in.json"),
            fixture!("openai_bedrock", "response_unreadable.out.json"),
        ),
    ];
    for (status_in, error_type, status_out, input, want) in cases {
        check_errors(&[(status_in, status_out, input, want)], |status, input| {
            converse_response(status, error_type, input)
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Golden: streams

#[test]
fn converse_streams() {
    let plain = || bedrock(true, false);
    let with_usage = || bedrock(true, true);
    let cases: [(&str, &dyn Fn() -> OpenAiBedrock, &str, &str); 10] = [
        (
            "stream_tool_no_input",
            &plain,
            fixture!("openai_bedrock", "stream_tool_no_input.in.jsonl"),
            fixture!("openai_bedrock", "stream_tool_no_input.out.sse"),
        ),
        (
            "stream_tool_use",
            &plain,
            fixture!("openai_bedrock", "stream_tool_use.in.jsonl"),
            fixture!("openai_bedrock", "stream_tool_use.out.sse"),
        ),
        (
            "stream_basic",
            &plain,
            fixture!("openai_bedrock", "stream_basic.in.jsonl"),
            fixture!("openai_bedrock", "stream_basic.out.sse"),
        ),
        (
            "stream_usage",
            &with_usage,
            fixture!("openai_bedrock", "stream_usage.in.jsonl"),
            fixture!("openai_bedrock", "stream_usage.out.sse"),
        ),
        (
            "stream_reasoning",
            &with_usage,
            fixture!("openai_bedrock", "stream_reasoning.in.jsonl"),
            fixture!("openai_bedrock", "stream_reasoning.out.sse"),
        ),
        (
            "stream_exception",
            &plain,
            fixture!("openai_bedrock", "stream_exception.in.jsonl"),
            fixture!("openai_bedrock", "stream_exception.out.sse"),
        ),
        (
            "stream_corrupt_crc",
            &plain,
            fixture!("openai_bedrock", "stream_corrupt_crc.in.jsonl"),
            fixture!("openai_bedrock", "stream_corrupt_crc.out.sse"),
        ),
        (
            "stream_corrupt_prelude",
            &plain,
            fixture!("openai_bedrock", "stream_corrupt_prelude.in.jsonl"),
            fixture!("openai_bedrock", "stream_corrupt_prelude.out.sse"),
        ),
        (
            "stream_truncated",
            &plain,
            fixture!("openai_bedrock", "stream_truncated.in.jsonl"),
            fixture!("openai_bedrock", "stream_truncated.out.sse"),
        ),
        (
            "stream_no_metadata",
            &plain,
            fixture!("openai_bedrock", "stream_no_metadata.in.jsonl"),
            fixture!("openai_bedrock", "stream_no_metadata.out.sse"),
        ),
    ];
    for (name, make, input, want) in cases {
        let (out, usage) = run_stream(make, &event_stream(input));
        assert_sse_eq(&out, want, name);
        let mut t = make();
        t.response_headers(
            200,
            Some("application/vnd.amazon.eventstream"),
            false,
            CREATED,
        );
        t.response_chunk(&event_stream(input), true);
        let ends_in_error = want.contains("\"error\"");
        assert_eq!(t.stream_failed(), ends_in_error, "{name}");
        match name {
            "stream_basic" => assert_eq!(usage.map(|u| u.total_tokens), Some(21)),
            "stream_tool_use" => assert_eq!(usage.map(|u| u.total_tokens), Some(473)),
            "stream_tool_no_input" => assert_eq!(usage.map(|u| u.total_tokens), Some(433)),
            "stream_reasoning" => assert_eq!(usage.map(|u| u.total_tokens), Some(107)),
            "stream_usage" => assert_eq!(
                usage.map(|u| (u.prompt_tokens, u.cached_tokens())),
                Some((320, 300))
            ),
            _ => assert_eq!(usage, None, "{name}"),
        }
    }
}

const JSON_SCHEMA: &str = r#","response_format":{"type":"json_schema","json_schema":{
    "name":"top_song","schema":{"type":"object","properties":{"song":{"type":"string"},
    "artist":{"type":"string"}},"required":["song","artist"]}}}"#;

#[test]
fn converse_json_answers_are_content_with_finish_stop() {
    // Non-stream: the forced tool's input is the content, `tool_use` is `stop`.
    let mut t = bedrock_with(false, false, JSON_SCHEMA);
    t.response_headers(200, Some("application/json"), false, CREATED);
    let out =
        t.response_body(fixture!("openai_bedrock", "response_json_answer.in.json").as_bytes());
    assert_eq!(out.status, None);
    let got = json_bytes(&out.body);
    assert_eq!(
        got,
        json(fixture!("openai_bedrock", "response_json_answer.out.json"))
    );
    let content: Value = json(got["choices"][0]["message"]["content"].as_str().unwrap());
    assert_eq!(content["song"], "Elemental Hotel");
    assert_eq!(t.usage().map(|u| u.total_tokens), Some(431));

    // Stream: input fragments become `delta.content`, whole, byte by byte and cut in two.
    let make = || bedrock_with(true, false, JSON_SCHEMA);
    let input = event_stream(fixture!("openai_bedrock", "stream_json_answer.in.jsonl"));
    let (out, usage) = run_stream(&make, &input);
    assert_sse_eq(
        &out,
        fixture!("openai_bedrock", "stream_json_answer.out.sse"),
        "stream_json_answer",
    );
    assert_eq!(usage.map(|u| u.total_tokens), Some(473));

    // Without `response_format` the same answer is a tool call, as before.
    let (_, plain, _) = converse_response(
        200,
        None,
        fixture!("openai_bedrock", "response_json_answer.in.json"),
    );
    assert_eq!(plain["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(plain["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        plain["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "top_song"
    );
}

// ---------------------------------------------------------------------------------------------
// Golden: embeddings

#[test]
fn bedrock_embeddings_requests_and_responses() {
    let cases = [
        (
            "amazon.titan-embed-text-v2:0",
            fixture!("embeddings", "request_titan.in.json"),
            fixture!("embeddings", "request_titan.out.json"),
            None,
            fixture!("embeddings", "response_titan.in.json"),
            fixture!("embeddings", "response_titan.out.json"),
        ),
        (
            "cohere.embed-english-v3",
            fixture!("embeddings", "request_cohere.in.json"),
            fixture!("embeddings", "request_cohere.out.json"),
            Some("4"),
            fixture!("embeddings", "response_cohere.in.json"),
            fixture!("embeddings", "response_cohere.out.json"),
        ),
    ];
    for (model, req_in, req_out, token_header, resp_in, resp_out) in cases {
        let mut t = embeddings::BedrockEmbeddings::new(endpoint());
        let body = t
            .request_body(req_in.as_bytes(), Some(model))
            .unwrap()
            .unwrap();
        assert_eq!(json_bytes(&body), json(req_out), "{model}");
        let headers = t.finish_request(&body, 0);
        let want_path = format!("/model/{}/invoke", model.replace(':', "%3A"));
        assert_eq!(headers[0], (":path".to_string(), want_path));
        if let Some(count) = token_header {
            t.note_response_header("x-amzn-bedrock-input-token-count", count);
        }
        let plan = t.response_headers(200, Some("application/json"), false, CREATED);
        assert_eq!(plan.mode, ResponseMode::Buffer);
        let out = t.response_body(resp_in.as_bytes());
        assert_eq!(out.status, None);
        let want = json(resp_out);
        assert_eq!(json_bytes(&out.body), want, "{model}");
        assert_eq!(
            t.usage().map(|u| u.prompt_tokens),
            want["usage"]["prompt_tokens"].as_u64()
        );
    }
}

#[test]
fn bedrock_embeddings_refusals() {
    let cases = [
        (
            "amazon.titan-embed-text-v2:0",
            r#"{"input":["a","b"]}"#,
            "input",
        ),
        (
            "amazon.titan-embed-text-v2:0",
            r#"{"input":[[1,2,3]]}"#,
            "input",
        ),
        ("amazon.titan-embed-text-v2:0", r#"{"input":[]}"#, "input"),
        (
            "amazon.titan-embed-text-v2:0",
            r#"{"input":"a","encoding_format":"int8"}"#,
            "encoding_format",
        ),
        (
            "amazon.titan-embed-text-v2:0",
            r#"{"input":"a","truncate":"END"}"#,
            "truncate",
        ),
        (
            "cohere.embed-english-v3",
            r#"{"input":"a","dimensions":256}"#,
            "dimensions",
        ),
        (
            "anthropic.claude-3-haiku-20240307-v1:0",
            r#"{"input":"a"}"#,
            "model",
        ),
    ];
    for (model, body, param) in cases {
        let mut t = embeddings::BedrockEmbeddings::new(endpoint());
        let err = t.request_body(body.as_bytes(), Some(model)).unwrap_err();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some(param)),
            "{body}"
        );
    }
}

#[test]
fn bedrock_embeddings_base64_and_errors() {
    let mut t = embeddings::BedrockEmbeddings::new(endpoint());
    t.request_body(
        br#"{"input":"a","encoding_format":"base64"}"#,
        Some("amazon.titan-embed-text-v2:0"),
    )
    .unwrap();
    t.response_headers(200, Some("application/json"), false, CREATED);
    let out = t.response_body(br#"{"embedding":[1.0,2.0],"inputTextTokenCount":1}"#);
    assert_eq!(
        json_bytes(&out.body)["data"][0]["embedding"],
        "AACAPwAAAEA="
    );

    let mut t = embeddings::BedrockEmbeddings::new(endpoint());
    t.request_body(br#"{"input":"a"}"#, Some("amazon.titan-embed-text-v2:0"))
        .unwrap();
    t.note_response_header("x-amzn-errortype", "ModelNotReadyException");
    t.response_headers(429, Some("application/json"), false, CREATED);
    let out = t.response_body(br#"{"message":"warming up"}"#);
    assert_eq!(out.status, Some(503));
    assert_eq!(
        json_bytes(&out.body)["error"]["code"],
        "ModelNotReadyException"
    );
}

// ---------------------------------------------------------------------------------------------
// Filter level: config, signing, headers

const CONFIG: &str = r#"{"providers": [
  {"name": "openai", "schema": "openai", "key_env": "OPENAI_API_KEY"},
  {"name": "anthropic", "schema": "anthropic", "key_env": "ANTHROPIC_API_KEY"},
  {"name": "bedrock", "schema": "bedrock", "region": "us-east-1",
   "access_key_env": "AWS_ACCESS_KEY_ID", "secret_key_env": "AWS_SECRET_ACCESS_KEY",
   "session_token_env": "AWS_SESSION_TOKEN"}
]}"#;

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-openai-secret".into()),
        "ANTHROPIC_API_KEY" => Some("sk-ant-secret".into()),
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
        "AWS_SESSION_TOKEN" => Some("session-token".into()),
        _ => None,
    }
}

fn refusal(json: &str) -> (String, String) {
    let err = TranslateRoot::configure(json.as_bytes(), &env).unwrap_err();
    (err.path, err.reason)
}

#[test]
fn bedrock_config_compiles_and_hides_secrets() {
    let root = TranslateRoot::configure(CONFIG.as_bytes(), &env).unwrap();
    assert_eq!(root.providers()[2].backend, Backend::Bedrock(endpoint()));
    let debug = format!("{root:?}");
    assert!(
        !debug.contains("EXAMPLEKEY") && !debug.contains("session-token"),
        "{debug}"
    );
    // Defaults: the standard AWS variables; the session token only when set.
    let no_token = |name: &str| {
        if name == "AWS_SESSION_TOKEN" {
            None
        } else {
            env(name)
        }
    };
    let root = TranslateRoot::configure(
        br#"{"providers":[{"name":"b","schema":"bedrock","region":"eu-west-3","host":"127.0.0.1:9"}]}"#,
        &no_token,
    )
    .unwrap();
    let Backend::Bedrock(endpoint) = &root.providers()[0].backend else {
        panic!("not bedrock");
    };
    assert_eq!(
        (endpoint.host.as_str(), endpoint.session_token.is_none()),
        ("127.0.0.1:9", true)
    );
}

#[test]
fn bedrock_config_refusals_name_the_field() {
    let cases = [
        (
            r#"{"providers":[{"name":"b","schema":"bedrock"}]}"#,
            "providers[0].region",
            "required for schema `bedrock` (e.g. `us-east-1`)",
        ),
        (
            r#"{"providers":[{"name":"b","schema":"bedrock","region":"US East"}]}"#,
            "providers[0].region",
            "`US East` is not an AWS region name (lower-case letters, digits, `-`)",
        ),
        (
            r#"{"providers":[{"name":"b","schema":"bedrock","region":"us-east-1","key_env":"K"}]}"#,
            "providers[0].key_env",
            "not used by schema `bedrock`, which signs with AWS credentials (access_key_env, secret_key_env, session_token_env)",
        ),
        (
            r#"{"providers":[{"name":"b","schema":"bedrock","region":"us-east-1","secret_key_env":"NOPE"}]}"#,
            "providers[0].secret_key_env",
            "environment variable NOPE is not set or empty",
        ),
        (
            r#"{"providers":[{"name":"b","schema":"bedrock","region":"us-east-1","session_token_env":"NOPE"}]}"#,
            "providers[0].session_token_env",
            "environment variable NOPE is not set or empty",
        ),
        (
            r#"{"providers":[{"name":"b","schema":"bedrock","region":"us-east-1","host":"https://x/"}]}"#,
            "providers[0].host",
            "`https://x/` must be a host name (optionally with `:port`), without scheme or path",
        ),
        (
            r#"{"providers":[{"name":"b","schema":"bedrock","region":"us-east-1","base_path":"/v1"}]}"#,
            "providers[0].base_path",
            "only valid for schema `openai`, this provider's schema is `bedrock`",
        ),
        (
            r#"{"providers":[{"name":"o","schema":"openai","key_env":"OPENAI_API_KEY","region":"us-east-1"}]}"#,
            "providers[0].region",
            "only valid for schema `vertex` or `bedrock`, this provider's schema is `openai`",
        ),
        (
            r#"{"providers":[{"name":"o","schema":"openai"}]}"#,
            "providers[0].key_env",
            "required, or `key_header` (or `auth: \"none\"` for a server without keys)",
        ),
    ];
    for (json, path, reason) in cases {
        assert_eq!(
            refusal(json),
            (path.to_string(), reason.to_string()),
            "{json}"
        );
    }
}

fn bedrock_host(path: &str, body: &str, model: &str) -> FakeHost {
    FakeHost::new()
        .with_now_ms(1_764_072_000_000)
        .with_request_header(":method", "POST")
        .with_request_header(":path", path)
        .with_request_header(":authority", "127.0.0.1:10000")
        .with_request_header("content-type", "application/json")
        .with_request_header("content-length", &body.len().to_string())
        .with_request_header("authorization", "Bearer client-virtual-key")
        .with_request_header("accept-encoding", "gzip")
        .with_provider("bedrock")
        .with_upstream_model(model)
        .with_request_body(body.as_bytes().to_vec())
}

/// Recompute the signature from what the provider would receive, as AWS does.
fn assert_signed(host: &FakeHost) {
    let authz = host.req("authorization").unwrap().to_string();
    let signed_list = authz
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap();
    assert_eq!(
        signed_list,
        "content-type;host;x-amz-date;x-amz-security-token"
    );
    let names: Vec<&str> = signed_list.split(';').collect();
    let values: Vec<(&str, &str)> = names
        .iter()
        .map(|n| {
            let value = if *n == "host" {
                host.req(":authority")
            } else {
                host.req(n)
            };
            (*n, value.unwrap())
        })
        .collect();
    let date = host.req("x-amz-date").unwrap();
    let payload = sigv4::sha256_hex(&host.request_body);
    let scope = sigv4::Scope {
        region: "us-east-1",
        service: "bedrock",
        amz_date: date,
    };
    let request = sigv4::Signable {
        method: "POST",
        path: host.req(":path").unwrap(),
        query: "",
        headers: &values,
        payload_sha256: &payload,
    };
    let want = sigv4::authorization(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        &scope,
        &request,
    );
    assert_eq!(authz, want);
}

#[test]
fn bedrock_chat_request_is_translated_and_signed() {
    let root = TranslateRoot::configure(CONFIG.as_bytes(), &env).unwrap();
    let mut filter = root.new_filter();
    let body = r#"{"model":"claude-3-haiku-bedrock","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    let mut host = bedrock_host("/v1/chat/completions", body, MODEL);
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    let size = host.request_body.len();
    assert_eq!(
        filter.on_request_body(&mut host, size, true),
        Flow::Continue
    );
    assert!(host.local_response.is_none());
    assert_eq!(
        host.req(":path"),
        Some("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream")
    );
    assert_eq!(
        host.req(":authority"),
        Some("bedrock-runtime.us-east-1.amazonaws.com")
    );
    assert_eq!(host.req("x-amz-date"), Some("20251125T120000Z"));
    assert_eq!(host.req("x-amz-security-token"), Some("session-token"));
    assert_eq!(host.req("accept-encoding"), None);
    assert_eq!(
        host.req("accept"),
        Some("application/vnd.amazon.eventstream")
    );
    assert!(!host
        .request_headers
        .iter()
        .any(|(n, _)| crate::facts::is_reserved_header(n)));
    assert_eq!(
        json_bytes(&host.request_body),
        json!({"messages":[{"role":"user","content":[{"text":"Hi"}]}]})
    );
    assert_eq!(
        host.req("content-length"),
        Some(host.request_body.len().to_string().as_str())
    );
    assert_signed(&host);
    assert!(!host.req("authorization").unwrap().contains("EXAMPLEKEY"));
}

#[test]
fn bedrock_stream_response_becomes_sse() {
    let root = TranslateRoot::configure(CONFIG.as_bytes(), &env).unwrap();
    let mut filter = root.new_filter();
    let body = r#"{"model":"x","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    let mut host = bedrock_host("/v1/chat/completions", body, MODEL);
    filter.on_request_headers(&mut host, false);
    let size = host.request_body.len();
    filter.on_request_body(&mut host, size, true);
    let stream = event_stream(fixture!("openai_bedrock", "stream_basic.in.jsonl"));
    host.now_ms = CREATED * 1000;
    let mut host = host
        .with_response_header(":status", "200")
        .with_response_header("content-type", "application/vnd.amazon.eventstream")
        .with_response_header("x-amzn-requestid", REQUEST_ID)
        .with_response_body(stream.clone());
    assert_eq!(filter.on_response_headers(&mut host, false), Flow::Continue);
    assert_eq!(host.resp("content-type"), Some("text/event-stream"));
    assert_eq!(
        filter.on_response_body(&mut host, stream.len(), true),
        Flow::Continue
    );
    assert_sse_eq(
        &host.response_body,
        fixture!("openai_bedrock", "stream_basic.out.sse"),
        "filter stream",
    );
    assert_eq!(filter.usage().map(|u| u.total_tokens), Some(21));
}

#[test]
fn bedrock_error_keeps_status_and_names_the_aws_error() {
    let root = TranslateRoot::configure(CONFIG.as_bytes(), &env).unwrap();
    let mut filter = root.new_filter();
    let body = r#"{"model":"x","messages":[{"role":"user","content":"Hi"}]}"#;
    let mut host = bedrock_host("/v1/chat/completions", body, MODEL);
    filter.on_request_headers(&mut host, false);
    let size = host.request_body.len();
    filter.on_request_body(&mut host, size, true);
    let error = br#"{"message":"Too many requests"}"#;
    let mut host = host
        .with_response_header(":status", "429")
        .with_response_header("content-type", "application/json")
        .with_response_header(
            "x-amzn-errortype",
            "ThrottlingException:http://internal.amazon.com/",
        )
        .with_response_body(error.to_vec());
    assert_eq!(filter.on_response_headers(&mut host, false), Flow::Pause);
    filter.on_response_body(&mut host, error.len(), true);
    let got = json_bytes(&host.response_body);
    assert_eq!(got["error"]["type"], "rate_limit_error");
    assert_eq!(got["error"]["code"], "ThrottlingException");
    assert_eq!(host.resp(":status"), Some("429"));
}

#[test]
fn embeddings_go_to_each_backend_and_anthropic_has_none() {
    let root = TranslateRoot::configure(CONFIG.as_bytes(), &env).unwrap();
    // Bedrock: Titan body, invoke path, signed.
    let mut filter = root.new_filter();
    let mut host = bedrock_host(
        "/v1/embeddings",
        r#"{"model":"titan-embed","input":"hello"}"#,
        "amazon.titan-embed-text-v2:0",
    );
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    let size = host.request_body.len();
    assert_eq!(
        filter.on_request_body(&mut host, size, true),
        Flow::Continue
    );
    assert_eq!(
        host.req(":path"),
        Some("/model/amazon.titan-embed-text-v2%3A0/invoke")
    );
    assert_eq!(json_bytes(&host.request_body), json!({"inputText":"hello"}));
    assert_signed(&host);

    // OpenAI: model rewritten, bearer key, path under the base path.
    let mut filter = root.new_filter();
    let mut host = bedrock_host(
        "/v1/embeddings",
        r#"{"model":"small","input":["a","b"],"dimensions":8}"#,
        "text-embedding-3-small",
    )
    .with_provider("openai");
    filter.on_request_headers(&mut host, false);
    let size = host.request_body.len();
    filter.on_request_body(&mut host, size, true);
    assert_eq!(host.req(":path"), Some("/v1/embeddings"));
    assert_eq!(host.req("authorization"), Some("Bearer sk-openai-secret"));
    assert_eq!(
        json_bytes(&host.request_body),
        json!({"model":"text-embedding-3-small","input":["a","b"],"dimensions":8})
    );

    // Anthropic has no embeddings API: 404 naming the path.
    let mut filter = root.new_filter();
    let mut host =
        bedrock_host("/v1/embeddings", r#"{"input":"a"}"#, "claude").with_provider("anthropic");
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    let reply = host.local_response.unwrap();
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/embeddings"));
}

#[test]
fn bedrock_other_paths_are_404() {
    let root = TranslateRoot::configure(CONFIG.as_bytes(), &env).unwrap();
    let mut filter = root.new_filter();
    let mut host = bedrock_host("/v1/models", "", MODEL);
    assert_eq!(filter.on_request_headers(&mut host, true), Flow::Pause);
    assert_eq!(host.local_response.unwrap().status, 404);
}

#[test]
fn converse_unknown_events_deltas_and_stop_reasons_are_counted() {
    use super::dropped::what;
    let input = r#"{"event": "messageStart", "payload": {"role": "assistant"}}
{"event": "contentBlockDelta", "payload": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Thinking."}}}}
{"event": "contentBlockDelta", "payload": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"redactedContent": "ZW5jcnlwdGVk"}}}}
{"event": "contentBlockDelta", "payload": {"contentBlockIndex": 1, "delta": {"text": "Hello"}}}
{"event": "somethingNew", "payload": {"contentBlockIndex": 1}}
{"event": "contentBlockStop", "payload": {"contentBlockIndex": 1}}
{"event": "messageStop", "payload": {"stopReason": "brand_new_reason"}}
{"event": "metadata", "payload": {"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}}}"#;
    let mut t = bedrock(true, false);
    t.response_headers(
        200,
        Some("application/vnd.amazon.eventstream"),
        false,
        CREATED,
    );
    let out = t.response_chunk(&event_stream(input), true).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#""content":"Hello""#) && text.contains(r#""finish_reason":"stop""#));
    // The reasoning text is carried; the redacted reasoning has no place and is counted.
    assert!(
        text.contains(r#""reasoning_content":"Thinking.""#),
        "{text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(
        t.dropped(),
        [(what::CONTENT, 1), (what::EVENT, 1), (what::STOP_REASON, 1)]
    );
    // Documented newer reason: the context window filled up → `length`, nothing dropped.
    let mut t = bedrock(false, false);
    t.response_headers(200, Some("application/json"), false, CREATED);
    let out = t.response_body(
        br#"{"output":{"message":{"role":"assistant","content":[{"text":"Hel"}]}},
            "stopReason":"model_context_window_exceeded",
            "usage":{"inputTokens":3,"outputTokens":1,"totalTokens":4}}"#,
    );
    assert_eq!(
        json_bytes(&out.body)["choices"][0]["finish_reason"],
        "length"
    );
    assert_eq!(t.dropped(), []);
}
