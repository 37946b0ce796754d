//! `POST /v1/chat/completions`, strict like the real OpenAI API.

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::body::{spawn_stream, MockBody};
use crate::text::{count_tokens, parse_controls_for, reply_text, shape_reply, Stop};
use crate::{azure, features};
use crate::{
    header_str, json_response, leak_check, mask_key, set_header, sse_response, status_from,
    unix_now, State,
};

const ALLOWED: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "n",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "seed",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "service_tier",
    "store",
    "metadata",
    "reasoning_effort",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
];

const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

const FINGERPRINT: &str = "fp_mock";

pub fn error(
    status: StatusCode,
    typ: &str,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response<MockBody> {
    json_response(
        status,
        &json!({"error": {"message": message, "type": typ, "param": param, "code": code}}),
    )
}

fn bad(message: &str, param: Option<&str>, code: Option<&str>) -> Response<MockBody> {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        message,
        param,
        code,
    )
}

/// The error a `[mock:status=NNN]` control asks for; a 429 says `retry-after: <retry_after_s>`.
pub fn status_error(code: u16, retry_after_s: u32) -> Response<MockBody> {
    let status = status_from(code);
    let (typ, err_code, msg) = match code {
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided (mock).",
        ),
        403 => (
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
            "Country, region, or territory not supported (mock).",
        ),
        404 => (
            "invalid_request_error",
            Some("model_not_found"),
            "The model does not exist or you do not have access to it (mock).",
        ),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for requests (mock). Please try again in 7s.",
        ),
        500..=599 => (
            "server_error",
            None,
            "The server had an error while processing your request (mock).",
        ),
        _ => ("invalid_request_error", None, "Mock error."),
    };
    let mut r = error(status, typ, msg, None, err_code);
    if code == 429 {
        set_header(&mut r, "retry-after", &retry_after_s.to_string());
    }
    r
}

/// Text of a message's content: a string, or the `text` of its text parts joined by spaces.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn opt_positive_int(obj: &Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(format!(
                "Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {v} instead."
            )),
        },
    }
}

