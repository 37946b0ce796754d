//! Gemini `generateContent` / `streamGenerateContent`, strict like the real APIs:
//! AI Studio (`/v1beta/models/{model}:…`, `x-goog-api-key`) and Vertex AI
//! (`/v1/projects/{p}/locations/{r}/publishers/google/models/{model}:…`, OAuth bearer token).
//!
//! Reference: <https://ai.google.dev/api/generate-content>. Checked like the real API: only
//! `user`/`model` roles, non-empty `parts` holding exactly one kind of data each, base64 inline
//! data, the system prompt only in `systemInstruction`, known fields only (also inside
//! `generationConfig` and schemas: Gemini's schema subset has no `additionalProperties`).

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::body::{spawn_stream, MockBody};
use crate::features;
use crate::text::{count_tokens, parse_controls_for, reply_text, shape_reply, Stop};
use crate::{header_str, json_response, leak_check, set_header, sse_response, State};

/// Which API a path belongs to, and its model and method.
pub struct Target<'a> {
    pub vertex: bool,
    pub model: &'a str,
    pub method: &'a str,
}

/// Parses a Gemini or Vertex model path (`…/models/{model}:{method}`).
pub fn target(path: &str) -> Option<Target<'_>> {
    let (vertex, rest) = if let Some(rest) = path.strip_prefix("/v1beta/models/") {
        (false, rest)
    } else if let Some(rest) = path.strip_prefix("/v1/projects/") {
        // {project}/locations/{region}/publishers/google/models/{model}:{method}
        let mut it = rest.splitn(7, '/');
        let (_project, loc, _region, publishers, google, models, rest) = (
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
            it.next()?,
        );
        if (loc, publishers, google, models) != ("locations", "publishers", "google", "models") {
            return None;
        }
        (true, rest)
    } else {
        return None;
    };
    let (model, method) = rest.split_once(':')?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    Some(Target {
        vertex,
        model,
        method,
    })
}

fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

pub fn error(code: u16, message: &str) -> Response<MockBody> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "status": status_name(code)}}),
    )
}

fn bad(message: &str) -> Response<MockBody> {
    error(400, message)
}

fn unknown(name: &str, at: &str) -> Response<MockBody> {
    bad(&format!(
        "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
    ))
}

const REQUEST_FIELDS: &[&str] = &[
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
    "labels",
];

const GENERATION_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
];

const SCHEMA_FIELDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

fn check_schema(schema: &Value, at: &str) -> Result<(), Response<MockBody>> {
    let Some(obj) = schema.as_object() else {
        return Err(bad(&format!(
            "Invalid value at '{at}': a schema must be an object"
        )));
    };
    for (k, v) in obj {
        if !SCHEMA_FIELDS.contains(&k.as_str()) {
            return Err(unknown(k, at));
        }
        match k.as_str() {
            "type" if !v.is_string() => {
                return Err(bad(&format!(
                    "Invalid value at '{at}.type': a single type name"
                )))
            }
            "properties" => {
                for (name, sub) in v.as_object().into_iter().flatten() {
                    check_schema(sub, &format!("{at}.properties[{name}]"))?;
                }
            }
            "items" => check_schema(v, &format!("{at}.items"))?,
            _ => {}
        }
    }
    Ok(())
}

