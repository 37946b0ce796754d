//! Amazon Bedrock runtime: Converse, ConverseStream and the embedding models' InvokeModel bodies.
//!
//! Reference: <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html>,
//! Titan Text Embeddings V2
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html>)
//! and Cohere Embed
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html>).
//! Responses are read tolerantly: unknown fields, blocks, stop reasons and events are ignored.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Converse request (what llmgw sends; the model id and streaming are in the path)

#[derive(Debug, Serialize)]
pub struct ConverseRequest<'a> {
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemBlock<'a>>,
    #[serde(
        rename = "inferenceConfig",
        skip_serializing_if = "InferenceConfig::is_empty"
    )]
    pub inference_config: InferenceConfig<'a>,
    /// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolConfiguration.html>
    #[serde(rename = "toolConfig", skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    /// The model's own fields; llmgw sends Claude's `thinking` here
    /// (<https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html>).
    #[serde(
        rename = "additionalModelRequestFields",
        skip_serializing_if = "Option::is_none"
    )]
    pub additional_model_request_fields: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    pub tools: Vec<Tool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
}

/// A tool is a union with one member; llmgw sends `toolSpec`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Tool {
    ToolSpec(ToolSpec),
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolSpecification.html>
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec {
    /// `[a-zA-Z0-9_-]+`, 1 to 64 characters.
    pub name: String,
    /// At least one character when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: InputSchema,
}

/// A union with one member: the JSON Schema of the tool's input.
#[derive(Debug, Serialize)]
pub struct InputSchema {
    pub json: Value,
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolChoice.html>:
/// `{"auto":{}}`, `{"any":{}}` or `{"tool":{"name"}}`; there is no "none".
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolChoice {
    Auto {},
    Any {},
    Tool { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Serialize)]
pub struct Message<'a> {
    pub role: Role,
    pub content: Vec<ContentBlock<'a>>,
}

/// A content block is an object with exactly one member; llmgw sends text, images, the
/// assistant's tool calls and the tools' results.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContentBlock<'a> {
    Text(Cow<'a, str>),
    Image(ImageBlock<'a>),
    ToolUse(ToolUseBlock),
    ToolResult(ToolResultBlock<'a>),
    CachePoint(CachePoint),
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CachePointBlock.html>:
/// the prompt up to here may be cached
/// (<https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CachePoint {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl CachePoint {
    /// The one type there is.
    pub const DEFAULT: CachePoint = CachePoint { kind: "default" };
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolUseBlock.html>
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseBlock {
    pub tool_use_id: String,
    pub name: String,
    /// A JSON object.
    pub input: Value,
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ToolResultBlock.html>
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResultBlock<'a> {
    pub tool_use_id: Cow<'a, str>,
    pub content: Vec<ToolResultContent<'a>>,
}

/// A union; OpenAI tool results are text.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContent<'a> {
    Text(Cow<'a, str>),
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ImageBlock.html>
#[derive(Debug, Serialize)]
pub struct ImageBlock<'a> {
    /// `png`, `jpeg`, `gif` or `webp`.
    pub format: &'static str,
    pub source: ImageSource<'a>,
}

/// The image itself, base64-encoded in the JSON API.
#[derive(Debug, Serialize)]
pub struct ImageSource<'a> {
    pub bytes: Cow<'a, str>,
}

/// A system content block: text, or a cache point after it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SystemBlock<'a> {
    Text(Cow<'a, str>),
    CachePoint(CachePoint),
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InferenceConfiguration.html>
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<Cow<'a, str>>>,
}

impl InferenceConfig<'_> {
    pub fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_none()
    }
}

// ---------------------------------------------------------------------------------------------
// Converse response (what llmgw reads)

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse<'a> {
    #[serde(borrow)]
    pub output: Output<'a>,
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub usage: Option<TokenUsage>,
}

