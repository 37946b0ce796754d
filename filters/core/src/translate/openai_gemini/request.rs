//! The request half of [`super`]: an OpenAI chat completions request → a Gemini
//! `GenerateContentRequest` (<https://ai.google.dev/api/generate-content#request-body>), and
//! JSON Schema → Gemini's schema subset (<https://ai.google.dev/api/caching#Schema>).

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::schema::gemini as gm;
use crate::schema::openai as oa;
use crate::translate::request_fields::{self, invalid, Features};

fn unsupported(field: &str) -> ApiError {
    invalid(
        format!("`{field}` is not supported by the Gemini API"),
        field,
    )
}

/// Fields without a Gemini counterpart that are fine when they ask for nothing.
fn is_harmless(name: &str, value: &Value) -> bool {
    match name {
        "logprobs" | "store" => value == &Value::Bool(false),
        "logit_bias" | "metadata" => value.as_object().is_some_and(|m| m.is_empty()),
        "service_tier" => matches!(value.as_str(), Some("auto" | "default")),
        _ => false,
    }
}

/// Model names become a path segment: refuse anything that could change the path.
pub(crate) fn model_segment(model: &str) -> Result<&str, ApiError> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let ok = !model.is_empty()
        && model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(model)
    } else {
        Err(invalid(
            format!("`{model}` is not a valid Gemini model name"),
            "model",
        ))
    }
}

/// The schema keys Gemini's `Schema` (an OpenAPI 3.0 subset) accepts
/// (<https://ai.google.dev/api/caching#Schema>).
const SCHEMA_KEYS: [&str; 21] = [
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
    "items",
    "minimum",
    "maximum",
];

