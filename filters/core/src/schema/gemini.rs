//! Google Gemini API `generateContent` / `streamGenerateContent`, shared by AI Studio and
//! Vertex AI (same body, different paths and auth).
//!
//! Reference: <https://ai.google.dev/api/generate-content> (request, response, finish reasons,
//! usage metadata), <https://ai.google.dev/api/caching#Content> (contents and parts),
//! <https://ai.google.dev/gemini-api/docs/function-calling> (tools),
//! <https://ai.google.dev/gemini-api/docs/structured-output> (response schema) and
//! <https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes> (errors; Vertex:
//! <https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference>).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Request (what llmgw sends)

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest<'a> {
    pub contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<SystemInstruction<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    pub generation_config: GenerationConfig,
}

/// Only `user` and `model` turns exist; tool results are `user` turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Model,
}

#[derive(Debug, Serialize)]
pub struct Content<'a> {
    pub role: Role,
    pub parts: Vec<Part<'a>>,
}

/// The system prompt: parts without a role.
#[derive(Debug, Serialize)]
pub struct SystemInstruction<'a> {
    pub parts: Vec<Part<'a>>,
}

/// A part holds exactly one of its fields.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Part<'a> {
    Text {
        text: Cow<'a, str>,
    },
    InlineData {
        #[serde(rename = "inlineData")]
        inline_data: Blob<'a>,
    },
    FunctionCall {
        #[serde(rename = "functionCall")]
        function_call: FunctionCall,
    },
    FunctionResponse {
        #[serde(rename = "functionResponse")]
        function_response: FunctionResponse,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob<'a> {
    pub mime_type: Cow<'a, str>,
    /// Base64, as in the client's `data:` URL.
    pub data: Cow<'a, str>,
}

#[derive(Debug, Serialize)]
pub struct FunctionCall {
    pub name: String,
    pub args: Value,
}

#[derive(Debug, Serialize)]
pub struct FunctionResponse {
    pub name: String,
    /// A JSON object (the result when it is one, else `{"content": <text>}`).
    pub response: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub function_declarations: Vec<FunctionDeclaration>,
}

#[derive(Debug, Serialize)]
pub struct FunctionDeclaration {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An OpenAPI 3 schema subset (see `openai_gemini::gemini_schema`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    pub function_calling_config: FunctionCallingConfig,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    pub mode: FunctionCallingMode,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_function_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FunctionCallingMode {
    Auto,
    Any,
    None,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
}

/// <https://ai.google.dev/api/generate-content#ThinkingConfig>: a token budget for thinking
/// (`0` turns it off), and whether to return thought summaries (parts with `thought: true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    pub thinking_budget: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub include_thoughts: bool,
}

impl GenerationConfig {
    pub fn is_empty(&self) -> bool {
        self.max_output_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
            && self.seed.is_none()
            && self.candidate_count.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.response_mime_type.is_none()
            && self.response_schema.is_none()
            && self.thinking_config.is_none()
    }
}

// ---------------------------------------------------------------------------------------------
// Response (what providers send back): tolerant.

/// A whole answer, or one chunk of a stream (the same type).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse<'a> {
    #[serde(default, borrow)]
    pub candidates: Vec<Candidate<'a>>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default, borrow)]
    pub model_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub response_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate<'a> {
    #[serde(default, borrow)]
    pub content: Option<CandidateContent<'a>>,
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
    #[serde(default)]
    pub index: u32,
}

#[derive(Debug, Default, Deserialize)]
pub struct CandidateContent<'a> {
    #[serde(default, borrow)]
    pub parts: Vec<ResponsePart<'a>>,
}

/// A part of an answer. Parts of kinds llmgw does not map (executable code, files, …) have
/// neither `text` nor `function_call` and are skipped.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponsePart<'a> {
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    /// A thought summary (thinking models): `reasoning_content`, not part of the answer.
    #[serde(default)]
    pub thought: bool,
    #[serde(default, borrow)]
    pub function_call: Option<FunctionCallOut<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct FunctionCallOut<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default)]
    pub args: Value,
    /// Newer models may number their calls themselves.
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
}

