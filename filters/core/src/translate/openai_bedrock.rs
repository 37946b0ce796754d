//! OpenAI Chat Completions to the Amazon Bedrock Converse API, and back.
//!
//! Request: <https://platform.openai.com/docs/api-reference/chat/create> becomes
//! `POST /model/{modelId}/converse` or `/converse-stream`
//! (<https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>), signed
//! with SigV4 ([`crate::aws::sigv4`]) once the body is final. Tools follow
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/tool-use-inference-call.html>:
//! `tools` → `toolConfig.tools[].toolSpec`, `tool_choice` → `toolConfig.toolChoice`, assistant
//! `tool_calls` → `toolUse` blocks, `tool` messages → `toolResult` blocks in a user turn.
//! Structured output (`response_format` `json_object` / `json_schema`) is a forced tool
//! (`toolChoice: {tool: {name}}`, <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolChoice.html>)
//! whose input is the answer, returned as message content with `finish_reason: stop`, as for
//! Anthropic ([`request_fields::answer_tool`]). What Converse cannot take through llmgw
//! (documents, several choices, `tool_choice: "none"` once the conversation holds tool calls,
//! `response_format` with `tools`, …) is refused with a 400 naming the field.
//!
//! Response: a Converse answer becomes a `chat.completion`; Bedrock errors (`{"message"}` with
//! the error's name in `x-amzn-errortype`) become OpenAI errors with the same status; the
//! ConverseStream event stream (binary `application/vnd.amazon.eventstream` frames,
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html>)
//! becomes `chat.completion.chunk` SSE frame by frame as the bytes arrive.

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::Value;

use super::completion::{usage_with_cache, AnswerMessage, ChunkStream, ToolCalls, EMPTY_ARGUMENTS};
use super::dropped::{what, Dropped};
use super::reasoning::{self, Effort};
use super::request_fields;
use super::{
    buffer_plan, buffered_answer, has_media_type, read_answer, truncated_stream_error,
    unreadable_answer, unreadable_error, with_usage, ResponseBody, ResponsePlan,
};
use super::{RawBedrock, Secret, Translator, Usage};
use crate::aws::sigv4;
use crate::config::ConfigError;
use crate::error::{ApiError, ErrorType};
use crate::eventstream;
use crate::filter::Env;
use crate::schema::bedrock as br;
use crate::schema::openai as oa;

/// Where the Bedrock runtime is and how to sign for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedrockEndpoint {
    pub region: String,
    /// The `host` signed and sent (`bedrock-runtime.<region>.amazonaws.com`).
    pub host: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// The SigV4 service name of the Bedrock runtime.
const SERVICE: &str = "bedrock";

/// The provider, in what is logged.
const PROVIDER: &str = "Amazon Bedrock";

impl BedrockEndpoint {
    /// This endpoint signing with `value`'s credentials, `<access key id>:<secret access
    /// key>[:<session token>]` (the `key_header` credential_injector fills); `None` when a
    /// part is missing or empty. (Neither AWS keys nor session tokens contain `:`.)
    pub fn with_credentials(&self, value: &str) -> Option<Self> {
        let mut parts = value.trim().split(':');
        let access_key_id = parts.next().filter(|s| !s.is_empty())?;
        let secret = parts.next().filter(|s| !s.is_empty())?;
        let session_token = match parts.next() {
            Some(token) if !token.is_empty() => Some(Secret::new(token)),
            Some(_) => return None,
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            access_key_id: access_key_id.to_string(),
            secret_access_key: Secret::new(secret),
            session_token,
            ..self.clone()
        })
    }

    /// Headers that make `POST <path>` with `body` a signed Bedrock request: `:path`,
    /// `:authority`, `content-type`, `x-amz-date`, `x-amz-security-token` (temporary
    /// credentials) and `authorization`.
    pub fn signed_headers(&self, path: &str, body: &[u8], now_ms: u64) -> Vec<(String, String)> {
        let amz_date = sigv4::amz_date(now_ms);
        let mut signed: Vec<(&str, &str)> = vec![
            ("content-type", "application/json"),
            ("host", &self.host),
            ("x-amz-date", &amz_date),
        ];
        if let Some(token) = &self.session_token {
            signed.push(("x-amz-security-token", token.expose()));
        }
        let payload = sigv4::sha256_hex(body);
        let scope = sigv4::Scope {
            region: &self.region,
            service: SERVICE,
            amz_date: &amz_date,
        };
        let request = sigv4::Signable {
            method: "POST",
            path,
            query: "",
            headers: &signed,
            payload_sha256: &payload,
        };
        let authorization = sigv4::authorization(
            &self.access_key_id,
            self.secret_access_key.expose(),
            &scope,
            &request,
        );
        let mut out = vec![
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), self.host.clone()),
        ];
        out.extend(
            signed
                .iter()
                .filter(|(name, _)| *name != "host")
                .map(|(n, v)| (n.to_string(), v.to_string())),
        );
        out.push(("authorization".to_string(), authorization));
        out
    }
}

