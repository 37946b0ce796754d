//! Per-provider options beyond the schema: how the key is sent, which request fields a server
//! rejects, and the settings of the Azure OpenAI and Vertex AI backends.
//!
//! OpenAI-compatible servers (Mistral, Groq, DeepSeek, Together, vLLM, Ollama, LM Studio) take
//! OpenAI's body but differ in details: local servers want no key at all, and some reject
//! fields OpenAI accepts (e.g. Groq refuses `logprobs` and `n` > 1, DeepSeek's reasoner refuses
//! `logprobs`). `refuse_fields` answers such a field with a 400 naming it before the request
//! leaves; `drop_fields` removes it instead. Dropping only ever happens when configured.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Backend, ProviderKind, ProviderSpec};
use crate::config::ConfigError;

/// `azure` schema, as written.
#[derive(Debug)]
pub struct RawAzure {
    /// The `api-version` query parameter.
    pub api_version: Option<String>,
    /// Model name → deployment name.
    pub deployments: Option<BTreeMap<String, String>>,
}

/// `vertex` schema, as written.
#[derive(Debug)]
pub struct RawVertex {
    /// Google Cloud project id.
    pub project: Option<String>,
    /// Region (`us-central1`, `europe-west4`, `global`).
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawAuth {
    Key,
    None,
}

/// Whether a key is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Auth {
    /// The schema's key header (`Authorization: Bearer`, `api-key`, `x-goog-api-key`, …).
    #[default]
    Key,
    /// No credential at all (local Ollama, vLLM, LM Studio).
    None,
}

/// Compiled options every provider has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderOptions {
    pub auth: Auth,
    pub refuse_fields: Vec<String>,
    pub drop_fields: Vec<String>,
    /// `anthropic` schema: the `anthropic-beta` flags this provider accepts; `None`: every one
    /// (Anthropic's own API). A client's other flags are removed before the request leaves, so
    /// one flag the provider does not know never fails the whole request.
    pub anthropic_betas: Option<Vec<String>>,
}

impl ProviderOptions {
    /// The `anthropic-beta` value to send for the client's `value`: only the flags this
    /// provider accepts (`None`: send no header).
    pub fn accepted_betas(&self, value: &str) -> Option<String> {
        let Some(accepted) = &self.anthropic_betas else {
            return Some(value.to_string());
        };
        let kept: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|flag| accepted.iter().any(|a| a == flag))
            .collect();
        (!kept.is_empty()).then(|| kept.join(","))
    }
}

/// Azure OpenAI: <https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference>.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureBackend {
    pub api_version: String,
    /// Model → deployment; a model without an entry is used as the deployment name.
    pub deployments: BTreeMap<String, String>,
}

impl AzureBackend {
    pub fn deployment<'a>(&'a self, model: &'a str) -> &'a str {
        self.deployments
            .get(model)
            .map(String::as_str)
            .unwrap_or(model)
    }
}

/// Vertex AI: <https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent>.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VertexBackend {
    pub project: String,
    pub region: String,
}

/// The newest GA `api-version` of the Azure OpenAI data plane when this was written.
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// Characters allowed in a path segment llmgw builds from config (project, region, deployment).
fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn field_names(
    list: &Option<Vec<String>>,
    field: &str,
    at: &dyn Fn(&str) -> String,
) -> Result<Vec<String>, ConfigError> {
    let names = list.clone().unwrap_or_default();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() || name == "model" || name == "messages" {
            return Err(ConfigError::new(
                format!("{}[{i}]", at(field)),
                format!("`{name}` cannot be refused or dropped"),
            ));
        }
    }
    Ok(names)
}

/// The options every schema shares (a field of another schema's was refused by
/// [`RawProvider::into_spec`](super::RawProvider::into_spec)).
pub(super) fn compile_options(
    spec: &ProviderSpec,
    at: &dyn Fn(&str) -> String,
) -> Result<ProviderOptions, ConfigError> {
    let (refuse_fields, anthropic_betas) = match &spec.kind {
        ProviderKind::OpenAi { refuse_fields, .. } => (refuse_fields, &None),
        ProviderKind::Anthropic { betas, .. } => (&None, betas),
        _ => (&None, &None),
    };
    for (i, flag) in anthropic_betas.iter().flatten().enumerate() {
        let valid = !flag.is_empty()
            && flag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Err(ConfigError::new(
                format!("{}[{i}]", at("anthropic_betas")),
                format!("`{flag}` is not a beta flag like `prompt-caching-2024-07-31`"),
            ));
        }
    }
    let refuse_fields = field_names(refuse_fields, "refuse_fields", at)?;
    let drop_fields = field_names(&spec.drop_fields, "drop_fields", at)?;
    if let Some(name) = refuse_fields.iter().find(|n| drop_fields.contains(n)) {
        return Err(ConfigError::new(
            at("drop_fields"),
            format!("`{name}` is also in refuse_fields"),
        ));
    }
    Ok(ProviderOptions {
        auth: match spec.auth {
            Some(RawAuth::None) => Auth::None,
            Some(RawAuth::Key) | None => Auth::Key,
        },
        refuse_fields,
        drop_fields,
        anthropic_betas: anthropic_betas.clone(),
    })
}

/// Azure OpenAI's backend.
pub(super) fn compile_azure(
    raw: RawAzure,
    at: &dyn Fn(&str) -> String,
) -> Result<Backend, ConfigError> {
    let api_version = raw
        .api_version
        .unwrap_or_else(|| AZURE_DEFAULT_API_VERSION.to_string());
    if !is_path_segment(&api_version) {
        return Err(ConfigError::new(
            at("api_version"),
            format!("`{api_version}` is not an API version like `2024-10-21`"),
        ));
    }
    let deployments = raw.deployments.unwrap_or_default();
    for (model, deployment) in &deployments {
        if !is_path_segment(deployment) {
            return Err(ConfigError::new(
                format!("{}.{model}", at("deployments")),
                format!("`{deployment}` is not a deployment name (letters, digits, `-_.`)"),
            ));
        }
    }
    Ok(Backend::Azure(AzureBackend {
        api_version,
        deployments,
    }))
}

/// Vertex AI's backend: project and region are required.
pub(super) fn compile_vertex(
    raw: RawVertex,
    at: &dyn Fn(&str) -> String,
) -> Result<Backend, ConfigError> {
    let segment = |field: &str, value: Option<String>| match value {
        Some(v) if is_path_segment(&v) => Ok(v),
        Some(v) => Err(ConfigError::new(
            at(field),
            format!("`{v}` is not a valid {field} (letters, digits, `-_.`)"),
        )),
        None => Err(ConfigError::new(at(field), "required for schema `vertex`")),
    };
    Ok(Backend::Vertex(VertexBackend {
        project: segment("project", raw.project)?,
        region: segment("region", raw.region)?,
    }))
}
