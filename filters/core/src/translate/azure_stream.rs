//! Azure OpenAI's chat streams made valid OpenAI `chat.completion.chunk` streams.
//!
//! Azure streams OpenAI's chunks plus its content filter's annotations
//! (<https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter#streaming>,
//! <https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-streaming>):
//!
//! - the stream starts with a chunk that is only the prompt's filter results: `choices: []`,
//!   `id`, `model` and `object` empty, `created: 0`, `prompt_filter_results`;
//! - with the asynchronous filter, annotation chunks follow the content: `id`, `model` and
//!   `object` empty again, each choice with `content_filter_results` / `content_filter_offsets`
//!   and no `delta`.
//!
//! OpenAI never sends either, and clients break on them (`chunk.choices[0]` of an empty list, a
//! choice without `delta`). So: the prompt filter chunk is not forwarded and its
//! `prompt_filter_results` ride on the next chunk that has choices, as a top-level field (where
//! Azure puts them in a non-streamed answer); annotation chunks get the stream's `id`, `model`,
//! `created`, `object: chat.completion.chunk` and an empty `delta` on each choice, and keep their
//! filter results. Every other chunk passes byte for byte: only chunks that hold an empty string,
//! an empty list or a filter field are parsed at all.

use serde_json::{Map, Value};

use super::dropped::{what, Dropped};
use crate::sse;

/// The normaliser; one per streamed Azure answer.
#[derive(Debug, Default)]
pub struct AzureStream {
    /// `id`, `model` and `created` of the first chunk that had them.
    id: Option<Value>,
    model: Option<Value>,
    created: Option<Value>,
    /// `prompt_filter_results` of filter-only chunks, for the next chunk with choices.
    pending_filters: Vec<Value>,
    /// What could not be passed on.
    pub dropped: Dropped,
}

/// The OpenAI chunk object type.
const CHUNK_OBJECT: &str = "chat.completion.chunk";

/// Could `data` be a chunk this module changes? Cheap scan before any parse. Azure writes compact
/// JSON; a filter field, an empty string (`"id":""`) or an empty list (`"choices":[]`) marks the
/// chunks above. Escaped quotes inside text (`\"\"`) do not contain `""`.
fn may_need_change(data: &str) -> bool {
    data.contains("\"\"")
        || data.contains("[]")
        || data.contains("\"prompt_filter_results\"")
        || data.contains("\"content_filter_offsets\"")
}

fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_u64() == Some(0),
        _ => false,
    }
}

impl AzureStream {
    /// One event of Azure's stream → what the client gets (nothing, the event as it came, or
    /// the event made OpenAI's).
    pub fn event(&mut self, event: &sse::Event, out: &mut Vec<u8>) {
        let data = event.data.trim();
        let needs_look = self.id.is_none() || !self.pending_filters.is_empty();
        if data == "[DONE]" || !(needs_look || may_need_change(data)) {
            if data == "[DONE]" && !self.pending_filters.is_empty() {
                // No chunk with choices came to carry them (the answer was empty).
                self.dropped.note(
                    "Azure OpenAI",
                    what::FILTER_RESULTS,
                    "prompt_filter_results with no chunk after them",
                );
                self.pending_filters.clear();
            }
            return forward(event, out);
        }
        let Ok(Value::Object(mut chunk)) = crate::json::from_str::<Value>(data) else {
            return forward(event, out); // not a chunk (an error object, say): as it came
        };
        if chunk.contains_key("error") {
            return forward(event, out);
        }
        let choices_empty = chunk
            .get("choices")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        let has_usage = chunk.get("usage").is_some_and(Value::is_object);
        if choices_empty && !has_usage {
            // A filter-only chunk: its results wait for the next chunk with choices.
            match chunk.remove("prompt_filter_results") {
                Some(Value::Array(results)) => self.pending_filters.extend(results),
                Some(other) if !other.is_null() => self.pending_filters.push(other),
                _ => log::debug!("llmgw.translate: Azure chunk without choices skipped"),
            }
            return;
        }
        let changed = self.normalise(&mut chunk);
        if !changed {
            return forward(event, out);
        }
        sse::write_json(out, &chunk);
    }

