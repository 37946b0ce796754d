//! OpenAI Chat Completions to the Anthropic Messages API, and back.
//!
//! Request: <https://platform.openai.com/docs/api-reference/chat/create> becomes
//! <https://docs.anthropic.com/en/api/messages>. What Anthropic cannot honour (several choices,
//! log probabilities, penalties, seed, …) is refused with a 400 naming the field, never dropped
//! (unless the provider's config says to): a client that asked for `n: 3` must not silently get
//! one answer. Tools map to Anthropic tools
//! (<https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use>);
//! structured output (`response_format`) becomes a forced tool whose input is the answer,
//! mapped back to message content, as Anthropic recommends for JSON output
//! (<https://docs.anthropic.com/en/docs/test-and-evaluate/strengthen-guardrails/increase-consistency#example-standardizing-customer-feedback>).
//!
//! Response: an Anthropic message becomes a `chat.completion`
//! (<https://platform.openai.com/docs/api-reference/chat/object>), Anthropic errors
//! (<https://docs.anthropic.com/en/api/errors>) become OpenAI errors, and the event stream
//! (<https://docs.anthropic.com/en/api/messages-streaming>) becomes `chat.completion.chunk`s
//! (<https://platform.openai.com/docs/api-reference/chat-streaming>), translated event by event
//! as the bytes arrive.

use std::borrow::Cow;

use super::completion::{usage_with_cache, AnswerMessage, ChunkStream, ToolCalls, EMPTY_ARGUMENTS};
use super::dropped::{what, Dropped};
use super::reasoning::{self, Effort};
use super::request_fields;
use super::{
    buffer_plan, buffered_answer, has_media_type, read_answer, truncated_stream_error,
    unreadable_answer, unreadable_error, with_usage, ResponseBody, ResponsePlan,
};
use super::{Translator, Usage};
use crate::error::{ApiError, ErrorType};
use crate::schema::anthropic as an;
use crate::schema::openai as oa;
use crate::sse;

/// The provider, in what is logged.
const PROVIDER: &str = "Anthropic";

/// An event's name for the log: its SSE `event:` field, else "event".
fn event_name(event: &sse::Event) -> String {
    event.event.clone().unwrap_or_else(|| "event".to_string())
}

/// Anthropic accepts `temperature` in 0..=1; OpenAI in 0..=2.
const MAX_TEMPERATURE: f64 = 1.0;

/// The translator; one per try.
#[derive(Debug)]
pub struct OpenAiAnthropic {
    default_max_tokens: u32,
    /// The provider's response status.
    status: u16,
    /// The OpenAI stream: its id is `chatcmpl-<message id>`; it ends (`terminated`) with
    /// `message_stop` or an `error` event, as the provider meant it, or with our error frame.
    stream: ChunkStream,
    decoder: sse::Decoder,
    /// Usage as Anthropic reports it, accumulated over `message_start` and `message_delta`.
    stream_usage: an::Usage,
    usage: Option<Usage>,
    drop_fields: Vec<String>,
    /// The forced answer tool, and which Anthropic content block index is which tool call.
    tools: ToolCalls,
    /// What had no place in the OpenAI answer.
    dropped: Dropped,
}

/// The forced tool's name for `response_format: json_object` (a `json_schema` uses its name).
pub use super::request_fields::JSON_ANSWER_TOOL;

impl OpenAiAnthropic {
    pub fn new(default_max_tokens: u32) -> Self {
        Self {
            default_max_tokens,
            status: 0,
            stream: ChunkStream::default(),
            decoder: sse::Decoder::new(),
            stream_usage: an::Usage::default(),
            usage: None,
            drop_fields: Vec::new(),
            tools: ToolCalls::default(),
            dropped: Dropped::default(),
        }
    }

    /// Request fields the provider's config says to drop.
    pub fn with_drop_fields(mut self, drop_fields: Vec<String>) -> Self {
        self.drop_fields = drop_fields;
        self
    }

    /// Did the client ask for `stream_options.include_usage`?
    pub fn include_usage(&self) -> bool {
        self.stream.include_usage
    }
}

// ---------------------------------------------------------------------------------------------
// Request