/// `/model/{modelId}/{action}`, the model id percent-encoded as the AWS SDKs do (`:` → `%3A`;
/// inference-profile ARNs keep no raw `/`).
pub fn model_path(model: &str, action: &str) -> String {
    format!("/model/{}/{action}", sigv4::uri_encode(model, false))
}

fn env_secret(
    env: &dyn Env,
    path: String,
    var: &str,
    required: bool,
) -> Result<Option<Secret>, ConfigError> {
    if var.trim().is_empty() {
        return Err(ConfigError::new(path, "must not be empty"));
    }
    match env.var(var) {
        Some(value) if !value.trim().is_empty() => Ok(Some(Secret::new(value.trim()))),
        _ if required => Err(ConfigError::new(
            path,
            format!("environment variable {var} is not set or empty"),
        )),
        _ => Ok(None),
    }
}

/// Compile a `bedrock` provider's fields (`at` makes the field path, `providers[i].<field>`).
pub(super) fn compile_endpoint(
    p: &RawBedrock,
    key_header: bool,
    env: &dyn Env,
    at: &dyn Fn(&str) -> String,
) -> Result<BedrockEndpoint, ConfigError> {
    let Some(region) = p.region.as_deref() else {
        return Err(ConfigError::new(
            at("region"),
            "required for schema `bedrock` (e.g. `us-east-1`)",
        ));
    };
    let valid_region = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_region {
        return Err(ConfigError::new(
            at("region"),
            format!("`{region}` is not an AWS region name (lower-case letters, digits, `-`)"),
        ));
    }
    let host = p
        .host
        .clone()
        .unwrap_or_else(|| format!("bedrock-runtime.{region}.amazonaws.com"));
    if host.is_empty() || host.contains(['/', '?', '#', ' ', '@']) {
        return Err(ConfigError::new(
            at("host"),
            format!(
                "`{host}` must be a host name (optionally with `:port`), without scheme or path"
            ),
        ));
    }
    if key_header {
        // The credentials come with each try (`Provider::with_aws_credentials`).
        return Ok(BedrockEndpoint {
            region: region.to_string(),
            host,
            access_key_id: String::new(),
            secret_access_key: Secret::new(""),
            session_token: None,
        });
    }
    let access_env = p.access_key_env.as_deref().unwrap_or("AWS_ACCESS_KEY_ID");
    let secret_env = p
        .secret_key_env
        .as_deref()
        .unwrap_or("AWS_SECRET_ACCESS_KEY");
    let access_key_id = env_secret(env, at("access_key_env"), access_env, true)?
        .map(|s| s.expose().to_string())
        .unwrap_or_default();
    let secret_access_key =
        env_secret(env, at("secret_key_env"), secret_env, true)?.unwrap_or(Secret::new(""));
    // A token named in the config must be there; the default variable is used when set
    // (temporary credentials) and skipped otherwise (long-term keys).
    let session_token = match p.session_token_env.as_deref() {
        Some(var) => env_secret(env, at("session_token_env"), var, true)?,
        None => env_secret(env, at("session_token_env"), "AWS_SESSION_TOKEN", false)?,
    };
    Ok(BedrockEndpoint {
        region: region.to_string(),
        host,
        access_key_id,
        secret_access_key,
        session_token,
    })
}

// ---------------------------------------------------------------------------------------------
// Request

fn unsupported(field: &str) -> ApiError {
    ApiError::invalid_request(format!(
        "`{field}` is not supported for Amazon Bedrock (Converse) through llmgw yet"
    ))
    .with_param(field)
}

/// `data:image/<type>;base64,<data>` → a Converse image block. Converse takes image bytes
/// (or S3 locations), never URLs to fetch.
fn image_block(url: Cow<'_, str>) -> Option<br::ContentBlock<'_>> {
    let data_url = request_fields::data_url(&url)?;
    let format = match data_url.media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    };
    Some(br::ContentBlock::Image(br::ImageBlock {
        format,
        source: br::ImageSource {
            bytes: Cow::Owned(data_url.data.to_string()),
        },
    }))
}

