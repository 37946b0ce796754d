//! `POST /v1/responses` (OpenAI) and `POST /openai/v1/responses` (Azure OpenAI's v1 API), strict
//! like the real Responses API (<https://platform.openai.com/docs/api-reference/responses/create>):
//! known fields only, `input` a string or typed items (messages with `input_text` /
//! `input_image` / `output_text` parts, `function_call` with `call_id`, `name`, `arguments`
//! JSON text, `function_call_output` answering an earlier call of the same input, `reasoning`),
//! function tools with a `name`, `tool_choice` naming a declared tool, `max_output_tokens` ≥ 16,
//! `previous_response_id` unknown (the mock keeps nothing). The answer is the `response` object
//! or, streamed, the event sequence of
//! <https://platform.openai.com/docs/api-reference/responses-streaming> with `sequence_number`.
//! Replies follow the shared controls (`[mock:tool=…]`, `[mock:status=…]`, `[mock:words=…]`).

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use crate::body::{spawn_stream, MockBody};
use crate::features;
use crate::openai::error;
use crate::text::{count_tokens, parse_controls_for, reply_text, shape_reply, Stop};
use crate::{
    header_str, json_response, leak_check, mask_key, set_header, sse_response, unix_now, State,
};

const ALLOWED: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "text",
    "max_output_tokens",
    "max_tool_calls",
    "temperature",
    "top_p",
    "top_logprobs",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "stream",
    "stream_options",
    "metadata",
    "store",
    "truncation",
    "include",
    "previous_response_id",
    "conversation",
    "background",
    "service_tier",
    "prompt",
];

fn bad(message: &str, param: Option<&str>, code: Option<&str>) -> Response<MockBody> {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        message,
        param,
        code,
    )
}

fn missing(param: &str) -> Response<MockBody> {
    bad(
        &format!("Missing required parameter: '{param}'."),
        Some(param),
        Some("missing_required_parameter"),
    )
}

fn invalid_type(param: &str, expected: &str) -> Response<MockBody> {
    bad(
        &format!("Invalid type for '{param}': expected {expected}."),
        Some(param),
        Some("invalid_type"),
    )
}

/// OpenAI: `Authorization: Bearer <openai-key>`; Azure: `api-key: <azure-key>`.
pub fn handle(state: &State, headers: &HeaderMap, body: &Bytes, azure: bool) -> Response<MockBody> {
    if let Some(msg) = leak_check(state, headers, body) {
        return bad(&msg, None, None);
    }
    if azure {
        if headers.contains_key("authorization") {
            return crate::azure::status_error(401);
        }
        if header_str(headers, "api-key") != Some(state.azure_key.as_str()) {
            return crate::azure::status_error(401);
        }
    } else {
        let auth = header_str(headers, "authorization").unwrap_or("");
        let key = auth.strip_prefix("Bearer ").unwrap_or("");
        if !state.openai_key_ok(key) {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                &format!("Incorrect API key provided: {}.", mask_key(key)),
                None,
                Some("invalid_api_key"),
            );
        }
    }
    match respond(state, body, if azure { "azure" } else { "openai" }) {
        Ok(r) | Err(r) => r,
    }
}