fn unsupported(field: &str, why: &str) -> ApiError {
    ApiError::invalid_request(format!(
        "`{field}` is not supported by the Anthropic Messages API{why}"
    ))
    .with_param(field)
}

/// A field refused because llmgw maps its successor instead (`tools` for `functions`).
fn not_yet(name: &str) -> bool {
    matches!(name, "functions" | "function_call")
}

/// The tools, the tool choice and the forced answer tool's name.
type ToolsAndAnswer = (
    Vec<an::ToolDefinition>,
    Option<an::ToolChoice>,
    Option<String>,
);

/// Tools, tool choice and the forced answer tool of `response_format`.
fn anthropic_tools(mut features: request_fields::Features) -> Result<ToolsAndAnswer, ApiError> {
    let disable_parallel = features.parallel_tool_calls == Some(false);
    let answer = request_fields::answer_tool(&mut features, "Anthropic")?;
    let mut tools: Vec<an::ToolDefinition> = std::mem::take(&mut features.tools)
        .into_iter()
        .map(|t| an::ToolDefinition {
            name: t.function.name,
            description: t.function.description,
            // Anthropic requires a schema; no parameters is an object without properties.
            input_schema: t
                .function
                .parameters
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        })
        .collect();
    let answer = answer.map(|answer| {
        tools.push(an::ToolDefinition {
            name: answer.name.clone(),
            description: Some(answer.description),
            input_schema: answer.schema,
        });
        answer.name
    });
    let choice = match (&answer, features.tool_choice) {
        (Some(name), _) => Some(an::ToolChoice::Tool {
            name: name.clone(),
            disable_parallel_tool_use: true,
        }),
        (None, None) if disable_parallel && !tools.is_empty() => Some(an::ToolChoice::Auto {
            disable_parallel_tool_use: true,
        }),
        (None, None) => None,
        (None, Some(oa::ToolChoice::Auto)) => Some(an::ToolChoice::Auto {
            disable_parallel_tool_use: disable_parallel,
        }),
        (None, Some(oa::ToolChoice::None)) => Some(an::ToolChoice::None),
        (None, Some(oa::ToolChoice::Required)) => Some(an::ToolChoice::Any {
            disable_parallel_tool_use: disable_parallel,
        }),
        (None, Some(oa::ToolChoice::Named(name))) => Some(an::ToolChoice::Tool {
            name,
            disable_parallel_tool_use: disable_parallel,
        }),
    };
    // Tool choice `none` without tools asks for nothing; Anthropic wants tools with a choice.
    let choice = if tools.is_empty() { None } else { choice };
    Ok((tools, choice, answer))
}

/// `data:<media type>;base64,<data>` → Anthropic's base64 image source (Anthropic judges an
/// empty media type or data itself); any other URL is Anthropic's to fetch.
fn image_source(url: Cow<'_, str>) -> Option<an::ImageSource<'_>> {
    if !url.starts_with("data:") {
        return Some(an::ImageSource::Url { url });
    }
    let data_url = request_fields::split_data_url(&url)?;
    Some(an::ImageSource::Base64 {
        media_type: Cow::Owned(data_url.media_type.to_string()),
        data: Cow::Owned(data_url.data.to_string()),
    })
}

fn text_of<'a>(content: oa::Content<'a>, at: &str) -> Result<Cow<'a, str>, ApiError> {
    request_fields::text_only(content).map_err(|j| {
        ApiError::invalid_request(format!("only text parts are supported in `{at}`"))
            .with_param(format!("{at}[{j}]"))
    })
}

