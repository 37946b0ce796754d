//! `POST /v1/embeddings` (<https://platform.openai.com/docs/api-reference/embeddings/create>)
//! for each backend that has an embeddings API.
//!
//! - OpenAI-compatible: the body goes as sent, with the upstream model name; the answer is
//!   already OpenAI's and passes unread. (Azure OpenAI: the same through
//!   [`super::openai_azure`], with the deployment path.)
//! - Bedrock: `POST /model/{modelId}/invoke` (SigV4-signed) with the model family's own body:
//!   Titan Text Embeddings `{"inputText"}` → `{"embedding", "inputTextTokenCount"}`
//!   (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html>)
//!   or Cohere Embed `{"texts", "input_type"}` → `{"embeddings"}`
//!   (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html>).
//! - Gemini API: `models/{model}:embedContent` for one input, `:batchEmbedContents` for a list
//!   (<https://ai.google.dev/api/embeddings>), `dimensions` → `outputDimensionality`. Gemini
//!   reports no token counts for embeddings, so `usage` is llmgw's estimate (UTF-8 bytes / 4,
//!   rounded up, per input: the rule router uses for prompts), documented in the README.
//! - Vertex AI: `publishers/google/models/{model}:predict` with `instances[].content`
//!   (<https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api>):
//!   the one method every Vertex text embedding model serves (`text-embedding-005`,
//!   `text-multilingual-embedding-002`, `gemini-embedding-001`), and it reports each input's
//!   `token_count`, which becomes `usage`.
//!
//! Every non-OpenAI answer becomes OpenAI's `{"object":"list","data":[…],"model","usage"}`;
//! `encoding_format: "base64"` (the OpenAI Python SDK's default) is honoured by encoding the
//! vectors as OpenAI does.
// A build without Gemini or Bedrock (Cargo features) leaves some shared helpers unused.
#![cfg_attr(
    not(all(feature = "gemini", feature = "bedrock")),
    allow(dead_code, unused_imports)
)]

use std::borrow::Cow;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "bedrock")]
use super::openai_bedrock::{model_path, translate_error, BedrockEndpoint};
#[cfg(feature = "gemini")]
use super::openai_gemini::{google_error, model_segment, Endpoint};
use super::openai_openai::OpenAiOpenAi;
use super::request_fields;
use super::{
    buffer_plan, buffered_answer, unreadable_answer, ResponseBody, ResponsePlan, Translator, Usage,
};
use crate::error::ApiError;
#[cfg(feature = "bedrock")]
use crate::schema::bedrock as br;
#[cfg(feature = "gemini")]
use crate::schema::gemini as gm;
use crate::schema::{once, FieldName, TextOrList};

/// OpenAI and OpenAI-compatible embeddings: the model name is rewritten, nothing else.
#[derive(Debug)]
pub struct OpenAiEmbeddings {
    base_path: String,
    /// The chat translator already knows how to swap the model and keep every other field.
    model_rewrite: OpenAiOpenAi,
}

impl OpenAiEmbeddings {
    pub fn new(base_path: String) -> Self {
        Self {
            model_rewrite: OpenAiOpenAi::new(base_path.clone()),
            base_path,
        }
    }
}

impl Translator for OpenAiEmbeddings {
    fn chat_path(&self, query: Option<&str>) -> String {
        match query {
            Some(query) => format!("{}/embeddings?{query}", self.base_path),
            None => format!("{}/embeddings", self.base_path),
        }
    }

    fn needs_request_body(&self, upstream_model: Option<&str>) -> bool {
        upstream_model.is_some()
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        self.model_rewrite.request_body(body, upstream_model)
    }

    fn stamps_created(&self) -> bool {
        false // the answer is the provider's, unread
    }

    fn response_headers(&mut self, _: u16, _: Option<&str>, _: bool, _: u64) -> ResponsePlan {
        ResponsePlan::UNTOUCHED
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        ResponseBody {
            status: None,
            body: body.to_vec(),
        }
    }

    fn usage(&self) -> Option<Usage> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// The OpenAI request, read once for every translating backend

/// The OpenAI embeddings request fields llmgw maps; anything else is refused by name.
#[derive(Debug)]
struct EmbeddingsRequest<'a> {
    model: Option<Cow<'a, str>>,
    input: Input<'a>,
    encoding_format: Option<Cow<'a, str>>,
    dimensions: Option<u32>,
    /// Every other field but `user` (an abuse-monitoring id: Bedrock and Google have no
    /// counterpart and it changes no result), by name.
    other: serde_json::Map<String, Value>,
}

