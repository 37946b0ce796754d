//! The pieces of a Chat Completions request
//! (<https://platform.openai.com/docs/api-reference/chat/create>) both client adapters
//! (`messages_chat`, `responses_chat`) write, through [`crate::json_write`]: keys in the
//! order a `serde_json::Map` keeps them, so the bytes are those of the `Value` tree the
//! adapters built before.

use serde_json::Value;

use crate::json_write::{Array, Object};

/// A message whose content is one string: `{"content", "role"}`.
pub fn text_message(messages: &mut Array, role: &str, text: &str) {
    let mut message = Object::new(messages.item());
    message.string("content", text).string("role", role);
    message.end();
}

/// A message whose content is already encoded (parts, or `null`), with its tool calls when
/// there are any: `{"content", "role", "tool_calls"}`.
pub fn message(messages: &mut Array, role: &str, content: &[u8], tool_calls: Array) {
    let mut message = Object::new(messages.item());
    message.raw("content", content).string("role", role);
    if !tool_calls.is_empty() {
        message.raw("tool_calls", &tool_calls.into_bytes());
    }
    message.end();
}

/// A `tool` message answering call `id`.
pub fn tool_message(messages: &mut Array, id: &str, text: &str) {
    let mut message = Object::new(messages.item());
    message
        .string("content", text)
        .string("role", "tool")
        .string("tool_call_id", id);
    message.end();
}

/// A text part, with a `cache_control` hint when one is kept.
pub fn text_part(parts: &mut Array, text: &str, cache_control: Option<&Value>) {
    let mut part = Object::new(parts.item());
    if let Some(control) = cache_control {
        part.value("cache_control", control);
    }
    part.string("text", text).string("type", "text");
    part.end();
}

/// An `image_url` part, with its `detail` and a `cache_control` hint when there are.
pub fn image_part(
    parts: &mut Array,
    url: &str,
    detail: Option<&Value>,
    cache_control: Option<&Value>,
) {
    let mut part = Object::new(parts.item());
    if let Some(control) = cache_control {
        part.value("cache_control", control);
    }
    let mut image = Object::new(part.field("image_url"));
    if let Some(detail) = detail {
        image.value("detail", detail);
    }
    image.string("url", url);
    image.end();
    part.string("type", "image_url");
    part.end();
}

/// An assistant's function call: `{"function": {"arguments", "name"}, "id", "type"}`.
pub fn tool_call(calls: &mut Array, id: &str, name: &str, arguments: &str) {
    let mut call = Object::new(calls.item());
    let mut function = Object::new(call.field("function"));
    function.string("arguments", arguments).string("name", name);
    function.end();
    call.string("id", id).string("type", "function");
    call.end();
}

/// `{"function": {…}, "type": "function"}` around a function written by `function` (a tool,
/// or a `tool_choice` naming one).
pub fn function(out: &mut Vec<u8>, function: impl FnOnce(&mut Object<'_>)) {
    let mut wrapper = Object::new(out);
    let mut inner = Object::new(wrapper.field("function"));
    function(&mut inner);
    inner.end();
    wrapper.string("type", "function");
    wrapper.end();
}

/// `tool_choice` naming one function.
pub fn named_function(out: &mut Vec<u8>, name: &str) {
    function(out, |function| {
        function.string("name", name);
    });
}
