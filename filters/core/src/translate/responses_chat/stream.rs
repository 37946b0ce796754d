//! Chat Completions SSE chunks → the Responses event stream
//! (<https://platform.openai.com/docs/api-reference/responses-streaming>), event by event as the
//! chunks arrive.
//!
//! The sequence is the one the OpenAI SDKs' stream accumulators check (`response.created`
//! first; an item's `output_item.added` before its content events; every item's
//! `output_item.done` before the terminal event): `response.created`, `response.in_progress`;
//! per item `response.output_item.added`, for text `response.content_part.added`,
//! `response.output_text.delta`…, `response.output_text.done`, `response.content_part.done`; for
//! a call `response.function_call_arguments.delta`…, `.done`; then `response.output_item.done`;
//! and last `response.completed` (`response.incomplete` when the answer was cut by
//! `max_output_tokens` or a content filter) with the whole response and its usage. A stream
//! that ends in an error (the provider's, or a cut stream's) ends with an `error` event and
//! `response.failed`. Every event carries `sequence_number`, counted from 0.
//!
//! A text or reasoning item is closed when another item starts; calls stay open until the end
//! (a Chat stream may interleave the arguments of parallel calls by `index`).

use super::answer::{arguments_or_empty_object, call_item_id, finish_status, Ids};
use crate::error::ApiError;
use crate::schema::openai::Usage;
use crate::schema::responses::{
    ChatChunk, ChatToolCall, ChunkError, Echo, OutputContent, OutputItem, Part, ReasoningText,
    Response, ResponseError, ResponseUsage, Status, StreamEvent,
};
use crate::sse;
use crate::translate::{truncated_stream_error, unreadable_answer};

/// The Responses stream one try writes.
#[derive(Debug, Default)]
pub struct ResponsesStream {
    echo: Echo,
    /// Unix time (s) of the response.
    created: u64,
    decoder: sse::Decoder,
    /// `response.created` was sent.
    started: bool,
    ids: Ids,
    model: String,
    sequence: u64,
    /// Every item so far, by `output_index`, as it stands.
    output: Vec<OutputItem>,
    /// Which items got their `output_item.done`.
    done: Vec<bool>,
    /// The open message or reasoning item.
    open_text: Option<usize>,
    /// Chat tool call `index` → output index.
    calls: Vec<(u32, usize)>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// The terminal event was sent; nothing after it is.
    pub terminated: bool,
    /// It was `response.failed`.
    pub failed: bool,
}

/// Writes one event as `event: <type>` / `data: <json>`, numbered.
fn emit<'a>(out: &mut Vec<u8>, sequence: &mut u64, make: impl FnOnce(u64) -> StreamEvent<'a>) {
    let n = *sequence;
    *sequence += 1;
    let event = make(n);
    let mut json = Vec::new();
    event.write(&mut json);
    sse::write_event(out, event.name(), &json);
}

/// The documented `response.error.code` closest to an OpenAI error.
fn failed_code(kind: Option<&str>) -> &'static str {
    match kind {
        Some("rate_limit_error") => "rate_limit_exceeded",
        Some("invalid_request_error") => "invalid_prompt",
        _ => "server_error",
    }
}

impl ResponsesStream {
    pub fn new(echo: Echo) -> Self {
        Self {
            echo,
            ..Self::default()
        }
    }

    pub fn set_created(&mut self, created: u64) {
        self.created = created;
    }

    /// Chat SSE bytes in (any split), Responses SSE bytes out; `end_of_stream`: the last piece.
    pub fn feed(&mut self, chat: &[u8], end_of_stream: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.terminated {
            for event in self.decoder.feed(chat) {
                self.on_event(&event.data, &mut out);
                if self.terminated {
                    break;
                }
            }
        }
        if end_of_stream && !self.terminated {
            let error = truncated_stream_error();
            self.fail_with(&mut out, &chunk_error(&error), error.code.as_deref());
        }
        out
    }

