//! Golden fixtures `fixtures/translate/responses_chat/` (README there names each source): the
//! Responses request → the Chat pivot and, composed, the Anthropic / Gemini / Bedrock body;
//! Chat answers and Chat SSE → Responses, streams fed whole and byte by byte; and the
//! refusals, each naming its field.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::Value;

use super::ResponsesChat;
use crate::translate::golden::{assert_sse_eq, json, json_bytes, respond, run_stream, CREATED};
use crate::translate::openai_anthropic::OpenAiAnthropic;
use crate::translate::openai_bedrock::OpenAiBedrock;
use crate::translate::openai_gemini::{Endpoint, OpenAiGemini};
use crate::translate::Usage;
use crate::translate::{buffer_plan, has_media_type, ResponseBody, ResponsePlan, Translator};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/translate/responses_chat/",
            $name
        ))
    };
    ($pair:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/translate/",
            $pair,
            "/",
            $name
        ))
    };
}

/// The inner translator of a backend that speaks Chat as it is: what the adapter hands it goes
/// out unchanged, and what comes back is already Chat. It isolates the adapter's own mapping.
#[derive(Default)]
struct ChatAsIs {
    status: u16,
    usage: Option<Usage>,
}

impl Translator for ChatAsIs {
    fn chat_path(&self, _: Option<&str>) -> String {
        "/v1/chat/completions".into()
    }
    fn request_body(
        &mut self,
        _: &[u8],
        _: Option<&str>,
    ) -> Result<Option<Vec<u8>>, crate::error::ApiError> {
        Ok(None)
    }
    fn response_headers(&mut self, status: u16, ct: Option<&str>, _: bool, _: u64) -> ResponsePlan {
        self.status = status;
        buffer_plan(status, has_media_type(ct, "text/event-stream"), status)
    }
    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        if (200..300).contains(&self.status) {
            self.usage = serde_json::from_slice::<crate::schema::openai::UsageOnly>(body)
                .ok()
                .and_then(|u| u.usage);
        }
        ResponseBody {
            status: None,
            body: body.to_vec(),
        }
    }
    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

fn as_is() -> ResponsesChat {
    ResponsesChat::new(Box::new(ChatAsIs::default()), "test")
}

/// The request `input` through `adapter`: the body it sends.
fn request(adapter: &mut ResponsesChat, input: &str, model: Option<&str>) -> Value {
    let out = adapter
        .request_body(input.as_bytes(), model)
        .unwrap()
        .unwrap();
    json_bytes(&out)
}

