//! OpenAI Chat Completions to the Anthropic Messages API, and back.
//!
//! Request: <https://platform.openai.com/docs/api-reference/chat/create> becomes
//! <https://docs.anthropic.com/en/api/messages>. What Anthropic cannot honour (several choices,
//! log probabilities, penalties, tools for now, …) is refused with a 400 naming the field,
//! never dropped: a client that asked for `n: 3` must not silently get one answer.
//!
//! Response: an Anthropic message becomes a `chat.completion`
//! (<https://platform.openai.com/docs/api-reference/chat/object>), Anthropic errors
//! (<https://docs.anthropic.com/en/api/errors>) become OpenAI errors, and the event stream
//! (<https://docs.anthropic.com/en/api/messages-streaming>) becomes `chat.completion.chunk`s
//! (<https://platform.openai.com/docs/api-reference/chat-streaming>), translated event by event
//! as the bytes arrive.

use std::borrow::Cow;

use serde_json::Value;

use super::{stream_error_frame, truncated_stream_error, ResponseBody, ResponseMode, ResponsePlan};
use super::{Translator, Usage};
use crate::error::{ApiError, ErrorType};
use crate::schema::anthropic as an;
use crate::schema::openai as oa;
use crate::sse;

/// Anthropic accepts `temperature` in 0..=1; OpenAI in 0..=2.
const MAX_TEMPERATURE: f64 = 1.0;

/// The translator; one per try.
#[derive(Debug)]
pub struct OpenAiAnthropic {
    default_max_tokens: u32,
    include_usage: bool,
    /// The provider's response status.
    status: u16,
    created: u64,
    /// `chatcmpl-<message id>`, shared by every chunk of a stream.
    id: String,
    model: String,
    decoder: sse::Decoder,
    /// `message_stop` or an `error` event arrived: the stream ended as the provider meant it.
    terminated: bool,
    /// The stream ended with an error frame (the provider's, or ours for a cut stream).
    failed: bool,
    /// Usage as Anthropic reports it, accumulated over `message_start` and `message_delta`.
    stream_usage: an::Usage,
    usage: Option<Usage>,
}

impl OpenAiAnthropic {
    pub fn new(default_max_tokens: u32) -> Self {
        Self {
            default_max_tokens,
            include_usage: false,
            status: 0,
            created: 0,
            id: String::new(),
            model: String::new(),
            decoder: sse::Decoder::new(),
            terminated: false,
            failed: false,
            stream_usage: an::Usage::default(),
            usage: None,
        }
    }