fn validate_message(i: usize, m: &Value) -> Result<(), Response<MockBody>> {
    let Some(m) = m.as_object() else {
        return Err(bad(
            &format!(
                "Invalid type for 'messages[{i}]': expected an object, but got {} instead.",
                type_name(m)
            ),
            Some(&format!("messages[{i}]")),
            Some("invalid_type"),
        ));
    };
    let role = match m.get("role") {
        Some(Value::String(r)) => r.as_str(),
        None => {
            return Err(bad(
                &format!("Missing required parameter: 'messages[{i}].role'."),
                Some(&format!("messages[{i}].role")),
                Some("missing_required_parameter"),
            ))
        }
        Some(other) => {
            return Err(bad(
                &format!(
                    "Invalid type for 'messages[{i}].role': expected a string, but got {} instead.",
                    type_name(other)
                ),
                Some(&format!("messages[{i}].role")),
                Some("invalid_type"),
            ))
        }
    };
    if !ROLES.contains(&role) {
        return Err(bad(
            &format!("Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."),
            Some(&format!("messages[{i}].role")),
            Some("invalid_value"),
        ));
    }
    let has_tool_calls = m
        .get("tool_calls")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    match m.get("content") {
        Some(Value::String(_)) => {}
        Some(Value::Array(parts)) => {
            for (j, p) in parts.iter().enumerate() {
                let typ = p.get("type").and_then(Value::as_str);
                let ok = match typ {
                    Some("text") => p.get("text").is_some_and(Value::is_string),
                    Some("refusal") => p.get("refusal").is_some_and(Value::is_string),
                    Some("image_url") => {
                        let url = p
                            .get("image_url")
                            .and_then(|u| u.get("url"))
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        if let Err(msg) = features::check_openai_image_url(url) {
                            return Err(bad(
                                &msg,
                                Some(&format!("messages[{i}].content[{j}].image_url.url")),
                                Some("invalid_image_url"),
                            ));
                        }
                        true
                    }
                    Some("input_audio") | Some("file") => true,
                    _ => false,
                };
                if !ok {
                    return Err(bad(
                        &format!("Invalid content part 'messages[{i}].content[{j}]'."),
                        Some(&format!("messages[{i}].content[{j}]")),
                        Some("invalid_value"),
                    ));
                }
            }
        }
        None | Some(Value::Null) if role == "assistant" && has_tool_calls => {}
        None => {
            return Err(bad(
                &format!("Missing required parameter: 'messages[{i}].content'."),
                Some(&format!("messages[{i}].content")),
                Some("missing_required_parameter"),
            ))
        }
        Some(other) => {
            return Err(bad(
                &format!("Invalid type for 'messages[{i}].content': expected one of an array of objects or a string, but got {} instead.", type_name(other)),
                Some(&format!("messages[{i}].content")),
                Some("invalid_type"),
            ))
        }
    }
    if role == "tool" && !m.get("tool_call_id").is_some_and(Value::is_string) {
        return Err(bad(
            &format!("Missing required parameter: 'messages[{i}].tool_call_id'."),
            Some(&format!("messages[{i}].tool_call_id")),
            Some("missing_required_parameter"),
        ));
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn handle(state: &State, headers: &HeaderMap, body: &Bytes) -> Response<MockBody> {
    match handle_inner(state, headers, body) {
        Ok(r) | Err(r) => r,
    }
}

fn handle_inner(
    state: &State,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response<MockBody>, Response<MockBody>> {
    if let Some(msg) = leak_check(state, headers, body) {
        return Err(bad(&msg, None, None));
    }
    // Authentication.
    let auth = header_str(headers, "authorization").unwrap_or("");
    if auth.is_empty() {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
            None,
        ));
    }
    let key = auth.strip_prefix("Bearer ").unwrap_or("");
    if !state.openai_key_ok(key) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            &format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                mask_key(if key.is_empty() { auth } else { key })
            ),
            None,
            Some("invalid_api_key"),
        ));
    }

    chat(state, body, "openai", None)
}

/// `/local/v1/chat/completions`: an OpenAI-compatible server without keys and with a
/// narrower field set (like a local Ollama or vLLM): any credential is refused, and so are
/// `store`, `service_tier`, `logprobs` and `metadata`, which such servers do not know.
pub fn handle_local(state: &State, headers: &HeaderMap, body: &Bytes) -> Response<MockBody> {
    if let Some(msg) = leak_check(state, headers, body) {
        return bad(&msg, None, None);
    }
    for name in ["authorization", "api-key", "x-api-key"] {
        if headers.contains_key(name) {
            return bad(
                &format!("this server takes no credentials, got `{name}`"),
                None,
                None,
            );
        }
    }
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) {
        for field in ["store", "service_tier", "logprobs", "metadata"] {
            if obj.contains_key(field) {
                return bad(
                    &format!("Unrecognized request argument supplied: {field}"),
                    Some(field),
                    None,
                );
            }
        }
    }
    match chat(state, body, "local", None) {
        Ok(r) | Err(r) => r,
    }
}

