//! `POST /v1/embeddings`, strict like OpenAI's
//! (<https://platform.openai.com/docs/api-reference/embeddings/create>).

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use crate::bedrock::vector;
use crate::body::MockBody;
use crate::openai::error;
use crate::text::{count_tokens, parse_controls_for};
use crate::{header_str, json_response, leak_check, State};

const ALLOWED: &[&str] = &["model", "input", "encoding_format", "dimensions", "user"];

fn bad(message: &str, param: Option<&str>) -> Response<MockBody> {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        message,
        param,
        None,
    )
}

fn base64_f32(values: &[f64]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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
        return Err(bad(&msg, None));
    }
    let key = header_str(headers, "authorization").and_then(|a| a.strip_prefix("Bearer "));
    if !key.is_some_and(|k| state.openai_key_ok(k)) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect API key provided.",
            None,
            Some("invalid_api_key"),
        ));
    }
    embed(body, None, |code| {
        error(
            crate::status_from(code),
            "api_error",
            "Mock error.",
            None,
            None,
        )
    })
}

/// The embeddings body and answer, after authentication: shared with the Azure mock, where
/// the deployment (in the path) is the model and `model` in the body is optional.
/// `status_error` is the API's error for a `[mock:status=NNN]` control.
pub fn embed(
    body: &Bytes,
    deployment: Option<&str>,
    status_error: fn(u16) -> Response<MockBody>,
) -> Result<Response<MockBody>, Response<MockBody>> {
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|_| bad("We could not parse the JSON body of your request.", None))?;
    let Some(obj) = parsed.as_object() else {
        return Err(bad("The request body must be a JSON object.", None));
    };
    if let Some(key) = obj.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return Err(bad(
            &format!("Unrecognized request argument supplied: {key}"),
            None,
        ));
    }
    let model = match (deployment, obj.get("model").and_then(Value::as_str)) {
        (Some(d), _) => d,
        (None, Some(m)) if !m.is_empty() => m,
        _ => return Err(bad("you must provide a model parameter", Some("model"))),
    };
    let texts: Vec<String> = match obj.get("input") {
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(list)) if !list.is_empty() => {
            if list.iter().all(Value::is_string) {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            } else if list.iter().all(|v| v.is_u64() || v.is_array()) {
                // Token ids: embed their textual form.
                list.iter().map(Value::to_string).collect()
            } else {
                return Err(bad("'$.input' is invalid.", Some("input")));
            }
        }
        _ => {
            return Err(bad(
                "'$.input' is invalid: it must be a non-empty string or array.",
                Some("input"),
            ))
        }
    };
    let dims = match obj.get("dimensions") {
        None => {
            if model.contains("large") {
                3072
            } else {
                1536
            }
        }
        Some(v) => match v.as_u64() {
            Some(d) if d >= 1 && !model.contains("ada") => d as usize,
            _ => {
                return Err(bad(
                    "dimensions: must be a positive integer (not for ada-002)",
                    Some("dimensions"),
                ))
            }
        },
    };
    let base64 = match obj.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(bad(
                "encoding_format: must be float or base64",
                Some("encoding_format"),
            ))
        }
    };
    for text in &texts {
        if let Some(code) = parse_controls_for(text, "openai").1.status {
            return Err(status_error(code));
        }
    }
    let tokens: u64 = texts.iter().map(|t| count_tokens(t)).sum();
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let v = vector(text, dims);
            let embedding = if base64 {
                json!(base64_f32(&v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    ))
}