/// `cache` says whether the model takes cache points ([`takes_cache_points`]): a part's
/// `cache_control` then becomes a `cachePoint` block after the part's block; otherwise it is
/// dropped.
fn content_blocks<'a>(
    content: oa::Content<'a>,
    at: &str,
    images: bool,
    cache: bool,
) -> Result<Vec<br::ContentBlock<'a>>, ApiError> {
    let parts = match content {
        oa::Content::Text(text) => vec![oa::ContentPart::Text {
            text,
            cache_control: None,
        }],
        oa::Content::Parts(parts) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let cache_point = cache
            && matches!(
                &part,
                oa::ContentPart::Text {
                    cache_control: Some(_),
                    ..
                } | oa::ContentPart::ImageUrl {
                    cache_control: Some(_),
                    ..
                }
            );
        let block = match part {
            oa::ContentPart::Text { text, .. } | oa::ContentPart::Refusal { refusal: text } => {
                // Converse refuses blank text blocks; an empty string carries nothing.
                if text.trim().is_empty() {
                    continue;
                }
                br::ContentBlock::Text(text)
            }
            oa::ContentPart::ImageUrl { image_url, .. } if images => image_block(image_url.url)
                .ok_or_else(|| {
                    ApiError::invalid_request(
                        "Amazon Bedrock takes images as base64 `data:image/(png|jpeg|gif|webp);base64,…` \
                         URLs, not links",
                    )
                    .with_param(format!("{at}[{j}].image_url.url"))
                })?,
            oa::ContentPart::ImageUrl { .. } | oa::ContentPart::Other => {
                return Err(unsupported(&format!("{at}[{j}]")))
            }
        };
        blocks.push(block);
        if cache_point {
            blocks.push(br::ContentBlock::CachePoint(br::CachePoint::DEFAULT));
        }
    }
    Ok(blocks)
}

/// Does `model` take Converse cache points? Bedrock refuses a request with a `cachePoint` for a
/// model without prompt caching ("You invoked an unsupported model or your request did not
/// allow prompt caching"), so a client's `cache_control` becomes one only for the models of
/// <https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html#prompt-caching-models>:
/// Amazon Nova and Anthropic Claude from 3.5 Haiku, 3.5 Sonnet v2 and 3.7 on (ids and
/// inference profiles). For any other model, an application inference profile ARN included,
/// it is dropped: caching saves cost and time but changes no answer.
fn takes_cache_points(model: &str) -> bool {
    const UNCACHED_CLAUDE: [&str; 6] = [
        "claude-v2",
        "claude-instant",
        "claude-3-haiku-",
        "claude-3-sonnet-",
        "claude-3-opus-",
        "claude-3-5-sonnet-20240620",
    ];
    model.contains("amazon.nova")
        || (is_claude(model) && !UNCACHED_CLAUDE.iter().any(|old| model.contains(old)))
}

/// `tools`, `tool_choice` and `parallel_tool_calls` → `toolConfig`. `history` says whether
/// the conversation holds tool calls or results, for which Converse requires `toolConfig`.
fn tool_config(
    features: &mut request_fields::Features,
    history: bool,
) -> Result<Option<br::ToolConfig>, ApiError> {
    let invalid =
        |message: &str, param: String| ApiError::invalid_request(message).with_param(param);
    if features.tools.is_empty() {
        if history {
            return Err(invalid(
                "Amazon Bedrock needs the `tools` that the conversation's tool calls used",
                "tools".to_string(),
            ));
        }
        // `tool_choice: "none"` and `parallel_tool_calls` without tools ask for nothing.
        return Ok(None);
    }
    if features.parallel_tool_calls == Some(false) {
        // Converse has no switch for it: the model may still call several tools at once.
        return Err(invalid(
            "`parallel_tool_calls: false` cannot be honoured by Amazon Bedrock Converse",
            "parallel_tool_calls".to_string(),
        ));
    }
    let tool_choice = match features.tool_choice.take() {
        None => None,
        Some(oa::ToolChoice::Auto) => Some(br::ToolChoice::Auto {}),
        Some(oa::ToolChoice::Required) => Some(br::ToolChoice::Any {}),
        Some(oa::ToolChoice::Named(name)) => Some(br::ToolChoice::Tool { name }),
        // Converse has no "none". Leaving the tools out honours it exactly, unless the
        // conversation already holds tool blocks: then Converse requires `toolConfig`.
        Some(oa::ToolChoice::None) if !history => return Ok(None),
        Some(oa::ToolChoice::None) => {
            return Err(invalid(
                "`tool_choice: \"none\"` cannot be honoured by Amazon Bedrock once the \
                 conversation holds tool calls (Converse has no \"none\" and needs the tools then)",
                "tool_choice".to_string(),
            ))
        }
    };
    let mut tools = Vec::with_capacity(features.tools.len());
    for (i, tool) in std::mem::take(&mut features.tools).into_iter().enumerate() {
        let function = tool.function;
        if !request_fields::valid_tool_name(&function.name) {
            return Err(invalid(
                "Amazon Bedrock tool names are 1 to 64 of `a-z`, `A-Z`, `0-9`, `_`, `-`",
                format!("tools[{i}].function.name"),
            ));
        }
        let json = match function.parameters {
            None => serde_json::json!({"type": "object", "properties": {}}),
            Some(schema @ Value::Object(_)) => schema,
            Some(_) => {
                return Err(invalid(
                    "tool `parameters` must be a JSON Schema object",
                    format!("tools[{i}].function.parameters"),
                ))
            }
        };
        tools.push(br::Tool::ToolSpec(br::ToolSpec {
            name: function.name,
            description: function.description.filter(|d| !d.is_empty()),
            input_schema: br::InputSchema { json },
        }));
    }
    Ok(Some(br::ToolConfig { tools, tool_choice }))
}