/// Field by field, as `#[derive(Deserialize)]` with `#[serde(flatten)] other` would, without
/// buffering the other fields into serde's `Content` tree first (issue #16).
impl<'de: 'a, 'a> Deserialize<'de> for EmbeddingsRequest<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = EmbeddingsRequest<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an embeddings request object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut model: Option<Option<Cow<'de, str>>> = None;
                let mut input = None;
                let mut encoding_format: Option<Option<Cow<'de, str>>> = None;
                let mut dimensions: Option<Option<u32>> = None;
                let mut user: Option<Value> = None;
                let mut other = serde_json::Map::new();
                while let Some(FieldName(key)) = map.next_key()? {
                    match key.as_ref() {
                        "model" => once(&mut map, &mut model, "model")?,
                        "input" => once(&mut map, &mut input, "input")?,
                        "encoding_format" => {
                            once(&mut map, &mut encoding_format, "encoding_format")?
                        }
                        "dimensions" => once(&mut map, &mut dimensions, "dimensions")?,
                        "user" => once(&mut map, &mut user, "user")?,
                        _ => {
                            other.insert(key.into_owned(), map.next_value()?);
                        }
                    }
                }
                Ok(EmbeddingsRequest {
                    model: model.flatten(),
                    input: input.ok_or_else(|| serde::de::Error::missing_field("input"))?,
                    encoding_format: encoding_format.flatten(),
                    dimensions: dimensions.flatten(),
                    other,
                })
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[derive(Debug)]
enum Input<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
    /// Token ids: OpenAI-only.
    Tokens,
}

/// A string, an array of strings, or anything else (token ids).
impl<'de: 'a, 'a> Deserialize<'de> for Input<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// One array element: a string, or `None` for anything else.
        struct Element<'a>(Option<Cow<'a, str>>);
        impl<'de: 'a, 'a> Deserialize<'de> for Element<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Element(match TextOrList::<Element>::deserialize(d)? {
                    TextOrList::Text(text) => Some(text),
                    _ => None,
                }))
            }
        }
        Ok(match TextOrList::<Element>::deserialize(deserializer)? {
            TextOrList::Text(one) => Input::One(one),
            TextOrList::List(many) => many
                .into_iter()
                .map(|Element(text)| text)
                .collect::<Option<Vec<_>>>()
                .map_or(Input::Tokens, Input::Many),
            TextOrList::Other(_) => Input::Tokens,
        })
    }
}

fn refuse(field: &str, why: &str) -> ApiError {
    ApiError::invalid_request(format!("`{field}` {why}")).with_param(field)
}

fn unreadable() -> ApiError {
    unreadable_answer("not the model's embeddings answer")
}

/// The parsed request, the model it goes to, and whether the client wants base64 vectors.
fn parse_request<'a>(
    body: &'a [u8],
    upstream_model: Option<&str>,
) -> Result<(EmbeddingsRequest<'a>, String, bool), ApiError> {
    let request: EmbeddingsRequest<'_> = crate::json::from_slice(body).map_err(|err| {
        ApiError::invalid_request(format!(
            "the request body is not a valid embeddings request: {err}"
        ))
    })?;
    let model = request_fields::chosen_model(upstream_model, request.model.as_deref())?.to_string();
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(refuse(
                "encoding_format",
                &format!("`{other}` is not one of `float`, `base64`"),
            ))
        }
    };
    Ok((request, model, base64))
}

