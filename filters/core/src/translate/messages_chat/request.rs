//! A Messages request (<https://docs.anthropic.com/en/api/messages>) as a Chat Completions
//! request (<https://platform.openai.com/docs/api-reference/chat/create>).
//!
//! | Messages | Chat Completions |
//! |---|---|
//! | `system` (string or text blocks, joined by a blank line) | a first `system` message |
//! | `text` blocks | text content parts (empty ones carry nothing and are left out) |
//! | `image` blocks, `base64` / `url` source | `image_url` parts (a `data:` URL for base64) |
//! | assistant `tool_use` blocks | `tool_calls` (`input` as the `arguments` JSON string) |
//! | user `tool_result` blocks | `tool` messages before the turn's other content; `is_error: true` prefixes the content with `Error: ` (Chat has no such flag) |
//! | `tools` (`name`, `description`, `input_schema`) | `function` tools |
//! | `tool_choice` `auto` / `any` / `tool` / `none`, `disable_parallel_tool_use` | `auto` / `required` / the named function / `none`, `parallel_tool_calls: false` |
//! | `stop_sequences`, `max_tokens`, `temperature`, `top_p`, `metadata.user_id`, `stream` | `stop`, `max_completion_tokens`, `temperature`, `top_p`, `user`, `stream` (+ `stream_options.include_usage`) |
//! | `thinking` `enabled` with `budget_tokens` | `reasoning_effort`: below 2048 `low`, below 8192 `medium`, else `high` ([`crate::translate::reasoning`]) |
//!
//! `cache_control` of text, image and system blocks stays on the Chat parts for the Chat
//! translators that read it (Bedrock makes it a cache point; Gemini drops it), never for the
//! OpenAI passthrough.
//!
//! Dropped, because the backend has no such thing and nothing the answer depends on is lost:
//! other `cache_control` (prompt caching hints on tools, tool results and assistant text), `thinking` / `redacted_thinking` blocks of earlier
//! assistant turns (Anthropic's own API ignores them too), `thinking` `disabled` or `adaptive`
//! (the backend's default), `service_tier: "auto"`. Everything else this mapping cannot carry
//! is a 400 naming the field (`top_k`, `document` blocks, images inside tool results, server
//! tools, `container`, `mcp_servers`, unknown fields), never silently lost.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::translate::reasoning::Effort;

/// The Chat Completions body for a Messages body; a 400 naming what cannot be carried.
pub fn to_chat_request(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    to_chat_request_with(body, false)
}

/// [`to_chat_request`]; with `cache_hints`, `cache_control` of text and image blocks and of
/// system blocks stays on the Chat parts (the LiteLLM / OpenRouter convention), for a Chat
/// translator that maps it (Bedrock's cache points). Otherwise it is dropped.
pub fn to_chat_request_with(body: &[u8], cache_hints: bool) -> Result<Vec<u8>, ApiError> {
    let request: Map<String, Value> = crate::json::from_slice(body).map_err(|err| {
        ApiError::invalid_request(format!(
            "the request body is not a valid Messages request: {err}"
        ))
    })?;
    let chat = convert(&request, cache_hints)?;
    serde_json::to_vec(&Value::Object(chat))
        .map_err(|err| ApiError::invalid_request(format!("the request body: {err}")))
}

fn invalid(message: impl Into<String>, param: &str) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// A field this translation cannot carry to a non-Anthropic backend.
fn unsupported(path: &str, why: &str) -> ApiError {
    invalid(
        format!("`{path}` is not supported on this backend: {why}"),
        path,
    )
    .with_code("unsupported_field")
}

