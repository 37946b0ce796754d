//! A `chat.completion` → the Responses `response` object
//! (<https://platform.openai.com/docs/api-reference/responses/object>).
//!
//! Output items, in the order a Responses model emits them: a `reasoning` item when the answer
//! carries reasoning text (`reasoning_content`), a `message` with its `output_text` (or
//! `refusal`) when there is text or nothing else, then one `function_call` item per tool call.
//! `finish_reason: length` is `status: incomplete` with `incomplete_details.reason:
//! max_output_tokens`; `content_filter` is `incomplete` with reason `content_filter`.

use crate::error::ApiError;
use crate::schema::openai::Usage;
use crate::schema::responses::{
    ChatAnswer, Echo, IncompleteDetails, IncompleteReason, OutputContent, OutputItem,
    ReasoningText, Response, ResponseUsage, Status,
};
use crate::translate::{read_answer, unreadable_answer};

/// The ids of one answer: the response's and the stem its items are named after.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ids {
    pub response: String,
    pub stem: String,
}

impl Ids {
    /// From the Chat answer's id (`chatcmpl-…`): `resp_…`, and items `msg_…`, `rs_…`.
    pub fn from_chat(chat_id: &str) -> Self {
        let stem = chat_id.strip_prefix("chatcmpl-").unwrap_or(chat_id);
        Self {
            response: format!("resp_{stem}"),
            stem: stem.to_string(),
        }
    }
    pub fn message(&self) -> String {
        format!("msg_{}", self.stem)
    }
    pub fn reasoning(&self) -> String {
        format!("rs_{}", self.stem)
    }
}

/// A function call item's id, from its call id.
pub fn call_item_id(call_id: &str) -> String {
    format!("fc_{call_id}")
}

/// Arguments as Responses clients parse them: JSON text, `{}` when the model gave none.
pub fn arguments_or_empty_object(arguments: String) -> String {
    if arguments.trim().is_empty() {
        "{}".to_string()
    } else {
        arguments
    }
}

/// The response's status (and why it is incomplete) for a Chat `finish_reason`.
pub fn finish_status(finish_reason: Option<&str>) -> (Status, Option<IncompleteDetails>) {
    let reason = match finish_reason {
        Some("length") => IncompleteReason::MaxOutputTokens,
        Some("content_filter") => IncompleteReason::ContentFilter,
        _ => return (Status::Completed, None),
    };
    (Status::Incomplete, Some(IncompleteDetails { reason }))
}

/// The response for a whole Chat answer, and the usage it reports.
pub fn to_response(
    body: &[u8],
    echo: &Echo,
    created: u64,
) -> Result<(Vec<u8>, Option<Usage>), ApiError> {
    let answer: ChatAnswer = read_answer(body, "not a chat completion")?;
    let ids = Ids::from_chat(&answer.id);
    let (message, finish_reason) = match answer.choices.into_iter().next() {
        Some(choice) => (choice.message, choice.finish_reason),
        None => Default::default(),
    };
    let (status, incomplete_details) = finish_status(finish_reason.as_deref());
    let item_status = if status == Status::Incomplete {
        Status::Incomplete
    } else {
        Status::Completed
    };
    let mut output = Vec::new();
    if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty()) {
        output.push(OutputItem::Reasoning {
            id: ids.reasoning(),
            status: item_status,
            summary: Vec::new(),
            content: vec![ReasoningText::new(reasoning)],
        });
    }
    let mut content = Vec::new();
    if let Some(text) = message.content.filter(|t| !t.is_empty()) {
        content.push(OutputContent::text(text));
    }
    if let Some(refusal) = message.refusal.filter(|r| !r.is_empty()) {
        content.push(OutputContent::Refusal { refusal });
    }
    // An empty answer is still a message (with empty text), as the API gives one.
    if content.is_empty() && message.tool_calls.is_empty() {
        content.push(OutputContent::text(String::new()));
    }
    if !content.is_empty() {
        output.push(OutputItem::Message {
            id: ids.message(),
            status: item_status,
            role: "assistant",
            content,
        });
    }
    for call in message.tool_calls {
        // A call the client could not route: refused, not passed on with an empty name.
        let name = call
            .function
            .name
            .ok_or_else(|| unreadable_answer("a tool call without a function name"))?;
        let call_id = call.id.unwrap_or_default();
        output.push(OutputItem::FunctionCall {
            id: call_item_id(&call_id),
            status: Status::Completed,
            arguments: arguments_or_empty_object(call.function.arguments.unwrap_or_default()),
            call_id,
            name,
        });
    }
    let mut response = Response::new(&ids.response, created, &answer.model, echo, &output);
    response.status = status;
    response.incomplete_details = incomplete_details;
    response.usage = answer.usage.map(ResponseUsage::from);
    let mut body = Vec::new();
    response.write(&mut body);
    Ok((body, answer.usage))
}
