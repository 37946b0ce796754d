//! Amazon Bedrock runtime, strict like the real one: `POST /model/{modelId}/converse`,
//! `/converse-stream` (binary event stream with valid CRCs) and `/invoke` for the Titan and
//! Cohere embedding models. Every request must carry a valid SigV4 signature
//! ([`crate::sigv4_check`]); errors are `{"message"}` with `x-amzn-errortype`.
//!
//! Extra test controls (besides the shared `[mock:...]` ones):
//! `[mock:bedrock_exception=<name>]` ends a stream with an exception frame after the content;
//! `[mock:corrupt_crc=N]` flips a bit in content frame N so its message CRC fails.

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use llmgw_core::eventstream;
use serde_json::{json, Map, Value};

use crate::body::{spawn_stream, MockBody};
use crate::text::{count_tokens, parse_controls_for, reply_text, shape_reply, Stop};
use crate::{bedrock_tools, sigv4_check};
use crate::{json_response, leak_check, set_header, status_from, unix_now, State};

type Reply = Result<Response<MockBody>, Response<MockBody>>;

const CONVERSE_KEYS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
];

const BLOCK_KEYS: &[&str] = &[
    "text",
    "image",
    "document",
    "video",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
];

const INFERENCE_KEYS: &[&str] = &["maxTokens", "temperature", "topP", "stopSequences"];

pub fn error(status: StatusCode, error_type: &str, message: &str) -> Response<MockBody> {
    let mut r = json_response(status, &json!({ "message": message }));
    set_header(&mut r, "x-amzn-errortype", error_type);
    r
}

pub(crate) fn invalid(message: &str) -> Response<MockBody> {
    error(
        StatusCode::BAD_REQUEST,
        "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        message,
    )
}

/// `[mock:status=NNN]` → the error Bedrock answers with that status.
fn status_error(code: u16) -> Response<MockBody> {
    let (name, message) = match code {
        400 => ("ValidationException", "Mock validation error."),
        403 => (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        404 => (
            "ResourceNotFoundException",
            "Could not resolve the foundation model.",
        ),
        408 => (
            "ModelTimeoutException",
            "Model has timed out in processing the request.",
        ),
        424 => ("ModelErrorException", "The model returned an error (mock)."),
        429 => (
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        503 => (
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
        _ => (
            "InternalServerException",
            "The server encountered an internal error.",
        ),
    };
    error(status_from(code), name, message)
}

fn with_request_id(state: &State, mut r: Response<MockBody>) -> Response<MockBody> {
    let id = format!("00000000-0000-4000-8000-{:012}", state.next_id());
    set_header(&mut r, "x-amzn-requestid", &id);
    r
}

/// Percent-decoding of the model id in the path.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn handle(state: &State, parts: &Parts, body: &Bytes) -> Response<MockBody> {
    let reply = handle_inner(state, parts, body);
    with_request_id(state, reply.unwrap_or_else(|r| r))
}

fn handle_inner(state: &State, parts: &Parts, body: &Bytes) -> Reply {
    if let Some(msg) = leak_check(state, &parts.headers, body) {
        return Err(invalid(&msg));
    }
    let raw_path = parts.uri.path();
    sigv4_check::verify(
        parts.method.as_str(),
        raw_path,
        parts.uri.query(),
        &parts.headers,
        body,
        unix_now(),
    )
    .map_err(|refusal| error(StatusCode::FORBIDDEN, refusal.error_type, &refusal.message))?;
    let segments: Vec<&str> = raw_path.split('/').collect();
    let ["", "model", model, action] = segments.as_slice() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Unknown operation",
        ));
    };
    let model =
        decode(model).ok_or_else(|| invalid("The provided model identifier is invalid."))?;
    if model.contains(':') && raw_path.contains(':') {
        // The AWS SDKs send `:` as %3A; a raw colon means the gateway skipped encoding.
        return Err(invalid(
            "the model id in the path must be percent-encoded (`:` as %3A)",
        ));
    }
    let parsed: Value = serde_json::from_slice(body).map_err(|_| {
        invalid("Malformed input request, please reformat your input and try again.")
    })?;
    let Some(obj) = parsed.as_object() else {
        return Err(invalid("Malformed input request: expected a JSON object"));
    };
    match *action {
        "converse" => converse(state, &model, obj, false),
        "converse-stream" => converse(state, &model, obj, true),
        "invoke" if model.contains("amazon.titan-embed") => titan(&model, obj),
        "invoke" if model.contains("cohere.embed") => cohere(obj),
        "invoke" => Err(invalid("The provided model identifier is invalid.")),
        _ => Err(error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "Unknown operation",
        )),
    }
}