/// A system or developer message as system blocks: one per text part when a part carries
/// `cache_control` (so the breakpoint stays where the client put it), else one with the text.
fn system_blocks(content: oa::Content<'_>, at: &str) -> Result<Vec<an::SystemBlock>, ApiError> {
    let marked = matches!(&content, oa::Content::Parts(parts) if parts.iter().any(|p| matches!(
        p,
        oa::ContentPart::Text {
            cache_control: Some(_),
            ..
        }
    )));
    let oa::Content::Parts(parts) = content else {
        return Ok(vec![an::SystemBlock {
            kind: "text",
            text: text_of(content, at)?.into_owned(),
            cache_control: None,
        }]);
    };
    if !marked {
        return Ok(vec![an::SystemBlock {
            kind: "text",
            text: text_of(oa::Content::Parts(parts), at)?.into_owned(),
            cache_control: None,
        }]);
    }
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let oa::ContentPart::Text {
            text,
            cache_control,
        } = part
        else {
            return Err(ApiError::invalid_request(format!(
                "only text parts are supported in `{at}`"
            ))
            .with_param(format!("{at}[{j}]")));
        };
        // Anthropic refuses empty text blocks; an empty part carries nothing.
        if !text.is_empty() {
            blocks.push(an::SystemBlock {
                kind: "text",
                text: text.into_owned(),
                cache_control,
            });
        }
    }
    Ok(blocks)
}

/// Anthropic takes the system prompt as a top-level field, not as a turn
/// (<https://docs.anthropic.com/en/api/messages#body-system>): system and developer messages,
/// wherever they stood, in order — one string joined by blank lines, or text blocks when one
/// carries a cache breakpoint.
fn system_prompt(blocks: Vec<an::SystemBlock>) -> Option<an::System> {
    if blocks.is_empty() {
        return None;
    }
    if blocks.iter().any(|b| b.cache_control.is_some()) {
        return Some(an::System::Blocks(blocks));
    }
    let texts: Vec<String> = blocks.into_iter().map(|b| b.text).collect();
    Some(an::System::Text(texts.join("\n\n")))
}

fn blocks<'a>(content: oa::Content<'a>, at: &str) -> Result<an::MessageContent<'a>, ApiError> {
    let parts = match content {
        oa::Content::Text(text) => return Ok(an::MessageContent::Text(text)),
        oa::Content::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let block = match part {
            oa::ContentPart::Text {
                text,
                cache_control,
            } => an::ContentBlockParam::Text {
                text,
                cache_control,
            },
            oa::ContentPart::Refusal { refusal } => an::ContentBlockParam::Text {
                text: refusal,
                cache_control: None,
            },
            oa::ContentPart::ImageUrl {
                image_url,
                cache_control,
            } => {
                let source = image_source(image_url.url).ok_or_else(|| {
                    ApiError::invalid_request(
                        "image URLs must be http(s) URLs or base64 `data:` URLs",
                    )
                    .with_param(format!("{at}[{j}].image_url.url"))
                })?;
                an::ContentBlockParam::Image {
                    source,
                    cache_control,
                }
            }
            oa::ContentPart::Other => {
                return Err(ApiError::invalid_request(
                    "this content part type is not supported by the Anthropic Messages API",
                )
                .with_param(format!("{at}[{j}]")))
            }
        };
        out.push(block);
    }
    Ok(an::MessageContent::Blocks(out))
}

/// OpenAI request → Anthropic request. Public for tests and other translators' reuse.
pub fn to_messages_request<'a>(
    request: oa::ChatCompletionRequest<'a>,
    upstream_model: Option<&'a str>,
    default_max_tokens: u32,
) -> Result<an::MessagesRequest<'a>, ApiError> {
    to_messages_request_with(request, upstream_model, default_max_tokens, &[]).map(|(r, _)| r)
}