fn convert(
    request: &Map<String, Value>,
    cache_hints: bool,
) -> Result<Map<String, Value>, ApiError> {
    let mut chat = Map::new();
    let mut messages: Vec<Value> = Vec::new();
    for (key, value) in request {
        match key.as_str() {
            "model" => {
                chat.insert("model".into(), value.clone());
            }
            "max_tokens" => {
                let n = value
                    .as_u64()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| invalid("`max_tokens` must be an integer ≥ 1", "max_tokens"))?;
                chat.insert("max_completion_tokens".into(), n.into());
            }
            "messages" | "system" => {}
            "stream" => {
                let stream = value
                    .as_bool()
                    .ok_or_else(|| invalid("`stream` must be a boolean", "stream"))?;
                chat.insert("stream".into(), stream.into());
                if stream {
                    // Anthropic's stream always ends with its usage; the Chat one when asked.
                    chat.insert("stream_options".into(), json!({"include_usage": true}));
                }
            }
            "temperature" | "top_p" => {
                if !value.is_number() {
                    return Err(invalid(format!("`{key}` must be a number"), key));
                }
                chat.insert(key.clone(), value.clone());
            }
            "stop_sequences" => {
                let all_strings = value
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string));
                if !all_strings {
                    return Err(invalid(
                        "`stop_sequences` must be a list of strings",
                        "stop_sequences",
                    ));
                }
                if value.as_array().is_some_and(|a| !a.is_empty()) {
                    chat.insert("stop".into(), value.clone());
                }
            }
            "metadata" => {
                let Some(metadata) = value.as_object() else {
                    return Err(invalid("`metadata` must be an object", "metadata"));
                };
                for (name, v) in metadata {
                    match (name.as_str(), v) {
                        ("user_id", Value::String(user)) => {
                            chat.insert("user".into(), user.clone().into());
                        }
                        ("user_id", Value::Null) => {}
                        _ => {
                            return Err(unsupported(
                                &format!("metadata.{name}"),
                                "only `metadata.user_id` has a Chat Completions equivalent",
                            ))
                        }
                    }
                }
            }
            "tools" => {
                let tools = tools(value)?;
                if !tools.is_empty() {
                    chat.insert("tools".into(), Value::Array(tools));
                }
            }
            "tool_choice" => tool_choice(value, &mut chat)?,
            "thinking" => thinking(value, request.get("max_tokens"), &mut chat)?,
            "service_tier" if value.as_str() == Some("auto") => {}
            "top_k" => {
                return Err(unsupported(
                    "top_k",
                    "Chat Completions backends have no top-k sampling",
                ))
            }
            other => {
                return Err(unsupported(
                    other,
                    "the field has no equivalent outside Anthropic's API",
                ))
            }
        }
    }
    if !request.contains_key("max_tokens") {
        return Err(invalid("`max_tokens`: Field required", "max_tokens"));
    }
    if let Some(system) = request.get("system") {
        let text = system_text(system)?;
        let marked = system
            .as_array()
            .is_some_and(|blocks| blocks.iter().any(|b| b.get("cache_control").is_some()));
        if cache_hints && marked {
            // One part per non-empty block, so each breakpoint stays after its block.
            let parts: Vec<Value> = system
                .as_array()
                .into_iter()
                .flatten()
                .filter(|b| b.get("text").and_then(Value::as_str) != Some(""))
                .map(|b| with_cache_control(json!({"type": "text", "text": b["text"]}), b, true))
                .collect();
            messages.push(json!({"role": "system", "content": parts}));
        } else if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let Some(turns) = request.get("messages").and_then(Value::as_array) else {
        return Err(invalid("`messages`: a list is required", "messages"));
    };
    for (i, turn) in turns.iter().enumerate() {
        convert_turn(i, turn, &mut messages, cache_hints)?;
    }
    chat.insert("messages".into(), Value::Array(messages));
    Ok(chat)
}

/// `thinking` (<https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking>),
/// checked as Anthropic checks it: `enabled` with `budget_tokens` (≥ 1024, below `max_tokens`)
/// becomes the Chat `reasoning_effort` its budget falls in ([`Effort::from_budget`]);
/// `disabled` asks for nothing; `adaptive` (the model decides how much to think) leaves the
/// backend's own default, which is the same thing.
fn thinking(
    value: &Value,
    max_tokens: Option<&Value>,
    chat: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    match value.get("type").and_then(Value::as_str) {
        Some("disabled" | "adaptive") => Ok(()),
        Some("enabled") => {
            let budget = value
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .ok_or_else(|| {
                    invalid(
                        "`thinking.budget_tokens`: an integer is required",
                        "thinking.budget_tokens",
                    )
                })?;
            if budget < 1024 {
                return Err(invalid(
                    "`thinking.budget_tokens`: Input should be greater than or equal to 1024",
                    "thinking.budget_tokens",
                ));
            }
            if max_tokens
                .and_then(Value::as_u64)
                .is_some_and(|max| max <= budget)
            {
                return Err(invalid(
                    "`max_tokens` must be greater than `thinking.budget_tokens`",
                    "max_tokens",
                ));
            }
            let effort = Effort::from_budget(budget).as_str();
            chat.insert("reasoning_effort".into(), effort.into());
            Ok(())
        }
        _ => Err(invalid(
            "`thinking.type` must be `enabled`, `disabled` or `adaptive`",
            "thinking.type",
        )),
    }
}

