//! `POST /v1/messages`, strict like the real Anthropic Messages API.

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use crate::body::{spawn_stream, MockBody};
use crate::features;
use crate::text::{
    count_tokens as count_tokens_of, parse_controls_for, reply_text, shape_reply, Stop,
};
use crate::{header_str, json_response, leak_check, set_header, sse_response, status_from, State};

const ALLOWED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
];

/// Beta flags the mock knows (<https://docs.anthropic.com/en/api/beta-headers>); any other one
/// is a 400, as the real API answers.
const KNOWN_BETAS: &[&str] = &[
    "prompt-caching-2024-07-31",
    "interleaved-thinking-2025-05-14",
    "fine-grained-tool-streaming-2025-05-14",
    "token-efficient-tools-2025-02-19",
    "context-1m-2025-08-07",
    "output-128k-2025-02-19",
    "files-api-2025-04-14",
    "claude-code-20250219",
];

const BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "tool_use",
    "tool_result",
    "document",
    "thinking",
    "redacted_thinking",
];

pub fn error(status: StatusCode, typ: &str, message: &str) -> Response<MockBody> {
    json_response(
        status,
        &json!({"type": "error", "error": {"type": typ, "message": message}}),
    )
}

fn bad(message: &str) -> Response<MockBody> {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

fn status_error(code: u16) -> Response<MockBody> {
    let (typ, msg) = match code {
        400 => ("invalid_request_error", "Mock invalid request."),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => ("not_found_error", "Not found (mock)."),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit (mock).",
        ),
        529 => ("overloaded_error", "Overloaded"),
        500..=599 => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "Mock error."),
    };
    let mut r = error(status_from(code), typ, msg);
    if code == 429 {
        set_header(&mut r, "retry-after", "7");
    }
    r
}