/// An assistant message's `tool_calls` → `toolUse` blocks.
fn tool_use_blocks(
    value: Option<Value>,
    i: usize,
) -> Result<Vec<br::ContentBlock<'static>>, ApiError> {
    let calls = request_fields::assistant_tool_calls(value, i)?;
    let mut blocks = Vec::with_capacity(calls.len());
    for call in calls {
        let call = call?;
        blocks.push(br::ContentBlock::ToolUse(br::ToolUseBlock {
            tool_use_id: call.id,
            name: call.name,
            input: call.arguments,
        }));
    }
    Ok(blocks)
}

/// OpenAI request → Converse request for `model`.
pub fn to_converse_request<'a>(
    request: oa::ChatCompletionRequest<'a>,
    model: &str,
) -> Result<br::ConverseRequest<'a>, ApiError> {
    to_converse_request_with_answer(request, model).map(|(request, _)| request)
}

/// Is `model` (a model id, a cross-region inference profile id such as
/// `us.anthropic.claude-…`, or a foundation-model ARN) one of Anthropic's Claude models?
fn is_claude(model: &str) -> bool {
    model.contains("anthropic.claude")
}

/// The answer tokens when the client set no limit but thinking needs `maxTokens` above its
/// budget (the Anthropic translator's default `default_max_tokens`).
const THINKING_ANSWER_TOKENS: u32 = 4096;

/// `reasoning_effort` → Claude's `thinking` in `additionalModelRequestFields`, as on the
/// Anthropic API ([`super::reasoning`]); a 400 naming the field for other models, whose
/// reasoning configs differ per model family. `None`: no thinking to ask for.
fn claude_thinking(effort: Option<Effort>, model: &str) -> Result<Option<u32>, ApiError> {
    let Some(effort) = effort else {
        return Ok(None);
    };
    if !is_claude(model) {
        return Err(ApiError::invalid_request(format!(
            "`reasoning_effort` is mapped only for Anthropic Claude models on Amazon Bedrock, \
             not `{model}`"
        ))
        .with_param(reasoning::FIELD));
    }
    Ok(effort.anthropic_budget())
}