/// The Chat Completions body and answer, after authentication: shared with the Azure mock,
/// which takes the model from the deployment in its path.
pub fn chat(
    state: &State,
    body: &Bytes,
    provider: &str,
    deployment: Option<&str>,
) -> Result<Response<MockBody>, Response<MockBody>> {
    let parsed: Value = serde_json::from_slice(body).map_err(|_| {
        bad("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", None, None)
    })?;
    let Some(obj) = parsed.as_object() else {
        return Err(bad(
            &format!(
                "Invalid type for request body: expected an object, but got {} instead.",
                type_name(&parsed)
            ),
            None,
            Some("invalid_type"),
        ));
    };
    for k in obj.keys() {
        if !ALLOWED.contains(&k.as_str()) {
            return Err(bad(
                &format!("Unrecognized request argument supplied: {k}"),
                None,
                None,
            ));
        }
    }
    // <https://platform.openai.com/docs/api-reference/chat/create#chat-create-reasoning_effort>
    if let Some(effort) = obj.get("reasoning_effort").filter(|e| !e.is_null()) {
        let known = ["none", "minimal", "low", "medium", "high", "xhigh"];
        if !effort.as_str().is_some_and(|e| known.contains(&e)) {
            return Err(bad(
                &format!(
                    "Invalid value: '{}'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'.",
                    effort.as_str().unwrap_or_default()
                ),
                Some("reasoning_effort"),
                Some("invalid_value"),
            ));
        }
    }
    let model = match (deployment, obj.get("model")) {
        (Some(d), _) => d.to_string(),
        (None, Some(Value::String(m))) if !m.is_empty() => m.clone(),
        _ => {
            return Err(bad(
                "you must provide a model parameter",
                Some("model"),
                None,
            ))
        }
    };
    let messages = match obj.get("messages") {
        None => {
            return Err(bad(
                "Missing required parameter: 'messages'.",
                Some("messages"),
                Some("missing_required_parameter"),
            ))
        }
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(bad(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                Some("messages"),
                Some("empty_array"),
            ))
        }
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(bad(
                &format!("Invalid type for 'messages': expected an array, but got {} instead.", type_name(other)),
                Some("messages"),
                Some("invalid_type"),
            ))
        }
    };
    for (i, m) in messages.iter().enumerate() {
        validate_message(i, m)?;
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(bad(
                &format!(
                    "Invalid type for 'stream': expected a boolean, but got {} instead.",
                    type_name(other)
                ),
                Some("stream"),
                Some("invalid_type"),
            ))
        }
    };
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(so) => {
            if !stream {
                return Err(bad(
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                    Some("stream_options"),
                    None,
                ));
            }
            match so.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(bad(
                        "Invalid type for 'stream_options.include_usage': expected a boolean.",
                        Some("stream_options.include_usage"),
                        Some("invalid_type"),
                    ))
                }
            }
        }
    };
    match obj.get("temperature") {
        None | Some(Value::Null) => {}
        Some(t) => match t.as_f64() {
            Some(t) if (0.0..=2.0).contains(&t) => {}
            _ => {
                return Err(bad(
                    &format!("Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got {t} instead."),
                    Some("temperature"),
                    Some("decimal_above_max_value"),
                ))
            }
        },
    }
    let max_tokens = opt_positive_int(obj, "max_tokens")
        .map_err(|m| bad(&m, Some("max_tokens"), Some("integer_below_min_value")))?;
    let max_completion = opt_positive_int(obj, "max_completion_tokens").map_err(|m| {
        bad(
            &m,
            Some("max_completion_tokens"),
            Some("integer_below_min_value"),
        )
    })?;
    let max = match (max_tokens, max_completion) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let stops: Vec<String> = match obj.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) && a.len() <= 4 => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            return Err(bad(
                "Invalid 'stop': expected a string or an array of at most 4 strings.",
                Some("stop"),
                Some("invalid_type"),
            ))
        }
    };

    let tools = validate_tools(obj)?;
    let json_format = validate_response_format(obj)?;

    // Usage and reply.
    let prompt_tokens: u64 = messages
        .iter()
        .map(|m| count_tokens(&content_text(m.get("content"))) + 3)
        .sum();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| content_text(m.get("content")))
        .unwrap_or_default();
    let (cleaned, controls) = parse_controls_for(&last_user, "openai");
    if let Some(code) = controls.status {
        // Azure serves OpenAI's bodies but errors in its own shape.
        return Err(if provider == "azure" {
            crate::azure::status_error(code)
        } else {
            status_error(code, controls.retry_after_s.unwrap_or(7))
        });
    }
    let last_is_tool = messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("tool");
    let calls: Vec<(String, String, String)> = if last_is_tool {
        Vec::new()
    } else {
        features::requested_tools(&last_user)
            .into_iter()
            .filter_map(|name| tools.iter().find(|(n, _)| *n == name).cloned())
            .enumerate()
            .map(|(i, (name, params))| {
                let args = features::value_for_schema(&params, &name).to_string();
                (format!("call_mock{}_{i}", state.next_id()), name, args)
            })
            .collect()
    };
    if !calls.is_empty() {
        return Ok(tool_call_answer(
            &calls,
            &model,
            stream,
            include_usage,
            prompt_tokens,
        ));
    }
    let reply = if last_is_tool {
        let result = messages
            .last()
            .map(|m| content_text(m.get("content")))
            .unwrap_or_default();
        format!("The tool said: {result}")
    } else if let Some(schema) = json_format {
        features::value_for_schema(&schema, "answer").to_string()
    } else {
        reply_text(provider, &cleaned, &controls)
    };
    let (pieces, stop) = shape_reply(&reply, &stops, max);
    let finish = match stop {
        Stop::Length => "length",
        Stop::Natural | Stop::Sequence(_) => "stop",
    };
    let completion_tokens = pieces.len() as u64;
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
        }
    });
    let id = format!("chatcmpl-mock{}", state.next_id());
    let created = unix_now();
    let request_id = format!("req_mock{created}{id}");

    if !stream {
        let content: String = pieces.concat();
        let mut r = json_response(
            StatusCode::OK,
            &json!({
                "id": id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
                    "logprobs": null,
                    "finish_reason": finish
                }],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT
            }),
        );
        set_header(&mut r, "x-request-id", &request_id);
        return Ok(r);
    }

    let chunk = |choices: Value, usage: Option<&Value>| -> Bytes {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        });
        if include_usage {
            if let Some(o) = c.as_object_mut() {
                o.insert("usage".into(), usage.cloned().unwrap_or(Value::Null));
            }
        }
        sse_data(&c)
    };
    // Azure's content filter annotates its streams (`[mock:content_filter=1]`, Azure only).
    let filtered = provider == "azure" && controls.content_filter;
    let delta_choice = |delta: Value, finish: Option<&str>| {
        let mut choice =
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish});
        if filtered {
            choice["content_filter_results"] = azure::safe_filter_results();
        }
        json!([choice])
    };
    let mut head = Vec::new();
    if filtered {
        head.push(sse_data(&azure::prompt_filter_chunk()));
    }
    head.push(chunk(
        delta_choice(json!({"role": "assistant", "content": ""}), None),
        None,
    ));
    let content: Vec<Bytes> = pieces
        .iter()
        .map(|p| chunk(delta_choice(json!({"content": p}), None), None))
        .collect();
    let mut tail = vec![chunk(delta_choice(json!({}), Some(finish)), None)];
    if filtered {
        let length = pieces.iter().map(|p| p.len()).sum::<usize>();
        tail.push(sse_data(&azure::annotation_chunk(length)));
    }
    if include_usage {
        tail.push(chunk(json!([]), Some(&usage)));
    }
    tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let mut r = sse_response(spawn_stream(head, content, tail, controls.plan));
    set_header(&mut r, "x-request-id", &request_id);
    Ok(r)
}