fn block_text(blocks: &[Value]) -> String {
    blocks
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `{"cachePoint": {"type": "default"}}` (`ttl` `5m` or `1h` on the models that take it).
fn check_cache_point(at: &str, point: &Value) -> Result<(), Response<MockBody>> {
    let ok = point.get("type").and_then(Value::as_str) == Some("default")
        && point.as_object().is_some_and(|o| {
            o.iter().all(|(k, v)| {
                k == "type" || (k == "ttl" && matches!(v.as_str(), Some("5m" | "1h")))
            })
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(&format!(
            "{at}.cachePoint: a cache point is {{\"type\": \"default\"}}"
        )))
    }
}

/// Models with prompt caching on Bedrock
/// (<https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html#prompt-caching-models>):
/// Nova and Claude from 3.5 Haiku, 3.5 Sonnet v2 and 3.7 on. Bedrock refuses a cache point for
/// any other model.
fn caches_prompts(model: &str) -> bool {
    let old = [
        "claude-v2",
        "claude-instant",
        "claude-3-haiku-",
        "claude-3-sonnet-",
        "claude-3-opus-",
        "claude-3-5-sonnet-20240620",
    ];
    model.contains("amazon.nova")
        || (model.contains("anthropic.claude") && !old.iter().any(|o| model.contains(o)))
}

/// The prompt cache ([`crate::cache`]): cache points in `system` then `messages` (at most 4;
/// refused for models without prompt caching, as Bedrock does); the prefix before the last
/// one is looked up.
fn prompt_cache(
    model: &str,
    obj: &Map<String, Value>,
) -> Result<crate::cache::CacheUse, Response<MockBody>> {
    let mut key = model.to_string();
    let mut tokens = 0;
    let mut cached = None;
    let mut points = 0;
    let system = obj.get("system").and_then(Value::as_array);
    let messages = obj.get("messages").and_then(Value::as_array);
    let blocks = system
        .into_iter()
        .flatten()
        .chain(messages.into_iter().flatten().flat_map(|m| {
            m.get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        }));
    for block in blocks {
        if block.get("cachePoint").is_some() {
            points += 1;
            cached = Some((key.clone(), tokens));
            continue;
        }
        key.push_str(&block.to_string());
        tokens += count_tokens(block.get("text").and_then(Value::as_str).unwrap_or(""));
    }
    if points > 0 && !caches_prompts(model) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "You invoked an unsupported model or your request did not allow prompt caching. See the documentation for more information.",
        ));
    }
    if points > crate::cache::MAX_BREAKPOINTS {
        return Err(invalid(&format!(
            "The number of cache points in the request ({points}) exceeds the maximum of {}.",
            crate::cache::MAX_BREAKPOINTS
        )));
    }
    Ok(cached.map_or_else(Default::default, |(key, tokens)| {
        crate::cache::lookup(&key, tokens)
    }))
}

fn check_blocks(at: &str, content: Option<&Value>) -> Result<Vec<Value>, Response<MockBody>> {
    let Some(Value::Array(blocks)) = content else {
        return Err(invalid(&format!(
            "{at}: content must be a list of content blocks"
        )));
    };
    if blocks.is_empty() {
        return Err(invalid(&format!("{at}: content must not be empty")));
    }
    for (j, block) in blocks.iter().enumerate() {
        let Some(b) = block.as_object() else {
            return Err(invalid(&format!("{at}.content.{j}: must be an object")));
        };
        if b.len() != 1 || !b.keys().all(|k| BLOCK_KEYS.contains(&k.as_str())) {
            return Err(invalid(&format!(
                "{at}.content.{j}: a content block has exactly one member of {BLOCK_KEYS:?}"
            )));
        }
        if let Some(image) = b.get("image") {
            let format_ok = image
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| ["png", "jpeg", "gif", "webp"].contains(&f));
            let bytes_ok = image
                .get("source")
                .and_then(|s| s.get("bytes"))
                .and_then(Value::as_str)
                .is_some_and(|b| {
                    !b.is_empty()
                        && b.bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
                });
            if !format_ok || !bytes_ok || image.as_object().is_some_and(|o| o.len() != 2) {
                return Err(invalid(&format!(
                    "{at}.content.{j}.image: needs format (png, jpeg, gif, webp) and source.bytes (base64)"
                )));
            }
        }
        if let Some(point) = b.get("cachePoint") {
            check_cache_point(&format!("{at}.content.{j}"), point)?;
        }
        if let Some(text) = b.get("text") {
            match text.as_str() {
                Some(t) if !t.trim().is_empty() => {}
                Some(_) => {
                    return Err(invalid(
                        "The text field in the ContentBlock object is blank. Add text to the text field, and try again.",
                    ))
                }
                None => return Err(invalid(&format!("{at}.content.{j}.text: must be a string"))),
            }
        }
    }
    Ok(blocks.clone())
}

