//! Embeddings on the Gemini API and Vertex AI, strict like the real ones (authentication is
//! checked by the caller, [`crate::gemini`]):
//!
//! - Gemini API `models/{model}:embedContent` and `:batchEmbedContents`
//!   (<https://ai.google.dev/api/embeddings>): `content.parts` required (text parts), known
//!   fields only, `outputDimensionality` 1..=3072; in a batch, `requests[].model` is required and
//!   must be `models/{model}` of the path. No token counts in the answer, as Google sends none.
//! - Vertex AI `publishers/google/models/{model}:predict`
//!   (<https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api>):
//!   `instances[].content` required, `parameters.outputDimensionality`; each prediction carries
//!   `statistics.token_count`.
//!
//! `[mock:status=NNN]` (or `[mock:gemini_status=NNN]`) in any text answers that error.

use hyper::Response;
use serde_json::{json, Map, Value};

use crate::bedrock::vector;
use crate::body::MockBody;
use crate::gemini::error;
use crate::text::{count_tokens, parse_controls_for};
use crate::{json_response, set_header};

type Reply = Result<Response<MockBody>, Response<MockBody>>;

const EMBED_FIELDS: &[&str] = &[
    "model",
    "content",
    "taskType",
    "title",
    "outputDimensionality",
];

fn bad(message: &str) -> Response<MockBody> {
    error(400, message)
}

fn unknown(name: &str, at: &str) -> Response<MockBody> {
    bad(&format!(
        "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
    ))
}

/// Default size of the model's vectors.
fn default_dims(model: &str) -> usize {
    if model.starts_with("gemini-embedding") {
        3072
    } else {
        768
    }
}

fn dimensions(value: Option<&Value>, at: &str) -> Result<Option<usize>, Response<MockBody>> {
    match value {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=3072).contains(&n) => Ok(Some(n as usize)),
            _ => Err(bad(&format!(
                "* {at}: outputDimensionality must be an integer in [1, 3072]"
            ))),
        },
    }
}

/// The error a `[mock:status=NNN]` control in any of `texts` asks for.
fn status_control(texts: &[String]) -> Result<(), Response<MockBody>> {
    for text in texts {
        if let Some(code) = parse_controls_for(text, "gemini").1.status {
            let mut r = error(code, "Mock error (requested by the test).");
            if code == 429 {
                set_header(&mut r, "retry-after", "7");
            }
            return Err(r);
        }
    }
    Ok(())
}

/// One `EmbedContentRequest`: its text and output size. Its `model` is optional alone and
/// required in a batch; when present it must be the path's.
fn embed_request(
    obj: &Map<String, Value>,
    at: &str,
    path_model: &str,
    in_batch: bool,
) -> Result<(String, usize), Response<MockBody>> {
    if let Some(k) = obj.keys().find(|k| !EMBED_FIELDS.contains(&k.as_str())) {
        return Err(unknown(k, at));
    }
    match obj.get("model").map(Value::as_str) {
        None if in_batch => {
            return Err(bad(&format!("* {at}.model: model is required")));
        }
        None => {}
        Some(Some(m)) if m == format!("models/{path_model}") => {}
        Some(_) => {
            return Err(bad(&format!(
                "* {at}.model: Model name must be the same as the one in the URL (models/{path_model})."
            )))
        }
    }
    let parts = match obj.get("content").and_then(|c| c.get("parts")) {
        Some(Value::Array(p)) if !p.is_empty() => p,
        _ => {
            return Err(bad(&format!(
                "* {at}.content: content.parts must not be empty"
            )))
        }
    };
    let mut text = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        match part.as_object().map(|p| (p.len(), p.get("text"))) {
            Some((1, Some(Value::String(t)))) => text.push(t.as_str()),
            _ => {
                return Err(bad(&format!(
                    "* {at}.content.parts[{j}]: only text parts can be embedded"
                )))
            }
        }
    }
    let text = text.join(" ");
    if text.trim().is_empty() {
        return Err(bad(&format!("* {at}.content: text content is empty")));
    }
    let dims = dimensions(obj.get("outputDimensionality"), at)?.unwrap_or(default_dims(path_model));
    Ok((text, dims))
}