#[derive(Debug, Deserialize)]
pub struct Output<'a> {
    #[serde(borrow)]
    pub message: ResponseMessage<'a>,
}

#[derive(Debug, Deserialize)]
pub struct ResponseMessage<'a> {
    #[serde(borrow, default)]
    pub content: Vec<ResponseBlock<'a>>,
}

/// A response content block: text, a tool call, or something llmgw does not read
/// (reasoning, citations, …).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseBlock<'a> {
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub tool_use: Option<ToolUse<'a>>,
    #[serde(borrow, default)]
    pub reasoning_content: Option<ReasoningContent<'a>>,
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ReasoningContentBlock.html>:
/// a union of `reasoningText` (`text` and its `signature`) and `redactedContent`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningContent<'a> {
    #[serde(borrow, default)]
    pub reasoning_text: Option<ReasoningText<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ReasoningText<'a> {
    #[serde(borrow, default)]
    pub text: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse<'a> {
    #[serde(borrow)]
    pub tool_use_id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default)]
    pub input: Value,
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_ResponseSyntax>
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    /// The context window filled up before `maxTokens` (newer models).
    ModelContextWindowExceeded,
    StopSequence,
    GuardrailIntervened,
    ContentFiltered,
    #[serde(other)]
    Other,
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html>
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_write_input_tokens: Option<u64>,
}

/// An error body: `{"message": …}` (some services capitalise it), with the error's name in
/// the `x-amzn-errortype` header.
#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(borrow, default, alias = "Message")]
    pub message: Option<Cow<'a, str>>,
}

// ---------------------------------------------------------------------------------------------
// ConverseStream event payloads (the `:event-type` header names the event)

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockDeltaEvent<'a> {
    #[serde(default)]
    pub content_block_index: u32,
    #[serde(borrow)]
    pub delta: BlockDelta<'a>,
}

/// A delta: text, a fragment of a tool call's input JSON (`toolUse.input`, a string), or of
/// the reasoning.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDelta<'a> {
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub tool_use: Option<ToolUseDelta<'a>>,
    #[serde(borrow, default)]
    pub reasoning_content: Option<ReasoningDelta<'a>>,
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ReasoningContentBlockDelta.html>:
/// a union of `text`, `signature` and `redactedContent`; the signature is not read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningDelta<'a> {
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default)]
    pub redacted_content: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
pub struct ToolUseDelta<'a> {
    #[serde(borrow, default)]
    pub input: Cow<'a, str>,
}

/// `contentBlockStart`: a tool call's id and name come first, its input in later deltas.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockStartEvent<'a> {
    #[serde(default)]
    pub content_block_index: u32,
    #[serde(borrow, default)]
    pub start: Option<BlockStart<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStart<'a> {
    #[serde(borrow, default)]
    pub tool_use: Option<ToolUseStart<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseStart<'a> {
    #[serde(borrow)]
    pub tool_use_id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ContentBlockStopEvent.html>
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockStopEvent {
    #[serde(default)]
    pub content_block_index: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageStopEvent {
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
}

#[derive(Debug, Deserialize)]
pub struct MetadataEvent {
    #[serde(default)]
    pub usage: Option<TokenUsage>,
}

// ---------------------------------------------------------------------------------------------
// Embedding models through InvokeModel

/// Titan Text Embeddings (v1 and v2) request: one text per call.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TitanEmbedRequest<'a> {
    pub input_text: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitanEmbedResponse {
    pub embedding: Vec<f64>,
    #[serde(default)]
    pub input_text_token_count: u64,
}

/// Cohere Embed request: several texts per call; `input_type` is required.
#[derive(Debug, Serialize)]
pub struct CohereEmbedRequest<'a> {
    pub texts: Vec<Cow<'a, str>>,
    pub input_type: &'static str,
}

#[derive(Debug, Deserialize)]
pub struct CohereEmbedResponse {
    pub embeddings: Vec<Vec<f64>>,
}