/// Writes `got` over the fixture when `LLMGW_BLESS` is set (to regenerate after a reviewed
/// change), else compares.
fn golden_json(got: &Value, want: &str, path: &str) {
    if std::env::var_os("LLMGW_BLESS").is_some() {
        let file = format!(
            "{}/fixtures/translate/responses_chat/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = serde_json::to_string_pretty(got).unwrap() + "\n";
        std::fs::write(file, text).unwrap();
        return;
    }
    assert_eq!(got, &json(want), "{path}");
}

fn golden_sse(got: &[u8], want: &str, path: &str) {
    if std::env::var_os("LLMGW_BLESS").is_some() {
        let file = format!(
            "{}/fixtures/translate/responses_chat/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::write(file, got).unwrap();
        return;
    }
    assert_sse_eq(got, want, path);
}

// ---------------------------------------------------------------------------------------------
// Requests

#[test]
fn request_basic_becomes_a_chat_request() {
    let got = request(&mut as_is(), fixture!("request_basic.in.json"), None);
    golden_json(
        &got,
        fixture!("request_basic.chat.json"),
        "request_basic.chat.json",
    );
}

#[test]
fn request_items_become_chat_messages() {
    let got = request(&mut as_is(), fixture!("request_items.in.json"), None);
    golden_json(
        &got,
        fixture!("request_items.chat.json"),
        "request_items.chat.json",
    );
}

#[test]
fn request_json_schema_becomes_response_format() {
    let got = request(&mut as_is(), fixture!("request_json_schema.in.json"), None);
    golden_json(
        &got,
        fixture!("request_json_schema.chat.json"),
        "request_json_schema.chat.json",
    );
}

#[test]
fn request_items_composed_with_each_backend() {
    // Function calls and outputs of a multi-turn conversation, through each Chat translator.
    // (`tool_choice` names a function and `reasoning.effort` is left out: see the refusals.)
    let mut input: Value = json(fixture!("request_items.in.json"));
    input.as_object_mut().unwrap().remove("reasoning");
    let input = input.to_string();
    let anthropic = request(
        &mut ResponsesChat::new(Box::new(OpenAiAnthropic::new(1024)), "claude"),
        &input,
        Some("claude-sonnet-4-5"),
    );
    golden_json(
        &anthropic,
        fixture!("request_items.anthropic.json"),
        "request_items.anthropic.json",
    );
    // Gemini takes images inline only.
    let input = input.replace(
        "https://upload.wikimedia.org/wikipedia/commons/thumb/d/dd/Gfp-wisconsin-madison-the-nature-boardwalk.jpg/2560px-Gfp-wisconsin-madison-the-nature-boardwalk.jpg",
        "data:image/png;base64,iVBORw0KGgo=",
    );
    let gemini = request(
        &mut ResponsesChat::new(
            Box::new(OpenAiGemini::new(Endpoint::AiStudio, Vec::new())),
            "gemini",
        ),
        &input,
        Some("gemini-2.5-flash"),
    );
    golden_json(
        &gemini,
        fixture!("request_items.gemini.json"),
        "request_items.gemini.json",
    );
}

#[test]
fn refusals_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"model":"m","input":"hi","tools":[{"type":"web_search_preview"}]}"#,
            "tools[0].type",
            "the built-in tool `web_search_preview` is not available on provider `test`",
        ),
        (
            r#"{"model":"m","input":"hi","tools":[{"type":"function","name":"f"},{"type":"file_search","vector_store_ids":["vs_1"]}]}"#,
            "tools[1].type",
            "`file_search`",
        ),
        (
            r#"{"model":"m","input":"hi","tools":[{"type":"code_interpreter","container":{"type":"auto"}}]}"#,
            "tools[0].type",
            "`code_interpreter`",
        ),
        (
            r#"{"model":"m","input":"hi","previous_response_id":"resp_1"}"#,
            "previous_response_id",
            "llmgw keeps no responses",
        ),
        (
            r#"{"model":"m","input":"hi","store":true}"#,
            "store",
            "llmgw keeps no responses",
        ),
        (
            r#"{"model":"m","input":"hi","conversation":"conv_1"}"#,
            "conversation",
            "llmgw keeps no responses",
        ),
        (
            r#"{"model":"m","input":"hi","background":true}"#,
            "background",
            "llmgw keeps no responses",
        ),
        (
            r#"{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}"#,
            "input[0].type",
            "llmgw keeps no responses",
        ),
        (
            r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}"#,
            "input[0].content[0]",
            "`input_file` parts are not supported",
        ),
        (
            r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}"#,
            "input[0].content[0].image_url",
            "`file_id` needs the OpenAI Files API",
        ),
        (
            r#"{"model":"m","input":"hi","top_logprobs":2}"#,
            "top_logprobs",
            "`top_logprobs` is not supported",
        ),
        (
            r#"{"model":"m","input":"hi","include":["message.output_text.logprobs"]}"#,
            "include[0]",
            "not supported",
        ),
        (
            r#"{"model":"m","input":"hi","truncation":"auto"}"#,
            "truncation",
            "only `disabled`",
        ),
        (
            r#"{"model":"m","input":"hi","tool_choice":{"type":"web_search_preview"}}"#,
            "tool_choice",
            "`web_search_preview`",
        ),
        (r#"{"model":"m"}"#, "input", "`input` is required"),
        (
            r#"{"model":"m","input":[{"type":"computer_call","call_id":"c"}]}"#,
            "input[0].type",
            "`computer_call`",
        ),
        (
            r#"{"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]}"#,
            "input[0].call_id",
            "needs `call_id`",
        ),
        (
            r#"{"model":"m","input":"hi","text":{"format":{"type":"json_schema","schema":{}}}}"#,
            "text.format.name",
            "needs a `name`",
        ),
    ];
    for (body, param, message) in cases {
        let err = as_is().request_body(body.as_bytes(), None).unwrap_err();
        assert_eq!(err.status, 400, "{body}");
        assert_eq!(err.param.as_deref(), Some(*param), "{body}");
        assert!(err.message.contains(message), "{body}: {}", err.message);
        let parsed = json_bytes(&err.body());
        assert_eq!(parsed["error"]["type"], "invalid_request_error", "{body}");
    }
}