/// `embedContent` and `batchEmbedContents` on the Gemini API.
pub fn gemini(model: &str, method: &str, body: &Value) -> Reply {
    let Some(obj) = body.as_object() else {
        return Err(bad("Invalid JSON payload received. Expected an object."));
    };
    if method == "embedContent" {
        let (text, dims) = embed_request(obj, "EmbedContentRequest", model, false)?;
        status_control(std::slice::from_ref(&text))?;
        return Ok(json_response(
            hyper::StatusCode::OK,
            &json!({"embedding": {"values": vector(&text, dims)}}),
        ));
    }
    if let Some(k) = obj.keys().find(|k| *k != "requests") {
        return Err(unknown(k, ""));
    }
    let requests = match obj.get("requests") {
        Some(Value::Array(r)) if !r.is_empty() && r.len() <= 100 => r,
        _ => {
            return Err(bad(
                "* BatchEmbedContentsRequest.requests: between 1 and 100 requests are required",
            ))
        }
    };
    let mut inputs = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        let Some(r) = request.as_object() else {
            return Err(bad(&format!("* requests[{i}]: must be an object")));
        };
        inputs.push(embed_request(r, &format!("requests[{i}]"), model, true)?);
    }
    let texts: Vec<String> = inputs.iter().map(|(t, _)| t.clone()).collect();
    status_control(&texts)?;
    let embeddings: Vec<Value> = inputs
        .iter()
        .map(|(text, dims)| json!({"values": vector(text, *dims)}))
        .collect();
    Ok(json_response(
        hyper::StatusCode::OK,
        &json!({ "embeddings": embeddings }),
    ))
}

/// `predict` on Vertex AI text embedding models.
pub fn vertex_predict(model: &str, body: &Value) -> Reply {
    let Some(obj) = body.as_object() else {
        return Err(bad("Invalid JSON payload received. Expected an object."));
    };
    if let Some(k) = obj.keys().find(|k| *k != "instances" && *k != "parameters") {
        return Err(unknown(k, ""));
    }
    let instances = match obj.get("instances") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => return Err(bad("instances: at least one instance is required")),
    };
    let mut dims = default_dims(model);
    if let Some(params) = obj.get("parameters") {
        let Some(params) = params.as_object() else {
            return Err(bad("parameters: must be an object"));
        };
        if let Some(k) = params
            .keys()
            .find(|k| *k != "outputDimensionality" && *k != "autoTruncate")
        {
            return Err(unknown(k, "parameters"));
        }
        if let Some(n) = dimensions(params.get("outputDimensionality"), "parameters")? {
            dims = n;
        }
    }
    let mut texts = Vec::with_capacity(instances.len());
    for (i, instance) in instances.iter().enumerate() {
        let Some(inst) = instance.as_object() else {
            return Err(bad(&format!("instances[{i}]: must be an object")));
        };
        if let Some(k) = inst
            .keys()
            .find(|k| !["content", "task_type", "title"].contains(&k.as_str()))
        {
            return Err(unknown(k, &format!("instances[{i}]")));
        }
        match inst.get("content").and_then(Value::as_str) {
            Some(t) if !t.trim().is_empty() => texts.push(t.to_string()),
            _ => {
                return Err(bad(&format!(
                    "instances[{i}].content: a non-empty string is required"
                )))
            }
        }
    }
    status_control(&texts)?;
    let predictions: Vec<Value> = texts
        .iter()
        .map(|t| {
            json!({"embeddings": {"values": vector(t, dims),
                   "statistics": {"truncated": false, "token_count": count_tokens(t)}}})
        })
        .collect();
    let characters: usize = texts.iter().map(|t| t.chars().count()).sum();
    Ok(json_response(
        hyper::StatusCode::OK,
        &json!({"predictions": predictions, "metadata": {"billableCharacterCount": characters}}),
    ))
}