/// Does the conversation end with a user turn of tool results?
fn answers_tool_calls(messages: &[br::Message<'_>]) -> bool {
    messages.last().is_some_and(|m| {
        m.role == br::Role::User
            && m.content
                .iter()
                .any(|b| matches!(b, br::ContentBlock::ToolResult(_)))
    })
}

/// [`to_converse_request`]; also returns the name of the forced answer tool standing for
/// `response_format`, if any.
pub fn to_converse_request_with_answer<'a>(
    mut request: oa::ChatCompletionRequest<'a>,
    model: &str,
) -> Result<(br::ConverseRequest<'a>, Option<String>), ApiError> {
    // SDKs send `tools: []` with `tool_choice: "auto"` (or `"none"`): that asks for nothing.
    if request
        .other
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        request.other.remove("tools");
        let choice = request.other.get("tool_choice").and_then(Value::as_str);
        if matches!(choice, Some("auto" | "none")) {
            request.other.remove("tool_choice");
        }
    }
    let mut features = request_fields::take_features(&mut request.other)?;
    if let Some(name) = request_fields::first_unmapped(&request.other) {
        return Err(unsupported(name));
    }
    if features.seed.is_some() {
        return Err(unsupported("seed"));
    }
    let budget = claude_thinking(features.reasoning_effort, model)?;
    let cache = takes_cache_points(model);
    // Structured output is a forced tool whose input is the answer, as for Anthropic.
    let answer = request_fields::answer_tool(&mut features, "Amazon Bedrock")?;
    let mut history = false;
    let mut system = Vec::new();
    let mut messages: Vec<br::Message<'_>> = Vec::with_capacity(request.messages.len());
    for (i, message) in request.messages.into_iter().enumerate() {
        let at = format!("messages[{i}].content");
        let (role, blocks) = match message {
            oa::ChatMessage::System { content } | oa::ChatMessage::Developer { content } => {
                system.extend(
                    content_blocks(content, &at, false, cache)?
                        .into_iter()
                        .filter_map(|b| match b {
                            br::ContentBlock::Text(text) => Some(br::SystemBlock::Text(text)),
                            br::ContentBlock::CachePoint(point) => {
                                Some(br::SystemBlock::CachePoint(point))
                            }
                            _ => None,
                        }),
                );
                continue;
            }
            oa::ChatMessage::User { content } => {
                (br::Role::User, content_blocks(content, &at, true, cache)?)
            }
            oa::ChatMessage::Assistant {
                content,
                tool_calls,
                function_call,
            } => {
                if function_call.is_some_and(|c| !c.is_null()) {
                    return Err(unsupported(&format!("messages[{i}].function_call")));
                }
                let mut blocks = match content {
                    Some(content) => content_blocks(content, &at, false, cache)?,
                    None => Vec::new(),
                };
                let calls = tool_use_blocks(tool_calls, i)?;
                history |= !calls.is_empty();
                blocks.extend(calls);
                (br::Role::Assistant, blocks)
            }
            oa::ChatMessage::Tool {
                tool_call_id,
                content,
            } => {
                let Some(tool_use_id) = tool_call_id else {
                    return Err(
                        ApiError::invalid_request("a `tool` message needs `tool_call_id`")
                            .with_param(format!("messages[{i}].tool_call_id")),
                    );
                };
                let text = request_fields::tool_result_text(content, &at)?;
                history = true;
                // A user turn; consecutive results merge below into one turn, since
                // Converse wants the roles to alternate.
                let block = br::ContentBlock::ToolResult(br::ToolResultBlock {
                    tool_use_id,
                    content: vec![br::ToolResultContent::Text(text)],
                });
                (br::Role::User, vec![block])
            }
            oa::ChatMessage::Function {} => {
                return Err(unsupported(&format!("messages[{i}].role")));
            }
        };
        if blocks.is_empty() {
            continue;
        }
        // Converse wants user and assistant turns to alternate: consecutive turns of one role
        // become one turn with all their blocks, which is what the model would read anyway.
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => messages.push(br::Message {
                role,
                content: blocks,
            }),
        }
    }
    match messages.first() {
        None => {
            return Err(ApiError::invalid_request(
                "`messages` needs at least one non-empty user message for Amazon Bedrock",
            )
            .with_param("messages"))
        }
        Some(first) if first.role != br::Role::User => {
            return Err(ApiError::invalid_request(
                "Amazon Bedrock Converse needs the conversation to start with a user message",
            )
            .with_param("messages"))
        }
        Some(_) => {}
    }
    let mut tool_config = tool_config(&mut features, history)?;
    let answer_name = answer.as_ref().map(|a| a.name.clone());
    if let Some(answer) = answer {
        // No client tools here (`answer_tool` refused them), so this is the only tool.
        tool_config = Some(br::ToolConfig {
            tool_choice: Some(br::ToolChoice::Tool {
                name: answer.name.clone(),
            }),
            tools: vec![br::Tool::ToolSpec(br::ToolSpec {
                name: answer.name,
                description: Some(answer.description),
                input_schema: br::InputSchema {
                    json: answer.schema,
                },
            })],
        });
    }
    // As on the Anthropic API: thinking stays off for a turn that answers tool calls (the
    // calling turn would have to start with its signed reasoning block, which Chat cannot carry
    // back), it does not combine with forced tools or sampling changes, and `maxTokens` rises by
    // the budget.
    let budget = budget.filter(|_| !answers_tool_calls(&messages));
    let mut max_tokens = request.max_completion_tokens.or(request.max_tokens);
    if let Some(budget) = budget {
        let forced = match &tool_config {
            Some(br::ToolConfig {
                tool_choice: Some(br::ToolChoice::Any {} | br::ToolChoice::Tool { .. }),
                ..
            }) if answer_name.is_some() => Some("response_format"),
            Some(br::ToolConfig {
                tool_choice: Some(br::ToolChoice::Any {} | br::ToolChoice::Tool { .. }),
                ..
            }) => Some("tool_choice"),
            _ => None,
        };
        reasoning::check_claude_thinking(PROVIDER, request.temperature, request.top_p, forced)?;
        max_tokens = Some(
            max_tokens
                .unwrap_or(THINKING_ANSWER_TOKENS)
                .saturating_add(budget),
        );
    }
    Ok((
        br::ConverseRequest {
            messages,
            system,
            tool_config,
            additional_model_request_fields: budget.map(|budget| {
                serde_json::json!({"thinking": {"type": "enabled", "budget_tokens": budget}})
            }),
            inference_config: br::InferenceConfig {
                max_tokens,
                temperature: request.temperature,
                top_p: request.top_p,
                stop_sequences: request.stop.map(oa::Stop::into_vec),
            },
        },
        answer_name,
    ))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A Bedrock error name (`x-amzn-errortype` without its `:…` suffix, or a stream exception's
/// `:exception-type`) and the HTTP status → OpenAI error type and the status the client gets.
/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors>
fn classify(name: &str, status: u16) -> (ErrorType, u16) {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "throttlingexception" | "servicequotaexceededexception" => {
            (ErrorType::RateLimitError, or(status, 429))
        }
        "validationexception" => (ErrorType::InvalidRequestError, or(status, 400)),
        "accessdeniedexception" => (ErrorType::PermissionError, or(status, 403)),
        "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "incompletesignatureexception"
        | "missingauthenticationtokenexception"
        | "expiredtokenexception" => (ErrorType::AuthenticationError, or(status, 403)),
        "resourcenotfoundexception" => (ErrorType::NotFoundError, or(status, 404)),
        // Bedrock answers 429 while a model warms up; clients should wait and retry, which
        // 503 says to every HTTP client and OpenAI SDK.
        "modelnotreadyexception" => (ErrorType::ServiceUnavailableError, 503),
        "serviceunavailableexception" => (ErrorType::ServiceUnavailableError, or(status, 503)),
        _ => (ErrorType::for_status(status), or(status, 500)),
    }
}