/// Converse's usage: `inputTokens` apart from the tokens read from and written to the cache,
/// which `totalTokens` includes
/// (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html>).
pub(crate) fn usage_json(
    input_tokens: u64,
    output_tokens: u64,
    cache: crate::cache::CacheUse,
) -> Value {
    let mut usage = json!({"inputTokens": input_tokens.saturating_sub(cache.read + cache.write),
        "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens});
    if cache.read + cache.write > 0 {
        usage["cacheReadInputTokens"] = cache.read.into();
        usage["cacheWriteInputTokens"] = cache.write.into();
    }
    usage
}

struct Inference {
    max_tokens: Option<u64>,
    stops: Vec<String>,
    temperature: Option<f64>,
    top_p: Option<f64>,
}

/// `additionalModelRequestFields`: a Claude model takes Anthropic's `thinking`
/// (<https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html>)
/// with Anthropic's rules: `budget_tokens` ≥ 1024 and below `maxTokens`, temperature 1, topP
/// from 0.95, no forced tool, and a turn answering tool calls only after a calling turn that
/// starts with its reasoning block. Other keys, and any key for other models, are refused as
/// the model's own validation refuses them. Returns whether thinking is on.
fn check_thinking(
    model: &str,
    obj: &Map<String, Value>,
    inference: &Inference,
    messages: &[Value],
) -> Result<bool, Response<MockBody>> {
    let Some(fields) = obj.get("additionalModelRequestFields") else {
        return Ok(false);
    };
    let Some(fields) = fields.as_object() else {
        return Err(invalid("additionalModelRequestFields: must be an object"));
    };
    let claude = model.contains("anthropic.claude");
    if let Some(key) = fields.keys().find(|k| !claude || *k != "thinking") {
        return Err(invalid(&format!(
            "Malformed input request: #: extraneous key [{key}] is not permitted, please reformat your input and try again."
        )));
    }
    let Some(thinking) = fields.get("thinking") else {
        return Ok(false);
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("disabled") => return Ok(false),
        Some("enabled") => {}
        _ => return Err(invalid("thinking.type: Input tag found using 'type' does not match any of the expected tags: 'disabled', 'enabled'")),
    }
    if let Some(key) = thinking
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .find(|k| *k != "type" && *k != "budget_tokens")
    {
        return Err(invalid(&format!(
            "thinking.enabled.{key}: Extra inputs are not permitted"
        )));
    }
    let Some(budget) = thinking.get("budget_tokens").and_then(Value::as_u64) else {
        return Err(invalid("thinking.enabled.budget_tokens: Field required"));
    };
    if budget < 1024 {
        return Err(invalid(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ));
    }
    if inference.max_tokens.is_none_or(|max| max <= budget) {
        return Err(invalid(
            "The model returned the following errors: `max_tokens` must be greater than `thinking.budget_tokens`.",
        ));
    }
    if inference.temperature.is_some_and(|t| t != 1.0) {
        return Err(invalid("The model returned the following errors: `temperature` may only be set to 1 when thinking is enabled."));
    }
    if inference.top_p.is_some_and(|p| p < 0.95) {
        return Err(invalid("The model returned the following errors: `top_p` must be greater than or equal to 0.95 or unset when thinking is enabled."));
    }
    let choice = obj
        .get("toolConfig")
        .and_then(|c| c.get("toolChoice"))
        .and_then(Value::as_object);
    if choice.is_some_and(|c| c.contains_key("any") || c.contains_key("tool")) {
        return Err(invalid("The model returned the following errors: Thinking may not be enabled when tool_choice forces tool use."));
    }
    let answers_tools = messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|b| b.iter().any(|b| b.get("toolResult").is_some()));
    if answers_tools {
        let i = messages.len().saturating_sub(2);
        let starts_with_reasoning = messages
            .get(i)
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array)
            .and_then(|b| b.first())
            .is_some_and(|b| b.get("reasoningContent").is_some());
        if !starts_with_reasoning {
            return Err(invalid(&format!(
                "The model returned the following errors: messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`. When `thinking` is enabled, a final `assistant` message must start with a thinking block."
            )));
        }
    }
    Ok(true)
}