/// [`to_messages_request`] with the configured field drops; also returns the name of the
/// forced answer tool standing for `response_format`, if any.
pub fn to_messages_request_with<'a>(
    mut request: oa::ChatCompletionRequest<'a>,
    upstream_model: Option<&'a str>,
    default_max_tokens: u32,
    drop_fields: &[String],
) -> Result<(an::MessagesRequest<'a>, Option<String>), ApiError> {
    request_fields::drop_fields(&mut request, drop_fields);
    let features = request_fields::take_features(&mut request.other)?;
    if features.seed.is_some() {
        return Err(unsupported("seed", ""));
    }
    let budget = features.reasoning_effort.and_then(Effort::anthropic_budget);
    let (tools, tool_choice, answer_tool) = anthropic_tools(features)?;
    if let Some(name) = request_fields::first_unmapped(&request.other) {
        let why = if not_yet(name) {
            " through llmgw yet"
        } else {
            ""
        };
        return Err(unsupported(name, why));
    }

    let model = request_fields::chosen_model(upstream_model.map(Cow::Borrowed), request.model)?;

    if let Some(t) = request.temperature {
        if !(0.0..=MAX_TEMPERATURE).contains(&t) {
            return Err(ApiError::invalid_request(format!(
                "`temperature` {} is outside 0..1, the range Anthropic accepts \
                 (OpenAI's 0..2 cannot be mapped without changing its meaning)",
                crate::facts::format_number(t)
            ))
            .with_param("temperature"));
        }
    }

    let max_tokens = request
        .max_completion_tokens
        .or(request.max_tokens)
        .unwrap_or(default_max_tokens);

    let mut system: Vec<an::SystemBlock> = Vec::new();
    let mut messages = Vec::with_capacity(request.messages.len());
    for (i, message) in request.messages.into_iter().enumerate() {
        let at = format!("messages[{i}].content");
        match message {
            oa::ChatMessage::System { content } | oa::ChatMessage::Developer { content } => {
                system.extend(system_blocks(content, &at)?);
            }
            oa::ChatMessage::User { content } => messages.push(an::Message {
                role: an::Role::User,
                content: blocks(content, &at)?,
            }),
            oa::ChatMessage::Assistant {
                content,
                tool_calls,
                function_call,
            } => {
                if function_call.is_some_and(|c| !c.is_null()) {
                    return Err(unsupported(
                        &format!("messages[{i}].function_call"),
                        "; use `tool_calls`",
                    ));
                }
                let calls = request_fields::assistant_tool_calls(tool_calls, i)?;
                let content = content.unwrap_or(oa::Content::Text(Cow::Borrowed("")));
                let content = if calls.len() == 0 {
                    blocks(content, &at)?
                } else {
                    let mut list = match blocks(content, &at)? {
                        an::MessageContent::Text(text) if text.is_empty() => Vec::new(),
                        an::MessageContent::Text(text) => {
                            vec![an::ContentBlockParam::Text {
                                text,
                                cache_control: None,
                            }]
                        }
                        an::MessageContent::Blocks(list) => list,
                    };
                    for call in calls {
                        let call = call?;
                        list.push(an::ContentBlockParam::ToolUse {
                            id: call.id,
                            name: call.name,
                            input: call.arguments,
                        });
                    }
                    an::MessageContent::Blocks(list)
                };
                messages.push(an::Message {
                    role: an::Role::Assistant,
                    content,
                });
            }
            oa::ChatMessage::Tool {
                tool_call_id,
                content,
            } => {
                let tool_use_id = tool_call_id
                    .map(Cow::into_owned)
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| {
                        ApiError::invalid_request("a tool message needs `tool_call_id`")
                            .with_param(format!("messages[{i}].tool_call_id"))
                    })?;
                let content = request_fields::tool_result_text(content, &at)?;
                let block = an::ContentBlockParam::ToolResult {
                    tool_use_id,
                    content,
                };
                // Results of parallel calls go back together, in one user turn.
                match messages.last_mut() {
                    Some(an::Message {
                        role: an::Role::User,
                        content: an::MessageContent::Blocks(list),
                    }) if list
                        .iter()
                        .all(|b| matches!(b, an::ContentBlockParam::ToolResult { .. })) =>
                    {
                        list.push(block)
                    }
                    _ => messages.push(an::Message {
                        role: an::Role::User,
                        content: an::MessageContent::Blocks(vec![block]),
                    }),
                }
            }
            oa::ChatMessage::Function {} => {
                return Err(unsupported(
                    &format!("messages[{i}].role"),
                    "; use `tool` messages",
                ));
            }
        }
    }
    if messages.is_empty() {
        return Err(ApiError::invalid_request(
            "`messages` needs at least one user or assistant message for Anthropic",
        )
        .with_param("messages"));
    }

    // Thinking stays off for a turn that answers tool calls: Anthropic then wants the calling
    // turn to start with its signed thinking block, which Chat has no place to carry back.
    let budget = budget.filter(|_| !answers_tool_calls(&messages));
    if budget.is_some() {
        let forced = if answer_tool.is_some() {
            Some("response_format")
        } else if matches!(
            tool_choice,
            Some(an::ToolChoice::Any { .. } | an::ToolChoice::Tool { .. })
        ) {
            Some("tool_choice")
        } else {
            None
        };
        reasoning::check_claude_thinking(PROVIDER, request.temperature, request.top_p, forced)?;
    }
    let translated = an::MessagesRequest {
        model,
        messages,
        system: system_prompt(system),
        // Thinking counts against `max_tokens`, which must exceed the budget: the client's
        // limit stays the answer's.
        max_tokens: max_tokens.saturating_add(budget.unwrap_or(0)),
        thinking: budget.map(|budget_tokens| an::Thinking::Enabled { budget_tokens }),
        temperature: request.temperature,
        top_p: request.top_p,
        stop_sequences: request.stop.map(oa::Stop::into_vec),
        stream: request.stream.unwrap_or(false),
        metadata: request.user.map(|user_id| an::Metadata { user_id }),
        tools,
        tool_choice,
    };
    Ok((translated, answer_tool))
}

