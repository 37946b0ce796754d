//! OpenAI Responses (`POST /v1/responses`) to the backends that speak it: OpenAI (and
//! OpenAI-compatible servers that serve `/v1/responses`) and Azure OpenAI. A passthrough: only
//! the model (router's upstream model; Azure's deployment name, which its v1 API takes in the
//! body) and the credentials change, so every field llmgw does not model (built-in tools,
//! `previous_response_id`, `store`, `include`, new fields) keeps working.
//!
//! Paths: OpenAI `{base_path}/responses`
//! (<https://platform.openai.com/docs/api-reference/responses/create>); Azure OpenAI's v1 API
//! `/openai/v1/responses`, the deployment in the body's `model`
//! (<https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/responses>).
//!
//! The answer passes unchanged; translate reads its usage on the way (the `usage` of the
//! response object, or of the stream's `response.completed` / `response.incomplete` /
//! `response.failed` event) for the filters behind, in Chat terms. A stream that ends before
//! its terminal event gets an `error` event, which the OpenAI SDKs raise. Azure's errors are
//! normalized to OpenAI's shape, as for Chat.

use serde::Deserialize;

use super::model_field::replace_model;
use super::options::AzureBackend;
use super::{has_media_type, truncated_stream_error, ResponseBody, ResponseMode, ResponsePlan};
use super::{Translator, Usage};
use crate::error::ApiError;
use crate::schema::openai::{CompletionTokensDetails, PromptTokensDetails};
use crate::sse;

/// A watched JSON answer larger than this is passed on without reading its usage.
const MAX_WATCHED_JSON: usize = 4 << 20;

/// Where the request goes.
#[derive(Debug, Clone)]
pub enum Target {
    OpenAi { base_path: String },
    Azure(AzureBackend),
}

#[derive(Debug)]
pub struct ResponsesOpenAi {
    target: Target,
    decoder: sse::Decoder,
    /// The terminal event (or an `error` event) was seen.
    terminated: bool,
    failed: bool,
    /// The highest `sequence_number` seen, for the `error` event of a cut stream.
    last_sequence: Option<u64>,
    usage: Option<Usage>,
    /// A JSON answer being watched, kept until it ends.
    json_body: Option<Vec<u8>>,
    /// Azure: an error status whose body is normalized.
    error_status: Option<u16>,
}

/// The Responses API's usage (`input_tokens`, …), read into llmgw's Chat terms.
#[derive(Debug, Default, Deserialize)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: u64,
}

#[derive(Debug, Default, Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: u64,
}

impl From<ResponsesUsage> for Usage {
    fn from(u: ResponsesUsage) -> Self {
        Usage {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u.total_tokens.unwrap_or(u.input_tokens + u.output_tokens),
            // OpenAI caches by itself and bills no writes.
            prompt_tokens_details: u
                .input_tokens_details
                .map(|d| PromptTokensDetails::read(d.cached_tokens)),
            completion_tokens_details: u.output_tokens_details.map(|d| CompletionTokensDetails {
                reasoning_tokens: d.reasoning_tokens,
            }),
        }
    }
}

/// The parts of a response object or stream event the watcher reads.
#[derive(Debug, Default, Deserialize)]
struct Watched {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    sequence_number: Option<u64>,
    /// A stream event's response.
    #[serde(default)]
    response: Option<Box<Watched>>,
    /// A response object's usage.
    #[serde(default)]
    usage: Option<ResponsesUsage>,
}

impl ResponsesOpenAi {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            decoder: sse::Decoder::new(),
            terminated: false,
            failed: false,
            last_sequence: None,
            usage: None,
            json_body: None,
            error_status: None,
        }
    }

    fn path(&self) -> String {
        match &self.target {
            Target::OpenAi { base_path } => format!("{base_path}/responses"),
            Target::Azure(_) => "/openai/v1/responses".to_string(),
        }
    }

    /// The model the provider is asked for: Azure's deployment for it, or router's name.
    fn model<'a>(
        &'a self,
        upstream_model: Option<&'a str>,
        requested: Option<&'a str>,
    ) -> Option<&'a str> {
        match &self.target {
            Target::OpenAi { .. } => upstream_model,
            Target::Azure(azure) => {
                let model = upstream_model.or(requested)?;
                let deployment = azure.deployment(model);
                (deployment != model || upstream_model.is_some()).then_some(deployment)
            }
        }
    }

    fn watch(&mut self, data: &str) {
        let Ok(event) = crate::json::from_str::<Watched>(data) else {
            return;
        };
        if event.sequence_number.is_some() {
            self.last_sequence = event.sequence_number;
        }
        match event.kind.as_deref() {
            Some("response.completed" | "response.incomplete" | "response.failed") => {
                self.terminated = true;
                self.failed = event.kind.as_deref() == Some("response.failed");
                if let Some(usage) = event.response.and_then(|r| r.usage) {
                    self.usage = Some(usage.into());
                }
            }
            Some("error") => {
                self.terminated = true;
                self.failed = true;
            }
            _ => {}
        }
    }
}

