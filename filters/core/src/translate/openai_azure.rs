//! OpenAI Chat Completions and Embeddings to Azure OpenAI.
//!
//! Azure OpenAI speaks OpenAI's bodies and successful answers (JSON and SSE) unchanged
//! (<https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference#chat-completions>,
//! <https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference#embeddings>); the path
//! (`/openai/deployments/{deployment}/{chat/completions|embeddings}?api-version=…`) and the key
//! header (`api-key`, set by the filter) differ. So this translator is the OpenAI passthrough
//! ([`OpenAiOpenAi`]) with Azure's path: a separate type rather than a flag on the passthrough
//! because the path depends on the model (model → deployment from config), which may only be
//! known once the body was read.
//!
//! Errors differ: Azure answers `{"error":{"code","message"}}`, with a numeric `code` for
//! gateway-level errors (`"401"`, `"429"`), `"content_filter"` and an `innererror` for content
//! filtering, and sometimes `param`/`type`
//! (<https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference#error-response>,
//! <https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter>). They are
//! normalized to OpenAI's `{"error":{"message","type","param","code"}}` with the same status;
//! other response headers (`Retry-After` on a 429) pass unchanged.
//!
//! Streams carry Azure's content filter chunks, which OpenAI clients cannot read: they are
//! made OpenAI's chunks on the way ([`super::azure_stream`]).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::azure_stream::AzureStream;
use super::openai_openai::{parse_object, OpenAiOpenAi};
use super::options::AzureBackend;
use super::request_fields;
use super::{unreadable_error, ResponseBody, ResponseMode, ResponsePlan, Translator, Usage};
use crate::error::{ApiError, ErrorType};
use crate::schema::ErrorEnvelope;
use crate::usage_stream::UsageHider;

/// Which Azure OpenAI operation a request is for (the last path segments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ChatCompletions,
    Embeddings,
}

impl Operation {
    fn path(self) -> &'static str {
        match self {
            Operation::ChatCompletions => "chat/completions",
            Operation::Embeddings => "embeddings",
        }
    }
}

#[derive(Debug)]
pub struct OpenAiAzure {
    azure: AzureBackend,
    operation: Operation,
    /// Known at header time when router named the upstream model, else once the body is read.
    path: Option<String>,
    inner: OpenAiOpenAi,
    /// An error status: the body is Azure's error, normalized in `response_body`.
    error_status: Option<u16>,
    /// A streamed answer: its events, and what makes them OpenAI's.
    stream: Option<(crate::sse::Decoder, AzureStream)>,
    /// Usage was forced: the normalised stream's usage-only chunk is dropped.
    hider: Option<UsageHider>,
}

/// Deployment names become a path segment: refuse anything that could change the path.
fn deployment_path(
    azure: &AzureBackend,
    operation: Operation,
    model: &str,
) -> Result<String, ApiError> {
    let deployment = azure.deployment(model);
    let ok = !deployment.is_empty()
        && deployment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(ApiError::invalid_request(format!(
            "`{model}` has no Azure deployment and is not a valid deployment name"
        ))
        .with_param("model"));
    }
    Ok(format!(
        "/openai/deployments/{deployment}/{}?api-version={}",
        operation.path(),
        azure.api_version
    ))
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug, Deserialize)]
struct AzureError<'a> {
    /// A string (`"content_filter"`, `"DeploymentNotFound"`, `"429"`) or, rarely, a number.
    #[serde(default)]
    code: Option<Value>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    param: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    innererror: Option<InnerError>,
}

/// Content filtering details; only the code is carried over (into the message).
#[derive(Debug, Deserialize)]
struct InnerError {
    #[serde(default)]
    code: Option<String>,
}

/// OpenAI's error code for an Azure code that is only the HTTP status (`"429"`); `None` when
/// OpenAI has no code for it.
fn code_for_status(status: u16) -> Option<&'static str> {
    match status {
        401 => Some("invalid_api_key"),
        429 => Some("rate_limit_exceeded"),
        _ => None,
    }
}

/// OpenAI error `type` values Azure passes through from the model service.
fn known_type(kind: &str) -> Option<ErrorType> {
    match kind {
        "invalid_request_error" => Some(ErrorType::InvalidRequestError),
        "authentication_error" => Some(ErrorType::AuthenticationError),
        "permission_error" => Some(ErrorType::PermissionError),
        "not_found_error" => Some(ErrorType::NotFoundError),
        "rate_limit_error" | "requests" | "tokens" => Some(ErrorType::RateLimitError),
        _ => None,
    }
}