    fn on_event(&mut self, data: &str, out: &mut Vec<u8>) {
        if data.trim() == "[DONE]" {
            return self.finish(out);
        }
        let chunk: ChatChunk = match crate::json::from_str(data) {
            Ok(chunk) => chunk,
            Err(err) => {
                log::warn!("llmgw.translate: unreadable chat chunk: {err}");
                let error = unreadable_answer("a stream chunk that is not JSON");
                return self.fail_with(out, &chunk_error(&error), error.code.as_deref());
            }
        };
        if let Some(error) = chunk.error {
            let code = match &error.code {
                Some(serde_json::Value::String(code)) => Some(code.clone()),
                Some(serde_json::Value::Number(code)) => Some(code.to_string()),
                _ => None,
            };
            return self.fail_with(out, &error, code.as_deref());
        }
        if !self.started {
            self.ids = Ids::from_chat(&chunk.id);
            self.model = chunk.model;
            self.start(out);
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            return;
        };
        let delta = choice.delta;
        if let Some(reasoning) = delta.reasoning_content.filter(|r| !r.is_empty()) {
            self.reasoning_delta(out, &reasoning);
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            self.text_delta(out, &text, false);
        }
        if let Some(refusal) = delta.refusal.filter(|r| !r.is_empty()) {
            self.text_delta(out, &refusal, true);
        }
        for call in delta.tool_calls {
            self.call_delta(out, call);
        }
        if choice.finish_reason.is_some() {
            self.finish_reason = choice.finish_reason;
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        self.started = true;
        if self.ids.stem.is_empty() {
            // No chunk named the answer (the stream failed first): still one id throughout.
            self.ids = Ids::from_chat(&format!("llmgw{}", self.created));
        }
        let (ids, model, echo) = (&self.ids, &self.model, &self.echo);
        let response = || response_of(ids, model, echo, &[], self.created, Status::InProgress);
        emit(out, &mut self.sequence, |n| StreamEvent::Created {
            sequence_number: n,
            response: response(),
        });
        emit(out, &mut self.sequence, |n| StreamEvent::InProgress {
            sequence_number: n,
            response: response(),
        });
    }

    /// Adds `item` as the next output item and announces it.
    fn add_item(&mut self, out: &mut Vec<u8>, item: OutputItem) -> usize {
        let index = self.output.len();
        self.output.push(item);
        self.done.push(false);
        let item = &self.output[index];
        emit(out, &mut self.sequence, |n| StreamEvent::OutputItemAdded {
            sequence_number: n,
            output_index: index,
            item,
        });
        index
    }

    /// Closes the open message or reasoning item, if any.
    fn close_text(&mut self, out: &mut Vec<u8>, status: Status) {
        let Some(index) = self.open_text.take() else {
            return;
        };
        let Some(item) = self.output.get_mut(index) else {
            return;
        };
        match item {
            OutputItem::Message {
                id,
                status: item_status,
                content,
                ..
            } => {
                *item_status = status;
                let id: &str = id;
                for (part, content) in content.iter().enumerate() {
                    match content {
                        OutputContent::OutputText { text, .. } => {
                            emit(out, &mut self.sequence, |n| StreamEvent::OutputTextDone {
                                sequence_number: n,
                                item_id: id,
                                output_index: index,
                                content_index: part,
                                text,
                                logprobs: [],
                            });
                            emit(out, &mut self.sequence, |n| StreamEvent::ContentPartDone {
                                sequence_number: n,
                                item_id: id,
                                output_index: index,
                                content_index: part,
                                part: Part::OutputText {
                                    annotations: [],
                                    logprobs: [],
                                    text,
                                },
                            });
                        }
                        OutputContent::Refusal { refusal } => {
                            emit(out, &mut self.sequence, |n| StreamEvent::RefusalDone {
                                sequence_number: n,
                                item_id: id,
                                output_index: index,
                                content_index: part,
                                refusal,
                            });
                            emit(out, &mut self.sequence, |n| StreamEvent::ContentPartDone {
                                sequence_number: n,
                                item_id: id,
                                output_index: index,
                                content_index: part,
                                part: Part::Refusal { refusal },
                            });
                        }
                    }
                }
            }
            OutputItem::Reasoning {
                id,
                status: item_status,
                content,
                ..
            } => {
                *item_status = status;
                let id: &str = id;
                for (part, ReasoningText { text, .. }) in content.iter().enumerate() {
                    emit(out, &mut self.sequence, |n| {
                        StreamEvent::ReasoningTextDone {
                            sequence_number: n,
                            item_id: id,
                            output_index: index,
                            content_index: part,
                            text,
                        }
                    });
                    emit(out, &mut self.sequence, |n| StreamEvent::ContentPartDone {
                        sequence_number: n,
                        item_id: id,
                        output_index: index,
                        content_index: part,
                        part: Part::ReasoningText { text },
                    });
                }
            }
            OutputItem::FunctionCall { .. } => return,
        }
        self.item_done(out, index);
    }

    fn item_done(&mut self, out: &mut Vec<u8>, index: usize) {
        if let Some(done) = self.done.get_mut(index) {
            *done = true;
        }
        if let Some(item) = self.output.get(index) {
            emit(out, &mut self.sequence, |n| StreamEvent::OutputItemDone {
                sequence_number: n,
                output_index: index,
                item,
            });
        }
    }

    fn reasoning_delta(&mut self, out: &mut Vec<u8>, delta: &str) {
        let open = self
            .open_text
            .filter(|&i| matches!(self.output.get(i), Some(OutputItem::Reasoning { .. })));
        let index = match open {
            Some(index) => index,
            None => {
                self.close_text(out, Status::Completed);
                let item = OutputItem::Reasoning {
                    id: self.ids.reasoning(),
                    status: Status::InProgress,
                    summary: Vec::new(),
                    content: Vec::new(),
                };
                let index = self.add_item(out, item);
                self.open_text = Some(index);
                if let Some(OutputItem::Reasoning { id, content, .. }) = self.output.get_mut(index)
                {
                    content.push(ReasoningText::new(String::new()));
                    let id: &str = id;
                    emit(out, &mut self.sequence, |n| StreamEvent::ContentPartAdded {
                        sequence_number: n,
                        item_id: id,
                        output_index: index,
                        content_index: 0,
                        part: Part::ReasoningText { text: "" },
                    });
                }
                index
            }
        };
        if let Some(OutputItem::Reasoning { id, content, .. }) = self.output.get_mut(index) {
            if let Some(last) = content.last_mut() {
                last.text.push_str(delta);
            }
            let id: &str = id;
            emit(out, &mut self.sequence, |n| {
                StreamEvent::ReasoningTextDelta {
                    sequence_number: n,
                    item_id: id,
                    output_index: index,
                    content_index: 0,
                    delta,
                }
            });
        }
    }

    /// Message text (`refusal`: the refusal part's).
    fn text_delta(&mut self, out: &mut Vec<u8>, delta: &str, refusal: bool) {
        let open = self
            .open_text
            .filter(|&i| matches!(self.output.get(i), Some(OutputItem::Message { .. })));
        let index = match open {
            Some(index) => index,
            None => {
                self.close_text(out, Status::Completed);
                let item = OutputItem::Message {
                    id: self.ids.message(),
                    status: Status::InProgress,
                    role: "assistant",
                    content: Vec::new(),
                };
                let index = self.add_item(out, item);
                self.open_text = Some(index);
                index
            }
        };
        let Some(OutputItem::Message { id, content, .. }) = self.output.get_mut(index) else {
            return;
        };
        let id: &str = id;
        // A new part when the kind changes (text after a refusal, or the first part).
        let same_kind = match content.last() {
            Some(OutputContent::OutputText { .. }) => !refusal,
            Some(OutputContent::Refusal { .. }) => refusal,
            None => false,
        };
        if !same_kind {
            content.push(if refusal {
                OutputContent::Refusal {
                    refusal: String::new(),
                }
            } else {
                OutputContent::text(String::new())
            });
            let part = if refusal {
                Part::Refusal { refusal: "" }
            } else {
                Part::OutputText {
                    annotations: [],
                    logprobs: [],
                    text: "",
                }
            };
            let content_index = content.len() - 1;
            emit(out, &mut self.sequence, |n| StreamEvent::ContentPartAdded {
                sequence_number: n,
                item_id: id,
                output_index: index,
                content_index,
                part,
            });
        }
        let content_index = content.len().saturating_sub(1);
        match content.last_mut() {
            Some(OutputContent::OutputText { text, .. }) => {
                text.push_str(delta);
                emit(out, &mut self.sequence, |n| StreamEvent::OutputTextDelta {
                    sequence_number: n,
                    item_id: id,
                    output_index: index,
                    content_index,
                    delta,
                    logprobs: [],
                });
            }
            Some(OutputContent::Refusal { refusal }) => {
                refusal.push_str(delta);
                emit(out, &mut self.sequence, |n| StreamEvent::RefusalDelta {
                    sequence_number: n,
                    item_id: id,
                    output_index: index,
                    content_index,
                    delta,
                });
            }
            None => {}
        }
    }

    fn call_delta(&mut self, out: &mut Vec<u8>, call: ChatToolCall) {
        let known = self
            .calls
            .iter()
            .find(|(chat, _)| *chat == call.index)
            .map(|(_, index)| *index);
        let index = match known {
            Some(index) => index,
            None => {
                self.close_text(out, Status::Completed);
                let call_id = call.id.clone().unwrap_or_default();
                let item = OutputItem::FunctionCall {
                    id: call_item_id(&call_id),
                    status: Status::InProgress,
                    arguments: String::new(),
                    call_id,
                    name: call.function.name.clone().unwrap_or_default(),
                };
                let index = self.add_item(out, item);
                self.calls.push((call.index, index));
                index
            }
        };
        let Some(delta) = call.function.arguments.filter(|a| !a.is_empty()) else {
            return;
        };
        self.arguments_delta(out, index, &delta);
    }

    fn arguments_delta(&mut self, out: &mut Vec<u8>, index: usize, delta: &str) {
        if let Some(OutputItem::FunctionCall { id, arguments, .. }) = self.output.get_mut(index) {
            arguments.push_str(delta);
            let id: &str = id;
            emit(out, &mut self.sequence, |n| {
                StreamEvent::FunctionCallArgumentsDelta {
                    sequence_number: n,
                    item_id: id,
                    output_index: index,
                    delta,
                }
            });
        }
    }

    /// Closes call `index`: a call without arguments gets `{}`, as Responses clients parse it.
    fn close_call(&mut self, out: &mut Vec<u8>, index: usize) {
        let empty = matches!(
            self.output.get(index),
            Some(OutputItem::FunctionCall { arguments, .. }) if arguments.trim().is_empty()
        );
        if empty {
            self.arguments_delta(out, index, &arguments_or_empty_object(String::new()));
        }
        if let Some(OutputItem::FunctionCall {
            id,
            status,
            arguments,
            name,
            ..
        }) = self.output.get_mut(index)
        {
            *status = Status::Completed;
            let (id, name, arguments): (&str, &str, &str) = (id, name, arguments);
            emit(out, &mut self.sequence, |n| {
                StreamEvent::FunctionCallArgumentsDone {
                    sequence_number: n,
                    item_id: id,
                    output_index: index,
                    name,
                    arguments,
                }
            });
        }
        self.item_done(out, index);
    }

    /// `[DONE]`: every open item is closed, then the terminal event with the usage.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.start(out);
        }
        let (status, incomplete_details) = finish_status(self.finish_reason.as_deref());
        self.close_text(out, status);
        let open_calls: Vec<usize> = self
            .calls
            .iter()
            .map(|(_, index)| *index)
            .filter(|&i| !self.done.get(i).copied().unwrap_or(true))
            .collect();
        for index in open_calls {
            self.close_call(out, index);
        }
        self.terminated = true;
        let mut response = response_of(
            &self.ids,
            &self.model,
            &self.echo,
            &self.output,
            self.created,
            status,
        );
        response.incomplete_details = incomplete_details;
        response.usage = self.usage.map(ResponseUsage::from);
        emit(out, &mut self.sequence, |n| {
            if status == Status::Incomplete {
                StreamEvent::Incomplete {
                    sequence_number: n,
                    response,
                }
            } else {
                StreamEvent::Completed {
                    sequence_number: n,
                    response,
                }
            }
        });
    }

    /// The stream ends in `error`: the `error` event, then `response.failed`.
    fn fail_with(&mut self, out: &mut Vec<u8>, error: &ChunkError, code: Option<&str>) {
        if !self.started {
            self.start(out);
        }
        self.terminated = true;
        self.failed = true;
        emit(out, &mut self.sequence, |n| StreamEvent::Error {
            sequence_number: n,
            code,
            message: &error.message,
            param: error.param.as_deref(),
        });
        let mut response = response_of(
            &self.ids,
            &self.model,
            &self.echo,
            &self.output,
            self.created,
            Status::Failed,
        );
        response.error = Some(ResponseError {
            code: failed_code(error.kind.as_deref()),
            message: error.message.clone(),
        });
        response.usage = self.usage.map(ResponseUsage::from);
        emit(out, &mut self.sequence, |n| StreamEvent::Failed {
            sequence_number: n,
            response,
        });
    }
}

/// The response object as it stands (fields borrowed one by one, so events can be numbered
/// while it is alive).
fn response_of<'a>(
    ids: &'a Ids,
    model: &'a str,
    echo: &'a Echo,
    output: &'a [OutputItem],
    created: u64,
    status: Status,
) -> Response<'a> {
    let mut response = Response::new(&ids.response, created, model, echo, output);
    response.status = status;
    response
}

/// An error of llmgw's as the in-stream error frame carries it.
fn chunk_error(error: &ApiError) -> ChunkError {
    ChunkError {
        message: error.message.clone(),
        kind: Some(error.kind.as_str().to_string()),
        code: error.code.clone().map(serde_json::Value::String),
        param: error.param.clone(),
    }
}