fn check_inference(config: Option<&Value>) -> Result<Inference, Response<MockBody>> {
    let mut out = Inference {
        max_tokens: None,
        stops: Vec::new(),
        temperature: None,
        top_p: None,
    };
    let Some(config) = config else {
        return Ok(out);
    };
    let Some(config) = config.as_object() else {
        return Err(invalid("inferenceConfig: must be an object"));
    };
    for key in config.keys() {
        if !INFERENCE_KEYS.contains(&key.as_str()) {
            return Err(invalid(&format!(
                "Malformed input request: inferenceConfig: extraneous key [{key}] is not permitted"
            )));
        }
    }
    if let Some(v) = config.get("maxTokens") {
        match v.as_u64() {
            Some(n) if n >= 1 => out.max_tokens = Some(n),
            _ => {
                return Err(invalid(
                    "inferenceConfig.maxTokens: must be an integer >= 1",
                ))
            }
        }
    }
    for key in ["temperature", "topP"] {
        if let Some(v) = config.get(key) {
            let Some(f) = v.as_f64().filter(|f| (0.0..=1.0).contains(f)) else {
                return Err(invalid(&format!(
                    "inferenceConfig.{key}: must be a number in 0..1"
                )));
            };
            if key == "temperature" {
                out.temperature = Some(f);
            } else {
                out.top_p = Some(f);
            }
        }
    }
    if let Some(v) = config.get("stopSequences") {
        match v.as_array() {
            Some(list) if list.len() <= 4 && list.iter().all(Value::is_string) => {
                out.stops = list
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect();
            }
            _ => {
                return Err(invalid(
                    "inferenceConfig.stopSequences: must be a list of at most 4 strings",
                ))
            }
        }
    }
    Ok(out)
}

/// `[mock:key=value]` of the Bedrock-only controls, from the raw user text.
fn control<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(&format!("[mock:{key}="))? + key.len() + 7;
    let rest = text.get(start..)?;
    Some(rest.get(..rest.find(']')?)?.trim())
}

pub(crate) fn frame(kind: &str, name: &str, payload: &Value) -> Bytes {
    let (type_header, message_type) = if kind == "event" {
        (":event-type", "event")
    } else {
        (":exception-type", "exception")
    };
    let payload = serde_json::to_vec(payload).unwrap_or_default();
    Bytes::from(eventstream::encode(
        &[
            (type_header, name),
            (":content-type", "application/json"),
            (":message-type", message_type),
        ],
        &payload,
    ))
}

