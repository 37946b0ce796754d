//! A Responses request → the Chat Completions request the inner translator takes.
//!
//! Request reference: <https://platform.openai.com/docs/api-reference/responses/create>;
//! input items: <https://platform.openai.com/docs/api-reference/responses/create#responses-create-input>;
//! the Chat side: <https://platform.openai.com/docs/api-reference/chat/create>.
//!
//! Mapped: `input` (a string, or items: messages with `input_text` / `input_image` /
//! `output_text` / `refusal` parts, `function_call` and `function_call_output`), `instructions`
//! (a system message first), function `tools`, `tool_choice`, `parallel_tool_calls`,
//! `reasoning.effort` (`reasoning_effort`), `text.format` (`response_format`),
//! `max_output_tokens` (`max_completion_tokens`), `temperature`, `top_p`, `user`, `stream`
//! (with `stream_options.include_usage`, so the stream's usage is always known).
//!
//! Accepted and not sent, because they ask nothing of the model: `metadata` (echoed on the
//! response), `store: false`, `truncation: "disabled"`, `prompt_cache_key` (a cache routing
//! hint), `reasoning.summary` (llmgw returns reasoning text, never summaries), `include:
//! ["reasoning.encrypted_content"]` (there is none to include), `text.verbosity: "medium"`
//! (the default), `stream_options.include_obfuscation`, and `reasoning` input items (earlier
//! turns' reasoning: Chat has no place for it).
//!
//! Refused with a 400 naming the field: what needs state llmgw does not keep
//! (`previous_response_id`, `conversation`, `store: true`, `background: true`,
//! `item_reference` items, `prompt` templates), built-in tools (`web_search`, `file_search`,
//! `code_interpreter`, …, named in the message), and every field this mapping does not know.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::schema::responses::{Echo, Reasoning};
use crate::translate::request_fields::invalid;

/// A request field and what became of it, for the error of a refused one.
fn refused(field: &str, why: &str) -> ApiError {
    invalid(
        format!("`{field}` is not supported on this backend: {why}"),
        field,
    )
}

/// Needs server-side state llmgw does not keep.
const STATELESS: &str = "llmgw keeps no responses or conversations (send the whole \
    conversation in `input`, and `store: false`)";

/// The request as the inner translator takes it, what the response repeats, and whether the
/// client asked for a stream.
pub struct ChatRequest {
    pub body: Vec<u8>,
    pub echo: Echo,
    pub stream: bool,
}