/// Does the conversation end with a user turn of tool results?
fn answers_tool_calls(messages: &[an::Message<'_>]) -> bool {
    matches!(
        messages.last(),
        Some(an::Message {
            role: an::Role::User,
            content: an::MessageContent::Blocks(blocks),
        }) if blocks.iter().any(|b| matches!(b, an::ContentBlockParam::ToolResult { .. }))
    )
}

// ---------------------------------------------------------------------------------------------
// Response

/// <https://docs.anthropic.com/en/api/handling-stop-reasons>
fn finish_reason(reason: an::StopReason) -> oa::FinishReason {
    match reason {
        an::StopReason::EndTurn | an::StopReason::StopSequence | an::StopReason::PauseTurn => {
            oa::FinishReason::Stop
        }
        an::StopReason::MaxTokens | an::StopReason::ModelContextWindowExceeded => {
            oa::FinishReason::Length
        }
        an::StopReason::ToolUse => oa::FinishReason::ToolCalls,
        an::StopReason::Refusal => oa::FinishReason::ContentFilter,
        an::StopReason::Other => oa::FinishReason::Stop,
    }
}

/// Anthropic counts cache writes and reads apart from `input_tokens`; OpenAI's
/// `prompt_tokens` includes cached tokens and reports the cache hits in
/// `prompt_tokens_details.cached_tokens`.
pub(crate) fn openai_usage(usage: &an::Usage) -> Usage {
    usage_with_cache(
        usage.input_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
        usage.output_tokens,
    )
}

/// Anthropic's 529 `overloaded_error` has no standard meaning to HTTP clients and OpenAI
/// SDKs; 503 does (and is retried by them).
fn client_status(status: u16) -> u16 {
    if status == 529 {
        503
    } else {
        status
    }
}

fn error_type_for_status(status: u16) -> ErrorType {
    match status {
        400 | 413 | 422 => ErrorType::InvalidRequestError,
        401 => ErrorType::AuthenticationError,
        403 => ErrorType::PermissionError,
        404 => ErrorType::NotFoundError,
        429 => ErrorType::RateLimitError,
        503 | 529 => ErrorType::ServiceUnavailableError,
        s if s >= 500 => ErrorType::ApiError,
        _ => ErrorType::InvalidRequestError,
    }
}

/// <https://docs.anthropic.com/en/api/errors#http-errors>
fn error_type(kind: &str, status: u16) -> ErrorType {
    match kind {
        "invalid_request_error" | "request_too_large" => ErrorType::InvalidRequestError,
        "authentication_error" => ErrorType::AuthenticationError,
        "permission_error" => ErrorType::PermissionError,
        "not_found_error" => ErrorType::NotFoundError,
        "rate_limit_error" => ErrorType::RateLimitError,
        "overloaded_error" => ErrorType::ServiceUnavailableError,
        "api_error" => ErrorType::ApiError,
        _ => error_type_for_status(status),
    }
}

fn translate_error(body: &an::ErrorBody<'_>, status: u16) -> ApiError {
    ApiError::new(
        status,
        error_type(&body.kind, status),
        body.message.as_ref(),
    )
    .with_code(body.kind.as_ref())
}

fn translate_message(
    message: &an::MessageResponse<'_>,
    created: u64,
    tools: &ToolCalls,
    dropped: &mut Dropped,
) -> Result<(Vec<u8>, Usage), serde_json::Error> {
    let id = format!("chatcmpl-{}", message.id);
    let mut answer = AnswerMessage::default();
    for block in &message.content {
        match block {
            an::ContentBlock::Text { text } => answer.push_text(Cow::Borrowed(text)),
            an::ContentBlock::Thinking { thinking } => {
                answer.push_reasoning(Cow::Borrowed(thinking))
            }
            an::ContentBlock::ToolUse { id, name, input } => {
                answer.push_tool_use(id, name, input, tools)?
            }
            an::ContentBlock::Other => dropped.note(PROVIDER, what::CONTENT, "content block"),
        }
    }
    let usage = openai_usage(&message.usage);
    let finish = message.stop_reason.map(|reason| match reason {
        an::StopReason::ToolUse => answer.tool_use_finish(tools),
        an::StopReason::Other => {
            dropped.note(PROVIDER, what::STOP_REASON, "stop_reason");
            finish_reason(reason)
        }
        other => finish_reason(other),
    });
    Ok((
        answer.into_body(&id, created, &message.model, finish, usage)?,
        usage,
    ))
}

impl OpenAiAnthropic {
    fn record_usage(&mut self) -> Usage {
        let usage = openai_usage(&self.stream_usage);
        self.usage = Some(usage);
        usage
    }

    /// Tool blocks that end without input get `{}` (see [`ToolCalls::end`]).
    fn end_tool_blocks(&mut self, out: &mut Vec<u8>, block: Option<u32>) {
        for block in self.tools.end(block) {
            self.stream.tool_input(out, block, EMPTY_ARGUMENTS);
        }
    }

    /// One Anthropic event → zero or more OpenAI frames.
    fn on_event(&mut self, event: &sse::Event, out: &mut Vec<u8>) {
        let parsed = match an::StreamEvent::parse(&event.data) {
            Ok(parsed) => parsed,
            Err(err) => {
                log::warn!("llmgw.translate: unreadable Anthropic stream event: {err}");
                let error = unreadable_answer("a stream event that is not JSON");
                self.stream.fail(out, &error);
                return;
            }
        };
        match parsed {
            an::StreamEvent::MessageStart { message } => {
                self.stream.id = format!("chatcmpl-{}", message.id);
                self.stream.model = message.model.into_owned();
                self.stream_usage = message.usage;
                self.record_usage();
                self.stream.role(out);
            }
            an::StreamEvent::ContentBlockStart {
                content_block: an::ContentBlock::Text { text },
                ..
            } if !text.is_empty() => self.stream.text(out, &text),
            an::StreamEvent::ContentBlockStart {
                index,
                content_block: an::ContentBlock::ToolUse { id, name, .. },
            } => {
                if let Some(call) = self.tools.start(index, &name) {
                    self.stream.tool_call(out, call, &id, &name, "");
                }
            }
            an::StreamEvent::ContentBlockDelta {
                index,
                delta: an::BlockDelta::InputJsonDelta { partial_json },
            } => {
                if partial_json.is_empty() {
                    return;
                }
                if let Some(block) = self.tools.input(index) {
                    self.stream.tool_input(out, block, &partial_json);
                }
            }
            an::StreamEvent::ContentBlockStop { index } => self.end_tool_blocks(out, Some(index)),
            an::StreamEvent::ContentBlockDelta {
                delta: an::BlockDelta::TextDelta { text },
                ..
            } => self.stream.text(out, &text),
            an::StreamEvent::ContentBlockStart {
                content_block: an::ContentBlock::Thinking { thinking },
                ..
            }
            | an::StreamEvent::ContentBlockDelta {
                delta: an::BlockDelta::ThinkingDelta { thinking },
                ..
            } => self.stream.reasoning(out, &thinking),
            an::StreamEvent::MessageDelta { delta, usage } => {
                if let Some(usage) = usage {
                    // Counts in `message_delta` are cumulative: they replace, not add.
                    let u = &mut self.stream_usage;
                    u.output_tokens = usage.output_tokens.unwrap_or(u.output_tokens);
                    u.input_tokens = usage.input_tokens.unwrap_or(u.input_tokens);
                    if usage.cache_creation_input_tokens.is_some() {
                        u.cache_creation_input_tokens = usage.cache_creation_input_tokens;
                    }
                    if usage.cache_read_input_tokens.is_some() {
                        u.cache_read_input_tokens = usage.cache_read_input_tokens;
                    }
                    self.record_usage();
                }
                // A block the provider never closed still gets its arguments.
                self.end_tool_blocks(out, None);
                let finish = delta.stop_reason.map(|reason| match reason {
                    an::StopReason::ToolUse => self.tools.tool_use_finish(),
                    an::StopReason::Other => {
                        self.dropped
                            .note(PROVIDER, what::STOP_REASON, "stop_reason");
                        finish_reason(reason)
                    }
                    other => finish_reason(other),
                });
                self.stream.finish(out, finish);
            }
            an::StreamEvent::MessageStop => {
                let usage = self.record_usage();
                self.stream.done(out, Some(usage));
            }
            an::StreamEvent::Error { error } => {
                // Mid-stream the status line is long gone: report in-band. The status only
                // picks the error type when Anthropic's is unknown.
                let error = translate_error(&error, 500);
                self.stream.fail(out, &error);
            }
            an::StreamEvent::ContentBlockStart {
                content_block: an::ContentBlock::Other,
                ..
            } => self
                .dropped
                .note(PROVIDER, what::CONTENT, "content block (and its deltas)"),
            an::StreamEvent::Unknown => {
                self.dropped.note(PROVIDER, what::EVENT, &event_name(event))
            }
            // ping, an empty text block's start, signature deltas (a signature is Anthropic's
            // alone: Chat has no place to carry it back), server tool deltas (their block was
            // counted), content_block_stop of other blocks.
            _ => {}
        }
    }
}

impl Translator for OpenAiAnthropic {
    fn chat_path(&self, _query: Option<&str>) -> String {
        // The client's query string means nothing to Anthropic.
        "/v1/messages".to_string()
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let request = request_fields::parse_request(body)?;
        self.stream.include_usage = request_fields::wants_stream_usage(&request);
        let (translated, answer_tool) = to_messages_request_with(
            request,
            upstream_model,
            self.default_max_tokens,
            &self.drop_fields,
        )?;
        self.tools.answer_tool = answer_tool;
        request_fields::encode(&translated).map(Some)
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
        let stream = !encoded && has_media_type(content_type, "text/event-stream");
        buffer_plan(status, stream, client_status(status))
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        // Errors keep their status (429 must stay 429 for retries and clients), mapped for
        // Anthropic-only codes; an unreadable error body still becomes an OpenAI error.
        let status = self.status;
        let (created, tools, usage) = (self.stream.created, &self.tools, &mut self.usage);
        let dropped = &mut self.dropped;
        buffered_answer(
            status,
            client_status(status),
            body,
            &|body| {
                let client = client_status(status);
                match crate::json::from_slice::<an::ErrorResponse<'_>>(body) {
                    Ok(parsed) => translate_error(&parsed.error, client),
                    Err(_) => unreadable_error(status, client, error_type_for_status(client)),
                }
            },
            &mut |body| {
                let message =
                    read_answer::<an::MessageResponse<'_>>(body, "not an Anthropic message")?;
                let translated = translate_message(&message, created, tools, dropped);
                with_usage(translated, usage, "a message that cannot be re-encoded")
            },
        )
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if !self.stream.terminated {
            for event in self.decoder.feed(chunk) {
                self.on_event(&event, &mut out);
                if self.stream.terminated {
                    // Nothing after the terminal event is forwarded.
                    break;
                }
            }
        }
        if end_of_stream && !self.stream.terminated {
            self.stream.fail(&mut out, &truncated_stream_error());
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