/// One part: exactly one data field. Returns its text (for token counts and the reply).
fn check_part(part: &Value, at: &str, role: &str) -> Result<String, Response<MockBody>> {
    let Some(obj) = part.as_object() else {
        return Err(bad(&format!(
            "Invalid value at '{at}': a part must be an object"
        )));
    };
    let data: Vec<&String> = obj
        .keys()
        .filter(|k| *k != "thought" && *k != "thoughtSignature")
        .collect();
    if data.len() != 1 {
        return Err(bad(&format!(
            "Invalid value at '{at}': a part must hold exactly one of text, inlineData, functionCall, functionResponse, fileData"
        )));
    }
    match (data[0].as_str(), obj.get(data[0].as_str())) {
        ("text", Some(Value::String(t))) => Ok(t.clone()),
        ("inlineData", Some(blob)) => {
            let mime = blob.get("mimeType").and_then(Value::as_str).unwrap_or("");
            let b64 = blob.get("data").and_then(Value::as_str).unwrap_or("");
            if mime.is_empty() {
                return Err(bad(&format!("{at}.inlineData.mimeType: required")));
            }
            if !features::is_base64(b64) {
                return Err(bad(&format!(
                    "Invalid value at '{at}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
                )));
            }
            Ok(String::new())
        }
        ("functionCall", Some(call)) => {
            if role != "model" {
                return Err(bad("functionCall parts belong to model turns"));
            }
            if !call.get("name").is_some_and(Value::is_string)
                || !call.get("args").is_none_or(Value::is_object)
            {
                return Err(bad(&format!(
                    "{at}.functionCall: name (string) and args (object) required"
                )));
            }
            Ok(String::new())
        }
        ("functionResponse", Some(resp)) => {
            if role != "user" {
                return Err(bad("functionResponse parts belong to user turns"));
            }
            if !resp.get("name").is_some_and(Value::is_string)
                || !resp.get("response").is_some_and(Value::is_object)
            {
                return Err(bad(&format!(
                    "{at}.functionResponse: name (string) and response (object) required"
                )));
            }
            Ok(resp
                .get("response")
                .map(Value::to_string)
                .unwrap_or_default())
        }
        ("fileData", Some(_)) => Ok(String::new()),
        (name, _) => Err(unknown(name, at)),
    }
}

struct Declared {
    name: String,
    parameters: Value,
}