/// A text of a message's content: the string, or its text parts joined by spaces.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Checks one input item; returns its role for messages.
fn check_item(i: usize, item: &Value, calls: &mut Vec<String>) -> Result<(), Response<MockBody>> {
    let at = format!("input[{i}]");
    let Some(obj) = item.as_object() else {
        return Err(invalid_type(&at, "an object"));
    };
    let kind = match obj.get("type") {
        None if obj.contains_key("role") => "message",
        Some(Value::String(k)) => k.as_str(),
        _ => return Err(missing(&format!("{at}.type"))),
    };
    let string = |name: &str| -> Result<&str, Response<MockBody>> {
        match obj.get(name) {
            Some(Value::String(s)) => Ok(s.as_str()),
            None => Err(missing(&format!("{at}.{name}"))),
            Some(_) => Err(invalid_type(&format!("{at}.{name}"), "a string")),
        }
    };
    match kind {
        "message" => {
            let role = string("role")?;
            if !matches!(role, "user" | "system" | "developer" | "assistant") {
                return Err(bad(
                    &format!("Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'."),
                    Some(&format!("{at}.role")),
                    Some("invalid_value"),
                ));
            }
            match obj.get("content") {
                Some(Value::String(_)) => {}
                Some(Value::Array(parts)) => {
                    for (j, part) in parts.iter().enumerate() {
                        let p = format!("{at}.content[{j}]");
                        let t = part.get("type").and_then(Value::as_str).unwrap_or("");
                        let allowed: &[&str] = if role == "assistant" {
                            &["output_text", "refusal"]
                        } else {
                            &["input_text", "input_image", "input_file"]
                        };
                        if !allowed.contains(&t) {
                            return Err(bad(
                                &format!(
                                    "Invalid value: '{t}'. Supported values are: {}.",
                                    allowed.join(", ")
                                ),
                                Some(&format!("{p}.type")),
                                Some("invalid_value"),
                            ));
                        }
                        let field = match t {
                            "refusal" => "refusal",
                            "input_image" => "image_url",
                            "input_file" => "file_id",
                            _ => "text",
                        };
                        if t == "input_image" {
                            let url = part.get("image_url").and_then(Value::as_str).unwrap_or("");
                            if part.get("file_id").is_none() {
                                features::check_openai_image_url(url).map_err(|m| {
                                    bad(
                                        &m,
                                        Some(&format!("{p}.image_url")),
                                        Some("invalid_image_url"),
                                    )
                                })?;
                            }
                        } else if !part.get(field).is_some_and(Value::is_string) {
                            return Err(missing(&format!("{p}.{field}")));
                        }
                    }
                }
                None => return Err(missing(&format!("{at}.content"))),
                Some(_) => {
                    return Err(invalid_type(
                        &format!("{at}.content"),
                        "a string or an array",
                    ))
                }
            }
        }
        "function_call" => {
            let call_id = string("call_id")?.to_string();
            string("name")?;
            let arguments = string("arguments")?;
            if serde_json::from_str::<Value>(arguments).is_err() {
                return Err(bad(
                    &format!("Invalid '{at}.arguments': not valid JSON."),
                    Some(&format!("{at}.arguments")),
                    Some("invalid_value"),
                ));
            }
            calls.push(call_id);
        }
        "function_call_output" => {
            let call_id = string("call_id")?;
            if !obj
                .get("output")
                .is_some_and(|o| o.is_string() || o.is_array())
            {
                return Err(missing(&format!("{at}.output")));
            }
            if !calls.iter().any(|c| c == call_id) {
                return Err(bad(
                    &format!("No tool call found for function call output with call_id {call_id}."),
                    Some("input"),
                    None,
                ));
            }
        }
        "reasoning" => {
            if !obj.get("summary").is_some_and(Value::is_array) {
                return Err(missing(&format!("{at}.summary")));
            }
        }
        other => {
            return Err(bad(
                &format!("Invalid value: '{other}'."),
                Some(&format!("{at}.type")),
                Some("invalid_value"),
            ))
        }
    }
    Ok(())
}