/// `status` unless it is unknown (0, mid-stream) or not an error.
fn or(status: u16, default: u16) -> u16 {
    if status >= 400 {
        status
    } else {
        default
    }
}

/// The error's short name: `ValidationException:http://internal.amazon.com/…` → `ValidationException`.
fn error_name(header: &str) -> &str {
    header.split(':').next().unwrap_or(header).trim()
}

/// A Bedrock error answer → OpenAI error.
pub fn translate_error(status: u16, error_type: Option<&str>, body: &[u8]) -> ApiError {
    let name = error_type.map(error_name).unwrap_or_default();
    let (kind, client_status) = classify(name, status);
    let message = crate::json::from_slice::<br::ErrorBody<'_>>(body)
        .ok()
        .and_then(|b| b.message);
    let error = match message {
        Some(message) => ApiError::new(client_status, kind, message),
        None => unreadable_error(status, client_status, kind),
    };
    if name.is_empty() {
        error
    } else {
        error.with_code(name)
    }
}

// ---------------------------------------------------------------------------------------------
// Response

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_ResponseSyntax>
fn finish_reason(reason: br::StopReason) -> oa::FinishReason {
    match reason {
        br::StopReason::EndTurn | br::StopReason::StopSequence | br::StopReason::Other => {
            oa::FinishReason::Stop
        }
        br::StopReason::MaxTokens | br::StopReason::ModelContextWindowExceeded => {
            oa::FinishReason::Length
        }
        br::StopReason::ToolUse => oa::FinishReason::ToolCalls,
        br::StopReason::GuardrailIntervened | br::StopReason::ContentFiltered => {
            oa::FinishReason::ContentFilter
        }
    }
}

/// Bedrock counts cache reads and writes apart from `inputTokens`; OpenAI's `prompt_tokens`
/// includes cached tokens and reports cache hits in `prompt_tokens_details.cached_tokens`.
pub fn openai_usage(usage: &br::TokenUsage) -> Usage {
    usage_with_cache(
        usage.input_tokens,
        usage.cache_read_input_tokens,
        usage.cache_write_input_tokens,
        usage.output_tokens,
    )
}

/// A Converse answer → `chat.completion`. `tools` knows the forced tool standing for
/// `response_format`, whose input is the message content.
fn translate_response(
    response: &br::ConverseResponse<'_>,
    id: &str,
    model: &str,
    created: u64,
    tools: &ToolCalls,
    dropped: &mut Dropped,
) -> Result<(Vec<u8>, Usage), serde_json::Error> {
    let mut answer = AnswerMessage::default();
    for block in &response.output.message.content {
        if let Some(text) = &block.text {
            answer.push_text(Cow::Borrowed(text));
        }
        if let Some(tool) = &block.tool_use {
            answer.push_tool_use(&tool.tool_use_id, &tool.name, &tool.input, tools)?;
        }
        let reasoning = block
            .reasoning_content
            .as_ref()
            .and_then(|r| r.reasoning_text.as_ref());
        if let Some(reasoning) = reasoning {
            answer.push_reasoning(Cow::Borrowed(&reasoning.text));
        }
        // Redacted reasoning, citations, new block types.
        if block.text.is_none() && block.tool_use.is_none() && reasoning.is_none() {
            dropped.note(PROVIDER, what::CONTENT, "content block");
        }
    }
    let usage = openai_usage(&response.usage.unwrap_or_default());
    let finish = response.stop_reason.map(|reason| match reason {
        br::StopReason::ToolUse => answer.tool_use_finish(tools),
        br::StopReason::Other => {
            dropped.note(PROVIDER, what::STOP_REASON, "stopReason");
            finish_reason(reason)
        }
        other => finish_reason(other),
    });
    Ok((answer.into_body(id, created, model, finish, usage)?, usage))
}

/// The translator; one per try.
#[derive(Debug)]
pub struct OpenAiBedrock {
    endpoint: Rc<BedrockEndpoint>,
    /// The provider path, known once the body named the model and whether to stream.
    path: String,
    status: u16,
    /// `x-amzn-errortype` of an error answer.
    error_type: Option<String>,
    /// The OpenAI answer's id, model and time, for a whole answer too. The id is
    /// `chatcmpl-<x-amzn-requestid>` (Converse answers carry none of their own). The stream ends
    /// (`terminated`) with metadata, an exception, or a broken frame.
    stream: ChunkStream,
    decoder: eventstream::Decoder,
    /// `messageStop` arrived: the answer is complete, only its usage (`metadata`) may follow.
    stopped: bool,
    /// The forced answer tool, and which `contentBlockIndex` is which tool call, so each input
    /// fragment reaches the call its block started (or the content, for the answer tool).
    tools: ToolCalls,
    usage: Option<Usage>,
    /// What had no place in the OpenAI answer.
    dropped: Dropped,
}