/// `system`: a string, or text blocks joined by a blank line.
fn system_text(system: &Value) -> Result<String, ApiError> {
    match system {
        Value::String(text) => Ok(text.clone()),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.iter().enumerate() {
                match (block.get("type").and_then(Value::as_str), block.get("text")) {
                    (Some("text"), Some(Value::String(text))) => {
                        if !text.is_empty() {
                            parts.push(text.as_str());
                        }
                    }
                    _ => {
                        return Err(invalid(
                            format!("`system[{j}]` must be a text block"),
                            &format!("system[{j}]"),
                        ))
                    }
                }
            }
            Ok(parts.join("\n\n"))
        }
        _ => Err(invalid(
            "`system` must be a string or a list of text blocks",
            "system",
        )),
    }
}

fn convert_turn(
    i: usize,
    turn: &Value,
    out: &mut Vec<Value>,
    cache_hints: bool,
) -> Result<(), ApiError> {
    let at = format!("messages[{i}]");
    let role = turn.get("role").and_then(Value::as_str);
    let content = turn.get("content");
    let blocks: Vec<Value> = match content {
        Some(Value::String(text)) => {
            out.push(json!({"role": role_name(role, &at)?, "content": text}));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks.clone(),
        _ => {
            return Err(invalid(
                format!("`{at}.content` must be a string or a list of content blocks"),
                &format!("{at}.content"),
            ))
        }
    };
    match role_name(role, &at)? {
        "user" => user_turn(&at, &blocks, out, cache_hints),
        _ => assistant_turn(&at, &blocks, out),
    }
}

fn role_name(role: Option<&str>, at: &str) -> Result<&'static str, ApiError> {
    match role {
        Some("user") => Ok("user"),
        Some("assistant") => Ok("assistant"),
        _ => Err(invalid(
            format!("`{at}.role` must be `user` or `assistant`"),
            &format!("{at}.role"),
        )),
    }
}

fn block_type<'a>(block: &'a Value, at: &str) -> Result<&'a str, ApiError> {
    block.get("type").and_then(Value::as_str).ok_or_else(|| {
        invalid(
            format!("`{at}.type`: Field required"),
            &format!("{at}.type"),
        )
    })
}

fn user_turn(
    at: &str,
    blocks: &[Value],
    out: &mut Vec<Value>,
    cache_hints: bool,
) -> Result<(), ApiError> {
    let mut parts: Vec<Value> = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        match block_type(block, &at)? {
            "text" => {
                if let Some(part) = text_part(block, &at)? {
                    parts.push(with_cache_control(part, block, cache_hints));
                }
            }
            "image" => parts.push(with_cache_control(
                image_part(block, &at)?,
                block,
                cache_hints,
            )),
            "tool_result" => out.push(tool_message(block, &at)?),
            other => {
                return Err(unsupported(
                    &format!("{at}.type"),
                    &format!("`{other}` blocks cannot be carried in a user turn"),
                ))
            }
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

/// `part` with the Messages `block`'s `cache_control`, when kept.
fn with_cache_control(mut part: Value, block: &Value, cache_hints: bool) -> Value {
    if let (true, Some(control)) = (cache_hints, block.get("cache_control")) {
        part["cache_control"] = control.clone();
    }
    part
}

fn text_part(block: &Value, at: &str) -> Result<Option<Value>, ApiError> {
    match block.get("text") {
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(json!({"type": "text", "text": text}))),
        _ => Err(invalid(
            format!("`{at}.text` must be a string"),
            &format!("{at}.text"),
        )),
    }
}

/// <https://docs.anthropic.com/en/docs/build-with-claude/vision>: `base64` with a
/// `media_type`, or `url`.
fn image_part(block: &Value, at: &str) -> Result<Value, ApiError> {
    let source = block.get("source");
    let kind = source.and_then(|s| s.get("type")).and_then(Value::as_str);
    let field = |name: &str| {
        source
            .and_then(|s| s.get(name))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                invalid(
                    format!("`{at}.source.{name}` must be a string"),
                    &format!("{at}.source.{name}"),
                )
            })
    };
    let url = match kind {
        Some("base64") => format!("data:{};base64,{}", field("media_type")?, field("data")?),
        Some("url") => field("url")?.to_string(),
        _ => {
            return Err(unsupported(
                &format!("{at}.source.type"),
                "only `base64` and `url` image sources can be carried",
            ))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn tool_message(block: &Value, at: &str) -> Result<Value, ApiError> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(
                format!("`{at}.tool_use_id`: Field required"),
                &format!("{at}.tool_use_id"),
            )
        })?;
    let mut text = match block.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (k, part) in parts.iter().enumerate() {
                let at = format!("{at}.content[{k}]");
                match block_type(part, &at)? {
                    "text" => {
                        if let Some(Value::String(t)) = part.get("text") {
                            texts.push(t.as_str());
                        }
                    }
                    other => {
                        return Err(unsupported(
                            &format!("{at}.type"),
                            &format!(
                                "a tool result's content can only be text here, not `{other}`"
                            ),
                        ))
                    }
                }
            }
            texts.join("\n")
        }
        Some(_) => {
            return Err(invalid(
                format!("`{at}.content` must be a string or a list of blocks"),
                &format!("{at}.content"),
            ))
        }
    };
    if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        text = format!("Error: {text}");
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

