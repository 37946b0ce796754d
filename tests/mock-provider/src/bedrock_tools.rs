//! Tool use on the Bedrock Converse mock, strict like Converse
//! (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolConfiguration.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/tool-use-inference-call.html>):
//!
//! - `toolConfig.tools[]` are `{"toolSpec": {name, description?, inputSchema: {json}}}`, names
//!   `[a-zA-Z0-9_-]{1,64}` and unique, descriptions non-empty, `inputSchema.json` an object;
//!   `toolChoice` exactly one of `auto {}`, `any {}`, `tool {name}` naming a declared tool;
//! - `toolUse` blocks only in assistant turns, `toolResult` blocks only in user turns, each
//!   result answering a `toolUse` of the turn just before (same id), every call answered;
//!   tool blocks without `toolConfig` are refused, as Converse refuses them.
//!
//! Answers: `[mock:tool=NAME]` (the shared convention), or a forced `toolChoice`, answers with
//! `toolUse` blocks (`stopReason: tool_use`), streamed as `contentBlockStart.start.toolUse` then
//! `contentBlockDelta.delta.toolUse.input` fragments; after tool results the reply quotes them.

use std::collections::HashSet;

use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::bedrock::{frame, invalid};
use crate::body::{spawn_stream, MockBody};
use crate::features;
use crate::json_response;
use crate::text::count_tokens;

type Check<T> = Result<T, Response<MockBody>>;

/// The declared tools (name, input schema) and the forced choice, if any.
pub struct Tools {
    pub tools: Vec<(String, Value)>,
    pub forced: Option<String>,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `toolConfig`, checked.
pub fn check_config(config: Option<&Value>) -> Check<Option<Tools>> {
    let Some(config) = config else {
        return Ok(None);
    };
    let Some(config) = config.as_object() else {
        return Err(invalid("toolConfig: must be an object"));
    };
    if let Some(key) = config.keys().find(|k| *k != "tools" && *k != "toolChoice") {
        return Err(invalid(&format!(
            "Malformed input request: toolConfig: extraneous key [{key}] is not permitted"
        )));
    }
    let list = match config.get("tools") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => return Err(invalid("toolConfig.tools: at least one tool is required")),
    };
    let mut tools = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let spec = match tool.as_object() {
            Some(t) if t.len() == 1 => t.get("toolSpec").and_then(Value::as_object),
            _ => None,
        };
        let Some(spec) = spec else {
            return Err(invalid(&format!(
                "toolConfig.tools.{i}: a tool is {{\"toolSpec\": …}}"
            )));
        };
        if let Some(key) = spec
            .keys()
            .find(|k| !["name", "description", "inputSchema"].contains(&k.as_str()))
        {
            return Err(invalid(&format!(
                "Malformed input request: toolConfig.tools.{i}.toolSpec: extraneous key [{key}] is not permitted"
            )));
        }
        let name = spec.get("name").and_then(Value::as_str).unwrap_or("");
        if !valid_name(name) {
            return Err(invalid(&format!(
                "1 validation error detected: Value '{name}' at 'toolConfig.tools.{i}.member.toolSpec.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+ (length 1-64)"
            )));
        }
        if tools.iter().any(|(n, _)| n == name) {
            return Err(invalid(&format!(
                "The tool name {name} is used more than once. Tool names must be unique."
            )));
        }
        if let Some(d) = spec.get("description") {
            if d.as_str().is_none_or(str::is_empty) {
                return Err(invalid(&format!(
                    "toolConfig.tools.{i}.toolSpec.description: must be a non-empty string"
                )));
            }
        }
        let schema = match spec.get("inputSchema").and_then(Value::as_object) {
            Some(s) if s.len() == 1 => s.get("json").filter(|j| j.is_object()),
            _ => None,
        };
        let Some(schema) = schema else {
            return Err(invalid(&format!(
                "toolConfig.tools.{i}.toolSpec.inputSchema: must be {{\"json\": <JSON Schema object>}}"
            )));
        };
        tools.push((name.to_string(), schema.clone()));
    }
    let forced = match config.get("toolChoice") {
        None => None,
        Some(choice) => {
            let Some(choice) = choice.as_object().filter(|c| c.len() == 1) else {
                return Err(invalid(
                    "toolConfig.toolChoice: exactly one of auto, any, tool",
                ));
            };
            let empty = |v: &Value| v.as_object().is_some_and(Map::is_empty);
            match (choice.get("auto"), choice.get("any"), choice.get("tool")) {
                (Some(v), _, _) if empty(v) => None,
                (_, Some(v), _) if empty(v) => tools.first().map(|(n, _)| n.clone()),
                (_, _, Some(Value::Object(t))) if t.len() == 1 => {
                    let name = t.get("name").and_then(Value::as_str).unwrap_or("");
                    if !tools.iter().any(|(n, _)| n == name) {
                        return Err(invalid(&format!(
                            "toolConfig.toolChoice.tool.name: {name} is not one of the tools"
                        )));
                    }
                    Some(name.to_string())
                }
                _ => {
                    return Err(invalid(
                        "toolConfig.toolChoice: exactly one of auto {}, any {}, tool {name}",
                    ))
                }
            }
        }
    };
    Ok(Some(Tools { tools, forced }))
}