fn check_tools(obj: &Map<String, Value>) -> Result<Vec<Declared>, Response<MockBody>> {
    let mut out = Vec::new();
    let Some(tools) = obj.get("tools") else {
        return Ok(out);
    };
    let Some(tools) = tools.as_array() else {
        return Err(bad("Invalid value at 'tools': a list"));
    };
    for (i, tool) in tools.iter().enumerate() {
        for (k, v) in tool.as_object().into_iter().flatten() {
            if k != "functionDeclarations" {
                continue; // googleSearch, codeExecution, …
            }
            for (j, decl) in v.as_array().into_iter().flatten().enumerate() {
                let at = format!("tools[{i}].function_declarations[{j}]");
                for key in decl.as_object().into_iter().flatten().map(|(k, _)| k) {
                    if ![
                        "name",
                        "description",
                        "parameters",
                        "parametersJsonSchema",
                        "response",
                    ]
                    .contains(&key.as_str())
                    {
                        return Err(unknown(key, &at));
                    }
                }
                let Some(name) = decl.get("name").and_then(Value::as_str) else {
                    return Err(bad(&format!("{at}.name: required")));
                };
                let parameters = decl.get("parameters").cloned().unwrap_or(json!({}));
                if decl.get("parameters").is_some() {
                    check_schema(&parameters, &format!("{at}.parameters"))?;
                    if parameters
                        .get("type")
                        .and_then(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        == Some("object".into())
                        && parameters
                            .get("properties")
                            .is_none_or(|p| p.as_object().is_some_and(Map::is_empty))
                    {
                        return Err(bad(&format!(
                            "* GenerateContentRequest.{at}.parameters.properties: should be non-empty for OBJECT type"
                        )));
                    }
                }
                out.push(Declared {
                    name: name.to_string(),
                    parameters,
                });
            }
        }
    }
    if let Some(config) = obj.get("toolConfig") {
        let fc = config.get("functionCallingConfig");
        let mode = fc
            .and_then(|c| c.get("mode"))
            .and_then(Value::as_str)
            .unwrap_or("AUTO");
        if !["AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"].contains(&mode) {
            return Err(bad(&format!(
                "Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"{mode}\""
            )));
        }
        if let Some(names) = fc.and_then(|c| c.get("allowedFunctionNames")) {
            if mode != "ANY" {
                return Err(bad(
                    "allowed_function_names may only be set when mode is ANY",
                ));
            }
            for n in names.as_array().into_iter().flatten() {
                if !out.iter().any(|d| Some(d.name.as_str()) == n.as_str()) {
                    return Err(bad("allowed_function_names names an undeclared function"));
                }
            }
        }
    }
    Ok(out)
}

pub fn handle(
    state: &State,
    headers: &HeaderMap,
    query: Option<&str>,
    target: &Target<'_>,
    body: &Bytes,
) -> Response<MockBody> {
    match handle_inner(state, headers, query, target, body) {
        Ok(r) | Err(r) => r,
    }
}

fn handle_inner(
    state: &State,
    headers: &HeaderMap,
    query: Option<&str>,
    target: &Target<'_>,
    body: &Bytes,
) -> Result<Response<MockBody>, Response<MockBody>> {
    if let Some(msg) = leak_check(state, headers, body) {
        return Err(bad(&msg));
    }
    if target.vertex {
        let token = header_str(headers, "authorization").and_then(|a| a.strip_prefix("Bearer "));
        if token != Some(state.vertex_token.as_str()) {
            return Err(error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            ));
        }
    } else {
        if headers.contains_key("authorization") {
            return Err(error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            ));
        }
        if header_str(headers, "x-goog-api-key") != Some(state.gemini_key.as_str()) {
            // Google's documented answer (https://cloud.google.com/apis/design/errors#error_info).
            return Err(json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": [{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"}
                    }]
                }}),
            ));
        }
    }
    let stream = match (target.method, target.vertex) {
        ("generateContent", _) => false,
        ("streamGenerateContent", _) => true,
        ("embedContent" | "batchEmbedContents", false) | ("predict", true) => {
            let parsed: Value = serde_json::from_slice(body)
                .map_err(|e| bad(&format!("Invalid JSON payload received. {e}")))?;
            return if target.vertex {
                crate::gemini_embed::vertex_predict(target.model, &parsed)
            } else {
                crate::gemini_embed::gemini(target.model, target.method, &parsed)
            };
        }
        (other, _) => return Err(error(404, &format!("Method not found: {other}"))),
    };
    let sse = query.unwrap_or("").split('&').any(|kv| kv == "alt=sse");

    let parsed: Value = serde_json::from_slice(body)
        .map_err(|e| bad(&format!("Invalid JSON payload received. {e}")))?;
    let Some(obj) = parsed.as_object() else {
        return Err(bad("Invalid JSON payload received. Expected an object."));
    };
    for k in obj.keys() {
        if !REQUEST_FIELDS.contains(&k.as_str()) {
            return Err(unknown(k, ""));
        }
    }
    let contents = match obj.get("contents") {
        Some(Value::Array(c)) if !c.is_empty() => c,
        _ => {
            return Err(bad(
                "* GenerateContentRequest.contents: contents is not specified",
            ))
        }
    };
    let mut prompt_tokens = 0;
    let mut last_user_text = String::new();
    let mut last_is_tool_result = false;
    let mut tool_result = String::new();
    for (i, content) in contents.iter().enumerate() {
        let role = content.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "model" {
            return Err(bad(&format!(
                "Please use a valid role: user, model. (contents[{i}].role: \"{role}\")"
            )));
        }
        let parts = match content.get("parts") {
            Some(Value::Array(p)) if !p.is_empty() => p,
            _ => {
                return Err(bad(&format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )))
            }
        };
        let mut text = Vec::new();
        let mut results = Vec::new();
        for (j, part) in parts.iter().enumerate() {
            let t = check_part(part, &format!("contents[{i}].parts[{j}]"), role)?;
            if part.get("functionResponse").is_some() {
                results.push(t);
            } else if !t.is_empty() {
                text.push(t);
            }
        }
        let joined = text.join(" ");
        prompt_tokens += count_tokens(&joined) + count_tokens(&results.join(" ")) + 3;
        if role == "user" {
            last_is_tool_result = !results.is_empty();
            if last_is_tool_result {
                tool_result = results.join(" ");
            } else {
                last_user_text = joined;
            }
        } else {
            last_is_tool_result = false;
        }
    }
    if let Some(system) = obj.get("systemInstruction") {
        let parts = system.get("parts").and_then(Value::as_array);
        let Some(parts) = parts.filter(|p| !p.is_empty()) else {
            return Err(bad("systemInstruction.parts must not be empty"));
        };
        if system
            .get("role")
            .and_then(Value::as_str)
            .is_some_and(|r| r != "user" && r != "system")
        {
            return Err(bad("systemInstruction.role must be absent"));
        }
        for (j, part) in parts.iter().enumerate() {
            let t = check_part(part, &format!("system_instruction.parts[{j}]"), "user")?;
            prompt_tokens += count_tokens(&t) + 3;
        }
    }
    let declared = check_tools(obj)?;
    let config = obj.get("generationConfig").cloned().unwrap_or(json!({}));
    let Some(config) = config.as_object() else {
        return Err(bad("generationConfig must be an object"));
    };
    for k in config.keys() {
        if !GENERATION_FIELDS.contains(&k.as_str()) {
            return Err(unknown(k, "generation_config"));
        }
    }
    if let Some(n) = config.get("candidateCount") {
        if n.as_u64() != Some(1) {
            return Err(bad(
                "Only one candidate can be specified in the current model",
            ));
        }
    }
    let max = config.get("maxOutputTokens").and_then(Value::as_u64);
    let stops: Vec<String> = config
        .get("stopSequences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mime = config.get("responseMimeType").and_then(Value::as_str);
    if let Some(m) = mime {
        if !["text/plain", "application/json", "text/x.enum"].contains(&m) {
            return Err(bad(&format!("Unsupported response mime type: {m}")));
        }
    }
    if let Some(schema) = config.get("responseSchema") {
        if mime != Some("application/json") && mime != Some("text/x.enum") {
            return Err(bad(
                "responseSchema requires responseMimeType application/json",
            ));
        }
        check_schema(schema, "generation_config.response_schema")?;
    }
    let thoughts = check_thinking(config.get("thinkingConfig"), target.model)?;

    let (cleaned, controls) = parse_controls_for(&last_user_text, "gemini");
    if let Some(code) = controls.status {
        let mut r = error(code, "Mock error (requested by the test).");
        if code == 429 {
            set_header(&mut r, "retry-after", "7");
        }
        return Err(r);
    }
    let model = target.model;
    let response_id = format!("mockresp{}", state.next_id());
    // With `includeThoughts`, a thought summary part comes first and its tokens are counted
    // apart (`thoughtsTokenCount`), as Gemini 2.5 answers.
    let thought =
        thoughts.then(|| format!("**Considering the request** The user wrote: {last_user_text}"));
    let thought_tokens = thought.as_deref().map_or(0, count_tokens);
    let usage = |candidates: u64| {
        let mut usage = json!({"promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt_tokens + candidates + thought_tokens});
        if thought_tokens > 0 {
            usage["thoughtsTokenCount"] = thought_tokens.into();
        }
        usage
    };
    let thought_part = thought
        .as_ref()
        .map(|t| json!({"text": t, "thought": true}));

    // Tool calls: one chunk with every call and finishReason STOP.
    let calls: Vec<Value> = if last_is_tool_result {
        Vec::new()
    } else {
        features::requested_tools(&last_user_text)
            .into_iter()
            .filter_map(|name| declared.iter().find(|d| d.name == name))
            .map(|d| {
                json!({"functionCall": {"name": d.name,
                       "args": features::value_for_schema(&d.parameters, &d.name)}})
            })
            .collect()
    };
    if !calls.is_empty() {
        let tokens = calls.len() as u64 * 5;
        let answer = json!({
            "candidates": [{"content": {"role": "model", "parts": calls},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage(tokens), "modelVersion": model, "responseId": response_id
        });
        return Ok(if stream {
            streamed(vec![answer], Vec::new(), sse, Default::default())
        } else {
            json_response(StatusCode::OK, &answer)
        });
    }

    let reply = if last_is_tool_result {
        format!("The tool said: {tool_result}")
    } else if mime == Some("application/json") {
        let schema = config
            .get("responseSchema")
            .cloned()
            .unwrap_or(json!({"type": "object", "properties": {"answer": {"type": "string"}}}));
        features::value_for_schema(&schema, "answer").to_string()
    } else {
        reply_text("gemini", &cleaned, &controls)
    };
    let (pieces, stop) = shape_reply(&reply, &stops, max);
    let finish = match stop {
        Stop::Length => "MAX_TOKENS",
        Stop::Natural | Stop::Sequence(_) => "STOP",
    };
    let candidates = pieces.len() as u64;
    if !stream {
        let parts: Vec<Value> = thought_part
            .into_iter()
            .chain([json!({"text": pieces.concat()})])
            .collect();
        return Ok(json_response(
            StatusCode::OK,
            &json!({
                "candidates": [{"content": {"role": "model", "parts": parts},
                                "finishReason": finish, "index": 0}],
                "usageMetadata": usage(candidates), "modelVersion": model, "responseId": response_id
            }),
        ));
    }
    let thought_chunk = thought_part.map(|part| {
        json!({"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}],
               "usageMetadata": usage(0), "modelVersion": model, "responseId": response_id})
    });
    let content: Vec<Value> = thought_chunk
        .into_iter()
        .chain(pieces.iter().enumerate().map(|(i, p)| {
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}],
                   "usageMetadata": usage(i as u64 + 1),
                   "modelVersion": model, "responseId": response_id})
        }))
        .collect();
    let tail = vec![json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                        "finishReason": finish, "index": 0}],
        "usageMetadata": usage(candidates), "modelVersion": model, "responseId": response_id
    })];
    Ok(streamed(content, tail, sse, controls.plan))
}