/// The texts to embed, after refusing the fields `backend` cannot honour.
fn texts<'a>(
    other: &serde_json::Map<String, Value>,
    input: Input<'a>,
    backend: &str,
) -> Result<Vec<Cow<'a, str>>, ApiError> {
    if let Some((name, _)) = other.iter().find(|(_, v)| !v.is_null()) {
        return Err(refuse(
            name,
            &format!("is not supported for {backend} embeddings"),
        ));
    }
    match input {
        Input::One(text) => Ok(vec![text]),
        Input::Many(texts) if !texts.is_empty() => Ok(texts),
        Input::Many(_) => Err(refuse("input", "must not be empty")),
        Input::Tokens => Err(refuse(
            "input",
            &format!(
                "must be a string or a list of strings for {backend} (token ids are OpenAI's)"
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Bedrock

/// Which request body the Bedrock model takes.
#[cfg(feature = "bedrock")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Titan,
    Cohere,
}

/// Model ids may carry a cross-region prefix (`us.cohere.embed-v4:0`).
#[cfg(feature = "bedrock")]
fn family(model: &str) -> Option<Family> {
    if model.contains("amazon.titan-embed") {
        Some(Family::Titan)
    } else if model.contains("cohere.embed") {
        Some(Family::Cohere)
    } else {
        None
    }
}

/// Bedrock embedding models; one per try.
#[cfg(feature = "bedrock")]
#[derive(Debug)]
pub struct BedrockEmbeddings {
    endpoint: Rc<BedrockEndpoint>,
    path: String,
    model: String,
    family: Option<Family>,
    base64: bool,
    status: u16,
    error_type: Option<String>,
    /// `x-amzn-bedrock-input-token-count`: InvokeModel's token count, the only one Cohere gives.
    input_tokens: Option<u64>,
    usage: Option<Usage>,
}

#[cfg(feature = "bedrock")]
impl BedrockEmbeddings {
    pub fn new(endpoint: Rc<BedrockEndpoint>) -> Self {
        Self {
            endpoint,
            path: model_path("", "invoke"),
            model: String::new(),
            family: None,
            base64: false,
            status: 0,
            error_type: None,
            input_tokens: None,
            usage: None,
        }
    }
}

/// OpenAI embeddings request → the body the Bedrock model family takes.
#[cfg(feature = "bedrock")]
fn bedrock_body(request: EmbeddingsRequest<'_>, family: Family) -> Result<Vec<u8>, ApiError> {
    let texts = texts(&request.other, request.input, "Amazon Bedrock")?;
    match family {
        Family::Titan => {
            let [text] = <[Cow<'_, str>; 1]>::try_from(texts).map_err(|_| {
                refuse(
                    "input",
                    "must be one text: Titan embedding models embed one input per request",
                )
            })?;
            request_fields::encode(&br::TitanEmbedRequest {
                input_text: text,
                dimensions: request.dimensions,
            })
        }
        Family::Cohere => {
            if request.dimensions.is_some() {
                return Err(refuse(
                    "dimensions",
                    "is not supported by Cohere embedding models on Bedrock",
                ));
            }
            // OpenAI has no notion of query vs document; documents are the common case
            // (indexing), and the embeddings stay comparable with each other.
            request_fields::encode(&br::CohereEmbedRequest {
                texts,
                input_type: "search_document",
            })
        }
    }
}

#[derive(Serialize)]
struct EmbeddingsList<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: EmbeddingsUsage,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: EmbeddingValue,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingValue {
    Floats(Vec<f64>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingsUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// OpenAI's `encoding_format: "base64"`: the vector as little-endian float32, base64-encoded.
fn base64_f32(values: &[f64]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group.first().copied().unwrap_or(0),
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Vectors in input order → OpenAI's list body, and the usage it reports.
fn openai_list(
    vectors: Vec<Vec<f64>>,
    base64: bool,
    model: &str,
    tokens: u64,
) -> Result<(Vec<u8>, Usage), ApiError> {
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, values)| Embedding {
            object: "embedding",
            index,
            embedding: if base64 {
                EmbeddingValue::Base64(base64_f32(&values))
            } else {
                EmbeddingValue::Floats(values)
            },
        })
        .collect();
    let list = EmbeddingsList {
        object: "list",
        data,
        model,
        usage: EmbeddingsUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    };
    let usage = Usage {
        prompt_tokens: tokens,
        completion_tokens: 0,
        total_tokens: tokens,
        prompt_tokens_details: None,
        completion_tokens_details: None,
    };
    let body = serde_json::to_vec(&list).map_err(|_| unreadable())?;
    Ok((body, usage))
}

#[cfg(feature = "bedrock")]
impl BedrockEmbeddings {
    fn translate(&mut self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let (vectors, tokens) = match self.family {
            Some(Family::Titan) => {
                let parsed: br::TitanEmbedResponse =
                    crate::json::from_slice(body).map_err(|_| unreadable())?;
                (vec![parsed.embedding], Some(parsed.input_text_token_count))
            }
            Some(Family::Cohere) => {
                let parsed: br::CohereEmbedResponse =
                    crate::json::from_slice(body).map_err(|_| unreadable())?;
                (parsed.embeddings, None)
            }
            None => return Err(unreadable()),
        };
        let tokens = self.input_tokens.or(tokens).unwrap_or(0);
        let (body, usage) = openai_list(vectors, self.base64, &self.model, tokens)?;
        self.usage = Some(usage);
        Ok(body)
    }
}

#[cfg(feature = "bedrock")]
impl Translator for BedrockEmbeddings {
    fn chat_path(&self, _query: Option<&str>) -> String {
        // Placeholder until the body names the model; `finish_request` sets the real path.
        self.path.clone()
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let (request, model, base64) = parse_request(body, upstream_model)?;
        let Some(family) = family(&model) else {
            return Err(refuse(
                "model",
                &format!(
                    "`{model}` is not an embedding model llmgw can call on Amazon Bedrock \
                     (amazon.titan-embed-*, cohere.embed-*)"
                ),
            ));
        };
        let out = bedrock_body(request, family)?;
        self.base64 = base64;
        self.path = model_path(&model, "invoke");
        self.model = model;
        self.family = Some(family);
        Ok(Some(out))
    }

    fn finish_request(&mut self, body: &[u8], now_ms: u64) -> Vec<(String, String)> {
        self.endpoint.signed_headers(&self.path, body, now_ms)
    }

    fn response_headers_read(&self) -> &'static [&'static str] {
        &["x-amzn-errortype", "x-amzn-bedrock-input-token-count"]
    }

    fn note_response_header(&mut self, name: &str, value: &str) {
        match name {
            "x-amzn-errortype" => self.error_type = Some(value.to_string()),
            "x-amzn-bedrock-input-token-count" => self.input_tokens = value.trim().parse().ok(),
            _ => {}
        }
    }

    fn stamps_created(&self) -> bool {
        false // an embeddings answer has no `created`
    }

    fn response_headers(
        &mut self,
        status: u16,
        _content_type: Option<&str>,
        _encoded: bool,
        _created: u64,
    ) -> ResponsePlan {
        self.status = status;
        buffer_plan(status, false, status)
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        let (status, error_type) = (self.status, self.error_type.take());
        buffered_answer(
            status,
            status,
            body,
            &|body| translate_error(status, error_type.as_deref(), body),
            &mut |body| self.translate(body),
        )
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

// ---------------------------------------------------------------------------------------------
// Gemini API and Vertex AI

/// Gemini API (`embedContent` / `batchEmbedContents`) and Vertex AI (`predict`) embeddings;
/// one per try.
#[cfg(feature = "gemini")]
#[derive(Debug)]
pub struct GeminiEmbeddings {
    endpoint: Endpoint,
    /// Set once the body named the model (and, on the Gemini API, one input or several).
    path: Option<String>,
    model: String,
    /// How many vectors the answer must hold.
    inputs: usize,
    /// The Gemini API's batch method answers `embeddings[]`, the single one `embedding`.
    batch: bool,
    base64: bool,
    status: u16,
    /// The Gemini API reports no tokens for embeddings: llmgw's estimate of the input.
    estimated_tokens: u64,
    usage: Option<Usage>,
}

/// Tokens of `text` as llmgw estimates them where a provider reports none: UTF-8 bytes / 4,
/// rounded up (router's rule for prompts, [`crate::facts::RouterFacts::input_tokens_estimate`]).
#[cfg(feature = "gemini")]
fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

#[cfg(feature = "gemini")]
impl GeminiEmbeddings {
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            path: None,
            model: String::new(),
            inputs: 0,
            batch: false,
            base64: false,
            status: 0,
            estimated_tokens: 0,
            usage: None,
        }
    }

    /// The provider's body for these texts, and the method it goes to.
    fn provider_body(
        &self,
        model: &str,
        mut texts: Vec<Cow<'_, str>>,
        dimensions: Option<u32>,
    ) -> Result<(Vec<u8>, &'static str), ApiError> {
        match self.endpoint {
            Endpoint::Vertex(_) => {
                let request = gm::PredictRequest {
                    instances: texts
                        .into_iter()
                        .map(|content| gm::PredictInstance { content })
                        .collect(),
                    parameters: dimensions.map(|n| gm::PredictParameters {
                        output_dimensionality: n,
                    }),
                };
                Ok((request_fields::encode(&request)?, "predict"))
            }
            Endpoint::AiStudio => {
                fn one(
                    model: Option<String>,
                    text: Cow<'_, str>,
                    dimensions: Option<u32>,
                ) -> gm::EmbedContentRequest<'_> {
                    gm::EmbedContentRequest {
                        model,
                        content: gm::EmbedContent {
                            parts: vec![gm::TextPart { text }],
                        },
                        output_dimensionality: dimensions,
                    }
                }
                if self.batch {
                    // Each entry names the model again; it must be the path's.
                    let requests = texts
                        .into_iter()
                        .map(|text| one(Some(format!("models/{model}")), text, dimensions))
                        .collect();
                    let request = gm::BatchEmbedContentsRequest { requests };
                    Ok((request_fields::encode(&request)?, "batchEmbedContents"))
                } else {
                    let text = texts.pop().unwrap_or_default();
                    Ok((
                        request_fields::encode(&one(None, text, dimensions))?,
                        "embedContent",
                    ))
                }
            }
        }
    }

    fn translate(&mut self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let (vectors, tokens) = match (&self.endpoint, self.batch) {
            (Endpoint::Vertex(_), _) => {
                let parsed: gm::PredictResponse =
                    crate::json::from_slice(body).map_err(|_| unreadable())?;
                let mut tokens = 0;
                let mut vectors = Vec::with_capacity(parsed.predictions.len());
                for p in parsed.predictions {
                    let count = p.embeddings.statistics.map_or(0.0, |s| s.token_count);
                    tokens += count.max(0.0).round() as u64;
                    vectors.push(p.embeddings.values);
                }
                (vectors, tokens)
            }
            (Endpoint::AiStudio, true) => {
                let parsed: gm::BatchEmbedContentsResponse =
                    crate::json::from_slice(body).map_err(|_| unreadable())?;
                let vectors = parsed.embeddings.into_iter().map(|e| e.values).collect();
                (vectors, self.estimated_tokens)
            }
            (Endpoint::AiStudio, false) => {
                let parsed: gm::EmbedContentResponse =
                    crate::json::from_slice(body).map_err(|_| unreadable())?;
                (vec![parsed.embedding.values], self.estimated_tokens)
            }
        };
        // Vectors are matched to inputs by position: a short answer would shift them.
        if vectors.len() != self.inputs {
            return Err(unreadable());
        }
        let (body, usage) = openai_list(vectors, self.base64, &self.model, tokens)?;
        self.usage = Some(usage);
        Ok(body)
    }
}

#[cfg(feature = "gemini")]
impl Translator for GeminiEmbeddings {
    fn chat_path(&self, _query: Option<&str>) -> String {
        // The model is in the body: the real path is set once it was read (`request_path`).
        format!("{}:embedContent", self.endpoint.model_path("-"))
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let (request, model, base64) = parse_request(body, upstream_model)?;
        let model = model_segment(&model)?.to_string();
        let backend = match self.endpoint {
            Endpoint::AiStudio => "the Gemini API",
            Endpoint::Vertex(_) => "Vertex AI",
        };
        let texts = texts(&request.other, request.input, backend)?;
        if texts.iter().any(|t| t.is_empty()) {
            // Google refuses empty content with an unhelpful message; say which field.
            return Err(refuse("input", "must not contain empty strings"));
        }
        self.inputs = texts.len();
        self.batch = texts.len() > 1;
        self.estimated_tokens = texts.iter().map(|t| estimate_tokens(t)).sum();
        let (out, method) = self.provider_body(&model, texts, request.dimensions)?;
        self.path = Some(format!("{}:{method}", self.endpoint.model_path(&model)));
        self.base64 = base64;
        self.model = model;
        Ok(Some(out))
    }

    fn request_path(&self) -> Option<String> {
        self.path.clone()
    }

    fn stamps_created(&self) -> bool {
        false // an embeddings answer has no `created`
    }

    fn response_headers(
        &mut self,
        status: u16,
        _content_type: Option<&str>,
        _encoded: bool,
        _created: u64,
    ) -> ResponsePlan {
        self.status = status;
        buffer_plan(status, false, status)
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        let status = self.status;
        buffered_answer(
            status,
            status,
            body,
            &|body| google_error(status, body),
            &mut |body| self.translate(body),
        )
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn base64_of_float32_little_endian() {
        // 1.0f32 = 00 00 80 3f; 1.0, 2.0 = 00 00 80 3f 00 00 00 40.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 2.0]), "AACAPwAAAEA=");
        assert_eq!(base64_f32(&[]), "");
    }

    #[cfg(feature = "bedrock")]
    #[test]
    fn families_by_model_id() {
        assert_eq!(family("amazon.titan-embed-text-v2:0"), Some(Family::Titan));
        assert_eq!(family("us.cohere.embed-v4:0"), Some(Family::Cohere));
        assert_eq!(family("anthropic.claude-3-haiku-20240307-v1:0"), None);
    }

    #[cfg(feature = "gemini")]
    #[test]
    fn token_estimate_rounds_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        // Bytes, not characters: "é" is two.
        assert_eq!(estimate_tokens("ééé"), 2);
    }
}