/// Checks the tool blocks of the conversation; returns the text of the tool results in the
/// last message when it holds any (the mock quotes them).
pub fn check_history(messages: &[Value], has_config: bool) -> Check<Option<String>> {
    let mut pending: HashSet<String> = HashSet::new();
    let mut last_results = None;
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let blocks = message
            .get("content")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut uses = HashSet::new();
        let mut results = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let at = format!("messages.{i}.content.{j}");
            if let Some(tool_use) = block.get("toolUse") {
                if role != "assistant" {
                    return Err(invalid(&format!(
                        "{at}: toolUse is only valid in assistant turns"
                    )));
                }
                let id = tool_use
                    .get("toolUseId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let named = tool_use
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(valid_name);
                let object = tool_use.get("input").is_some_and(Value::is_object);
                if id.is_empty() || !named || !object {
                    return Err(invalid(&format!(
                        "{at}.toolUse: needs toolUseId, name and an input object"
                    )));
                }
                uses.insert(id.to_string());
            }
            if let Some(result) = block.get("toolResult") {
                if role != "user" {
                    return Err(invalid(&format!(
                        "{at}: toolResult is only valid in user turns"
                    )));
                }
                let id = result
                    .get("toolUseId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !pending.remove(id) {
                    return Err(invalid(&format!(
                        "{at}.toolResult: toolUseId {id} does not answer a toolUse of the previous turn"
                    )));
                }
                let content = match result.get("content") {
                    Some(Value::Array(c)) if !c.is_empty() => c,
                    _ => {
                        return Err(invalid(&format!(
                            "{at}.toolResult.content: must be a non-empty list"
                        )))
                    }
                };
                for part in content {
                    match part.as_object() {
                        Some(p) if p.len() == 1 && p.get("text").is_some_and(Value::is_string) => {
                            results.push(p["text"].as_str().unwrap_or("").to_string())
                        }
                        Some(p) if p.len() == 1 && p.contains_key("json") => {
                            results.push(p["json"].to_string())
                        }
                        _ => {
                            return Err(invalid(&format!(
                                "{at}.toolResult.content: each item is {{\"text\"}} or {{\"json\"}}"
                            )))
                        }
                    }
                }
            }
        }
        if (!uses.is_empty() || !results.is_empty()) && !has_config {
            return Err(invalid(
                "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
            ));
        }
        if role == "user" && !pending.is_empty() {
            return Err(invalid(&format!(
                "messages.{i}: every toolUse of the previous turn needs a toolResult here"
            )));
        }
        if role == "assistant" {
            pending = uses;
        }
        last_results = (!results.is_empty()).then(|| results.join(" "));
    }
    Ok(last_results)
}

/// The calls to answer with: the tools `[mock:tool=…]` names (declared ones only), else the
/// forced choice.
pub fn calls(tools: &Tools, last_user: &str, next_id: u64) -> Vec<(String, String, Value)> {
    let mut names: Vec<String> = features::requested_tools(last_user)
        .into_iter()
        .filter(|n| tools.tools.iter().any(|(t, _)| t == n))
        .collect();
    if names.is_empty() {
        names.extend(tools.forced.clone());
    }
    names
        .into_iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let schema = tools.tools.iter().find(|(t, _)| *t == name)?.1.clone();
            let input = features::value_for_schema(&schema, &name);
            Some((format!("tooluse_mock{next_id}_{i}"), name, input))
        })
        .collect()
}