/// Text of a content value: a string, or the text blocks joined by spaces.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn validate_blocks(where_: &str, blocks: &[Value]) -> Result<(), Response<MockBody>> {
    for (j, b) in blocks.iter().enumerate() {
        let Some(typ) = b.get("type").and_then(Value::as_str) else {
            return Err(bad(&format!("{where_}.{j}.type: Field required")));
        };
        if !BLOCK_TYPES.contains(&typ) {
            return Err(bad(&format!(
                "{where_}.{j}: Input tag '{typ}' found using 'type' does not match any of the expected tags: 'text', 'image', 'tool_use', 'tool_result', 'document', 'thinking', 'redacted_thinking'"
            )));
        }
        if typ == "text" {
            match b.get("text") {
                Some(Value::String(s)) if s.is_empty() => {
                    return Err(bad("messages: text content blocks must be non-empty"))
                }
                Some(Value::String(_)) => {}
                _ => return Err(bad(&format!("{where_}.{j}.text: Field required"))),
            }
        }
        if typ == "tool_use"
            && !(b.get("id").is_some_and(Value::is_string)
                && b.get("name").is_some_and(Value::is_string)
                && b.get("input").is_some_and(Value::is_object))
        {
            return Err(bad(&format!(
                "{where_}.{j}: tool_use blocks need string id, string name and object input"
            )));
        }
        if typ == "thinking" {
            // The real API checks the signature against the thinking text: a block changed on
            // the way (or a signature dropped) is refused.
            let thinking = b.get("thinking").and_then(Value::as_str);
            let signature = b.get("signature").and_then(Value::as_str);
            match (thinking, signature) {
                (Some(t), Some(sig)) if sig == sign(t) => {}
                (Some(_), Some(_)) => {
                    return Err(bad(&format!(
                        "{where_}.{j}: Invalid `signature` in `thinking` block"
                    )))
                }
                (_, None) => return Err(bad(&format!("{where_}.{j}.signature: Field required"))),
                (None, _) => return Err(bad(&format!("{where_}.{j}.thinking: Field required"))),
            }
        }
        if typ == "redacted_thinking" && !b.get("data").is_some_and(Value::is_string) {
            return Err(bad(&format!("{where_}.{j}.data: Field required")));
        }
        if typ == "tool_result" && !b.get("tool_use_id").is_some_and(Value::is_string) {
            return Err(bad(&format!("{where_}.{j}.tool_use_id: Field required")));
        }
        if typ == "image" {
            let source = b.get("source");
            match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
                Some("base64") => {
                    let media = source
                        .and_then(|s| s.get("media_type"))
                        .and_then(Value::as_str);
                    if !matches!(
                        media,
                        Some("image/jpeg" | "image/png" | "image/gif" | "image/webp")
                    ) {
                        return Err(bad(&format!(
                            "{where_}.{j}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                        )));
                    }
                    let data = source
                        .and_then(|s| s.get("data"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if !features::is_base64(data) {
                        return Err(bad(&format!(
                            "{where_}.{j}.source.data: invalid base64 data"
                        )));
                    }
                }
                Some("url")
                    if source
                        .and_then(|s| s.get("url"))
                        .is_some_and(Value::is_string) => {}
                _ => return Err(bad(&format!("{where_}.{j}.source: Field required"))),
            }
        }
    }
    Ok(())
}

/// The mock's thinking signature: a hash of the thinking text, so that a thinking block sent
/// back altered, or with another block's signature, is caught as the real API catches it.
pub fn sign(thinking: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"mock-signature:".iter().chain(thinking.as_bytes()) {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("EqMock{hash:016x}")
}

/// `thinking`: `{"type":"enabled","budget_tokens":N}` (1024 ≤ N < max_tokens) or
/// `{"type":"disabled"}` (<https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking>).
fn thinking_enabled(
    obj: &serde_json::Map<String, Value>,
    max_tokens: u64,
) -> Result<bool, Response<MockBody>> {
    let Some(config) = obj.get("thinking") else {
        return Ok(false);
    };
    match config.get("type").and_then(Value::as_str) {
        Some("disabled") => Ok(false),
        Some("enabled") => {
            let Some(budget) = config.get("budget_tokens").and_then(Value::as_u64) else {
                return Err(bad("thinking.enabled.budget_tokens: Field required"));
            };
            if budget < 1024 {
                return Err(bad(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                ));
            }
            if max_tokens <= budget {
                return Err(bad(
                    "`max_tokens` must be greater than `thinking.budget_tokens`",
                ));
            }
            Ok(true)
        }
        _ => Err(bad(
            "thinking: Input tag found using 'type' does not match any of the expected tags: 'disabled', 'enabled'",
        )),
    }
}

/// With thinking on, the assistant turn that made the tool calls being answered must start
/// with its thinking block, sent back as it came.
fn check_thinking_kept(messages: &[Value]) -> Result<(), Response<MockBody>> {
    let answers_tools = messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|b| {
            b.iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
    if !answers_tools {
        return Ok(());
    }
    let i = messages.len().saturating_sub(2);
    let first = messages
        .get(i)
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .and_then(|b| b.first())
        .and_then(|b| b.get("type"))
        .and_then(Value::as_str);
    match first {
        Some("thinking" | "redacted_thinking") => Ok(()),
        other => Err(bad(&format!(
            "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks).",
            other.unwrap_or("text")
        ))),
    }
}

/// What extended thinking does not combine with
/// (<https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#feature-compatibility>):
/// a temperature other than 1, top_p below 0.95, top_k, forced tool use.
fn check_thinking_compatible(
    obj: &serde_json::Map<String, Value>,
) -> Result<(), Response<MockBody>> {
    if obj
        .get("temperature")
        .and_then(Value::as_f64)
        .is_some_and(|t| t != 1.0)
    {
        return Err(bad(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#important-considerations-when-using-extended-thinking",
        ));
    }
    if obj
        .get("top_p")
        .and_then(Value::as_f64)
        .is_some_and(|p| p < 0.95)
    {
        return Err(bad(
            "`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled.",
        ));
    }
    if obj.contains_key("top_k") {
        return Err(bad("`top_k` must be unset when thinking is enabled."));
    }
    let forced = obj
        .get("tool_choice")
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "any" || t == "tool");
    if forced {
        return Err(bad(
            "Thinking may not be enabled when tool_choice forces tool use.",
        ));
    }
    Ok(())
}

/// `cache_control`: `{"type": "ephemeral"}`, optionally with `ttl` `5m` or `1h`.
fn check_cache_control(at: &str, control: &Value) -> Result<(), Response<MockBody>> {
    let Some(obj) = control.as_object() else {
        return Err(bad(&format!(
            "{at}.cache_control: Input should be an object"
        )));
    };
    if obj.get("type").and_then(Value::as_str) != Some("ephemeral") {
        return Err(bad(&format!(
            "{at}.cache_control.ephemeral.type: Input should be 'ephemeral'"
        )));
    }
    if let Some(key) = obj.keys().find(|k| *k != "type" && *k != "ttl") {
        return Err(bad(&format!(
            "{at}.cache_control.ephemeral.{key}: Extra inputs are not permitted"
        )));
    }
    if obj
        .get("ttl")
        .is_some_and(|t| t.as_str() != Some("5m") && t.as_str() != Some("1h"))
    {
        return Err(bad(&format!(
            "{at}.cache_control.ephemeral.ttl: Input should be '5m' or '1h'"
        )));
    }
    Ok(())
}

/// The prompt cache (see [`crate::cache`]): `cache_control` checked on tools, system blocks and
/// message blocks, in that order (the order Anthropic caches in), at most 4; the prefix up to
/// the last one is looked up.
fn prompt_cache(
    model: &str,
    obj: &serde_json::Map<String, Value>,
) -> Result<crate::cache::CacheUse, Response<MockBody>> {
    let mut key = model.to_string();
    let mut tokens = 0;
    let mut cached = None;
    let mut breakpoints = 0;
    let mut visit = |at: String, block: &Value, text: &str| -> Result<(), Response<MockBody>> {
        key.push_str(&block.to_string());
        tokens += count_tokens_of(text);
        if let Some(control) = block.get("cache_control") {
            check_cache_control(&at, control)?;
            breakpoints += 1;
            cached = Some((key.clone(), tokens));
        }
        Ok(())
    };
    for (i, tool) in obj
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        visit(format!("tools.{i}"), tool, "")?;
    }
    if let Some(blocks) = obj.get("system").and_then(Value::as_array) {
        for (j, b) in blocks.iter().enumerate() {
            let text = b.get("text").and_then(Value::as_str).unwrap_or("");
            visit(format!("system.{j}"), b, text)?;
        }
    } else if let Some(text) = obj.get("system").and_then(Value::as_str) {
        visit("system".into(), &Value::String(text.into()), text)?;
    }
    for (i, m) in obj
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        match m.get("content") {
            Some(Value::Array(blocks)) => {
                for (j, b) in blocks.iter().enumerate() {
                    let text = b.get("text").and_then(Value::as_str).unwrap_or("");
                    visit(format!("messages.{i}.content.{j}"), b, text)?;
                }
            }
            Some(content) => visit(
                format!("messages.{i}"),
                content,
                &content_text(Some(content)),
            )?,
            None => {}
        }
    }
    if breakpoints > crate::cache::MAX_BREAKPOINTS {
        return Err(bad(&format!(
            "A maximum of {} blocks with cache_control may be provided. Found {breakpoints}.",
            crate::cache::MAX_BREAKPOINTS
        )));
    }
    Ok(cached.map_or_else(Default::default, |(key, tokens)| {
        crate::cache::lookup(&key, tokens)
    }))
}

/// Anthropic's usage: input tokens apart from those read from and written to the cache.
fn usage_json(input_tokens: u64, output_tokens: u64, cache: crate::cache::CacheUse) -> Value {
    json!({
        "input_tokens": input_tokens.saturating_sub(cache.read + cache.write),
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache.write,
        "cache_read_input_tokens": cache.read
    })
}

/// The mock's thinking for a prompt.
fn thinking_text(prompt: &str) -> String {
    let words: Vec<&str> = prompt.split_whitespace().take(8).collect();
    format!("The user asks: {}. I will answer briefly.", words.join(" "))
}

/// Stream frames of one thinking block at `index`.
fn thinking_frames(index: usize, thinking: &str) -> Vec<Bytes> {
    let mid = thinking
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| i >= thinking.len() / 2)
        .unwrap_or(0);
    let mut frames = vec![event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
    )];
    for piece in [&thinking[..mid], &thinking[mid..]] {
        frames.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "thinking_delta", "thinking": piece}}),
        ));
    }
    frames.push(event(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "signature_delta", "signature": sign(thinking)}}),
    ));
    frames.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    ));
    frames
}

