//! `POST /v1/messages/count_tokens` on a backend that has no such endpoint: an estimate,
//! answered by translate itself in Anthropic's shape `{"input_tokens": N}`
//! (<https://docs.anthropic.com/en/api/messages-count-tokens>).
//!
//! It is an estimate, not the backend's tokenizer: the text of `system`, every message and
//! every tool definition at 4 bytes a token (the usual rule of thumb for English text in BPE
//! tokenizers, the one router's input estimate uses), 3 tokens a message for its framing, and
//! [`IMAGE_TOKENS`] per image (Anthropic's documented cost of an image of about 1.15
//! megapixels, the largest that is not scaled down:
//! <https://docs.anthropic.com/en/docs/build-with-claude/vision#calculate-image-costs>).
//! Anthropic backends answer with their own count (passthrough).

use serde_json::Value;

use crate::error::ApiError;

/// Tokens counted for one image.
pub const IMAGE_TOKENS: u64 = 1600;
/// Tokens of framing per message (role, separators).
const MESSAGE_TOKENS: u64 = 3;

/// The estimate of a count_tokens body's input tokens; a 400 when it is not a JSON object with
/// a `messages` list.
pub fn estimate_input_tokens(body: &[u8]) -> Result<u64, ApiError> {
    let request: serde_json::Map<String, Value> = crate::json::from_slice(body).map_err(|err| {
        ApiError::invalid_request(format!(
            "the request body is not a valid count_tokens request: {err}"
        ))
    })?;
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return Err(
            ApiError::invalid_request("`messages`: a list is required").with_param("messages")
        );
    };
    let mut counter = Counter::default();
    for field in ["system", "tools", "tool_choice"] {
        if let Some(value) = request.get(field) {
            counter.walk(value);
        }
    }
    for message in messages {
        counter.walk(message);
    }
    Ok(counter.bytes.div_ceil(4)
        + counter.images * IMAGE_TOKENS
        + messages.len() as u64 * MESSAGE_TOKENS)
}

/// The body of the answer.
pub fn answer(input_tokens: u64) -> Vec<u8> {
    format!("{{\"input_tokens\":{input_tokens}}}").into_bytes()
}

#[derive(Default)]
struct Counter {
    bytes: u64,
    images: u64,
}

impl Counter {
    fn walk(&mut self, value: &Value) {
        match value {
            Value::String(text) => self.bytes += text.len() as u64,
            Value::Array(items) => items.iter().for_each(|v| self.walk(v)),
            Value::Object(map) => {
                if map.get("type").and_then(Value::as_str) == Some("image") {
                    self.images += 1;
                    return; // its base64 data is no text
                }
                for (key, v) in map {
                    // Block and role tags are framing, not text; ids and signatures are short
                    // and not read by the model as prose, but they are tokens: count them.
                    if key != "type" && key != "role" && key != "cache_control" {
                        self.walk(v);
                    }
                }
            }
            Value::Number(n) => self.bytes += n.to_string().len() as u64,
            Value::Bool(_) | Value::Null => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn text_images_and_framing_are_counted() {
        // The example request of the count_tokens reference: "Hello, world" (12 bytes).
        let body =
            br#"{"model":"claude-opus-4-6","messages":[{"role":"user","content":"Hello, world"}]}"#;
        assert_eq!(estimate_input_tokens(body).unwrap(), 3 + 3);
        let body = br#"{"model":"m","system":"Be brief.","messages":[{"role":"user","content":[
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}},
            {"type":"text","text":"What is this?","cache_control":{"type":"ephemeral"}}]}],
            "tools":[{"name":"f","input_schema":{"type":"object"}}]}"#;
        // "Be brief." 9 + "What is this?" 13 + "f" 1 = 23 bytes → 6 tokens; `type` tags are
        // framing.
        assert_eq!(estimate_input_tokens(body).unwrap(), 6 + IMAGE_TOKENS + 3);
        assert_eq!(answer(42), br#"{"input_tokens":42}"#);
    }

    #[test]
    fn a_body_without_messages_is_refused() {
        let err = estimate_input_tokens(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some("messages")));
        assert_eq!(estimate_input_tokens(b"nope").unwrap_err().status, 400);
    }
}