/// The body as a Responses request; a 400 when it is none.
pub fn to_chat(body: &[u8], provider: &str) -> Result<ChatRequest, ApiError> {
    let request: Map<String, Value> = crate::json::from_slice(body).map_err(|err| {
        ApiError::invalid_request(format!(
            "the request body is not a valid Responses request: {err}"
        ))
    })?;
    let mut chat = Map::new();
    let mut echo = Echo::default();
    let mut stream = false;
    let mut messages: Vec<Value> = Vec::new();
    let mut input = None;
    // `null` is the default of every field: absent.
    for (name, value) in request.into_iter().filter(|(_, v)| !v.is_null()) {
        match name.as_str() {
            "model" => {
                chat.insert(name, value);
            }
            "input" => input = Some(value),
            "instructions" => {
                let Value::String(text) = value else {
                    return Err(invalid("`instructions` must be a string", "instructions"));
                };
                echo.instructions = Some(text);
            }
            "tools" => {
                chat.insert("tools".into(), tools(&value, provider)?);
                echo.tools = value;
            }
            "tool_choice" => {
                chat.insert("tool_choice".into(), tool_choice(&value)?);
                echo.tool_choice = value;
            }
            "parallel_tool_calls" => {
                let parallel = value.as_bool().ok_or_else(|| {
                    invalid(
                        "`parallel_tool_calls` must be a boolean",
                        "parallel_tool_calls",
                    )
                })?;
                echo.parallel_tool_calls = parallel;
                chat.insert(name, value);
            }
            "reasoning" => echo.reasoning = reasoning(value, &mut chat)?,
            "text" => echo.text = text(value, &mut chat)?,
            "max_output_tokens" => {
                let max = value.as_u64().ok_or_else(|| {
                    invalid(
                        "`max_output_tokens` must be a positive integer",
                        "max_output_tokens",
                    )
                })?;
                echo.max_output_tokens = Some(max);
                chat.insert("max_completion_tokens".into(), value);
            }
            "temperature" | "top_p" => {
                let number = value
                    .as_f64()
                    .ok_or_else(|| invalid(format!("`{name}` must be a number"), name.as_str()))?;
                if name == "temperature" {
                    echo.temperature = Some(number);
                } else {
                    echo.top_p = Some(number);
                }
                chat.insert(name, value);
            }
            "user" => {
                echo.user = value.as_str().map(str::to_string);
                chat.insert(name, value);
            }
            "stream" => {
                stream = value
                    .as_bool()
                    .ok_or_else(|| invalid("`stream` must be a boolean", "stream"))?;
            }
            "metadata" => {
                if !value.is_object() {
                    return Err(invalid("`metadata` must be an object", "metadata"));
                }
                echo.metadata = value;
            }
            "store" => {
                if value != Value::Bool(false) {
                    return Err(refused("store", STATELESS));
                }
            }
            "truncation" => {
                if value.as_str() != Some("disabled") {
                    return Err(refused(
                        "truncation",
                        "llmgw does not truncate conversations; only `disabled` is accepted",
                    ));
                }
            }
            "include" => include(&value)?,
            "prompt_cache_key" | "stream_options" => {}
            "previous_response_id" | "conversation" | "prompt" => {
                return Err(refused(&name, STATELESS))
            }
            "background" => {
                if value != Value::Bool(false) {
                    return Err(refused("background", STATELESS));
                }
            }
            _ => {
                return Err(invalid(
                    format!(
                        "`{name}` is not supported by llmgw's Responses translation for this \
                         backend"
                    ),
                    name.as_str(),
                ))
            }
        }
    }
    if let Some(instructions) = &echo.instructions {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    match input {
        None => return Err(invalid("`input` is required", "input")),
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                push_item(&mut messages, item, i)?;
            }
        }
        Some(_) => {
            return Err(invalid(
                "`input` must be a string or an array of input items",
                "input",
            ))
        }
    }
    chat.insert("messages".into(), Value::Array(messages));
    if stream {
        chat.insert("stream".into(), Value::Bool(true));
        // The stream's last chunk then carries the usage `response.completed` reports.
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    let body = serde_json::to_vec(&Value::Object(chat))
        .map_err(|err| ApiError::invalid_request(format!("the request body: {err}")))?;
    Ok(ChatRequest { body, echo, stream })
}

/// `tools`: function tools become Chat's `{type, function}`; a built-in tool is a 400 naming it.
fn tools(value: &Value, provider: &str) -> Result<Value, ApiError> {
    let Value::Array(list) = value else {
        return Err(invalid("`tools` must be an array", "tools"));
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind != "function" {
            return Err(invalid(
                format!(
                    "the built-in tool `{kind}` is not available on provider `{provider}`; \
                     only `function` tools are"
                ),
                format!("tools[{i}].type"),
            ));
        }
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            return Err(invalid(
                "a function tool needs a `name`",
                format!("tools[{i}].name"),
            ));
        };
        let mut function = Map::new();
        function.insert("name".into(), Value::String(name.to_string()));
        for field in ["description", "parameters", "strict"] {
            if let Some(v) = tool.get(field).filter(|v| !v.is_null()) {
                function.insert(field.into(), v.clone());
            }
        }
        out.push(json!({"type": "function", "function": function}));
    }
    Ok(Value::Array(out))
}

/// `tool_choice`: the modes as they are; `{"type":"function","name"}` → Chat's nested name.
fn tool_choice(value: &Value) -> Result<Value, ApiError> {
    match value {
        Value::String(mode) if matches!(mode.as_str(), "none" | "auto" | "required") => {
            Ok(value.clone())
        }
        Value::Object(choice) if choice.get("type").and_then(Value::as_str) == Some("function") => {
            let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    "a function `tool_choice` needs a `name`",
                    "tool_choice.name",
                )
            })?;
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        Value::Object(choice) => {
            let kind = choice
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Err(invalid(
                format!("`tool_choice` of type `{kind}` is not supported on this backend"),
                "tool_choice",
            ))
        }
        _ => Err(invalid(
            "`tool_choice` must be \"none\", \"auto\", \"required\" or a function",
            "tool_choice",
        )),
    }
}