/// An Azure OpenAI error answer → OpenAI error with the same status.
pub fn translate_error(status: u16, body: &[u8]) -> ApiError {
    let Ok(ErrorEnvelope { error }) =
        crate::json::from_slice::<ErrorEnvelope<AzureError<'_>>>(body)
    else {
        return unreadable_error(status, status, ErrorType::for_status(status));
    };
    let code = match &error.code {
        Some(Value::String(code)) => Some(code.clone()),
        Some(Value::Number(code)) => Some(code.to_string()),
        _ => None,
    };
    // A code that is the status itself says nothing more than the status.
    let code = match code {
        Some(code) if code.bytes().all(|b| b.is_ascii_digit()) => {
            code_for_status(status).map(str::to_string)
        }
        other => other,
    };
    let kind = match code.as_deref() {
        // A refused prompt is a problem with the request, whatever status it came with.
        Some("content_filter") => ErrorType::InvalidRequestError,
        _ => error
            .kind
            .as_deref()
            .and_then(known_type)
            .unwrap_or_else(|| ErrorType::for_status(status)),
    };
    let mut message = error
        .message
        .map(Cow::into_owned)
        .unwrap_or_else(|| format!("the provider answered HTTP {status}"));
    if let Some(inner) = error.innererror.and_then(|i| i.code) {
        message = format!("{message} ({inner})");
    }
    let mut out = ApiError::new(status, kind, message);
    if let Some(code) = code {
        out = out.with_code(code);
    }
    if let Some(param) = error.param {
        out = out.with_param(param);
    }
    out
}

impl OpenAiAzure {
    pub fn new(
        azure: AzureBackend,
        operation: Operation,
        upstream_model: Option<&str>,
        drop_fields: Vec<String>,
    ) -> Self {
        let path = upstream_model.and_then(|m| deployment_path(&azure, operation, m).ok());
        Self {
            azure,
            operation,
            path,
            inner: OpenAiOpenAi::new(String::new()).with_fields(Vec::new(), drop_fields),
            error_status: None,
            hider: None,
            stream: None,
        }
    }
}

impl Translator for OpenAiAzure {
    fn chat_path(&self, _query: Option<&str>) -> String {
        // The client's query is OpenAI's, not Azure's: the api-version comes from config.
        self.path
            .clone()
            .unwrap_or_else(|| format!("/openai/deployments/-/{}", self.operation.path()))
    }

    fn needs_request_body(&self, upstream_model: Option<&str>) -> bool {
        self.path.is_none() || self.inner.needs_request_body(upstream_model)
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let request = parse_object(body)?;
        let model = request_fields::chosen_model(
            upstream_model,
            request.get("model").and_then(Value::as_str),
        )?;
        self.path = Some(deployment_path(&self.azure, self.operation, model)?);
        self.inner.rewrite(request, upstream_model)
    }

    fn request_path(&self) -> Option<String> {
        self.path.clone()
    }

    fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        encoded: bool,
        created: u64,
    ) -> ResponsePlan {
        if status >= 400 && !encoded {
            // Azure's error shape differs from OpenAI's: read it whole and normalize it.
            self.error_status = Some(status);
            return ResponsePlan {
                mode: ResponseMode::Buffer,
                status: None,
                content_type: Some("application/json"),
            };
        }
        let plan = self
            .inner
            .response_headers(status, content_type, encoded, created);
        if plan.mode == ResponseMode::Stream && self.operation == Operation::ChatCompletions {
            self.stream = Some((crate::sse::Decoder::new(), AzureStream::default()));
        }
        plan
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        match self.error_status {
            Some(status) => ResponseBody {
                status: None,
                body: translate_error(status, body).body(),
            },
            None => self.inner.response_body(body),
        }
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        let Some((decoder, normaliser)) = self.stream.as_mut() else {
            return self.inner.response_chunk(chunk, end_of_stream);
        };
        let mut out = Vec::with_capacity(chunk.len());
        if !self.inner.terminated() {
            for event in decoder.feed(chunk) {
                self.inner.watch(&event);
                normaliser.event(&event, &mut out);
                if self.inner.terminated() {
                    break; // nothing after `[DONE]` or an error frame is forwarded
                }
            }
        }
        if end_of_stream && !self.inner.terminated() {
            self.inner.end_cut_stream(&mut out);
        }
        // The normaliser writes whole events: the hider holds nothing back.
        if let Some(hidden) = self
            .hider
            .as_mut()
            .and_then(|h| h.push(&out, end_of_stream))
        {
            out = hidden;
        }
        Some(out)
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
    }

    fn stream_failed(&self) -> bool {
        self.inner.stream_failed()
    }

    fn dropped(&self) -> &[(&'static str, u64)] {
        self.stream
            .as_ref()
            .map_or(&[], |(_, s)| s.dropped.counts())
    }

    fn hide_usage_chunk(&mut self) {
        self.inner.hide_usage_chunk();
        self.hider = Some(UsageHider::default());
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn azure() -> AzureBackend {
        AzureBackend {
            api_version: "2024-10-21".into(),
            deployments: [("gpt-4o".to_string(), "prod-4o".to_string())].into(),
        }
    }

    #[test]
    fn deployment_from_config_or_model_name() {
        let t = OpenAiAzure::new(
            azure(),
            Operation::ChatCompletions,
            Some("gpt-4o"),
            Vec::new(),
        );
        assert_eq!(
            t.chat_path(Some("x=1")),
            "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
        );
        assert!(!t.needs_request_body(None));
        let mut t = OpenAiAzure::new(azure(), Operation::ChatCompletions, None, Vec::new());
        assert!(t.needs_request_body(None));
        let out = t
            .request_body(br#"{"model":"gpt-4o-mini","messages":[]}"#, None)
            .unwrap();
        assert_eq!(out, None);
        assert_eq!(
            t.request_path().as_deref(),
            Some("/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21")
        );
        let err = t
            .request_body(br#"{"model":"a/../b","messages":[]}"#, None)
            .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("model"));
    }

    #[test]
    fn embeddings_use_the_same_deployment_mapping() {
        let t = OpenAiAzure::new(azure(), Operation::Embeddings, Some("gpt-4o"), Vec::new());
        assert_eq!(
            t.chat_path(None),
            "/openai/deployments/prod-4o/embeddings?api-version=2024-10-21"
        );
    }

    fn error_json(status: u16, body: &str) -> serde_json::Value {
        serde_json::from_slice(&translate_error(status, body.as_bytes()).body()).unwrap()
    }

    #[test]
    fn azure_errors_become_openai_errors() {
        let e = error_json(
            429,
            r#"{"error":{"code":"429","message":"Requests have exceeded token rate limit."}}"#,
        );
        assert_eq!(e["error"]["type"], "rate_limit_error");
        assert_eq!(e["error"]["code"], "rate_limit_exceeded");
        assert_eq!(
            e["error"]["message"],
            "Requests have exceeded token rate limit."
        );
        let e = error_json(
            400,
            r#"{"error":{"message":"The response was filtered","type":null,"param":"prompt",
                "code":"content_filter","status":400,
                "innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{}}}}"#,
        );
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(e["error"]["code"], "content_filter");
        assert_eq!(e["error"]["param"], "prompt");
        assert_eq!(
            e["error"]["message"],
            "The response was filtered (ResponsibleAIPolicyViolation)"
        );
        let e = error_json(
            404,
            r#"{"error":{"code":"DeploymentNotFound","message":"gone"}}"#,
        );
        assert_eq!(e["error"]["type"], "not_found_error");
        assert_eq!(e["error"]["code"], "DeploymentNotFound");
        assert!(e["error"]["param"].is_null());
        let e = error_json(502, "<html>bad gateway</html>");
        assert_eq!(e["error"]["type"], "api_error");
    }

    #[test]
    fn errors_are_buffered_and_keep_their_status() {
        let mut t = OpenAiAzure::new(
            azure(),
            Operation::ChatCompletions,
            Some("gpt-4o"),
            Vec::new(),
        );
        let plan = t.response_headers(429, Some("application/json"), false, 0);
        assert_eq!(plan.mode, ResponseMode::Buffer);
        assert_eq!(plan.status, None);
        let out = t.response_body(br#"{"error":{"code":"429","message":"slow down"}}"#);
        assert_eq!(out.status, None);
        let e: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(e["error"]["type"], "rate_limit_error");
        // A success is still OpenAI's own and passes unread.
        let mut t = OpenAiAzure::new(
            azure(),
            Operation::ChatCompletions,
            Some("gpt-4o"),
            Vec::new(),
        );
        let plan = t.response_headers(200, Some("application/json"), false, 0);
        assert_eq!(plan.mode, ResponseMode::Watch);
    }
}