pub fn handle(state: &State, headers: &HeaderMap, body: &Bytes) -> Response<MockBody> {
    match handle_inner(state, headers, body) {
        Ok(r) | Err(r) => r,
    }
}

/// `POST /v1/messages/count_tokens`
/// (<https://docs.anthropic.com/en/api/messages-count-tokens>): the same headers and message
/// checks as `/v1/messages`, no `max_tokens`; `{"input_tokens": N}` counted as a message's.
pub fn count_tokens(state: &State, headers: &HeaderMap, body: &Bytes) -> Response<MockBody> {
    let inner = || -> Result<Response<MockBody>, Response<MockBody>> {
        check_headers(state, headers, body)?;
        let parsed: Value =
            serde_json::from_slice(body).map_err(|e| bad(&format!("Invalid JSON body: {e}")))?;
        let Some(obj) = parsed.as_object() else {
            return Err(bad("Input should be a valid dictionary or object"));
        };
        const COUNT_ALLOWED: &[&str] = &[
            "model",
            "messages",
            "system",
            "tools",
            "tool_choice",
            "thinking",
            "mcp_servers",
        ];
        if let Some(k) = obj.keys().find(|k| !COUNT_ALLOWED.contains(&k.as_str())) {
            return Err(bad(&format!("{k}: Extra inputs are not permitted")));
        }
        if !obj.get("model").is_some_and(Value::is_string) {
            return Err(bad("model: Field required"));
        }
        let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
            return Err(bad("messages: Field required"));
        };
        for (i, m) in messages.iter().enumerate() {
            if let Some(blocks) = m.get("content").and_then(Value::as_array) {
                validate_blocks(&format!("messages.{i}.content"), blocks)?;
            }
        }
        validate_tools(obj)?;
        let input_tokens: u64 = messages
            .iter()
            .map(|m| count_tokens_of(&content_text(m.get("content"))) + 3)
            .sum::<u64>()
            + obj
                .get("system")
                .map_or(0, |s| count_tokens_of(&content_text(Some(s))) + 3);
        Ok(json_response(
            StatusCode::OK,
            &json!({"input_tokens": input_tokens}),
        ))
    };
    match inner() {
        Ok(r) | Err(r) => r,
    }
}