/// <https://ai.google.dev/api/generate-content#FinishReason>
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FinishReason {
    Stop,
    MaxTokens,
    Safety,
    Recitation,
    Language,
    Blocklist,
    ProhibitedContent,
    Spii,
    ImageSafety,
    MalformedFunctionCall,
    UnexpectedToolCall,
    TooManyToolCalls,
    Other,
    /// `FINISH_REASON_UNSPECIFIED` and whatever comes next.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Includes cached tokens.
    #[serde(default)]
    pub prompt_token_count: u64,
    #[serde(default)]
    pub candidates_token_count: u64,
    #[serde(default)]
    pub total_token_count: u64,
    #[serde(default)]
    pub cached_content_token_count: u64,
    /// Thinking tokens, not included in `candidates_token_count`.
    #[serde(default)]
    pub thoughts_token_count: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    /// Set when the prompt itself was blocked (then there are no candidates).
    #[serde(default)]
    pub block_reason: Option<String>,
}

/// `{"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED"}}`; the
/// non-SSE stream method wraps it in an array.
pub type ErrorResponse<'a> = super::ErrorEnvelope<ErrorBody<'a>>;

#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    #[serde(default)]
    pub code: u16,
    #[serde(default, borrow)]
    pub message: Cow<'a, str>,
    #[serde(default, borrow)]
    pub status: Cow<'a, str>,
    /// `google.rpc.ErrorInfo` and other details; a refused API key is a 400 whose `reason` is
    /// `API_KEY_INVALID` (<https://cloud.google.com/apis/design/errors#error_info>).
    #[serde(default, borrow)]
    pub details: Vec<ErrorDetail<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail<'a> {
    #[serde(default, borrow)]
    pub reason: Cow<'a, str>,
}

// ---------------------------------------------------------------------------------------------
// Embeddings

/// Gemini API `models.embedContent` request (<https://ai.google.dev/api/embeddings#method:-models.embedcontent>),
/// also one entry of `batchEmbedContents`' `requests`, where `model` is required and must be
/// the path's model (`models/{model}`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbedContentRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub content: EmbedContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_dimensionality: Option<u32>,
}

/// A `Content` without a role: only `parts[].text` counts for embeddings.
#[derive(Debug, Serialize)]
pub struct EmbedContent<'a> {
    pub parts: Vec<TextPart<'a>>,
}

#[derive(Debug, Serialize)]
pub struct TextPart<'a> {
    pub text: Cow<'a, str>,
}

/// `models.batchEmbedContents` request (<https://ai.google.dev/api/embeddings#method:-models.batchembedcontents>).
#[derive(Debug, Serialize)]
pub struct BatchEmbedContentsRequest<'a> {
    pub requests: Vec<EmbedContentRequest<'a>>,
}

/// `embedContent` answer: `{"embedding": {"values": […]}}`.
#[derive(Debug, Deserialize)]
pub struct EmbedContentResponse {
    pub embedding: ContentEmbedding,
}

/// `batchEmbedContents` answer: `{"embeddings": [{"values": […]}, …]}`, in request order.
#[derive(Debug, Deserialize)]
pub struct BatchEmbedContentsResponse {
    #[serde(default)]
    pub embeddings: Vec<ContentEmbedding>,
}

#[derive(Debug, Deserialize)]
pub struct ContentEmbedding {
    #[serde(default)]
    pub values: Vec<f64>,
}

/// Vertex AI text embeddings `:predict` request
/// (<https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api>).
#[derive(Debug, Serialize)]
pub struct PredictRequest<'a> {
    pub instances: Vec<PredictInstance<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<PredictParameters>,
}

#[derive(Debug, Serialize)]
pub struct PredictInstance<'a> {
    pub content: Cow<'a, str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PredictParameters {
    pub output_dimensionality: u32,
}

/// `:predict` answer: one prediction per instance, each with its token count.
#[derive(Debug, Deserialize)]
pub struct PredictResponse {
    #[serde(default)]
    pub predictions: Vec<Prediction>,
}

#[derive(Debug, Deserialize)]
pub struct Prediction {
    pub embeddings: PredictionEmbeddings,
}

#[derive(Debug, Deserialize)]
pub struct PredictionEmbeddings {
    #[serde(default)]
    pub values: Vec<f64>,
    #[serde(default)]
    pub statistics: Option<EmbeddingStatistics>,
}

#[derive(Debug, Deserialize)]
pub struct EmbeddingStatistics {
    /// A JSON number; sent as `6` or `6.0` depending on the serving stack.
    #[serde(default)]
    pub token_count: f64,
}