impl OpenAiBedrock {
    pub fn new(endpoint: Rc<BedrockEndpoint>) -> Self {
        Self {
            endpoint,
            path: model_path("", "converse"),
            status: 0,
            error_type: None,
            stream: ChunkStream {
                id: "chatcmpl-bedrock".to_string(),
                ..ChunkStream::default()
            },
            decoder: eventstream::Decoder::new(),
            stopped: false,
            tools: ToolCalls::default(),
            usage: None,
            dropped: Dropped::default(),
        }
    }

    /// The status an error answer goes to the client with (what `x-amzn-errortype` maps to).
    fn error_status(&self) -> u16 {
        let name = self.error_type.as_deref().map(error_name).unwrap_or("");
        classify(name, self.status).1
    }

    /// Tool blocks that end without input get `{}` (see [`ToolCalls::end`]).
    fn end_tool_blocks(&mut self, out: &mut Vec<u8>, block: Option<u32>) {
        for block in self.tools.end(block) {
            self.stream.tool_input(out, block, EMPTY_ARGUMENTS);
        }
    }

    /// One event-stream frame → zero or more OpenAI frames.
    fn on_message(&mut self, message: &eventstream::Message, out: &mut Vec<u8>) {
        match message.header(":message-type") {
            Some("event") => {}
            Some("exception") => {
                let name = message.header(":exception-type").unwrap_or_default();
                let error = translate_error(0, Some(name), &message.payload);
                self.stream.fail(out, &error);
                return;
            }
            Some("error") => {
                let code = message.header(":error-code").unwrap_or("error");
                let text = message.header(":error-message").unwrap_or("stream error");
                let (kind, status) = classify(code, 0);
                let error = ApiError::new(status, kind, text).with_code(code);
                self.stream.fail(out, &error);
                return;
            }
            _ => return, // unknown message types are skipped, like unknown events
        }
        let event = message.header(":event-type").unwrap_or_default();
        let unreadable = || unreadable_answer("a stream event that is not the documented JSON");
        match event {
            "messageStart" => self.stream.role(out),
            "contentBlockStart" => {
                match crate::json::from_slice::<br::ContentBlockStartEvent<'_>>(&message.payload) {
                    Ok(parsed) => {
                        let Some(tool) = parsed.start.and_then(|s| s.tool_use) else {
                            return; // text blocks start with their first delta
                        };
                        // The first piece of a call: id, type and name; arguments follow. The
                        // answer tool's JSON follows as content: nothing to announce.
                        if let Some(index) =
                            self.tools.start(parsed.content_block_index, &tool.name)
                        {
                            self.stream
                                .tool_call(out, index, &tool.tool_use_id, &tool.name, "");
                        }
                    }
                    Err(_) => self.stream.fail(out, &unreadable()),
                }
            }
            "contentBlockDelta" => {
                match crate::json::from_slice::<br::ContentBlockDeltaEvent<'_>>(&message.payload) {
                    Ok(parsed) => {
                        let delta = &parsed.delta;
                        if let Some(reasoning) = &delta.reasoning_content {
                            if let Some(text) = &reasoning.text {
                                self.stream.reasoning(out, text);
                            } else if reasoning.redacted_content.is_some() {
                                self.dropped
                                    .note(PROVIDER, what::CONTENT, "redacted reasoning");
                            }
                            // A signature: Chat has no place to carry it back.
                        } else if delta.text.is_none() && delta.tool_use.is_none() {
                            // citations, new delta types.
                            self.dropped
                                .note(PROVIDER, what::CONTENT, "content block delta");
                        }
                        if let Some(text) = parsed.delta.text.filter(|t| !t.is_empty()) {
                            self.stream.text(out, &text);
                        }
                        if let Some(tool) = parsed.delta.tool_use.filter(|t| !t.input.is_empty()) {
                            match self.tools.input(parsed.content_block_index) {
                                Some(block) => self.stream.tool_input(out, block, &tool.input),
                                // Input for a call that never started: nothing to attach it to.
                                None => self.stream.fail(out, &unreadable()),
                            }
                        }
                    }
                    Err(_) => self.stream.fail(out, &unreadable()),
                }
            }
            "contentBlockStop" => {
                match crate::json::from_slice::<br::ContentBlockStopEvent>(&message.payload) {
                    Ok(parsed) => self.end_tool_blocks(out, Some(parsed.content_block_index)),
                    Err(_) => self.stream.fail(out, &unreadable()),
                }
            }
            "messageStop" => {
                match crate::json::from_slice::<br::MessageStopEvent>(&message.payload) {
                    Ok(parsed) => {
                        // A block the provider never closed still gets its arguments.
                        self.end_tool_blocks(out, None);
                        self.stopped = true;
                        let finish = parsed.stop_reason.map(|reason| match reason {
                            br::StopReason::ToolUse => self.tools.tool_use_finish(),
                            br::StopReason::Other => {
                                self.dropped.note(PROVIDER, what::STOP_REASON, "stopReason");
                                finish_reason(reason)
                            }
                            other => finish_reason(other),
                        });
                        self.stream.finish(out, finish);
                    }
                    Err(_) => self.stream.fail(out, &unreadable()),
                }
            }
            "metadata" => match crate::json::from_slice::<br::MetadataEvent>(&message.payload) {
                Ok(parsed) => {
                    if let Some(usage) = parsed.usage {
                        self.usage = Some(openai_usage(&usage));
                    }
                    self.stream.done(out, self.usage);
                }
                Err(_) => self.stream.fail(out, &unreadable()),
            },
            other => self.dropped.note(PROVIDER, what::EVENT, other),
        }
    }
}