/// Credentials, version and beta flags, as the real API checks them before the body.
fn check_headers(
    state: &State,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(), Response<MockBody>> {
    if let Some(msg) = leak_check(state, headers, body) {
        return Err(bad(&msg));
    }
    if headers.contains_key("authorization") {
        return Err(bad(
            "authorization header must not be sent to the Anthropic API; use x-api-key",
        ));
    }
    match header_str(headers, "x-api-key") {
        Some(k) if k == state.anthropic_key => {}
        _ => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid x-api-key",
            ))
        }
    }
    if header_str(headers, "anthropic-version").is_none_or(str::is_empty) {
        return Err(bad("anthropic-version: header is required"));
    }
    // Like the real API, one flag it does not know fails the whole request.
    if let Some(betas) = header_str(headers, "anthropic-beta") {
        let unknown: Vec<&str> = betas
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty() && !KNOWN_BETAS.contains(b))
            .collect();
        if !unknown.is_empty() {
            return Err(bad(&format!(
                "Unexpected value(s) `{}` for the `anthropic-beta` header. Please consult our documentation at docs.anthropic.com or try again without the header.",
                unknown.join("`, `")
            )));
        }
    }
    Ok(())
}

fn handle_inner(
    state: &State,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response<MockBody>, Response<MockBody>> {
    check_headers(state, headers, body)?;

    let parsed: Value =
        serde_json::from_slice(body).map_err(|e| bad(&format!("Invalid JSON body: {e}")))?;
    let Some(obj) = parsed.as_object() else {
        return Err(bad("Input should be a valid dictionary or object"));
    };
    for k in obj.keys() {
        if !ALLOWED.contains(&k.as_str()) {
            return Err(bad(&format!("{k}: Extra inputs are not permitted")));
        }
    }
    let model = match obj.get("model") {
        None => return Err(bad("model: Field required")),
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => return Err(bad("model: Input should be a valid non-empty string")),
    };
    let max_tokens = match obj.get("max_tokens") {
        None => return Err(bad("max_tokens: Field required")),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => n,
            Some(_) => {
                return Err(bad(
                    "max_tokens: Input should be greater than or equal to 1",
                ))
            }
            None => return Err(bad("max_tokens: Input should be a valid integer")),
        },
    };
    let messages = match obj.get("messages") {
        None => return Err(bad("messages: Field required")),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(bad("messages: at least one message is required"))
        }
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("messages: Input should be a valid list")),
    };
    for (i, m) in messages.iter().enumerate() {
        let Some(m) = m.as_object() else {
            return Err(bad(&format!(
                "messages.{i}: Input should be a valid dictionary or object"
            )));
        };
        match m.get("role").and_then(Value::as_str) {
            Some("user") | Some("assistant") => {}
            Some("system") => {
                return Err(bad(
                    "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.",
                ))
            }
            Some(_) => {
                return Err(bad(&format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant'"
                )))
            }
            None => return Err(bad(&format!("messages.{i}.role: Field required"))),
        }
        for k in m.keys() {
            if k != "role" && k != "content" {
                return Err(bad(&format!(
                    "messages.{i}.{k}: Extra inputs are not permitted"
                )));
            }
        }
        match m.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                validate_blocks(&format!("messages.{i}.content"), blocks)?
            }
            None => return Err(bad(&format!("messages.{i}.content: Field required"))),
            Some(_) => {
                return Err(bad(&format!(
                    "messages.{i}.content: Input should be a valid string or list of content blocks"
                )))
            }
        }
    }
    if messages
        .first()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        != Some("user")
    {
        return Err(bad("messages: first message must use the \"user\" role"));
    }
    let system_text = match obj.get("system") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(blocks)) => {
            for (j, b) in blocks.iter().enumerate() {
                if b.get("type").and_then(Value::as_str) != Some("text")
                    || !b.get("text").is_some_and(Value::is_string)
                {
                    return Err(bad(&format!(
                        "system.{j}: system blocks must be text blocks with a string text"
                    )));
                }
            }
            Some(content_text(obj.get("system")))
        }
        Some(_) => {
            return Err(bad(
                "system: Input should be a valid string or list of text blocks",
            ))
        }
    };
    let stream = match obj.get("stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("stream: Input should be a valid boolean")),
    };
    if let Some(t) = obj.get("temperature") {
        match t.as_f64() {
            Some(t) if (0.0..=1.0).contains(&t) => {}
            Some(_) => return Err(bad("temperature: Input should be less than or equal to 1")),
            None => return Err(bad("temperature: Input should be a valid number")),
        }
    }
    if let Some(p) = obj.get("top_p") {
        if !p.as_f64().is_some_and(|p| (0.0..=1.0).contains(&p)) {
            return Err(bad("top_p: Input should be a number between 0 and 1"));
        }
    }
    if let Some(k) = obj.get("top_k") {
        if k.as_u64().is_none() {
            return Err(bad("top_k: Input should be a valid non-negative integer"));
        }
    }
    let stops: Vec<String> = match obj.get("stop_sequences") {
        None => Vec::new(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            return Err(bad(
                "stop_sequences: Input should be a valid list of strings",
            ))
        }
    };

    let cache = prompt_cache(&model, obj)?;
    let thinking = thinking_enabled(obj, max_tokens)?;
    if thinking {
        check_thinking_kept(messages)?;
        check_thinking_compatible(obj)?;
    }

    // Usage and reply. The system prompt counts like a message, so that an OpenAI request and
    // its translation into Anthropic's format get the same prompt token count.
    let input_tokens: u64 = messages
        .iter()
        .map(|m| count_tokens_of(&content_text(m.get("content"))) + 3)
        .sum::<u64>()
        + system_text.map_or(0, |s| count_tokens_of(&s) + 3);
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| content_text(m.get("content")))
        .unwrap_or_default();
    let (cleaned, controls) = parse_controls_for(&last_user, "anthropic");
    if let Some(code) = controls.status {
        return Err(status_error(code));
    }
    let tools = validate_tools(obj)?;
    // A user turn of tool results answers the previous tool calls.
    let results: Vec<String> = messages
        .last()
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                .map(|b| match b.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    other => content_text(other),
                })
                .collect()
        })
        .unwrap_or_default();
    if !results.is_empty() {
        // Each result must answer a tool_use of the assistant turn before it.
        let previous = messages.len().checked_sub(2).and_then(|i| messages.get(i));
        let ids: Vec<&str> = previous
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array)
            .map(|b| {
                b.iter()
                    .filter_map(|b| b.get("id").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        for block in messages
            .last()
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(id) = block.get("tool_use_id").and_then(Value::as_str) {
                if !ids.contains(&id) {
                    return Err(bad(&format!(
                        "messages: tool_result block(s) provided when previous message does not contain matching tool_use ({id})"
                    )));
                }
            }
        }
    }
    let forced = obj
        .get("tool_choice")
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("tool"))
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    let calls: Vec<(String, String, Value)> = if !results.is_empty() {
        Vec::new()
    } else {
        let names: Vec<String> = match forced {
            Some(name) => vec![name.to_string()],
            None => features::requested_tools(&last_user),
        };
        names
            .into_iter()
            .filter_map(|name| tools.iter().find(|(n, _)| *n == name).cloned())
            .enumerate()
            .map(|(i, (name, schema))| {
                let input = features::value_for_schema(&schema, &name);
                (format!("toolu_mock{}_{i}", state.next_id()), name, input)
            })
            .collect()
    };
    let thought = thinking.then(|| thinking_text(&cleaned));
    if !calls.is_empty() {
        return Ok(tool_use_answer(
            state,
            &model,
            &calls,
            (input_tokens, cache),
            stream,
            thought.as_deref(),
        ));
    }
    let reply = if results.is_empty() {
        reply_text("anthropic", &cleaned, &controls)
    } else {
        format!("The tool said: {}", results.join(" "))
    };
    let (pieces, stop) = shape_reply(&reply, &stops, Some(max_tokens));
    let (stop_reason, stop_sequence) = match stop {
        Stop::Natural => ("end_turn", Value::Null),
        Stop::Length => ("max_tokens", Value::Null),
        Stop::Sequence(s) => ("stop_sequence", Value::String(s)),
    };
    let output_tokens = pieces.len() as u64;
    let id = format!("msg_mock{}", state.next_id());
    let request_id = format!("req_mock{}", id.trim_start_matches("msg_mock"));

    if !stream {
        let mut r = json_response(
            StatusCode::OK,
            &json!({
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": thinking_block(thought.as_deref()).into_iter()
                    .chain([json!({"type": "text", "text": pieces.concat()})])
                    .collect::<Vec<_>>(),
                "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
                "usage": usage_json(input_tokens, output_tokens, cache)
            }),
        );
        set_header(&mut r, "request-id", &request_id);
        return Ok(r);
    }

    let text_index = usize::from(thought.is_some());
    let mut head = vec![event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "content": [],
            "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": usage_json(input_tokens, 1, cache)
        }}),
    )];
    if let Some(thought) = &thought {
        head.extend(thinking_frames(0, thought));
    }
    head.push(event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": text_index,
                "content_block": {"type": "text", "text": ""}}),
    ));
    head.push(event("ping", &json!({"type": "ping"})));
    let content: Vec<Bytes> = pieces
        .iter()
        .map(|p| {
            event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": text_index,
                        "delta": {"type": "text_delta", "text": p}}),
            )
        })
        .collect();
    let tail = vec![
        event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": text_index}),
        ),
        event(
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": {"output_tokens": output_tokens}}),
        ),
        event("message_stop", &json!({"type": "message_stop"})),
    ];
    let mut r = sse_response(spawn_stream(head, content, tail, controls.plan));
    set_header(&mut r, "request-id", &request_id);
    Ok(r)
}

