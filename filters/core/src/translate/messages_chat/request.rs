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

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::json_write::{self, Array, SortedObject};
use crate::translate::chat_write;
use crate::translate::reasoning::Effort;

/// The Chat Completions body for a Messages body; a 400 naming what cannot be carried.
pub fn to_chat_request(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    to_chat_request_with(body, false)
}

/// [`to_chat_request`]; with `cache_hints`, `cache_control` of text and image blocks and of
/// system blocks stays on the Chat parts (the LiteLLM / OpenRouter convention), for a Chat
/// translator that maps it (Bedrock's cache points). Otherwise it is dropped.
///
/// The Chat body is written as it is built ([`json_write`]), not as a `Value` tree.
pub fn to_chat_request_with(body: &[u8], cache_hints: bool) -> Result<Vec<u8>, ApiError> {
    let request: Map<String, Value> = crate::json::from_slice(body).map_err(|err| {
        ApiError::invalid_request(format!(
            "the request body is not a valid Messages request: {err}"
        ))
    })?;
    convert(&request, cache_hints)
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

fn convert(request: &Map<String, Value>, cache_hints: bool) -> Result<Vec<u8>, ApiError> {
    let mut chat = SortedObject::default();
    let mut messages = Array::default();
    for (key, value) in request {
        match key.as_str() {
            "model" => chat.value("model", value),
            "max_tokens" => {
                if value.as_u64().is_none_or(|n| n < 1) {
                    return Err(invalid("`max_tokens` must be an integer ≥ 1", "max_tokens"));
                }
                chat.value("max_completion_tokens", value);
            }
            "messages" | "system" => {}
            "stream" => {
                let stream = value
                    .as_bool()
                    .ok_or_else(|| invalid("`stream` must be a boolean", "stream"))?;
                if stream {
                    chat.raw("stream", b"true");
                    // Anthropic's stream always ends with its usage; the Chat one when asked.
                    chat.raw("stream_options", br#"{"include_usage":true}"#);
                } else {
                    chat.raw("stream", b"false");
                }
            }
            "temperature" | "top_p" => {
                if !value.is_number() {
                    return Err(invalid(format!("`{key}` must be a number"), key));
                }
                chat.value(key, value);
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
                    chat.value("stop", value);
                }
            }
            "metadata" => {
                let Some(metadata) = value.as_object() else {
                    return Err(invalid("`metadata` must be an object", "metadata"));
                };
                for (name, v) in metadata {
                    match (name.as_str(), v) {
                        ("user_id", Value::String(user)) => chat.string("user", user),
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
                    chat.raw("tools", &tools.into_bytes());
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
            // One part per non-empty block, so each breakpoint stays after its block
            // (`system_text` checked that every block is a text block).
            let mut parts = Array::default();
            for block in system.as_array().into_iter().flatten() {
                if let Some(text) = block.get("text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        chat_write::text_part(&mut parts, text, block.get("cache_control"));
                    }
                }
            }
            chat_write::message(
                &mut messages,
                "system",
                &parts.into_bytes(),
                Array::default(),
            );
        } else if !text.is_empty() {
            chat_write::text_message(&mut messages, "system", &text);
        }
    }
    let Some(turns) = request.get("messages").and_then(Value::as_array) else {
        return Err(invalid("`messages`: a list is required", "messages"));
    };
    for (i, turn) in turns.iter().enumerate() {
        convert_turn(i, turn, &mut messages, cache_hints)?;
    }
    chat.raw("messages", &messages.into_bytes());
    Ok(chat.into_bytes())
}

/// `thinking` (<https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking>),
/// checked as Anthropic checks it: `enabled` with `budget_tokens` (≥ 1024, below `max_tokens`)
/// becomes the Chat `reasoning_effort` its budget falls in ([`Effort::from_budget`]);
/// `disabled` asks for nothing; `adaptive` (the model decides how much to think) leaves the
/// backend's own default, which is the same thing.
fn thinking(
    value: &Value,
    max_tokens: Option<&Value>,
    chat: &mut SortedObject,
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
            chat.string("reasoning_effort", Effort::from_budget(budget).as_str());
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
    out: &mut Array,
    cache_hints: bool,
) -> Result<(), ApiError> {
    let at = format!("messages[{i}]");
    let role = turn.get("role").and_then(Value::as_str);
    let blocks = match turn.get("content") {
        Some(Value::String(text)) => {
            chat_write::text_message(out, role_name(role, &at)?, text);
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(invalid(
                format!("`{at}.content` must be a string or a list of content blocks"),
                &format!("{at}.content"),
            ))
        }
    };
    match role_name(role, &at)? {
        "user" => user_turn(&at, blocks, out, cache_hints),
        _ => assistant_turn(&at, blocks, out),
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
    out: &mut Array,
    cache_hints: bool,
) -> Result<(), ApiError> {
    let mut parts = Array::default();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        // The block's `cache_control`, when kept on the part.
        let control = block.get("cache_control").filter(|_| cache_hints);
        match block_type(block, &at)? {
            "text" => match block.get("text") {
                // An empty text block carries nothing.
                Some(Value::String(text)) if text.is_empty() => {}
                Some(Value::String(text)) => chat_write::text_part(&mut parts, text, control),
                _ => {
                    return Err(invalid(
                        format!("`{at}.text` must be a string"),
                        &format!("{at}.text"),
                    ))
                }
            },
            "image" => {
                let url = image_url(block, &at)?;
                chat_write::image_part(&mut parts, &url, None, control);
            }
            "tool_result" => tool_message(block, &at, out)?,
            other => {
                return Err(unsupported(
                    &format!("{at}.type"),
                    &format!("`{other}` blocks cannot be carried in a user turn"),
                ))
            }
        }
    }
    if !parts.is_empty() {
        chat_write::message(out, "user", &parts.into_bytes(), Array::default());
    }
    Ok(())
}

/// <https://docs.anthropic.com/en/docs/build-with-claude/vision>: `base64` with a
/// `media_type`, or `url`.
fn image_url(block: &Value, at: &str) -> Result<String, ApiError> {
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
    match kind {
        Some("base64") => Ok(format!(
            "data:{};base64,{}",
            field("media_type")?,
            field("data")?
        )),
        Some("url") => Ok(field("url")?.to_string()),
        _ => Err(unsupported(
            &format!("{at}.source.type"),
            "only `base64` and `url` image sources can be carried",
        )),
    }
}

/// A `tool_result` block → a `tool` message.
fn tool_message(block: &Value, at: &str, out: &mut Array) -> Result<(), ApiError> {
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
    chat_write::tool_message(out, id, &text);
    Ok(())
}

fn assistant_turn(at: &str, blocks: &[Value], out: &mut Array) -> Result<(), ApiError> {
    let mut text = String::new();
    let mut calls = Array::default();
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
                // `input` as the `arguments` JSON text; none is `{}`.
                let mut arguments = Vec::new();
                match block.get("input") {
                    Some(input) => json_write::value(&mut arguments, input),
                    None => arguments.extend_from_slice(b"{}"),
                }
                let arguments = String::from_utf8(arguments).unwrap_or_default();
                chat_write::tool_call(&mut calls, id, name, &arguments);
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
    let mut content = Vec::new();
    if text.is_empty() && !calls.is_empty() {
        content.extend_from_slice(b"null");
    } else {
        json_write::string(&mut content, &text);
    }
    chat_write::message(out, "assistant", &content, calls);
    Ok(())
}

/// `tools`: custom tools (<https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview>)
/// become functions; Anthropic's server and client tools (`web_search_…`, `bash_…`, …) have no
/// equivalent.
fn tools(value: &Value) -> Result<Array, ApiError> {
    let Some(tools) = value.as_array() else {
        return Err(invalid("`tools` must be a list", "tools"));
    };
    let mut out = Array::default();
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
        let schema = tool.get("input_schema").ok_or_else(|| {
            invalid(
                format!("`{at}.input_schema`: Field required"),
                &format!("{at}.input_schema"),
            )
        })?;
        chat_write::function(out.item(), |function| {
            if let Some(description) = tool.get("description").and_then(Value::as_str) {
                function.string("description", description);
            }
            function.string("name", name).value("parameters", schema);
        });
    }
    Ok(out)
}

fn tool_choice(value: &Value, chat: &mut SortedObject) -> Result<(), ApiError> {
    match value.get("type").and_then(Value::as_str) {
        Some("auto") => chat.string("tool_choice", "auto"),
        Some("any") => chat.string("tool_choice", "required"),
        Some("none") => chat.string("tool_choice", "none"),
        Some("tool") => {
            let name = value
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("`tool_choice.name`: Field required", "tool_choice.name"))?;
            chat_write::named_function(chat.field("tool_choice"), name);
        }
        _ => {
            return Err(invalid(
                "`tool_choice.type` must be `auto`, `any`, `tool` or `none`",
                "tool_choice.type",
            ))
        }
    }
    if value
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        == Some(true)
    {
        chat.raw("parallel_tool_calls", b"false");
    }
    Ok(())
}