fn sse_data(v: &Value) -> Bytes {
    let mut out = b"data: ".to_vec();
    let _ = serde_json::to_writer(&mut out, v);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// `tools` (each `{type: function, function: {name, parameters?}}`) and `tool_choice`; returns
/// each tool's name and parameter schema.
fn validate_tools(obj: &Map<String, Value>) -> Result<Vec<(String, Value)>, Response<MockBody>> {
    let mut out = Vec::new();
    match obj.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tools)) => {
            for (i, tool) in tools.iter().enumerate() {
                let name = tool
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str);
                match (tool.get("type").and_then(Value::as_str), name) {
                    (Some("function"), Some(name)) if !name.is_empty() => {
                        let params = tool
                            .get("function")
                            .and_then(|f| f.get("parameters"))
                            .cloned()
                            .unwrap_or(json!({"type": "object", "properties": {}}));
                        out.push((name.to_string(), params));
                    }
                    _ => {
                        return Err(bad(
                            &format!("Missing required parameter: 'tools[{i}].function.name'."),
                            Some(&format!("tools[{i}].function.name")),
                            Some("missing_required_parameter"),
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(bad(
                "Invalid type for 'tools'.",
                Some("tools"),
                Some("invalid_type"),
            ))
        }
    }
    if let Some(choice) = obj.get("tool_choice").filter(|c| !c.is_null()) {
        if out.is_empty() {
            return Err(bad(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                Some("tool_choice"),
                None,
            ));
        }
        let ok = match choice {
            Value::String(s) => matches!(s.as_str(), "none" | "auto" | "required"),
            Value::Object(o) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .is_some_and(|n| out.iter().any(|(name, _)| name == n)),
            _ => false,
        };
        if !ok {
            return Err(bad(
                "Invalid value for 'tool_choice'.",
                Some("tool_choice"),
                Some("invalid_value"),
            ));
        }
    }
    Ok(out)
}

/// `response_format`: the schema of the JSON answer it asks for, if any.
fn validate_response_format(obj: &Map<String, Value>) -> Result<Option<Value>, Response<MockBody>> {
    let Some(format) = obj.get("response_format").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(
            json!({"type": "object", "properties": {"answer": {"type": "string"}}}),
        )),
        Some("json_schema") => {
            let spec = format.get("json_schema");
            let name_ok = spec
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !name_ok {
                return Err(bad(
                    "Missing required parameter: 'response_format.json_schema.name'.",
                    Some("response_format.json_schema.name"),
                    Some("missing_required_parameter"),
                ));
            }
            Ok(Some(
                spec.and_then(|s| s.get("schema"))
                    .cloned()
                    .unwrap_or(json!({"type": "object"})),
            ))
        }
        _ => Err(bad(
            "Invalid value for 'response_format.type'.",
            Some("response_format.type"),
            Some("invalid_value"),
        )),
    }
}

