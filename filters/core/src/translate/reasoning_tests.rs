//! Reasoning across providers ([`super::reasoning`]): `reasoning_effort` as each backend's
//! thinking config, what extended thinking does not combine with, and thinking, thought parts
//! and reasoning blocks back as `reasoning_content` (golden fixtures, streams fed whole and
//! byte by byte). The Bedrock fixtures run in `bedrock_tests` with the others of that pair.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use serde_json::{json as js, Value};

use super::golden::{assert_sse_eq, check_answers, json, json_bytes, respond, run_stream};
use super::openai_anthropic::OpenAiAnthropic;
use super::openai_bedrock::{BedrockEndpoint, OpenAiBedrock};
use super::openai_gemini::{Endpoint, OpenAiGemini};
use super::{Secret, Translator};
use crate::error::ApiError;

fn anthropic_request(body: &Value) -> Result<Value, ApiError> {
    let mut t = OpenAiAnthropic::new(4096);
    let out = t.request_body(body.to_string().as_bytes(), None)?;
    Ok(json_bytes(&out.unwrap()))
}

fn gemini_request(body: &Value) -> Result<Value, ApiError> {
    let mut t = OpenAiGemini::new(Endpoint::AiStudio, Vec::new());
    let out = t.request_body(body.to_string().as_bytes(), None)?;
    Ok(json_bytes(&out.unwrap()))
}

fn bedrock_request(body: &Value) -> Result<Value, ApiError> {
    let endpoint = BedrockEndpoint {
        region: "us-east-1".into(),
        host: "bedrock-runtime.us-east-1.amazonaws.com".into(),
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("secret"),
        session_token: None,
    };
    let mut t = OpenAiBedrock::new(std::rc::Rc::new(endpoint));
    // Anthropic's model names as Bedrock spells them.
    let mut body = body.clone();
    if body["model"] == "claude-sonnet-4-5" {
        body["model"] = js!("anthropic.claude-sonnet-4-5-20250929-v1:0");
    }
    let out = t.request_body(body.to_string().as_bytes(), None)?;
    Ok(json_bytes(&out.unwrap()))
}

fn with(effort: &str, extra: Value) -> Value {
    let mut body = js!({"model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        "reasoning_effort": effort});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn anthropic_request_gets_a_thinking_budget_above_max_tokens() {
    let got = anthropic_request(&json(fixture!(
        "openai_anthropic",
        "request_reasoning.in.json"
    )))
    .unwrap();
    assert_eq!(
        got,
        json(fixture!("openai_anthropic", "request_reasoning.out.json"))
    );
    // Without a client limit: the default answer tokens plus the budget.
    for (effort, budget) in [("minimal", 1024), ("low", 1024), ("high", 16384)] {
        let got = anthropic_request(&with(effort, js!({}))).unwrap();
        assert_eq!(
            got["thinking"],
            js!({"type": "enabled", "budget_tokens": budget})
        );
        assert_eq!(got["max_tokens"], 4096 + budget);
    }
    // `none` asks for no thinking, which is Anthropic's default.
    let got = anthropic_request(&with("none", js!({}))).unwrap();
    assert!(got.get("thinking").is_none());
    assert_eq!(got["max_tokens"], 4096);
}

#[test]
fn claude_thinking_refusals_name_the_field() {
    let tools =
        js!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let cases = [
        (js!({"temperature": 0.3}), "temperature"),
        (js!({"top_p": 0.5}), "top_p"),
        (
            js!({"tools": tools, "tool_choice": "required"}),
            "tool_choice",
        ),
        (
            js!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "f"}}}),
            "tool_choice",
        ),
        (
            js!({"response_format": {"type": "json_object"}}),
            "response_format",
        ),
    ];
    for (extra, param) in cases {
        let body = with("medium", extra.clone());
        for (backend, result) in [
            ("anthropic", anthropic_request(&body)),
            ("bedrock", bedrock_request(&body)),
        ] {
            let err = result.unwrap_err();
            assert_eq!(
                (err.status, err.param.as_deref()),
                (400, Some(param)),
                "{backend} {extra}"
            );
            assert!(err.message.contains("reasoning_effort"), "{}", err.message);
        }
    }
    // Not a value OpenAI takes.
    let err = anthropic_request(&with("maximum", js!({}))).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("reasoning_effort"));
    // Sampling Claude thinking accepts, and a tool it may choose itself, are fine.
    let ok = with(
        "low",
        js!({"temperature": 1, "top_p": 0.95, "tools": tools, "tool_choice": "auto"}),
    );
    assert!(anthropic_request(&ok).unwrap()["thinking"].is_object());
    assert!(bedrock_request(&ok).unwrap()["additionalModelRequestFields"].is_object());
}