impl Translator for OpenAiBedrock {
    fn chat_path(&self, _query: Option<&str>) -> String {
        // Placeholder until the body names the model; `finish_request` sets the real path.
        self.path.clone()
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let request = request_fields::parse_request(body)?;
        let model =
            request_fields::chosen_model(upstream_model, request.model.as_deref())?.to_string();
        self.stream.include_usage = request_fields::wants_stream_usage(&request);
        let action = if request.stream == Some(true) {
            "converse-stream"
        } else {
            "converse"
        };
        self.path = model_path(&model, action);
        let (translated, answer_tool) = to_converse_request_with_answer(request, &model)?;
        self.stream.model = model;
        self.tools.answer_tool = answer_tool;
        request_fields::encode(&translated).map(Some)
    }

    fn finish_request(&mut self, body: &[u8], now_ms: u64) -> Vec<(String, String)> {
        let mut headers = self.endpoint.signed_headers(&self.path, body, now_ms);
        // The client asked the gateway for JSON or SSE; Bedrock answers a stream as binary
        // event-stream frames, which is what the AWS SDKs accept.
        let accept = if self.path.ends_with("/converse-stream") {
            "application/vnd.amazon.eventstream"
        } else {
            "application/json"
        };
        headers.push(("accept".to_string(), accept.to_string()));
        headers
    }

    fn response_headers_read(&self) -> &'static [&'static str] {
        &["x-amzn-errortype", "x-amzn-requestid"]
    }

    fn note_response_header(&mut self, name: &str, value: &str) {
        match name {
            "x-amzn-errortype" => self.error_type = Some(value.to_string()),
            "x-amzn-requestid" => self.stream.id = format!("chatcmpl-{value}"),
            _ => {}
        }
    }

    fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        encoded: bool,
        created: u64,
    ) -> ResponsePlan {
        self.stream.created = created;
        self.status = status;
        let stream = !encoded && has_media_type(content_type, "application/vnd.amazon.eventstream");
        buffer_plan(status, stream, self.error_status())
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        let (status, error_status) = (self.status, self.error_status());
        let (error_type, stream) = (self.error_type.as_deref(), &self.stream);
        let (tools, usage, dropped) = (&self.tools, &mut self.usage, &mut self.dropped);
        buffered_answer(
            status,
            error_status,
            body,
            &|body| translate_error(status, error_type, body),
            &mut |body| {
                let response =
                    read_answer::<br::ConverseResponse<'_>>(body, "not a Bedrock Converse answer")?;
                let translated = translate_response(
                    &response,
                    &stream.id,
                    &stream.model,
                    stream.created,
                    tools,
                    dropped,
                );
                with_usage(translated, usage, "an answer that cannot be re-encoded")
            },
        )
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if !self.stream.terminated {
            for frame in self.decoder.feed(chunk) {
                match frame {
                    Ok(message) => self.on_message(&message, &mut out),
                    Err(err) => {
                        log::warn!("llmgw.translate: Bedrock event stream: {err}");
                        let error = ApiError::new(
                            502,
                            ErrorType::ApiError,
                            format!("the provider's event stream is corrupt: {err}"),
                        )
                        .with_code("upstream_stream_corrupt");
                        self.stream.fail(&mut out, &error);
                    }
                }
                if self.stream.terminated {
                    break; // nothing after the terminal event is forwarded
                }
            }
        }
        if end_of_stream && !self.stream.terminated {
            if self.stopped && !self.decoder.has_pending() {
                // The answer is complete; only the usage event is missing.
                self.stream.done(&mut out, self.usage);
            } else {
                self.stream.fail(&mut out, &truncated_stream_error());
            }
        }
        Some(out)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn hide_usage_chunk(&mut self) {
        self.stream.include_usage = false;
    }

    fn stream_failed(&self) -> bool {
        self.stream.failed
    }

    fn dropped(&self) -> &[(&'static str, u64)] {
        self.dropped.counts()
    }
}