#[test]
fn inner_refusals_name_the_responses_field() {
    // Claude through the Chat translator: it cannot honour the Chat field the adapter wrote,
    // and the client reads the field it sent.
    let mut claude = ResponsesChat::new(Box::new(OpenAiAnthropic::new(1024)), "claude");
    let body = r#"{"model":"m","input":"hi","text":{"verbosity":"low"}}"#;
    let err = claude.request_body(body.as_bytes(), None).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("text.verbosity"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Whole answers

fn answer(
    adapter: &mut ResponsesChat,
    status: u16,
    input: &str,
) -> (Option<u16>, Value, Option<Usage>) {
    respond(adapter, status, "application/json", input)
}

#[test]
fn response_text_from_a_recorded_chat_answer() {
    let mut adapter = as_is();
    request(
        &mut adapter,
        r#"{"model":"gpt-5-nano","input":"A bat and ball cost $1.10. Bat costs $1 more than ball. Ball cost?"}"#,
        None,
    );
    let (status, got, usage) = answer(&mut adapter, 200, fixture!("response_text.in.json"));
    assert_eq!(status, None);
    golden_json(
        &got,
        fixture!("response_text.out.json"),
        "response_text.out.json",
    );
    assert_eq!(usage.map(|u| u.total_tokens), Some(294));
}

#[test]
fn response_parallel_tools_with_a_call_without_arguments() {
    let mut adapter = as_is();
    request(&mut adapter, fixture!("request_items.in.json"), None);
    let (_, got, _) = answer(
        &mut adapter,
        200,
        fixture!("response_parallel_tools.in.json"),
    );
    golden_json(
        &got,
        fixture!("response_parallel_tools.out.json"),
        "response_parallel_tools.out.json",
    );
}

#[test]
fn response_reasoning_cut_by_max_output_tokens_is_incomplete() {
    let mut adapter = as_is();
    request(
        &mut adapter,
        r#"{"model":"claude-sonnet-4-5","input":"Are there infinitely many primes?","max_output_tokens":64,"reasoning":{"effort":"medium"}}"#,
        None,
    );
    let (_, got, _) = answer(
        &mut adapter,
        200,
        fixture!("response_reasoning_length.in.json"),
    );
    golden_json(
        &got,
        fixture!("response_reasoning_length.out.json"),
        "response_reasoning_length.out.json",
    );
}

#[test]
fn response_from_anthropic_tool_use() {
    let mut adapter = ResponsesChat::new(Box::new(OpenAiAnthropic::new(1024)), "claude");
    request(
        &mut adapter,
        r#"{"model":"claude-sonnet-4-5","input":"What's the weather like in San Francisco?","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}]}"#,
        None,
    );
    let (_, got, usage) = answer(
        &mut adapter,
        200,
        fixture!("openai_anthropic", "response_tool_use.in.json"),
    );
    golden_json(
        &got,
        fixture!("response_anthropic_tool_use.out.json"),
        "response_anthropic_tool_use.out.json",
    );
    assert!(usage.is_some());
}

#[test]
fn provider_errors_stay_openai_errors() {
    let mut adapter = ResponsesChat::new(Box::new(OpenAiAnthropic::new(1024)), "claude");
    request(&mut adapter, r#"{"model":"m","input":"hi"}"#, None);
    let (status, got, usage) = answer(
        &mut adapter,
        529,
        fixture!("openai_anthropic", "error_overloaded.in.json"),
    );
    assert_eq!(status, Some(503));
    assert_eq!(
        got,
        json(fixture!("openai_anthropic", "error_overloaded.out.json"))
    );
    assert_eq!(usage, None);
    // A 2xx the provider sent unreadable is a 502 in OpenAI's error format.
    let mut adapter = ResponsesChat::new(Box::new(OpenAiAnthropic::new(1024)), "claude");
    request(&mut adapter, r#"{"model":"m","input":"hi"}"#, None);
    let (status, got, _) = answer(&mut adapter, 200, "<html>oops</html>");
    assert_eq!(status, Some(502));
    assert_eq!(got["error"]["code"], "upstream_unreadable");
    // So is a tool call without the function's name (the client could not route it).
    let mut adapter = as_is();
    request(&mut adapter, r#"{"model":"m","input":"hi"}"#, None);
    let nameless = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#;
    let (status, got, _) = answer(&mut adapter, 200, nameless);
    assert_eq!(status, Some(502));
    assert_eq!(got["error"]["code"], "upstream_unreadable");
}

// ---------------------------------------------------------------------------------------------
// Streams

fn streaming(
    make: impl Fn() -> ResponsesChat,
    request_body: &str,
) -> impl Fn() -> Box<dyn Translator> {
    let body = request_body.to_string();
    move || {
        let mut adapter = make();
        adapter.request_body(body.as_bytes(), None).unwrap();
        Box::new(adapter) as Box<dyn Translator>
    }
}

const STREAM_REQUEST: &str = r#"{"model":"gpt-5-nano","input":"Hello!","stream":true}"#;

#[test]
fn stream_text_from_a_recorded_chat_stream() {
    let (out, usage) = run_stream(
        streaming(as_is, STREAM_REQUEST),
        fixture!("stream_text.in.sse"),
        "text",
    );
    golden_sse(&out, fixture!("stream_text.out.sse"), "stream_text.out.sse");
    // The adapter asked for the usage chunk; it is the one reported.
    assert_eq!(usage, None, "ChatAsIs reads no stream usage");
}

#[test]
fn stream_parallel_tools_and_a_call_without_arguments() {
    let (out, _) = run_stream(
        streaming(as_is, fixture!("request_items.in.json")),
        fixture!("stream_tools.in.sse"),
        "tools",
    );
    golden_sse(
        &out,
        fixture!("stream_tools.out.sse"),
        "stream_tools.out.sse",
    );
}

#[test]
fn stream_reasoning_then_text_cut_by_length() {
    let (out, _) = run_stream(
        streaming(
            as_is,
            r#"{"model":"claude-sonnet-4-5","input":"27 * 453?","stream":true,"max_output_tokens":64}"#,
        ),
        fixture!("stream_reasoning.in.sse"),
        "reasoning",
    );
    golden_sse(
        &out,
        fixture!("stream_reasoning.out.sse"),
        "stream_reasoning.out.sse",
    );
}

#[test]
fn stream_ending_in_an_error_frame() {
    let make = streaming(as_is, STREAM_REQUEST);
    let (out, _) = run_stream(&make, fixture!("stream_error.in.sse"), "error");
    golden_sse(
        &out,
        fixture!("stream_error.out.sse"),
        "stream_error.out.sse",
    );
    let mut t = make();
    t.response_headers(200, Some("text/event-stream"), false, CREATED);
    t.response_chunk(fixture!("stream_error.in.sse").as_bytes(), true);
    assert!(t.stream_failed());
}

#[test]
fn stream_cut_before_its_end_fails() {
    let input = fixture!("stream_text.in.sse");
    let cut = &input[..input.find("data: {\"id\":\"chatcmpl-C4HqHBe4xca0k0EzsCnf1t6V3YFXp\",\"object\":\"chat.completion.chunk\",\"created\":1755137933,\"model\":\"gpt-5-nano-2025-08-07\",\"service_tier\":\"default\",\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"delta\":{},").unwrap()];
    let (out, _) = run_stream(streaming(as_is, STREAM_REQUEST), cut, "cut");
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("event: error\ndata: {\"type\":\"error\""),
        "{text}"
    );
    assert!(text.contains("upstream_stream_truncated"), "{text}");
    assert!(
        text.ends_with("\n\n") && text.contains("event: response.failed"),
        "{text}"
    );
    assert!(!text.contains("response.completed"), "{text}");
}

#[test]
fn stream_from_anthropic_tool_use() {
    let (out, usage) = run_stream(
        streaming(
            || ResponsesChat::new(Box::new(OpenAiAnthropic::new(1024)), "claude"),
            r#"{"model":"claude-sonnet-4-5","input":"What's the weather?","stream":true,"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]}"#,
        ),
        fixture!("openai_anthropic", "stream_tool_use.in.sse"),
        "anthropic tools",
    );
    golden_sse(
        &out,
        fixture!("stream_anthropic_tool_use.out.sse"),
        "stream_anthropic_tool_use.out.sse",
    );
    assert!(usage.is_some_and(|u| u.total_tokens > 0));
}

#[test]
fn stream_from_anthropic_error_event() {
    let (out, _) = run_stream(
        streaming(
            || ResponsesChat::new(Box::new(OpenAiAnthropic::new(1024)), "claude"),
            r#"{"model":"claude-sonnet-4-5","input":"Hello","stream":true}"#,
        ),
        fixture!("openai_anthropic", "stream_error.in.sse"),
        "anthropic error",
    );
    golden_sse(
        &out,
        fixture!("stream_anthropic_error.out.sse"),
        "stream_anthropic_error.out.sse",
    );
}

#[test]
fn stream_from_gemini_function_call() {
    let (out, _) = run_stream(
        streaming(
            || {
                ResponsesChat::new(
                    Box::new(OpenAiGemini::new(Endpoint::AiStudio, Vec::new())),
                    "gemini",
                )
            },
            r#"{"model":"gemini-2.5-flash","input":"What's the weather in Boston?","stream":true,"tools":[{"type":"function","name":"get_current_weather","parameters":{"type":"object"}}]}"#,
        ),
        fixture!("openai_gemini", "stream_function_call.in.sse"),
        "gemini calls",
    );
    golden_sse(
        &out,
        fixture!("stream_gemini_function_call.out.sse"),
        "stream_gemini_function_call.out.sse",
    );
}

#[test]
fn sequence_numbers_count_every_event_from_zero() {
    let (out, _) = run_stream(
        streaming(as_is, fixture!("request_items.in.json")),
        fixture!("stream_tools.in.sse"),
        "tools",
    );
    let events = crate::sse::Decoder::new().feed(&out);
    for (n, event) in events.iter().enumerate() {
        let data = json(&event.data);
        assert_eq!(data["sequence_number"], n as u64);
        assert_eq!(event.event.as_deref(), data["type"].as_str());
    }
    assert_eq!(
        events.first().and_then(|e| e.event.as_deref()),
        Some("response.created")
    );
    assert_eq!(
        events.last().and_then(|e| e.event.as_deref()),
        Some("response.completed")
    );
}

#[test]
fn bedrock_composes_too() {
    // Only the request: Bedrock's stream is binary (its own golden tests cover it).
    let endpoint = std::rc::Rc::new(crate::translate::openai_bedrock::BedrockEndpoint {
        region: "us-east-1".into(),
        host: "bedrock-runtime.us-east-1.amazonaws.com".into(),
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: crate::translate::Secret::new(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        session_token: None,
    });
    let mut adapter = ResponsesChat::new(Box::new(OpenAiBedrock::new(endpoint)), "bedrock");
    let got = request(
        &mut adapter,
        fixture!("request_basic.in.json"),
        Some("anthropic.claude-3-5-haiku-20241022-v1:0"),
    );
    assert_eq!(got["system"][0]["text"], "You are a helpful assistant.");
    assert_eq!(
        got["messages"][0]["content"][0]["text"],
        "What's the weather like in SF?"
    );
    assert_eq!(got["inferenceConfig"]["maxTokens"], 256);
}