#[test]
fn a_turn_answering_tool_calls_goes_without_thinking() {
    // Chat cannot carry the calling turn's signed thinking block back, and Anthropic (and
    // Bedrock's Claude) refuse thinking on a tool-result turn without it.
    let body = js!({"model": "claude-sonnet-4-5", "reasoning_effort": "high",
        "max_completion_tokens": 500,
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_1",
                "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18°C"}]});
    let got = anthropic_request(&body).unwrap();
    assert!(got.get("thinking").is_none(), "{got}");
    assert_eq!(got["max_tokens"], 500);
    let got = bedrock_request(&body).unwrap();
    assert!(got.get("additionalModelRequestFields").is_none(), "{got}");
    assert_eq!(got["inferenceConfig"]["maxTokens"], 500);
    // The next user turn thinks again.
    let mut next = body.clone();
    let messages = next["messages"].as_array_mut().unwrap();
    messages.push(js!({"role": "assistant", "content": "18°C in Paris."}));
    messages.push(js!({"role": "user", "content": "And tomorrow?"}));
    assert_eq!(
        anthropic_request(&next).unwrap()["thinking"]["budget_tokens"],
        16384
    );
}

#[test]
fn bedrock_maps_effort_for_claude_models_only() {
    let mut body = with("medium", js!({"max_tokens": 1000}));
    body["model"] = js!("us.anthropic.claude-sonnet-4-20250514-v1:0");
    let got = bedrock_request(&body).unwrap();
    assert_eq!(
        got["additionalModelRequestFields"],
        js!({"thinking": {"type": "enabled", "budget_tokens": 4096}})
    );
    assert_eq!(got["inferenceConfig"]["maxTokens"], 5096);
    body["model"] = js!("amazon.nova-pro-v1:0");
    let err = bedrock_request(&body).unwrap_err();
    assert_eq!(
        (err.status, err.param.as_deref()),
        (400, Some("reasoning_effort"))
    );
    assert!(
        err.message.contains("amazon.nova-pro-v1:0"),
        "{}",
        err.message
    );
    body["reasoning_effort"] = js!(null);
    assert!(bedrock_request(&body).is_ok());
}

#[test]
fn gemini_request_gets_a_thinking_config() {
    let got = gemini_request(&json(fixture!(
        "openai_gemini",
        "request_reasoning.in.json"
    )))
    .unwrap();
    assert_eq!(
        got,
        json(fixture!("openai_gemini", "request_reasoning.out.json"))
    );
    let config = |effort: &str| {
        gemini_request(&with(effort, js!({}))).unwrap()["generationConfig"]["thinkingConfig"]
            .clone()
    };
    assert_eq!(
        config("high"),
        js!({"thinkingBudget": 16384, "includeThoughts": true})
    );
    // `none`: thinking off, so no thoughts to include.
    assert_eq!(config("none"), js!({"thinkingBudget": 0}));
    // Gemini takes sampling and forced tools with thinking.
    assert!(gemini_request(&with("low", js!({"temperature": 0.2}))).is_ok());
}

#[test]
fn thinking_comes_back_as_reasoning_content() {
    let cases = [(
        "response_thinking",
        fixture!("openai_anthropic", "response_thinking.in.json"),
        fixture!("openai_anthropic", "response_thinking.out.json"),
    )];
    check_answers(&cases, |status, input| {
        respond(
            &mut OpenAiAnthropic::new(4096),
            status,
            "application/json",
            input,
        )
    });
    let anthropic = || -> Box<dyn Translator> {
        let mut t = OpenAiAnthropic::new(4096);
        t.request_body(
            br#"{"model":"m","messages":[{"role":"user","content":"gcd?"}],"stream":true,
                "stream_options":{"include_usage":true},"reasoning_effort":"low"}"#,
            None,
        )
        .unwrap();
        Box::new(t)
    };
    let (out, usage) = run_stream(
        anthropic,
        fixture!("openai_anthropic", "stream_thinking.in.sse"),
        "stream_thinking",
    );
    assert_sse_eq(
        &out,
        fixture!("openai_anthropic", "stream_thinking.out.sse"),
        "stream_thinking",
    );
    // Anthropic does not count thinking tokens apart: no `reasoning_tokens` detail.
    let usage = usage.unwrap();
    assert_eq!(
        (usage.completion_tokens, usage.completion_tokens_details),
        (112, None)
    );
}

#[test]
fn gemini_thoughts_come_back_as_reasoning_content() {
    let gemini = || -> Box<dyn Translator> {
        let mut t = OpenAiGemini::new(Endpoint::AiStudio, Vec::new());
        t.request_body(
            br#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"sum?"}],
                "stream":true,"stream_options":{"include_usage":true},"reasoning_effort":"low"}"#,
            None,
        )
        .unwrap();
        Box::new(t)
    };
    let (out, usage) = run_stream(
        gemini,
        fixture!("openai_gemini", "stream_thoughts.in.sse"),
        "stream_thoughts",
    );
    assert_sse_eq(
        &out,
        fixture!("openai_gemini", "stream_thoughts.out.sse"),
        "stream_thoughts",
    );
    let details = usage.unwrap().completion_tokens_details.unwrap();
    assert_eq!(details.reasoning_tokens, 112);
}