/// `reasoning.effort` → `reasoning_effort`; `summary` is echoed only.
fn reasoning(value: Value, chat: &mut Map<String, Value>) -> Result<Reasoning, ApiError> {
    let Value::Object(fields) = value else {
        return Err(invalid("`reasoning` must be an object", "reasoning"));
    };
    let mut echo = Reasoning::default();
    for (name, value) in fields.into_iter().filter(|(_, v)| !v.is_null()) {
        let text = || {
            value.as_str().map(str::to_string).ok_or_else(|| {
                invalid(
                    format!("`reasoning.{name}` must be a string"),
                    format!("reasoning.{name}"),
                )
            })
        };
        match name.as_str() {
            "effort" => {
                let effort = text()?;
                chat.insert("reasoning_effort".into(), Value::String(effort.clone()));
                echo.effort = Some(effort);
            }
            // `generate_summary` is the deprecated spelling of `summary`.
            "summary" | "generate_summary" => echo.summary = Some(text()?),
            _ => {
                return Err(invalid(
                    format!("`reasoning.{name}` is not supported on this backend"),
                    format!("reasoning.{name}"),
                ))
            }
        }
    }
    Ok(echo)
}

/// `text.format` → `response_format`; `text.verbosity` other than the default goes on as
/// Chat's `verbosity` (the inner translator refuses it where the backend has none).
fn text(value: Value, chat: &mut Map<String, Value>) -> Result<Value, ApiError> {
    let Value::Object(fields) = &value else {
        return Err(invalid("`text` must be an object", "text"));
    };
    for (name, field) in fields.iter().filter(|(_, v)| !v.is_null()) {
        match name.as_str() {
            "format" => {
                if let Some(format) = response_format(field)? {
                    chat.insert("response_format".into(), format);
                }
            }
            "verbosity" => {
                if field.as_str() != Some("medium") {
                    chat.insert("verbosity".into(), field.clone());
                }
            }
            _ => {
                return Err(invalid(
                    format!("`text.{name}` is not supported on this backend"),
                    format!("text.{name}"),
                ))
            }
        }
    }
    let mut echo = value;
    if echo.get("format").is_none_or(Value::is_null) {
        if let Value::Object(fields) = &mut echo {
            fields.insert("format".into(), json!({"type": "text"}));
        }
    }
    Ok(echo)
}

/// `text.format`: `{type: "json_schema", name, schema, strict, description}` (flat) becomes
/// Chat's `{type: "json_schema", json_schema: {…}}`; `json_object` stays; `text` asks nothing.
fn response_format(format: &Value) -> Result<Option<Value>, ApiError> {
    let kind = format
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "text" => Ok(None),
        "json_object" => Ok(Some(json!({"type": "json_object"}))),
        "json_schema" => {
            let mut schema = Map::new();
            for field in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(field).filter(|v| !v.is_null()) {
                    schema.insert(field.into(), v.clone());
                }
            }
            if !schema.contains_key("name") {
                return Err(invalid(
                    "a `json_schema` format needs a `name`",
                    "text.format.name",
                ));
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        other => Err(invalid(
            format!("`text.format` of type `{other}` is not supported"),
            "text.format.type",
        )),
    }
}

/// `include`: only what asks for nothing here.
fn include(value: &Value) -> Result<(), ApiError> {
    let Value::Array(list) = value else {
        return Err(invalid("`include` must be an array", "include"));
    };
    for (i, what) in list.iter().enumerate() {
        if what.as_str() != Some("reasoning.encrypted_content") {
            return Err(invalid(
                format!("`include` value {what} is not supported on this backend"),
                format!("include[{i}]"),
            ));
        }
    }
    Ok(())
}