/// An answer calling `calls`: JSON, or ConverseStream frames.
pub fn answer(
    calls: &[(String, String, Value)],
    stream: bool,
    input_tokens: u64,
    cache: crate::cache::CacheUse,
) -> Response<MockBody> {
    let output_tokens: u64 = calls
        .iter()
        .map(|(_, _, i)| count_tokens(&i.to_string()) + 3)
        .sum();
    let usage = crate::bedrock::usage_json(input_tokens, output_tokens, cache);
    if !stream {
        let content: Vec<Value> = calls
            .iter()
            .map(|(id, name, input)| json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}))
            .collect();
        return json_response(
            StatusCode::OK,
            &json!({"output": {"message": {"role": "assistant", "content": content}},
                    "stopReason": "tool_use", "usage": usage, "metrics": {"latencyMs": 1}}),
        );
    }
    let mut frames = vec![frame(
        "event",
        "messageStart",
        &json!({"role": "assistant"}),
    )];
    for (index, (id, name, input)) in calls.iter().enumerate() {
        frames.push(frame(
            "event",
            "contentBlockStart",
            &json!({"contentBlockIndex": index,
                    "start": {"toolUse": {"toolUseId": id, "name": name}}, "p": "abc"}),
        ));
        // The input JSON in two fragments, as Bedrock streams it.
        let text = input.to_string();
        let mid = (1..=text.len() / 2)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        for piece in [&text[..mid], &text[mid..]] {
            frames.push(frame(
                "event",
                "contentBlockDelta",
                &json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}}),
            ));
        }
        frames.push(frame(
            "event",
            "contentBlockStop",
            &json!({"contentBlockIndex": index}),
        ));
    }
    frames.push(frame(
        "event",
        "messageStop",
        &json!({"stopReason": "tool_use"}),
    ));
    frames.push(frame(
        "event",
        "metadata",
        &json!({"usage": usage, "metrics": {"latencyMs": 1}}),
    ));
    let mut r = Response::new(spawn_stream(
        frames,
        Vec::new(),
        Vec::new(),
        Default::default(),
    ));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> Value {
        json!({"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object",
               "properties": {"sign": {"type": "string"}}}}}})
    }

    #[test]
    fn tool_config_is_checked() {
        let Ok(Some(ok)) = check_config(Some(
            &json!({"tools": [spec("top_song")], "toolChoice": {"any": {}}}),
        )) else {
            panic!("a valid toolConfig was refused");
        };
        assert_eq!(ok.forced.as_deref(), Some("top_song"));
        for bad in [
            json!({"tools": [spec("top song")]}),
            json!({"tools": [spec(&"x".repeat(65))]}),
            json!({"tools": [spec("a"), spec("a")]}),
            json!({"tools": []}),
            json!({"tools": [{"toolSpec": {"name": "a", "inputSchema": {"json": "object"}}}]}),
            json!({"tools": [{"toolSpec": {"name": "a", "description": "", "inputSchema": {"json": {}}}}]}),
            json!({"tools": [spec("a")], "toolChoice": {"none": {}}}),
            json!({"tools": [spec("a")], "toolChoice": {"tool": {"name": "b"}}}),
            json!({"tools": [spec("a")], "extra": 1}),
        ] {
            assert!(check_config(Some(&bad)).is_err(), "{bad}");
        }
    }

    fn turn(role: &str, content: Value) -> Value {
        json!({"role": role, "content": content})
    }

    #[test]
    fn tool_results_must_answer_the_previous_turn() {
        let call = json!([{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]);
        let result =
            |id: &str| json!([{"toolResult": {"toolUseId": id, "content": [{"text": "42"}]}}]);
        let good = [
            turn("user", json!([{"text": "hi"}])),
            turn("assistant", call.clone()),
            turn("user", result("t1")),
        ];
        assert!(matches!(check_history(&good, true), Ok(Some(r)) if r == "42"));
        // Without toolConfig, with a wrong id, unanswered, or a result in the wrong role.
        assert!(check_history(&good, false).is_err());
        let wrong_id = [good[0].clone(), good[1].clone(), turn("user", result("t2"))];
        assert!(check_history(&wrong_id, true).is_err());
        let unanswered = [
            good[0].clone(),
            good[1].clone(),
            turn("user", json!([{"text": "?"}])),
        ];
        assert!(check_history(&unanswered, true).is_err());
        let misplaced = [turn("user", call)];
        assert!(check_history(&misplaced, true).is_err());
    }

    #[test]
    fn calls_follow_the_control_or_the_forced_choice() {
        let tools = Tools {
            tools: vec![
                ("a".into(), json!({"type": "object"})),
                ("b".into(), json!({})),
            ],
            forced: None,
        };
        let names =
            |c: Vec<(String, String, Value)>| c.into_iter().map(|c| c.1).collect::<Vec<_>>();
        assert_eq!(names(calls(&tools, "go [mock:tool=b,a]", 1)), ["b", "a"]);
        assert!(calls(&tools, "go [mock:tool=zzz]", 1).is_empty());
        let forced = Tools {
            forced: Some("b".into()),
            ..tools
        };
        assert_eq!(names(calls(&forced, "go", 1)), ["b"]);
    }

    #[test]
    fn a_forced_answer_tool_gets_an_input_with_the_schema_properties() {
        // What llmgw sends for `response_format: json_schema`.
        let config = json!({"tools": [{"toolSpec": {"name": "person",
            "description": "Give the answer as this tool's input, in JSON.",
            "inputSchema": {"json": {"type": "object", "properties": {
                "name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"], "additionalProperties": false}}}}],
            "toolChoice": {"tool": {"name": "person"}}});
        let Ok(Some(tools)) = check_config(Some(&config)) else {
            panic!("the answer tool's toolConfig was refused");
        };
        let got = calls(&tools, "Extract: Ada, 36.", 1);
        assert_eq!(got.len(), 1);
        let (_, name, input) = &got[0];
        assert_eq!(name, "person");
        assert!(input["name"].is_string(), "{input}");
        assert!(input["age"].is_i64(), "{input}");
    }
}