fn respond(
    state: &State,
    body: &Bytes,
    provider: &str,
) -> Result<Response<MockBody>, Response<MockBody>> {
    let parsed: Value = serde_json::from_slice(body).map_err(|_| {
        bad(
            "We could not parse the JSON body of your request.",
            None,
            None,
        )
    })?;
    let Some(obj) = parsed.as_object() else {
        return Err(invalid_type("body", "an object"));
    };
    for k in obj.keys() {
        if !ALLOWED.contains(&k.as_str()) {
            return Err(bad(
                &format!("Unknown parameter: '{k}'."),
                Some(k),
                Some("unknown_parameter"),
            ));
        }
    }
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(missing("model")),
    };
    if let Some(Value::String(id)) = obj.get("previous_response_id") {
        return Err(bad(
            &format!("Previous response with id '{id}' not found."),
            Some("previous_response_id"),
            Some("previous_response_not_found"),
        ));
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid_type("stream", "a boolean")),
    };
    let max = match obj.get("max_output_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 16 => Some(n),
            _ => {
                return Err(bad(
                    &format!("Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {v} instead."),
                    Some("max_output_tokens"),
                    Some("integer_below_min_value"),
                ))
            }
        },
    };
    // Tools: function tools need a name and object parameters.
    let mut tools: Vec<(String, Value)> = Vec::new();
    if let Some(list) = obj.get("tools").filter(|t| !t.is_null()) {
        let Some(list) = list.as_array() else {
            return Err(invalid_type("tools", "an array"));
        };
        for (i, tool) in list.iter().enumerate() {
            if tool.get("type").and_then(Value::as_str) == Some("function") {
                let Some(name) = tool.get("name").and_then(Value::as_str) else {
                    return Err(missing(&format!("tools[{i}].name")));
                };
                if tool.get("function").is_some() {
                    return Err(bad(
                        &format!("Unknown parameter: 'tools[{i}].function'."),
                        Some(&format!("tools[{i}].function")),
                        Some("unknown_parameter"),
                    ));
                }
                let params = tool
                    .get("parameters")
                    .cloned()
                    .unwrap_or(json!({"type": "object"}));
                tools.push((name.to_string(), params));
            }
        }
    }
    if let Some(Value::Object(choice)) = obj.get("tool_choice") {
        if let Some(name) = choice.get("name").and_then(Value::as_str) {
            if !tools.iter().any(|(n, _)| n == name) {
                return Err(bad(
                    &format!("Tool choice '{name}' not found in 'tools' parameter."),
                    Some("tool_choice"),
                    None,
                ));
            }
        }
    }
    let json_schema = obj
        .get("text")
        .and_then(|t| t.get("format"))
        .filter(|f| {
            matches!(
                f.get("type").and_then(Value::as_str),
                Some("json_schema" | "json_object")
            )
        })
        .map(|f| {
            f.get("schema")
                .cloned()
                .unwrap_or(json!({"type": "object"}))
        });

    // Input.
    let mut calls = Vec::new();
    let (texts, last_user, last_output): (Vec<String>, String, Option<String>) = match obj
        .get("input")
    {
        None => return Err(missing("input")),
        Some(Value::String(s)) => (vec![s.clone()], s.clone(), None),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_item(i, item, &mut calls)?;
            }
            let texts = items
                .iter()
                .filter_map(|item| item.get("content").map(content_text))
                .collect();
            let last_user = items
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .and_then(|m| m.get("content"))
                .map(content_text)
                .unwrap_or_default();
            let last_output = items
                .last()
                .filter(|m| m.get("type").and_then(Value::as_str) == Some("function_call_output"))
                .and_then(|m| m.get("output"))
                .map(content_text);
            (texts, last_user, last_output)
        }
        Some(_) => return Err(invalid_type("input", "a string or an array")),
    };
    let instructions = obj
        .get("instructions")
        .and_then(Value::as_str)
        .unwrap_or("");
    let input_tokens: u64 = texts.iter().map(|t| count_tokens(t) + 3).sum::<u64>()
        + if instructions.is_empty() {
            0
        } else {
            count_tokens(instructions) + 3
        };
    let (cleaned, controls) = parse_controls_for(&last_user, "openai");
    if let Some(code) = controls.status {
        return Err(if provider == "azure" {
            crate::azure::status_error(code)
        } else {
            crate::openai::status_error(code, controls.retry_after_s.unwrap_or(7))
        });
    }

    let n = state.next_id();
    let id = format!("resp_mock{n}");
    let created = unix_now();
    // The answer: calls, or text.
    let mut output: Vec<Value> = Vec::new();
    let mut pieces_out: Vec<String> = Vec::new();
    let mut status = "completed";
    let wanted = if last_output.is_some() {
        Vec::new()
    } else {
        features::requested_tools(&last_user)
    };
    for (i, (name, params)) in wanted
        .iter()
        .filter_map(|w| tools.iter().find(|(n, _)| n == w))
        .enumerate()
    {
        let arguments = features::value_for_schema(params, name).to_string();
        let call_id = format!("call_mock{n}_{i}");
        output.push(
            json!({"type": "function_call", "id": format!("fc_mock{n}_{i}"), "call_id": call_id,
            "name": name, "arguments": arguments, "status": "completed"}),
        );
    }
    if output.is_empty() {
        let reply = match (&last_output, &json_schema) {
            (Some(result), _) => format!("The tool said: {result}"),
            (None, Some(schema)) => features::value_for_schema(schema, "answer").to_string(),
            (None, None) => reply_text(provider, &cleaned, &controls),
        };
        let (pieces, stop) = shape_reply(&reply, &[], max);
        if matches!(stop, Stop::Length) {
            status = "incomplete";
        }
        pieces_out = pieces.iter().map(|p| p.to_string()).collect();
        output.push(json!({"type": "message", "id": format!("msg_mock{n}"), "status": status, "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": pieces.concat()}]}));
    }
    let output_tokens: u64 = if pieces_out.is_empty() {
        output
            .iter()
            .map(|o| count_tokens(o["arguments"].as_str().unwrap_or("")) + 3)
            .sum()
    } else {
        pieces_out.len() as u64
    };
    let usage = json!({
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    });
    let echo = |k: &str, default: Value| {
        obj.get(k)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default)
    };
    let response = |status: &str, output: Value, usage: Value| {
        json!({
            "id": id, "object": "response", "created_at": created, "status": status,
            "background": false, "error": null,
            "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
            "instructions": echo("instructions", Value::Null), "max_output_tokens": echo("max_output_tokens", Value::Null),
            "max_tool_calls": null, "model": model, "output": output,
            "parallel_tool_calls": echo("parallel_tool_calls", json!(true)), "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null}, "service_tier": "default",
            "store": echo("store", json!(true)), "temperature": echo("temperature", json!(1.0)),
            "text": echo("text", json!({"format": {"type": "text"}})), "tool_choice": echo("tool_choice", json!("auto")),
            "tools": echo("tools", json!([])), "top_p": echo("top_p", json!(1.0)), "truncation": "disabled",
            "usage": usage, "user": echo("user", Value::Null), "metadata": echo("metadata", json!({})),
        })
    };
    if !stream {
        let mut r = json_response(StatusCode::OK, &response(status, json!(output), usage));
        set_header(&mut r, "x-request-id", &format!("req_mock{n}"));
        return Ok(r);
    }
    // The event stream, numbered.
    let mut seq = 0u64;
    let mut event = |mut v: Value| -> Bytes {
        let name = v["type"].as_str().unwrap_or("").to_string();
        if let Some(o) = v.as_object_mut() {
            o.insert("sequence_number".into(), json!(seq));
        }
        seq += 1;
        let mut out = format!("event: {name}\ndata: ").into_bytes();
        let _ = serde_json::to_writer(&mut out, &v);
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    };
    let head = vec![
        event(
            json!({"type": "response.created", "response": response("in_progress", json!([]), Value::Null)}),
        ),
        event(
            json!({"type": "response.in_progress", "response": response("in_progress", json!([]), Value::Null)}),
        ),
    ];
    let mut content = Vec::new();
    let mut tail = Vec::new();
    for (i, item) in output.iter().enumerate() {
        let mut added = item.clone();
        added["status"] = json!("in_progress");
        if item["type"] == "message" {
            added["content"] = json!([]);
            let item_id = item["id"].clone();
            let mut head_events = vec![
                event(
                    json!({"type": "response.output_item.added", "output_index": i, "item": added}),
                ),
                event(
                    json!({"type": "response.content_part.added", "item_id": item_id, "output_index": i, "content_index": 0,
                    "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}}),
                ),
            ];
            content.append(&mut head_events);
            for p in &pieces_out {
                content.push(event(json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": i,
                    "content_index": 0, "delta": p, "logprobs": []})));
            }
            let text = item["content"][0]["text"].clone();
            tail.push(event(
                json!({"type": "response.output_text.done", "item_id": item_id, "output_index": i,
                "content_index": 0, "text": text, "logprobs": []}),
            ));
            tail.push(event(
                json!({"type": "response.content_part.done", "item_id": item_id, "output_index": i,
                "content_index": 0, "part": item["content"][0]}),
            ));
        } else {
            added["arguments"] = json!("");
            content.push(event(
                json!({"type": "response.output_item.added", "output_index": i, "item": added}),
            ));
            content.push(event(
                json!({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                "output_index": i, "delta": item["arguments"]}),
            ));
            content.push(event(
                json!({"type": "response.function_call_arguments.done", "item_id": item["id"],
                "output_index": i, "name": item["name"], "arguments": item["arguments"]}),
            ));
        }
        let done =
            event(json!({"type": "response.output_item.done", "output_index": i, "item": item}));
        if item["type"] == "message" {
            tail.push(done);
        } else {
            content.push(done);
        }
    }
    let terminal = if status == "incomplete" {
        "response.incomplete"
    } else {
        "response.completed"
    };
    tail.push(event(
        json!({"type": terminal, "response": response(status, json!(output), usage)}),
    ));
    let mut r = sse_response(spawn_stream(head, content, tail, controls.plan));
    set_header(&mut r, "x-request-id", &format!("req_mock{n}"));
    Ok(r)
}