fn converse(state: &State, model: &str, obj: &Map<String, Value>, stream: bool) -> Reply {
    for key in obj.keys() {
        if !CONVERSE_KEYS.contains(&key.as_str()) {
            return Err(invalid(&format!(
                "Malformed input request: extraneous key [{key}] is not permitted"
            )));
        }
    }
    let Some(Value::Array(messages)) = obj.get("messages") else {
        return Err(invalid("messages: Field required (a list of messages)"));
    };
    if messages.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    let mut input_tokens = 0;
    let mut last_user = String::new();
    let mut previous = None;
    for (i, message) in messages.iter().enumerate() {
        let Some(m) = message.as_object() else {
            return Err(invalid(&format!("messages.{i}: must be an object")));
        };
        if let Some(key) = m.keys().find(|k| *k != "role" && *k != "content") {
            return Err(invalid(&format!(
                "Malformed input request: messages.{i}: extraneous key [{key}] is not permitted"
            )));
        }
        let role = match m.get("role").and_then(Value::as_str) {
            Some(r @ ("user" | "assistant")) => r,
            _ => {
                return Err(invalid(&format!(
                    "messages.{i}.role: must be user or assistant"
                )))
            }
        };
        if i == 0 && role != "user" {
            return Err(invalid(
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
            ));
        }
        if previous == Some(role) {
            return Err(invalid(
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
            ));
        }
        previous = Some(role);
        let blocks = check_blocks(&format!("messages.{i}"), m.get("content"))?;
        let text = block_text(&blocks);
        input_tokens += count_tokens(&text) + 3;
        if role == "user" {
            last_user = text;
        }
    }
    if let Some(system) = obj.get("system") {
        let Some(blocks) = system.as_array() else {
            return Err(invalid("system: must be a list of system content blocks"));
        };
        for (j, b) in blocks.iter().enumerate() {
            if let Some(point) = b.get("cachePoint") {
                check_cache_point(&format!("system.{j}"), point)?;
                if j == 0 {
                    return Err(invalid(
                        "system.0: a cache point follows the content it caches",
                    ));
                }
            } else if !b.get("text").is_some_and(Value::is_string) {
                return Err(invalid(&format!(
                    "system.{j}: a system block is {{\"text\": …}} or {{\"cachePoint\": …}}"
                )));
            }
            if b.as_object().is_some_and(|o| o.len() != 1) {
                return Err(invalid(&format!(
                    "system.{j}: a system block has exactly one member"
                )));
            }
        }
        // The system prompt counts like a message, as in the other mocks, so a request and its
        // translation get the same prompt token count.
        input_tokens += count_tokens(&block_text(blocks)) + 3;
    }
    let inference = check_inference(obj.get("inferenceConfig"))?;
    let tools = bedrock_tools::check_config(obj.get("toolConfig"))?;
    let tool_results = bedrock_tools::check_history(messages, tools.is_some())?;
    let thinking = check_thinking(model, obj, &inference, messages)?;
    let cache = prompt_cache(model, obj)?;

    let (cleaned, controls) = parse_controls_for(&last_user, "bedrock");
    if let Some(code) = controls.status {
        return Err(status_error(code));
    }
    if let (Some(tools), None) = (&tools, &tool_results) {
        let calls = bedrock_tools::calls(tools, &last_user, state.next_id());
        if !calls.is_empty() {
            return Ok(bedrock_tools::answer(&calls, stream, input_tokens, cache));
        }
    }
    let reply = match &tool_results {
        Some(result) => format!("The tool said: {result}"),
        None => reply_text("bedrock", &cleaned, &controls),
    };
    let (pieces, stop) = shape_reply(&reply, &inference.stops, inference.max_tokens);
    let stop_reason = match stop {
        Stop::Natural => "end_turn",
        Stop::Length => "max_tokens",
        Stop::Sequence(_) => "stop_sequence",
    };
    // With thinking, a reasoning block (text and signature) comes first; Claude counts its
    // tokens in `outputTokens`.
    let reasoning = thinking.then(|| format!("The user asks: {cleaned}. I will answer briefly."));
    let output_tokens = pieces.len() as u64 + reasoning.as_deref().map_or(0, count_tokens);
    let usage = usage_json(input_tokens, output_tokens, cache);
    let text_index = u64::from(reasoning.is_some());
    if !stream {
        let content: Vec<Value> = reasoning
            .iter()
            .map(|r| {
                json!({"reasoningContent": {"reasoningText":
                    {"text": r, "signature": crate::anthropic::sign(r)}}})
            })
            .chain([json!({"text": pieces.concat()})])
            .collect();
        return Ok(json_response(
            StatusCode::OK,
            &json!({
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop_reason,
                "usage": usage,
                "metrics": {"latencyMs": 1}
            }),
        ));
    }
    let mut head = vec![frame(
        "event",
        "messageStart",
        &json!({"role": "assistant", "p": "abcdefgh"}),
    )];
    if let Some(r) = &reasoning {
        let delta = |d: Value| {
            frame(
                "event",
                "contentBlockDelta",
                &json!({"contentBlockIndex": 0, "delta": {"reasoningContent": d}}),
            )
        };
        head.push(delta(json!({"text": r})));
        head.push(delta(json!({"signature": crate::anthropic::sign(r)})));
        head.push(frame(
            "event",
            "contentBlockStop",
            &json!({"contentBlockIndex": 0}),
        ));
    }
    let corrupt_at: Option<usize> = control(&last_user, "corrupt_crc").and_then(|n| n.parse().ok());
    let content: Vec<Bytes> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let bytes = frame(
                "event",
                "contentBlockDelta",
                &json!({"contentBlockIndex": text_index, "delta": {"text": p}, "p": "abcd"}),
            );
            if corrupt_at == Some(i) {
                let mut v = bytes.to_vec();
                let at = v.len().saturating_sub(6);
                if let Some(b) = v.get_mut(at) {
                    *b ^= 0x01;
                }
                Bytes::from(v)
            } else {
                bytes
            }
        })
        .collect();
    let tail = match control(&last_user, "bedrock_exception") {
        Some(name) => vec![frame(
            "exception",
            name,
            &json!({"message": format!("mock {name} in the middle of the stream")}),
        )],
        None => vec![
            frame(
                "event",
                "contentBlockStop",
                &json!({"contentBlockIndex": text_index}),
            ),
            frame("event", "messageStop", &json!({"stopReason": stop_reason})),
            frame(
                "event",
                "metadata",
                &json!({"usage": usage, "metrics": {"latencyMs": 1}}),
            ),
        ],
    };
    let mut r = Response::new(spawn_stream(head, content, tail, controls.plan));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Embedding models