fn assistant_turn(at: &str, blocks: &[Value], out: &mut Vec<Value>) -> Result<(), ApiError> {
    let mut text = String::new();
    let mut calls: Vec<Value> = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        match block_type(block, &at)? {
            "text" => {
                if let Some(Value::String(t)) = block.get("text") {
                    text.push_str(t);
                }
            }
            "tool_use" => {
                let id = block.get("id").and_then(Value::as_str);
                let name = block.get("name").and_then(Value::as_str);
                let (Some(id), Some(name)) = (id, name) else {
                    return Err(invalid(
                        format!("`{at}`: a tool_use block needs a string `id` and `name`"),
                        &at,
                    ));
                };
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}}));
            }
            // Earlier turns' thinking: Anthropic's API itself leaves it out of the context.
            "thinking" | "redacted_thinking" => {}
            other => {
                return Err(unsupported(
                    &format!("{at}.type"),
                    &format!("`{other}` blocks cannot be carried in an assistant turn"),
                ))
            }
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert(
        "content".into(),
        if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            text.into()
        },
    );
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    out.push(Value::Object(message));
    Ok(())
}

/// `tools`: custom tools (<https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview>)
/// become functions; Anthropic's server and client tools (`web_search_…`, `bash_…`, …) have no
/// equivalent.
fn tools(value: &Value) -> Result<Vec<Value>, ApiError> {
    let Some(tools) = value.as_array() else {
        return Err(invalid("`tools` must be a list", "tools"));
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        if let Some(kind) = tool.get("type").and_then(Value::as_str) {
            if kind != "custom" {
                return Err(unsupported(
                    &format!("{at}.type"),
                    &format!("`{kind}` is one of Anthropic's own tools"),
                ));
            }
        }
        let name = tool.get("name").and_then(Value::as_str).ok_or_else(|| {
            invalid(
                format!("`{at}.name`: Field required"),
                &format!("{at}.name"),
            )
        })?;
        let mut function = Map::new();
        function.insert("name".into(), name.into());
        if let Some(description) = tool.get("description").and_then(Value::as_str) {
            function.insert("description".into(), description.into());
        }
        let schema = tool.get("input_schema").cloned().ok_or_else(|| {
            invalid(
                format!("`{at}.input_schema`: Field required"),
                &format!("{at}.input_schema"),
            )
        })?;
        function.insert("parameters".into(), schema);
        out.push(json!({"type": "function", "function": function}));
    }
    Ok(out)
}

fn tool_choice(value: &Value, chat: &mut Map<String, Value>) -> Result<(), ApiError> {
    let choice = match value.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = value
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("`tool_choice.name`: Field required", "tool_choice.name"))?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => {
            return Err(invalid(
                "`tool_choice.type` must be `auto`, `any`, `tool` or `none`",
                "tool_choice.type",
            ))
        }
    };
    chat.insert("tool_choice".into(), choice);
    if value
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        == Some(true)
    {
        chat.insert("parallel_tool_calls".into(), false.into());
    }
    Ok(())
}