/// An answer that calls tools: `finish_reason: tool_calls`, `content: null`; streamed, each
/// call's name first and its arguments in two fragments, as OpenAI streams them.
fn tool_call_answer(
    calls: &[(String, String, String)],
    model: &str,
    stream: bool,
    include_usage: bool,
    prompt_tokens: u64,
) -> Response<MockBody> {
    let completion_tokens: u64 = calls.iter().map(|(_, _, a)| count_tokens(a) + 3).sum();
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let id = format!("chatcmpl-mock-tools-{}", calls.len());
    let created = unix_now();
    if !stream {
        let tool_calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
        return json_response(
            StatusCode::OK,
            &json!({
                "id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                    "refusal": null, "tool_calls": tool_calls}, "logprobs": null,
                    "finish_reason": "tool_calls"}],
                "usage": usage, "system_fingerprint": FINGERPRINT
            }),
        );
    }
    let chunk = |delta: Value, finish: Option<&str>, usage: Option<&Value>| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if include_usage {
            c["usage"] = usage.cloned().unwrap_or(Value::Null);
        }
        sse_data(&c)
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": null}),
        None,
        None,
    )];
    for (index, (call_id, name, args)) in calls.iter().enumerate() {
        frames.push(chunk(
            json!({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                   "function": {"name": name, "arguments": ""}}]}),
            None,
            None,
        ));
        let mid = args.len() / 2;
        let (a, b) = args.split_at(
            args.char_indices()
                .map(|(i, _)| i)
                .find(|&i| i >= mid)
                .unwrap_or(0),
        );
        for piece in [a, b] {
            frames.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                None,
                None,
            ));
        }
    }
    frames.push(chunk(json!({}), Some("tool_calls"), None));
    if include_usage {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": [], "usage": usage});
        c["system_fingerprint"] = json!(FINGERPRINT);
        frames.push(sse_data(&c));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    sse_response(spawn_stream(
        frames,
        Vec::new(),
        Vec::new(),
        Default::default(),
    ))
}