/// A JSON Schema (as OpenAI takes it) → Gemini's `Schema`. Keywords Gemini's subset lacks
/// (`additionalProperties`, `$schema`, `strict`, `default`, …) are left out: they constrain or
/// annotate, and OpenAI's strict mode even requires `additionalProperties: false` on every
/// object, so refusing them would make structured output unusable. `"type": ["x", "null"]`
/// becomes `type` + `nullable`. References (`$ref`) cannot be expressed: refused.
pub fn gemini_schema(schema: &Value, at: &str) -> Result<Value, ApiError> {
    let Value::Object(object) = schema else {
        return Err(invalid("a JSON schema must be an object", at));
    };
    if object.contains_key("$ref") {
        return Err(invalid(
            "`$ref` in a schema is not supported by the Gemini API; inline the definition",
            at,
        ));
    }
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    let mut rest = types.iter().filter(|t| t.as_str() != Some("null"));
                    if let Some(first) = rest.next() {
                        out.insert("type".into(), first.clone());
                    }
                    if rest.next().is_some() {
                        return Err(invalid(
                            "a schema `type` may be one type (plus \"null\") for Gemini",
                            at,
                        ));
                    }
                    if types.len() > 1 {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "properties" => {
                let Value::Object(props) = value else {
                    return Err(invalid("`properties` must be an object", at));
                };
                let mut mapped = Map::new();
                for (name, prop) in props {
                    mapped.insert(
                        name.clone(),
                        gemini_schema(prop, &format!("{at}.properties.{name}"))?,
                    );
                }
                out.insert("properties".into(), Value::Object(mapped));
            }
            "items" => {
                out.insert(
                    "items".into(),
                    gemini_schema(value, &format!("{at}.items"))?,
                );
            }
            "anyOf" => {
                let Value::Array(options) = value else {
                    return Err(invalid("`anyOf` must be an array", at));
                };
                let mapped = options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| gemini_schema(o, &format!("{at}.anyOf[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                out.insert("anyOf".into(), Value::Array(mapped));
            }
            k if SCHEMA_KEYS.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

fn user_parts<'a>(content: oa::Content<'a>, at: &str) -> Result<Vec<gm::Part<'a>>, ApiError> {
    let parts = match content {
        oa::Content::Text(text) => return Ok(vec![gm::Part::Text { text }]),
        oa::Content::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        match part {
            // `cache_control` has no Gemini counterpart (Gemini caches implicitly; explicit
            // caches are a separate API): dropped.
            oa::ContentPart::Text { text, .. } | oa::ContentPart::Refusal { refusal: text } => {
                out.push(gm::Part::Text { text })
            }
            oa::ContentPart::ImageUrl { image_url, .. } => {
                let param = format!("{at}[{j}].image_url.url");
                let blob = request_fields::data_url(&image_url.url)
                    .map(|d| gm::Blob {
                        mime_type: Cow::Owned(d.media_type.to_string()),
                        data: Cow::Owned(d.data.to_string()),
                    })
                    .ok_or_else(|| {
                        invalid(
                            "the Gemini API takes images inline only and llmgw does not fetch \
                             URLs: send the image as a base64 `data:` URL",
                            param,
                        )
                    })?;
                out.push(gm::Part::InlineData { inline_data: blob });
            }
            oa::ContentPart::Other => {
                return Err(invalid(
                    "this content part type is not supported by the Gemini API",
                    format!("{at}[{j}]"),
                ))
            }
        }
    }
    Ok(out)
}

fn system_text(content: oa::Content<'_>, at: &str) -> Result<String, ApiError> {
    request_fields::text_only(content)
        .map(Cow::into_owned)
        .map_err(|j| {
            invalid(
                "only text parts are supported in system messages",
                format!("{at}[{j}]"),
            )
        })
}

fn tools_and_config(
    features: &mut Features,
) -> Result<(Vec<gm::Tool>, Option<gm::ToolConfig>), ApiError> {
    if features.parallel_tool_calls == Some(false) {
        return Err(invalid(
            "`parallel_tool_calls: false` cannot be honoured: the Gemini API has no such switch",
            "parallel_tool_calls",
        ));
    }
    let mut declarations = Vec::with_capacity(features.tools.len());
    for (i, tool) in std::mem::take(&mut features.tools).into_iter().enumerate() {
        let parameters = match &tool.function.parameters {
            None => None,
            // Gemini refuses an object schema without properties; no parameters is the same.
            Some(p)
                if p.get("properties")
                    .is_some_and(|v| v.as_object().is_some_and(Map::is_empty)) =>
            {
                None
            }
            Some(p) => Some(gemini_schema(
                p,
                &format!("tools[{i}].function.parameters"),
            )?),
        };
        declarations.push(gm::FunctionDeclaration {
            name: tool.function.name,
            description: tool.function.description,
            parameters,
        });
    }
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![gm::Tool {
            function_declarations: declarations,
        }]
    };
    let config = features.tool_choice.take().map(|choice| {
        let (mode, allowed) = match choice {
            oa::ToolChoice::Auto => (gm::FunctionCallingMode::Auto, Vec::new()),
            oa::ToolChoice::None => (gm::FunctionCallingMode::None, Vec::new()),
            oa::ToolChoice::Required => (gm::FunctionCallingMode::Any, Vec::new()),
            oa::ToolChoice::Named(name) => (gm::FunctionCallingMode::Any, vec![name]),
        };
        gm::ToolConfig {
            function_calling_config: gm::FunctionCallingConfig {
                mode,
                allowed_function_names: allowed,
            },
        }
    });
    Ok((tools, config))
}

/// OpenAI request → Gemini request, and the model it is for.
pub fn to_gemini_request<'a>(
    mut request: oa::ChatCompletionRequest<'a>,
    drop_fields: &[String],
) -> Result<gm::GenerateContentRequest<'a>, ApiError> {
    request_fields::drop_fields(&mut request, drop_fields);
    let mut features = request_fields::take_features(&mut request.other)?;
    let mut config = gm::GenerationConfig::default();
    for (name, value) in std::mem::take(&mut request.other) {
        if value.is_null() || is_harmless(&name, &value) {
            continue;
        }
        match name.as_str() {
            "n" => match value.as_u64() {
                Some(1) => {}
                _ => {
                    return Err(invalid(
                        "llmgw asks Gemini for one candidate only: `n` must be 1",
                        "n",
                    ))
                }
            },
            "presence_penalty" | "frequency_penalty" => {
                let number = value
                    .as_f64()
                    .ok_or_else(|| invalid(format!("`{name}` must be a number"), name.clone()))?;
                if name == "presence_penalty" {
                    config.presence_penalty = Some(number);
                } else {
                    config.frequency_penalty = Some(number);
                }
            }
            _ => return Err(unsupported(&name)),
        }
    }

    // `user` (an end-user id for abuse monitoring) has no Gemini field and changes nothing in
    // the answer: it is not sent. Every other typed field is mapped below.
    let (tools, tool_config) = tools_and_config(&mut features)?;
    config.max_output_tokens = request.max_completion_tokens.or(request.max_tokens);
    config.temperature = request.temperature;
    config.top_p = request.top_p;
    config.stop_sequences = request
        .stop
        .map(oa::Stop::into_vec)
        .unwrap_or_default()
        .into_iter()
        .map(Cow::into_owned)
        .collect();
    config.seed = features.seed;
    // <https://ai.google.dev/gemini-api/docs/thinking>: the effort's budget
    // ([`crate::translate::reasoning`]), with the thought summaries returned when it thinks.
    config.thinking_config = features.reasoning_effort.map(|effort| gm::ThinkingConfig {
        thinking_budget: effort.gemini_budget(),
        include_thoughts: effort.gemini_budget() > 0,
    });
    match features.response_format {
        None | Some(oa::ResponseFormat::Text) => {}
        Some(oa::ResponseFormat::JsonObject) => {
            config.response_mime_type = Some("application/json")
        }
        Some(oa::ResponseFormat::JsonSchema { json_schema }) => {
            config.response_mime_type = Some("application/json");
            if let Some(schema) = &json_schema.schema {
                config.response_schema =
                    Some(gemini_schema(schema, "response_format.json_schema.schema")?);
            }
        }
    }

    // Tool results name the function, not the call: remember which call had which name.
    let mut call_names: HashMap<String, String> = HashMap::new();
    let mut system: Vec<gm::Part<'a>> = Vec::new();
    let mut contents: Vec<gm::Content<'a>> = Vec::with_capacity(request.messages.len());
    let mut previous_was_tool = false;
    for (i, message) in request.messages.into_iter().enumerate() {
        let at = format!("messages[{i}].content");
        let is_tool = matches!(message, oa::ChatMessage::Tool { .. });
        match message {
            oa::ChatMessage::System { content } | oa::ChatMessage::Developer { content } => {
                system.push(gm::Part::Text {
                    text: Cow::Owned(system_text(content, &at)?),
                });
            }
            oa::ChatMessage::User { content } => contents.push(gm::Content {
                role: gm::Role::User,
                parts: user_parts(content, &at)?,
            }),
            oa::ChatMessage::Assistant {
                content,
                tool_calls,
                function_call,
            } => {
                if function_call.is_some_and(|c| !c.is_null()) {
                    return Err(unsupported(&format!("messages[{i}].function_call")));
                }
                let mut parts = match content {
                    Some(content) => user_parts(content, &at)?,
                    None => Vec::new(),
                };
                // An empty text part is refused by Gemini.
                parts.retain(|p| !matches!(p, gm::Part::Text { text } if text.is_empty()));
                for call in request_fields::assistant_tool_calls(tool_calls, i)? {
                    let call = call?;
                    call_names.insert(call.id, call.name.clone());
                    parts.push(gm::Part::FunctionCall {
                        function_call: gm::FunctionCall {
                            name: call.name,
                            args: call.arguments,
                        },
                    });
                }
                if parts.is_empty() {
                    return Err(invalid(
                        "an assistant message needs content or tool calls for Gemini",
                        at,
                    ));
                }
                contents.push(gm::Content {
                    role: gm::Role::Model,
                    parts,
                });
            }
            oa::ChatMessage::Tool {
                tool_call_id,
                content,
            } => {
                let id = tool_call_id.unwrap_or_default();
                let name = call_names.get(id.as_ref()).cloned().ok_or_else(|| {
                    invalid(
                        format!("`tool_call_id` `{id}` answers no earlier assistant tool call"),
                        format!("messages[{i}].tool_call_id"),
                    )
                })?;
                let text = request_fields::tool_result_text(content, &at)?;
                let response = match crate::json::from_str::<Value>(&text) {
                    Ok(object @ Value::Object(_)) => object,
                    _ => serde_json::json!({ "content": text }),
                };
                let part = gm::Part::FunctionResponse {
                    function_response: gm::FunctionResponse { name, response },
                };
                // Parallel calls' results go back together, in one turn.
                match contents.last_mut() {
                    Some(last) if previous_was_tool => last.parts.push(part),
                    _ => contents.push(gm::Content {
                        role: gm::Role::User,
                        parts: vec![part],
                    }),
                }
            }
            oa::ChatMessage::Function {} => {
                return Err(unsupported(&format!("messages[{i}].role")));
            }
        }
        previous_was_tool = is_tool;
    }
    if contents.is_empty() {
        return Err(invalid(
            "`messages` needs at least one user or assistant message for Gemini",
            "messages",
        ));
    }
    Ok(gm::GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(gm::SystemInstruction { parts: system }),
        tools,
        tool_config,
        generation_config: config,
    })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn schema_keeps_gemini_keys_and_maps_nullable() {
        let schema = serde_json::json!({
            "type": "object", "additionalProperties": false, "$schema": "x",
            "properties": {"a": {"type": ["string", "null"], "default": "z"},
                           "b": {"type": "array", "items": {"type": "integer", "minimum": 1}}},
            "required": ["a"]
        });
        assert_eq!(
            gemini_schema(&schema, "p").unwrap(),
            serde_json::json!({
                "type": "object",
                "properties": {"a": {"type": "string", "nullable": true},
                               "b": {"type": "array", "items": {"type": "integer", "minimum": 1}}},
                "required": ["a"]
            })
        );
        let err = gemini_schema(&serde_json::json!({"$ref": "#/x"}), "p").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("p"));
    }

    #[test]
    fn model_names_cannot_change_the_path() {
        assert_eq!(
            model_segment("models/gemini-2.5-flash").unwrap(),
            "gemini-2.5-flash"
        );
        assert!(model_segment("../x").is_err());
        assert!(model_segment("a?b").is_err());
    }
}