    /// Did the client ask for `stream_options.include_usage`?
    pub fn include_usage(&self) -> bool {
        self.include_usage
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

/// Fields without an Anthropic counterpart that are still fine when they ask for nothing
/// (their OpenAI default): clients and SDKs often send them explicitly.
fn is_harmless(name: &str, value: &Value) -> bool {
    let zero = || value.as_f64() == Some(0.0);
    match name {
        "n" => value.as_u64() == Some(1),
        "logprobs" => value == &Value::Bool(false),
        "presence_penalty" | "frequency_penalty" => zero(),
        "store" => value == &Value::Bool(false),
        "tools" | "functions" => value.as_array().is_some_and(Vec::is_empty),
        "logit_bias" | "metadata" => value.as_object().is_some_and(|m| m.is_empty()),
        // Without tools these change nothing.
        "parallel_tool_calls" => value.is_boolean(),
        "tool_choice" => matches!(value.as_str(), Some("none" | "auto")),
        "function_call" => matches!(value.as_str(), Some("none" | "auto")),
        "service_tier" => matches!(value.as_str(), Some("auto" | "default")),
        "response_format" => value.get("type").and_then(Value::as_str) == Some("text"),
        _ => false,
    }
}

/// A field refused because support is planned rather than impossible.
fn not_yet(name: &str) -> bool {
    matches!(
        name,
        "tools" | "tool_choice" | "functions" | "function_call" | "response_format"
    )
}

/// `data:<media type>;base64,<data>` → Anthropic's base64 image source.
fn image_source(url: Cow<'_, str>) -> Option<an::ImageSource<'_>> {
    if !url.starts_with("data:") {
        return Some(an::ImageSource::Url { url });
    }
    let rest = url.get("data:".len()..)?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some(an::ImageSource::Base64 {
        media_type: Cow::Owned(media_type.to_string()),
        data: Cow::Owned(data.to_string()),
    })
}

fn text_of<'a>(content: oa::Content<'a>, at: &str) -> Result<Cow<'a, str>, ApiError> {
    match content {
        oa::Content::Text(text) => Ok(text),
        oa::Content::Parts(parts) => {
            let mut text = String::new();
            for (j, part) in parts.into_iter().enumerate() {
                match part {
                    oa::ContentPart::Text { text: t } => text.push_str(&t),
                    _ => {
                        return Err(ApiError::invalid_request(format!(
                            "only text parts are supported in `{at}`"
                        ))
                        .with_param(format!("{at}[{j}]")))
                    }
                }
            }
            Ok(Cow::Owned(text))
        }
    }
}

fn blocks<'a>(content: oa::Content<'a>, at: &str) -> Result<an::MessageContent<'a>, ApiError> {
    let parts = match content {
        oa::Content::Text(text) => return Ok(an::MessageContent::Text(text)),
        oa::Content::Parts(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let block = match part {
            oa::ContentPart::Text { text } => an::ContentBlockParam::Text { text },
            oa::ContentPart::Refusal { refusal } => an::ContentBlockParam::Text { text: refusal },
            oa::ContentPart::ImageUrl { image_url } => {
                let source = image_source(image_url.url).ok_or_else(|| {
                    ApiError::invalid_request(
                        "image URLs must be http(s) URLs or base64 `data:` URLs",
                    )
                    .with_param(format!("{at}[{j}].image_url.url"))
                })?;
                an::ContentBlockParam::Image { source }
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
    for (name, value) in &request.other {
        if value.is_null() || is_harmless(name, value) {
            continue;
        }
        let why = if not_yet(name) {
            " through llmgw yet"
        } else {
            ""
        };
        return Err(unsupported(name, why));
    }

    let model = match (upstream_model, request.model) {
        (Some(model), _) => Cow::Borrowed(model),
        (None, Some(model)) => model,
        (None, None) => {
            return Err(ApiError::invalid_request("`model` is required").with_param("model"))
        }
    };

    if let Some(t) = request.temperature {
        if !(0.0..=MAX_TEMPERATURE).contains(&t) {
            return Err(ApiError::invalid_request(format!(
                "`temperature` {t} is outside 0..1, the range Anthropic accepts \
                 (OpenAI's 0..2 cannot be mapped without changing its meaning)"
            ))
            .with_param("temperature"));
        }
    }

    let max_tokens = request
        .max_completion_tokens
        .or(request.max_tokens)
        .unwrap_or(default_max_tokens);

    // Anthropic takes the system prompt as a top-level field, not as a turn
    // (<https://docs.anthropic.com/en/api/messages#body-system>). System and developer
    // messages are hoisted there in order, wherever they stood.
    let mut system: Option<String> = None;
    let mut messages = Vec::with_capacity(request.messages.len());
    for (i, message) in request.messages.into_iter().enumerate() {
        let at = format!("messages[{i}].content");
        match message {
            oa::ChatMessage::System { content } | oa::ChatMessage::Developer { content } => {
                let text = text_of(content, &at)?;
                match &mut system {
                    Some(s) => {
                        s.push_str("\n\n");
                        s.push_str(&text);
                    }
                    None => system = Some(text.into_owned()),
                }
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
                if tool_calls.is_some_and(|c| !c.is_null()) {
                    return Err(unsupported(
                        &format!("messages[{i}].tool_calls"),
                        " through llmgw yet",
                    ));
                }
                if function_call.is_some_and(|c| !c.is_null()) {
                    return Err(unsupported(
                        &format!("messages[{i}].function_call"),
                        " through llmgw yet",
                    ));
                }
                let content = content.unwrap_or(oa::Content::Text(Cow::Borrowed("")));
                messages.push(an::Message {
                    role: an::Role::Assistant,
                    content: blocks(content, &at)?,
                });
            }
            oa::ChatMessage::Tool {} | oa::ChatMessage::Function {} => {
                return Err(unsupported(
                    &format!("messages[{i}].role"),
                    " through llmgw yet (tool results)",
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

    Ok(an::MessagesRequest {
        model,
        messages,
        system,
        max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop_sequences: request.stop.map(oa::Stop::into_vec),
        stream: request.stream.unwrap_or(false),
        metadata: request.user.map(|user_id| an::Metadata { user_id }),
    })
}

// ---------------------------------------------------------------------------------------------
// Response

/// <https://docs.anthropic.com/en/api/handling-stop-reasons>
fn finish_reason(reason: an::StopReason) -> oa::FinishReason {
    match reason {
        an::StopReason::EndTurn | an::StopReason::StopSequence | an::StopReason::PauseTurn => {
            oa::FinishReason::Stop
        }
        an::StopReason::MaxTokens => oa::FinishReason::Length,
        an::StopReason::ToolUse => oa::FinishReason::ToolCalls,
        an::StopReason::Refusal => oa::FinishReason::ContentFilter,
        an::StopReason::Other => oa::FinishReason::Stop,
    }
}

/// Anthropic counts cache writes and reads apart from `input_tokens`; OpenAI's
/// `prompt_tokens` includes cached tokens and reports the cache hits in
/// `prompt_tokens_details.cached_tokens`.
fn openai_usage(usage: &an::Usage) -> Usage {
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    let prompt = usage.input_tokens + usage.cache_creation_input_tokens.unwrap_or(0) + cache_read;
    Usage {
        prompt_tokens: prompt,
        completion_tokens: usage.output_tokens,
        total_tokens: prompt + usage.output_tokens,
        prompt_tokens_details: Some(oa::PromptTokensDetails {
            cached_tokens: cache_read,
        }),
    }
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

/// A 2xx answer llmgw cannot read is not passed on as if it were an answer.
fn unreadable(what: &str) -> ApiError {
    ApiError::new(
        502,
        ErrorType::ApiError,
        format!("the provider answered something unreadable: {what}"),
    )
    .with_code("upstream_unreadable")
}

fn translate_message(
    message: &an::MessageResponse<'_>,
    created: u64,
) -> Result<(Vec<u8>, Usage), serde_json::Error> {
    let id = format!("chatcmpl-{}", message.id);
    let mut text: Option<Cow<'_, str>> = None;
    let mut tool_calls = Vec::new();
    for block in &message.content {
        match block {
            an::ContentBlock::Text { text: t } => match &mut text {
                None => text = Some(Cow::Borrowed(t.as_ref())),
                Some(all) => all.to_mut().push_str(t),
            },
            an::ContentBlock::ToolUse { id, name, input } => tool_calls.push(oa::ToolCall {
                id,
                kind: "function",
                function: oa::FunctionCall {
                    name,
                    arguments: serde_json::to_string(input)?,
                },
            }),
            an::ContentBlock::Other => {}
        }
    }
    // OpenAI: `content` is null when the answer is only tool calls.
    if text.is_none() && tool_calls.is_empty() {
        text = Some(Cow::Borrowed(""));
    }
    let usage = openai_usage(&message.usage);
    let completion = oa::ChatCompletion {
        id: &id,
        object: "chat.completion",
        created,
        model: &message.model,
        choices: vec![oa::Choice {
            index: 0,
            message: oa::ResponseMessage {
                role: "assistant",
                content: text,
                refusal: None,
                tool_calls,
            },
            logprobs: None,
            finish_reason: message.stop_reason.map(finish_reason),
        }],
        usage,
    };
    Ok((serde_json::to_vec(&completion)?, usage))
}

impl OpenAiAnthropic {
    fn chunk(
        &self,
        out: &mut Vec<u8>,
        delta: oa::Delta<'_>,
        finish_reason: Option<oa::FinishReason>,
    ) {
        let chunk = oa::ChatCompletionChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: vec![oa::ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: self.include_usage.then_some(None),
        };
        sse::write_json(out, &chunk);
    }

    fn record_usage(&mut self) {
        self.usage = Some(openai_usage(&self.stream_usage));
    }

    fn fail(&mut self, out: &mut Vec<u8>, error: &ApiError) {
        self.terminated = true;
        self.failed = true;
        stream_error_frame(out, error);
    }

    /// One Anthropic event → zero or more OpenAI frames.
    fn on_event(&mut self, event: &sse::Event, out: &mut Vec<u8>) {
        let parsed: an::StreamEvent<'_> = match serde_json::from_str(&event.data) {
            Ok(parsed) => parsed,
            Err(err) => {
                log::warn!("llmgw.translate: unreadable Anthropic stream event: {err}");
                self.fail(out, &unreadable("a stream event that is not JSON"));
                return;
            }
        };
        match parsed {
            an::StreamEvent::MessageStart { message } => {
                self.id = format!("chatcmpl-{}", message.id);
                self.model = message.model.into_owned();
                self.stream_usage = message.usage;
                self.record_usage();
                let delta = oa::Delta {
                    role: Some("assistant"),
                    content: Some(""),
                };
                self.chunk(out, delta, None);
            }
            an::StreamEvent::ContentBlockStart {
                content_block: an::ContentBlock::Text { text },
                ..
            } if !text.is_empty() => {
                let delta = oa::Delta {
                    role: None,
                    content: Some(&text),
                };
                self.chunk(out, delta, None);
            }
            an::StreamEvent::ContentBlockDelta {
                delta: an::BlockDelta::TextDelta { text },
                ..
            } => {
                let delta = oa::Delta {
                    role: None,
                    content: Some(&text),
                };
                self.chunk(out, delta, None);
            }
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
                let finish = delta.stop_reason.map(finish_reason);
                self.chunk(out, oa::Delta::default(), finish);
            }
            an::StreamEvent::MessageStop => {
                self.terminated = true;
                self.record_usage();
                if self.include_usage {
                    let chunk = oa::ChatCompletionChunk {
                        id: &self.id,
                        object: "chat.completion.chunk",
                        created: self.created,
                        model: &self.model,
                        choices: Vec::new(),
                        usage: Some(self.usage),
                    };
                    sse::write_json(out, &chunk);
                }
                out.extend_from_slice(sse::DONE);
            }
            an::StreamEvent::Error { error } => {
                // Mid-stream the status line is long gone: report in-band. The status only
                // picks the error type when Anthropic's is unknown.
                let error = translate_error(&error, 500);
                self.fail(out, &error);
            }
            // ping, content_block_start/stop, tool and thinking deltas, new event types.
            _ => {}
        }
    }
}

impl Translator for OpenAiAnthropic {
    fn chat_path(&self, _query: Option<&str>) -> String {
        // The client's query string means nothing to Anthropic.
        "/v1/messages".to_string()
    }

    fn needs_request_body(&self, _upstream_model: Option<&str>) -> bool {
        true
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let request: oa::ChatCompletionRequest<'_> =
            serde_json::from_slice(body).map_err(|err| {
                ApiError::invalid_request(format!(
                    "the request body is not a valid chat completions request: {err}"
                ))
            })?;
        self.include_usage = request.stream == Some(true)
            && request
                .stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false);
        let translated = to_messages_request(request, upstream_model, self.default_max_tokens)?;
        serde_json::to_vec(&translated)
            .map(Some)
            .map_err(|err| ApiError::invalid_request(format!("the request body: {err}")))
    }

    fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        encoded: bool,
        created: u64,
    ) -> ResponsePlan {
        self.created = created;
        self.status = status;
        let is_sse = content_type.is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        });
        let ok = (200..300).contains(&status);
        if ok && is_sse && !encoded {
            ResponsePlan {
                mode: ResponseMode::Stream,
                status: None,
                content_type: Some("text/event-stream"),
            }
        } else if ok || status >= 400 {
            ResponsePlan {
                mode: ResponseMode::Buffer,
                status: (client_status(status) != status).then(|| client_status(status)),
                content_type: Some("application/json"),
            }
        } else {
            ResponsePlan::UNTOUCHED
        }
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        // Errors keep their status (429 must stay 429 for retries and clients), mapped for
        // Anthropic-only codes; an unreadable error body still becomes an OpenAI error.
        if self.status >= 400 {
            let status = client_status(self.status);
            let error = match serde_json::from_slice::<an::ErrorResponse<'_>>(body) {
                Ok(parsed) => translate_error(&parsed.error, status),
                Err(_) => ApiError::new(
                    status,
                    error_type_for_status(status),
                    format!(
                        "the provider answered HTTP {} with an unreadable error body",
                        self.status
                    ),
                ),
            };
            return ResponseBody {
                status: None,
                body: error.body(),
            };
        }
        let translated = serde_json::from_slice::<an::MessageResponse<'_>>(body)
            .map_err(|err| {
                log::warn!("llmgw.translate: unreadable Anthropic message: {err}");
                unreadable("not an Anthropic message")
            })
            .and_then(|message| {
                translate_message(&message, self.created)
                    .map_err(|_| unreadable("a message that cannot be re-encoded"))
            });
        match translated {
            Ok((body, usage)) => {
                self.usage = Some(usage);
                ResponseBody { status: None, body }
            }
            Err(error) => ResponseBody {
                status: Some(error.status),
                body: error.body(),
            },
        }
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if !self.terminated {
            for event in self.decoder.feed(chunk) {
                self.on_event(&event, &mut out);
                if self.terminated {
                    // Nothing after the terminal event is forwarded.
                    break;
                }
            }
        }
        if end_of_stream && !self.terminated {
            self.fail(&mut out, &truncated_stream_error());
        }
        Some(out)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn stream_failed(&self) -> bool {
        self.failed
    }
}