/// One input item onto the Chat messages.
fn push_item(messages: &mut Vec<Value>, item: Value, i: usize) -> Result<(), ApiError> {
    let at = format!("input[{i}]");
    let Value::Object(mut item) = item else {
        return Err(invalid("an input item must be an object", at));
    };
    // A message may leave out `type` (the "easy" input message).
    let kind = match item.get("type") {
        None | Some(Value::Null) if item.contains_key("role") => "message".to_string(),
        Some(Value::String(kind)) => kind.clone(),
        _ => {
            return Err(invalid(
                "an input item needs a `type`",
                format!("{at}.type"),
            ))
        }
    };
    match kind.as_str() {
        "message" => {
            let role = item
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if !matches!(role.as_str(), "user" | "system" | "developer" | "assistant") {
                return Err(invalid(
                    "a message's `role` must be user, system, developer or assistant",
                    format!("{at}.role"),
                ));
            }
            let content = message_content(item.remove("content"), &role, &at)?;
            messages.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let field = |name: &str| {
                item.get(name)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        invalid(
                            format!("a `function_call` item needs `{name}`"),
                            format!("{at}.{name}"),
                        )
                    })
            };
            let call = json!({
                "id": field("call_id")?,
                "type": "function",
                "function": {"name": field("name")?, "arguments": field("arguments")?},
            });
            // Calls of one turn, and the text before them, are one assistant message in Chat.
            if let Some(Value::Object(last)) = messages.last_mut() {
                if last.get("role").and_then(Value::as_str) == Some("assistant") {
                    match last.get_mut("tool_calls") {
                        Some(Value::Array(calls)) => calls.push(call),
                        _ => {
                            last.insert("tool_calls".into(), Value::Array(vec![call]));
                        }
                    }
                    return Ok(());
                }
            }
            messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
        }
        "function_call_output" => {
            let call_id = item.get("call_id").and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    "a `function_call_output` item needs `call_id`",
                    format!("{at}.call_id"),
                )
            })?;
            let output =
                match item.get("output") {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Array(parts)) => {
                        let mut text = String::new();
                        for (j, part) in parts.iter().enumerate() {
                            match (part.get("type").and_then(Value::as_str), part.get("text")) {
                                (Some("input_text"), Some(Value::String(t))) => text.push_str(t),
                                _ => return Err(invalid(
                                    "only `input_text` parts are supported in a function call's \
                                     output on this backend",
                                    format!("{at}.output[{j}]"),
                                )),
                            }
                        }
                        text
                    }
                    _ => {
                        return Err(invalid(
                            "a `function_call_output` item needs `output`",
                            format!("{at}.output"),
                        ))
                    }
                };
            messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
        }
        // Earlier turns' reasoning: Chat takes none back (documented).
        "reasoning" => {}
        "item_reference" => return Err(refused(&format!("{at}.type"), STATELESS)),
        other => {
            return Err(invalid(
                format!("input items of type `{other}` are not supported on this backend"),
                format!("{at}.type"),
            ))
        }
    }
    Ok(())
}

/// A message's `content`: a string, or parts → Chat's string or parts.
fn message_content(content: Option<Value>, role: &str, at: &str) -> Result<Value, ApiError> {
    let parts = match content {
        Some(Value::String(text)) => return Ok(Value::String(text)),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(invalid(
                "a message's `content` must be a string or an array of parts",
                format!("{at}.content"),
            ))
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
        let text = |name: &str| {
            part.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| invalid(format!("a `{kind}` part needs `{name}`"), at.clone()))
        };
        let mapped = match kind {
            "input_text" | "output_text" => json!({"type": "text", "text": text("text")?}),
            // An earlier refusal of the assistant's, kept as what it said.
            "refusal" if role == "assistant" => json!({"type": "text", "text": text("refusal")?}),
            "input_image" if role != "assistant" => {
                let url = part
                    .get("image_url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid(
                            "an `input_image` part needs `image_url` here (`file_id` needs the \
                         OpenAI Files API)",
                            format!("{at}.image_url"),
                        )
                    })?;
                let mut image = Map::new();
                image.insert("url".into(), Value::String(url.to_string()));
                if let Some(detail) = part.get("detail").filter(|d| !d.is_null()) {
                    image.insert("detail".into(), detail.clone());
                }
                json!({"type": "image_url", "image_url": image})
            }
            other => {
                return Err(invalid(
                    format!(
                        "`{other}` parts are not supported in a {role} message on this backend"
                    ),
                    at,
                ))
            }
        };
        out.push(mapped);
    }
    Ok(Value::Array(out))
}

/// The Chat field a refusal of the inner translator names → the Responses field the client
/// wrote, so a 400 names what the client can find in its own request.
pub fn responses_param(chat_param: &str) -> String {
    let renamed = [
        ("reasoning_effort", "reasoning.effort"),
        ("response_format", "text.format"),
        ("max_completion_tokens", "max_output_tokens"),
        ("verbosity", "text.verbosity"),
    ];
    for (chat, responses) in renamed {
        if let Some(rest) = chat_param.strip_prefix(chat) {
            if rest.is_empty() || rest.starts_with(['.', '[']) {
                return format!("{responses}{rest}");
            }
        }
    }
    chat_param.to_string()
}