/// `generationConfig.thinkingConfig` (<https://ai.google.dev/api/generate-content#ThinkingConfig>):
/// `thinkingBudget` an integer (`-1` dynamic; 0..=24576 on Flash models, 128..=32768 on Pro,
/// which cannot turn thinking off), `includeThoughts` a boolean, `thinkingLevel` a level name
/// and never with a budget. Returns whether thought summaries are to be included.
fn check_thinking(config: Option<&Value>, model: &str) -> Result<bool, Response<MockBody>> {
    let Some(config) = config else {
        return Ok(false);
    };
    let Some(obj) = config.as_object() else {
        return Err(bad(
            "Invalid value at 'generation_config.thinking_config': an object",
        ));
    };
    for k in obj.keys() {
        if !["thinkingBudget", "includeThoughts", "thinkingLevel"].contains(&k.as_str()) {
            return Err(unknown(k, "generation_config.thinking_config"));
        }
    }
    if obj.contains_key("thinkingBudget") && obj.contains_key("thinkingLevel") {
        return Err(bad(
            "You can only set only one of thinking budget and thinking level.",
        ));
    }
    let budget = match obj.get("thinkingBudget") {
        None => None,
        Some(b) => Some(b.as_i64().ok_or_else(|| {
            bad("Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32)")
        })?),
    };
    let (low, high) = if model.contains("pro") {
        (128, 32768)
    } else {
        (0, 24576)
    };
    if let Some(b) = budget.filter(|b| *b != -1 && !(low..=high).contains(b)) {
        return Err(bad(&format!(
            "The thinking budget {b} is invalid. Please choose a value between {low} and {high}."
        )));
    }
    if let Some(level) = obj.get("thinkingLevel") {
        if !level.as_str().is_some_and(|l| {
            ["minimal", "low", "medium", "high"].contains(&l.to_ascii_lowercase().as_str())
        }) {
            return Err(bad(
                "Invalid value at 'generation_config.thinking_config.thinking_level'",
            ));
        }
    }
    let include =
        match obj.get("includeThoughts") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad(
                "Invalid value at 'generation_config.thinking_config.include_thoughts' (TYPE_BOOL)",
            )),
        };
    Ok(include && budget != Some(0))
}

/// `alt=sse`: one event per chunk (CRLF-separated, as Google sends them); otherwise the
/// chunks as one JSON array, as the plain stream method answers.
fn streamed(
    content: Vec<Value>,
    tail: Vec<Value>,
    sse: bool,
    plan: crate::body::StreamPlan,
) -> Response<MockBody> {
    if !sse {
        let all: Vec<Value> = content.into_iter().chain(tail).collect();
        return json_response(StatusCode::OK, &Value::Array(all));
    }
    let frame = |v: &Value| {
        let mut out = b"data: ".to_vec();
        let _ = serde_json::to_writer(&mut out, v);
        out.extend_from_slice(b"\r\n\r\n");
        Bytes::from(out)
    };
    let content = content.iter().map(frame).collect();
    let tail = tail.iter().map(frame).collect();
    sse_response(spawn_stream(Vec::new(), content, tail, plan))
}
