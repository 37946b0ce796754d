//! OpenAI Chat Completions to Azure OpenAI.
//!
//! Azure OpenAI speaks OpenAI's body and answers (JSON, SSE and errors) unchanged
//! (<https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference#chat-completions>);
//! only the path (`/openai/deployments/{deployment}/chat/completions?api-version=…`) and the
//! key header (`api-key`, set by the filter) differ. So this translator is the OpenAI
//! passthrough ([`OpenAiOpenAi`]) with Azure's path: a separate type rather than a flag on the
//! passthrough because the path depends on the model (model → deployment from config), which
//! may only be known once the body was read.

use serde_json::{Map, Value};

use super::openai_openai::OpenAiOpenAi;
use super::options::AzureBackend;
use super::{ResponseBody, ResponsePlan, Translator, Usage};
use crate::error::ApiError;

#[derive(Debug)]
pub struct OpenAiAzure {
    azure: AzureBackend,
    /// Known at header time when router named the upstream model, else once the body is read.
    path: Option<String>,
    inner: OpenAiOpenAi,
}

/// Deployment names become a path segment: refuse anything that could change the path.
fn deployment_path(azure: &AzureBackend, model: &str) -> Result<String, ApiError> {
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
        "/openai/deployments/{deployment}/chat/completions?api-version={}",
        azure.api_version
    ))
}

impl OpenAiAzure {
    pub fn new(
        azure: AzureBackend,
        upstream_model: Option<&str>,
        drop_fields: Vec<String>,
    ) -> Self {
        let path = upstream_model.and_then(|m| deployment_path(&azure, m).ok());
        Self {
            azure,
            path,
            inner: OpenAiOpenAi::new(String::new()).with_fields(Vec::new(), drop_fields),
        }
    }
}

impl Translator for OpenAiAzure {
    fn chat_path(&self, _query: Option<&str>) -> String {
        // The client's query is OpenAI's, not Azure's: the api-version comes from config.
        self.path
            .clone()
            .unwrap_or_else(|| "/openai/deployments/-/chat/completions".to_string())
    }

    fn needs_request_body(&self, upstream_model: Option<&str>) -> bool {
        self.path.is_none() || self.inner.needs_request_body(upstream_model)
    }

    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let mut request: Map<String, Value> = serde_json::from_slice(body).map_err(|err| {
            ApiError::invalid_request(format!("the request body is not a JSON object: {err}"))
        })?;
        let model = match upstream_model {
            Some(model) => model.to_string(),
            None => request
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    ApiError::invalid_request("`model` is required").with_param("model")
                })?,
        };
        self.path = Some(deployment_path(&self.azure, &model)?);
        if !self.inner.apply(&mut request, upstream_model)? {
            return Ok(None);
        }
        serde_json::to_vec(&request)
            .map(Some)
            .map_err(|err| ApiError::invalid_request(format!("the request body: {err}")))
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
        self.inner
            .response_headers(status, content_type, encoded, created)
    }

    fn response_body(&mut self, body: &[u8]) -> ResponseBody {
        self.inner.response_body(body)
    }

    fn response_chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        self.inner.response_chunk(chunk, end_of_stream)
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
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
        let t = OpenAiAzure::new(azure(), Some("gpt-4o"), Vec::new());
        assert_eq!(
            t.chat_path(Some("x=1")),
            "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
        );
        assert!(!t.needs_request_body(None));
        let mut t = OpenAiAzure::new(azure(), None, Vec::new());
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
}