/// A deterministic unit-ish vector for `text`: the same text always embeds the same way.
pub fn vector(text: &str, dims: usize) -> Vec<f64> {
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..dims)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 2_000_001) as f64 / 1_000_000.0) - 1.0
        })
        .collect()
}

fn token_header(mut r: Response<MockBody>, tokens: u64) -> Response<MockBody> {
    set_header(
        &mut r,
        "x-amzn-bedrock-input-token-count",
        &tokens.to_string(),
    );
    r
}

fn titan(model: &str, obj: &Map<String, Value>) -> Reply {
    for key in obj.keys() {
        if !["inputText", "dimensions", "normalize", "embeddingTypes"].contains(&key.as_str()) {
            return Err(invalid(&format!(
                "Malformed input request: extraneous key [{key}] is not permitted"
            )));
        }
    }
    let text = match obj.get("inputText").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => t,
        _ => {
            return Err(invalid(
                "Malformed input request: required key [inputText] not found",
            ))
        }
    };
    let (cleaned, controls) = parse_controls_for(text, "bedrock");
    if let Some(code) = controls.status {
        return Err(status_error(code));
    }
    let dims = match obj.get("dimensions") {
        None => 1024,
        Some(v) => match v.as_u64() {
            Some(d @ (256 | 512 | 1024)) if model.contains("v2") => d as usize,
            _ => {
                return Err(invalid(
                    "dimensions: must be one of 256, 512, 1024 (Titan v2)",
                ))
            }
        },
    };
    let embedding = vector(&cleaned, dims);
    let tokens = count_tokens(text);
    Ok(token_header(
        json_response(
            StatusCode::OK,
            &json!({"embedding": embedding, "inputTextTokenCount": tokens,
                    "embeddingsByType": {"float": embedding}}),
        ),
        tokens,
    ))
}

fn cohere(obj: &Map<String, Value>) -> Reply {
    for key in obj.keys() {
        if ![
            "texts",
            "images",
            "input_type",
            "truncate",
            "embedding_types",
        ]
        .contains(&key.as_str())
        {
            return Err(invalid(&format!(
                "Malformed input request: extraneous key [{key}] is not permitted"
            )));
        }
    }
    let texts: Vec<&str> = match obj.get("texts").and_then(Value::as_array) {
        Some(list) if !list.is_empty() && list.len() <= 96 && list.iter().all(Value::is_string) => {
            list.iter().filter_map(Value::as_str).collect()
        }
        _ => return Err(invalid("texts: must be a list of 1 to 96 strings")),
    };
    match obj.get("input_type").and_then(Value::as_str) {
        Some("search_document" | "search_query" | "classification" | "clustering") => {}
        _ => {
            return Err(invalid(
                "input_type: required, one of search_document, search_query, classification, clustering",
            ))
        }
    }
    for text in &texts {
        if let Some(code) = parse_controls_for(text, "bedrock").1.status {
            return Err(status_error(code));
        }
    }
    let embeddings: Vec<Vec<f64>> = texts.iter().map(|t| vector(t, 1024)).collect();
    let tokens: u64 = texts.iter().map(|t| count_tokens(t)).sum();
    Ok(token_header(
        json_response(
            StatusCode::OK,
            &json!({"embeddings": embeddings, "id": "6ce3e0f4-8b0e-4a57-9c1f-2b2f0f5a1e22",
                    "response_type": "embeddings_floats", "texts": texts}),
        ),
        tokens,
    ))
}