impl Translator for ResponsesOpenAi {
    fn chat_path(&self, query: Option<&str>) -> String {
        match (query, &self.target) {
            (Some(query), Target::OpenAi { .. }) => format!("{}?{query}", self.path()),
            _ => self.path(),
        }
    }

    fn needs_request_body(&self, upstream_model: Option<&str>) -> bool {
        // Azure maps the body's model to its deployment, which may need the body read.
        upstream_model.is_some()
            || matches!(&self.target, Target::Azure(a) if !a.deployments.is_empty())
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        #[derive(Deserialize)]
        struct ModelOnly {
            #[serde(default)]
            model: Option<String>,
        }
        let requested = crate::json::from_slice::<ModelOnly>(body)
            .ok()
            .and_then(|m| m.model);
        let Some(model) = self.model(upstream_model, requested.as_deref()) else {
            return Ok(None);
        };
        if requested.as_deref() == Some(model) {
            return Ok(None);
        }
        // Only the model's bytes change; a body that is no JSON object goes on for the provider
        // to refuse in its own words.
        Ok(replace_model(body, model))
    }

    fn stamps_created(&self) -> bool {
        false // the answer is the provider's, its `created` included
    }

    fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        encoded: bool,
        _created: u64,
    ) -> ResponsePlan {
        if status >= 400 && !encoded && matches!(self.target, Target::Azure(_)) {
            self.error_status = Some(status);
            return ResponsePlan {
                mode: ResponseMode::Buffer,
                status: None,
                content_type: Some("application/json"),
            };
        }
        if !(200..300).contains(&status) || encoded {
            return ResponsePlan::UNTOUCHED;
        }
        if has_media_type(content_type, "text/event-stream") {
            ResponsePlan {
                mode: ResponseMode::Stream,
                status: None,
                content_type: None,
            }
        } else if has_media_type(content_type, "application/json") {
            self.json_body = Some(Vec::new());
            ResponsePlan {
                mode: ResponseMode::Watch,
                status: None,
                content_type: None,
            }
        } else {
            ResponsePlan::UNTOUCHED
        }
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        match self.error_status {
            Some(status) => ResponseBody {
                status: None,
                body: super::openai_azure::translate_error(status, body).body(),
            },
            None => ResponseBody {
                status: None,
                body: body.to_vec(),
            },
        }
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        if let Some(body) = self.json_body.as_mut() {
            if body.len() + chunk.len() > MAX_WATCHED_JSON {
                self.json_body = None;
            } else {
                body.extend_from_slice(chunk);
                if end_of_stream {
                    if let Ok(Watched {
                        usage: Some(usage), ..
                    }) = crate::json::from_slice(body)
                    {
                        self.usage = Some(usage.into());
                    }
                    self.json_body = None;
                }
            }
            return None;
        }
        if !self.terminated {
            for event in self.decoder.feed(chunk) {
                self.watch(&event.data);
                if self.terminated {
                    break;
                }
            }
        }
        if end_of_stream && !self.terminated {
            self.terminated = true;
            self.failed = true;
            let error = truncated_stream_error();
            let mut out = Vec::with_capacity(chunk.len() + 200);
            out.extend_from_slice(chunk);
            if self.decoder.has_pending() {
                out.extend_from_slice(b"\n\n");
            }
            let event = serde_json::json!({
                "type": "error",
                "sequence_number": self.last_sequence.map_or(0, |n| n + 1),
                "code": error.code,
                "message": error.message,
                "param": null,
            });
            sse::write_event(&mut out, "error", event.to_string().as_bytes());
            return Some(out);
        }
        None
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn stream_failed(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn openai() -> ResponsesOpenAi {
        ResponsesOpenAi::new(Target::OpenAi {
            base_path: "/v1".into(),
        })
    }

    fn azure() -> ResponsesOpenAi {
        ResponsesOpenAi::new(Target::Azure(AzureBackend {
            api_version: "2024-10-21".into(),
            deployments: [("gpt-4o".to_string(), "prod-4o".to_string())].into(),
        }))
    }

    /// The `response.completed` of openai-python's live-API recording (`test_responses.py`).
    const COMPLETED: &str = r#"{"type":"response.completed","sequence_number":7,"response":{"id":"resp_689a0b2545288193953c892439b42e2800b2e36c65a1fd4b","object":"response","status":"completed","output":[],"usage":{"input_tokens":14,"input_tokens_details":{"cached_tokens":0},"output_tokens":50,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":64}}}"#;

    #[test]
    fn paths_and_model_only_change() {
        let mut t = openai();
        assert_eq!(t.chat_path(Some("x=1")), "/v1/responses?x=1");
        let body = br#"{"model":"alias","input":"hi","tools":[{"type":"web_search_preview"}],"store":true}"#;
        let out = t.request_body(body, Some("gpt-4o")).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"gpt-4o","input":"hi","tools":[{"type":"web_search_preview"}],"store":true}"#
        );
        assert_eq!(t.request_body(body, None).unwrap(), None);
        let mut a = azure();
        assert_eq!(a.chat_path(Some("api-version=x")), "/openai/v1/responses");
        assert!(a.needs_request_body(None));
        let out = a
            .request_body(br#"{"model":"gpt-4o","input":"hi"}"#, None)
            .unwrap()
            .unwrap();
        assert_eq!(out, br#"{"model":"prod-4o","input":"hi"}"#);
        assert_eq!(
            a.request_body(br#"{"model":"other","input":"hi"}"#, None)
                .unwrap(),
            None
        );
    }

    #[test]
    fn usage_of_a_json_answer_and_of_a_stream() {
        let mut t = openai();
        let plan = t.response_headers(200, Some("application/json"), false, 0);
        assert_eq!(plan.mode, ResponseMode::Watch);
        let event: serde_json::Value = serde_json::from_str(COMPLETED).unwrap();
        let answer = event["response"].to_string();
        let (a, b) = answer.as_bytes().split_at(40);
        assert_eq!(t.response_chunk(a, false), None);
        assert_eq!(t.response_chunk(b, true), None);
        let usage = t.usage().unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (14, 50, 64)
        );

        let mut t = openai();
        let plan = t.response_headers(200, Some("text/event-stream"), false, 0);
        assert_eq!(plan.mode, ResponseMode::Stream);
        let stream = format!("event: response.completed\ndata: {COMPLETED}\n\n");
        for byte in stream.as_bytes() {
            assert_eq!(t.response_chunk(&[*byte], false), None);
        }
        assert_eq!(t.response_chunk(b"", true), None);
        assert_eq!(t.usage().map(|u| u.total_tokens), Some(64));
        assert!(!t.stream_failed());
    }

    #[test]
    fn a_cut_stream_gets_an_error_event() {
        let mut t = openai();
        t.response_headers(200, Some("text/event-stream"), false, 0);
        let out = t
            .response_chunk(
                b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\nevent: response.output_text.delta\ndata: {\"type\":\"resp",
                true,
            )
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with(
            "event: error\ndata: {\"code\":\"upstream_stream_truncated\",\"message\":\"upstream stream ended before completion\",\"param\":null,\"sequence_number\":1,\"type\":\"error\"}\n\n"
        ), "{text}");
        assert!(t.stream_failed());
    }

    #[test]
    fn azure_errors_become_openai_errors() {
        let mut a = azure();
        let plan = a.response_headers(429, Some("application/json"), false, 0);
        assert_eq!(plan.mode, ResponseMode::Buffer);
        let out = a.response_body(br#"{"error":{"code":"429","message":"Requests to the Responses_Create Operation have exceeded the rate limit."}}"#);
        let body: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        // OpenAI's errors are OpenAI's already.
        let mut t = openai();
        assert_eq!(
            t.response_headers(400, Some("application/json"), false, 0),
            ResponsePlan::UNTOUCHED
        );
    }
}