/// A thinking content block with its signature, when thinking is on.
fn thinking_block(thought: Option<&str>) -> Option<Value> {
    thought.map(|t| json!({"type": "thinking", "thinking": t, "signature": sign(t)}))
}

fn event(name: &str, data: &Value) -> Bytes {
    let mut out = format!("event: {name}\ndata: ").into_bytes();
    let _ = serde_json::to_writer(&mut out, data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// `tools` (each `{name, input_schema: {type: object}}`) and `tool_choice`; returns each tool's
/// name and input schema.
fn validate_tools(
    obj: &serde_json::Map<String, Value>,
) -> Result<Vec<(String, Value)>, Response<MockBody>> {
    let mut out = Vec::new();
    if let Some(tools) = obj.get("tools") {
        let Some(tools) = tools.as_array() else {
            return Err(bad("tools: Input should be a valid list"));
        };
        for (i, tool) in tools.iter().enumerate() {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                return Err(bad(&format!("tools.{i}.name: Field required")));
            }
            let schema = tool.get("input_schema");
            if schema.and_then(|s| s.get("type")).and_then(Value::as_str) != Some("object") {
                return Err(bad(&format!(
                    "tools.{i}.input_schema.type: Input should be 'object'"
                )));
            }
            for k in tool.as_object().into_iter().flatten().map(|(k, _)| k) {
                if ![
                    "name",
                    "description",
                    "input_schema",
                    "cache_control",
                    "type",
                ]
                .contains(&k.as_str())
                {
                    return Err(bad(&format!(
                        "tools.{i}.{k}: Extra inputs are not permitted"
                    )));
                }
            }
            out.push((name.to_string(), schema.cloned().unwrap_or(Value::Null)));
        }
    }
    if let Some(choice) = obj.get("tool_choice") {
        match choice.get("type").and_then(Value::as_str) {
            Some("auto" | "any" | "none") => {}
            Some("tool") => {
                let name = choice.get("name").and_then(Value::as_str);
                if !name.is_some_and(|n| out.iter().any(|(t, _)| t == n)) {
                    return Err(bad("tool_choice.name: must name one of `tools`"));
                }
            }
            _ => {
                return Err(bad(
                    "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
                ))
            }
        }
        if out.is_empty() {
            return Err(bad(
                "tool_choice may only be specified while providing tools.",
            ));
        }
    }
    Ok(out)
}

/// An answer of `tool_use` blocks (`stop_reason: tool_use`); streamed as
/// `content_block_start` + `input_json_delta` fragments per block.
fn tool_use_answer(
    state: &State,
    model: &str,
    calls: &[(String, String, Value)],
    (input_tokens, cache): (u64, crate::cache::CacheUse),
    stream: bool,
    thought: Option<&str>,
) -> Response<MockBody> {
    let id = format!("msg_mock{}", state.next_id());
    let output_tokens: u64 = calls
        .iter()
        .map(|(_, _, v)| count_tokens_of(&v.to_string()) + 3)
        .sum();
    if !stream {
        let content: Vec<Value> = thinking_block(thought)
            .into_iter()
            .chain(calls.iter().map(|(id, name, input)| {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }))
            .collect();
        return json_response(
            StatusCode::OK,
            &json!({"id": id, "type": "message", "role": "assistant", "model": model,
                    "content": content, "stop_reason": "tool_use", "stop_sequence": null,
                    "usage": usage_json(input_tokens, output_tokens, cache)}),
        );
    }
    let mut frames = vec![event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "content": [], "model": model,
            "stop_reason": null, "stop_sequence": null,
            "usage": usage_json(input_tokens, 1, cache)}}),
    )];
    let first = usize::from(thought.is_some());
    if let Some(thought) = thought {
        frames.extend(thinking_frames(0, thought));
    }
    for (index, (call_id, name, input)) in calls.iter().enumerate() {
        let index = index + first;
        frames.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}}}),
        ));
        let json = input.to_string();
        let mid = json
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| i >= json.len() / 2)
            .unwrap_or(0);
        // As the API streams it (recorded in anthropic-sdk-python's fixtures and
        // langchain#23911): the first fragment is empty, and an empty input is only that
        // fragment, never `{}`.
        let pieces: &[&str] = if input.as_object().is_some_and(|o| o.is_empty()) {
            &[""]
        } else {
            &["", &json[..mid], &json[mid..]]
        };
        for piece in pieces {
            frames.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece}}),
            ));
        }
        frames.push(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }
    frames.push(event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                "usage": {"output_tokens": output_tokens}}),
    ));
    frames.push(event("message_stop", &json!({"type": "message_stop"})));
    sse_response(spawn_stream(
        frames,
        Vec::new(),
        Vec::new(),
        Default::default(),
    ))
}
