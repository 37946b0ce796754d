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
use crate::json_write::{self, Array, Object, SortedObject};
use crate::schema::responses::{Echo, Reasoning};
use crate::translate::chat_write;
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
    // The Chat body is written as it is built ([`json_write`]), not as a `Value` tree.
    let mut chat = SortedObject::default();
    let mut echo = Echo::default();
    let mut stream = false;
    let mut messages: Vec<Message> = Vec::new();
    let mut input = None;
    // `null` is the default of every field: absent.
    for (name, value) in request.into_iter().filter(|(_, v)| !v.is_null()) {
        match name.as_str() {
            "model" => chat.value("model", &value),
            "input" => input = Some(value),
            "instructions" => {
                let Value::String(text) = value else {
                    return Err(invalid("`instructions` must be a string", "instructions"));
                };
                echo.instructions = Some(text);
            }
            "tools" => {
                chat.raw("tools", &tools(&value, provider)?);
                echo.tools = value;
            }
            "tool_choice" => {
                tool_choice(&value, chat.field("tool_choice"))?;
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
                chat.value("parallel_tool_calls", &value);
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
                chat.value("max_completion_tokens", &value);
            }
            "temperature" | "top_p" => {
                let number = value
                    .as_f64()
                    .ok_or_else(|| invalid(format!("`{name}` must be a number"), name.as_str()))?;
                if name == "temperature" {
                    echo.temperature = Some(number);
                    chat.value("temperature", &value);
                } else {
                    echo.top_p = Some(number);
                    chat.value("top_p", &value);
                }
            }
            "user" => {
                echo.user = value.as_str().map(str::to_string);
                chat.value("user", &value);
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
        messages.push(Message::text("system", instructions));
    }
    match input {
        None => return Err(invalid("`input` is required", "input")),
        Some(Value::String(text)) => messages.push(Message::text("user", &text)),
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
    let mut out = Array::default();
    for message in messages {
        match message {
            Message::Turn {
                role,
                content,
                tool_calls,
            } => chat_write::message(&mut out, role, &content, tool_calls),
            Message::Tool { call_id, output } => {
                chat_write::tool_message(&mut out, &call_id, &output)
            }
        }
    }
    chat.raw("messages", &out.into_bytes());
    if stream {
        chat.raw("stream", b"true");
        // The stream's last chunk then carries the usage `response.completed` reports.
        chat.raw("stream_options", br#"{"include_usage":true}"#);
    }
    Ok(ChatRequest {
        body: chat.into_bytes(),
        echo,
        stream,
    })
}

/// A Chat message as it is put together (a turn's function calls join the assistant message
/// before them).
enum Message {
    Turn {
        role: &'static str,
        /// Encoded: a string, parts, or `null`.
        content: Vec<u8>,
        tool_calls: Array,
    },
    Tool {
        call_id: String,
        output: String,
    },
}

impl Message {
    fn text(role: &'static str, text: &str) -> Self {
        let mut content = Vec::new();
        json_write::string(&mut content, text);
        Self::Turn {
            role,
            content,
            tool_calls: Array::default(),
        }
    }
}

/// `tools`: function tools become Chat's `{type, function}`; a built-in tool is a 400 naming it.
fn tools(value: &Value, provider: &str) -> Result<Vec<u8>, ApiError> {
    let Value::Array(list) = value else {
        return Err(invalid("`tools` must be an array", "tools"));
    };
    let mut out = Array::default();
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
        let present = |field: &str| tool.get(field).filter(|v| !v.is_null());
        chat_write::function(out.item(), |function| {
            if let Some(v) = present("description") {
                function.value("description", v);
            }
            function.string("name", name);
            for field in ["parameters", "strict"] {
                if let Some(v) = present(field) {
                    function.value(field, v);
                }
            }
        });
    }
    Ok(out.into_bytes())
}

/// `tool_choice`: the modes as they are; `{"type":"function","name"}` → Chat's nested name.
fn tool_choice(value: &Value, out: &mut Vec<u8>) -> Result<(), ApiError> {
    match value {
        Value::String(mode) if matches!(mode.as_str(), "none" | "auto" | "required") => {
            json_write::string(out, mode);
            Ok(())
        }
        Value::Object(choice) if choice.get("type").and_then(Value::as_str) == Some("function") => {
            let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    "a function `tool_choice` needs a `name`",
                    "tool_choice.name",
                )
            })?;
            chat_write::named_function(out, name);
            Ok(())
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
fn reasoning(value: Value, chat: &mut SortedObject<'_>) -> Result<Reasoning, ApiError> {
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
                chat.string("reasoning_effort", &effort);
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
fn text(value: Value, chat: &mut SortedObject<'_>) -> Result<Value, ApiError> {
    let Value::Object(fields) = &value else {
        return Err(invalid("`text` must be an object", "text"));
    };
    for (name, field) in fields.iter().filter(|(_, v)| !v.is_null()) {
        match name.as_str() {
            "format" => response_format(field, chat)?,
            "verbosity" => {
                if field.as_str() != Some("medium") {
                    chat.value("verbosity", field);
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
fn response_format(format: &Value, chat: &mut SortedObject<'_>) -> Result<(), ApiError> {
    let kind = format
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "text" => Ok(()),
        "json_object" => {
            chat.raw("response_format", br#"{"type":"json_object"}"#);
            Ok(())
        }
        "json_schema" => {
            let present = |field: &str| format.get(field).filter(|v| !v.is_null());
            if present("name").is_none() {
                return Err(invalid(
                    "a `json_schema` format needs a `name`",
                    "text.format.name",
                ));
            }
            let mut out = Object::new(chat.field("response_format"));
            let mut schema = Object::new(out.field("json_schema"));
            for field in ["description", "name", "schema", "strict"] {
                if let Some(v) = present(field) {
                    schema.value(field, v);
                }
            }
            schema.end();
            out.string("type", "json_schema");
            out.end();
            Ok(())
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
fn push_item(messages: &mut Vec<Message>, item: Value, i: usize) -> Result<(), ApiError> {
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
            let role = match item.get("role").and_then(Value::as_str) {
                Some("user") => "user",
                Some("system") => "system",
                Some("developer") => "developer",
                Some("assistant") => "assistant",
                _ => {
                    return Err(invalid(
                        "a message's `role` must be user, system, developer or assistant",
                        format!("{at}.role"),
                    ))
                }
            };
            let content = message_content(item.remove("content"), role, &at)?;
            messages.push(Message::Turn {
                role,
                content,
                tool_calls: Array::default(),
            });
        }
        "function_call" => {
            let field = |name: &str| {
                item.get(name).and_then(Value::as_str).ok_or_else(|| {
                    invalid(
                        format!("a `function_call` item needs `{name}`"),
                        format!("{at}.{name}"),
                    )
                })
            };
            let (id, name, arguments) = (field("call_id")?, field("name")?, field("arguments")?);
            // Calls of one turn, and the text before them, are one assistant message in Chat.
            if let Some(Message::Turn {
                role: "assistant",
                tool_calls,
                ..
            }) = messages.last_mut()
            {
                chat_write::tool_call(tool_calls, id, name, arguments);
                return Ok(());
            }
            let mut tool_calls = Array::default();
            chat_write::tool_call(&mut tool_calls, id, name, arguments);
            messages.push(Message::Turn {
                role: "assistant",
                content: b"null".to_vec(),
                tool_calls,
            });
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
            messages.push(Message::Tool {
                call_id: call_id.to_string(),
                output,
            });
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

/// A message's `content`: a string, or parts → Chat's string or parts, encoded.
fn message_content(content: Option<Value>, role: &str, at: &str) -> Result<Vec<u8>, ApiError> {
    let parts = match content {
        Some(Value::String(text)) => {
            let mut out = Vec::new();
            json_write::string(&mut out, &text);
            return Ok(out);
        }
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(invalid(
                "a message's `content` must be a string or an array of parts",
                format!("{at}.content"),
            ))
        }
    };
    let mut out = Array::default();
    for (j, part) in parts.into_iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
        let text = |name: &str| {
            part.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("a `{kind}` part needs `{name}`"), at.clone()))
        };
        match kind {
            "input_text" | "output_text" => chat_write::text_part(&mut out, text("text")?, None),
            // An earlier refusal of the assistant's, kept as what it said.
            "refusal" if role == "assistant" => {
                chat_write::text_part(&mut out, text("refusal")?, None)
            }
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
                let detail = part.get("detail").filter(|d| !d.is_null());
                chat_write::image_part(&mut out, url, detail, None);
            }
            other => {
                return Err(invalid(
                    format!(
                        "`{other}` parts are not supported in a {role} message on this backend"
                    ),
                    at,
                ))
            }
        }
    }
    Ok(out.into_bytes())
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