    /// Fill what an annotation chunk leaves blank, give each choice a `delta`, attach waiting
    /// prompt filter results. Remembers the stream's identity from its first complete chunk.
    /// `true` when `chunk` changed.
    fn normalise(&mut self, chunk: &mut Map<String, Value>) -> bool {
        let mut changed = false;
        for (key, known) in [
            ("id", &mut self.id),
            ("model", &mut self.model),
            ("created", &mut self.created),
        ] {
            match chunk.get(key) {
                value if is_blank(value) => {
                    if let Some(known) = known {
                        chunk.insert(key.to_string(), known.clone());
                        changed = true;
                    }
                }
                Some(value) if known.is_none() => *known = Some(value.clone()),
                _ => {}
            }
        }
        if chunk.get("object").and_then(Value::as_str) != Some(CHUNK_OBJECT) {
            chunk.insert("object".to_string(), Value::from(CHUNK_OBJECT));
            changed = true;
        }
        if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
            for choice in choices {
                if let Value::Object(choice) = choice {
                    if !choice.get("delta").is_some_and(Value::is_object) {
                        choice.insert("delta".to_string(), Value::Object(Map::new()));
                        changed = true;
                    }
                }
            }
        }
        if !self.pending_filters.is_empty() {
            let pending = Value::Array(std::mem::take(&mut self.pending_filters));
            match chunk.get_mut("prompt_filter_results") {
                Some(Value::Array(existing)) => {
                    if let Value::Array(pending) = pending {
                        existing.splice(0..0, pending);
                    }
                }
                _ => {
                    chunk.insert("prompt_filter_results".to_string(), pending);
                }
            }
            changed = true;
        }
        changed
    }
}

/// The event as it came (its name kept), in canonical framing.
fn forward(event: &sse::Event, out: &mut Vec<u8>) {
    match &event.event {
        Some(name) => sse::write_event(out, name, event.data.as_bytes()),
        None => sse::write_data(out, event.data.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn run(events: &[&str]) -> Vec<Value> {
        let mut stream = AzureStream::default();
        let mut out = Vec::new();
        for data in events {
            let event = sse::Event {
                event: None,
                data: data.to_string(),
                id: None,
            };
            stream.event(&event, &mut out);
        }
        sse::Decoder::new()
            .feed(&out)
            .into_iter()
            .map(|e| serde_json::from_str(&e.data).unwrap_or(Value::String(e.data)))
            .collect()
    }

    #[test]
    fn regular_chunks_pass_byte_for_byte() {
        let chunk = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a \"\" b"}}]}"#;
        let mut stream = AzureStream::default();
        let mut out = Vec::new();
        let event = sse::Event {
            event: None,
            data: chunk.to_string(),
            id: None,
        };
        stream.event(&event, &mut out);
        stream.event(&event, &mut out);
        assert_eq!(
            out,
            format!("data: {chunk}\n\ndata: {chunk}\n\n").as_bytes()
        );
    }

    #[test]
    fn filter_results_without_a_following_chunk_are_dropped_at_the_end() {
        let got = run(&[
            r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0}]}"#,
            "[DONE]",
        ]);
        assert_eq!(got, [Value::from("[DONE]")]);
        let mut stream = AzureStream::default();
        for data in [
            r#"{"choices":[],"id":"","prompt_filter_results":[{"prompt_index":0}]}"#,
            "[DONE]",
        ] {
            let event = sse::Event {
                event: None,
                data: data.to_string(),
                id: None,
            };
            stream.event(&event, &mut Vec::new());
        }
        assert_eq!(stream.dropped.counts(), [(what::FILTER_RESULTS, 1)]);
    }

    #[test]
    fn usage_chunk_without_choices_is_kept() {
        let got = run(&[
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{}}]}"#,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
        ]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1]["usage"]["total_tokens"], 2);
    }
}
