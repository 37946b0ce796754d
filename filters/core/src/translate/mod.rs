//! The translate filter: clients speak OpenAI Chat Completions, each provider its own format.
//!
//! translate runs as an Envoy *upstream* HTTP filter on the provider cluster, so it runs once
//! per try: a fallback try to another provider is translated for the provider it actually goes
//! to. Per try it
//!
//! 1. learns the provider from the endpoint metadata
//!    (`xds.upstream_host_metadata.filter_metadata.llmgw.provider`), else from router's
//!    [`RouterFacts::provider`], else the only configured provider;
//! 2. removes every `x-llmgw-*` header and the client's credentials, and sets the provider's key
//!    (Envoy's `credential_injector` could set a key too, but not per try and per provider of an
//!    aggregate cluster, and older Envoys and Istio proxies lack it);
//! 3. rewrites path and body of `POST /v1/chat/completions` with a per-request [`Translator`]
//!    for the provider pair (`openai_openai`, `openai_anthropic`, …);
//! 4. translates the answer back to OpenAI format (JSON, errors, or SSE chunk by chunk), so the
//!    filters in front of it and the client only ever see OpenAI, and records the token usage.
//!
//! Secrets: provider keys come from the VM's environment at configure time and never appear in
//! logs or `Debug` output ([`Secret`]).

pub mod account_headers;
mod azure_stream;
pub mod completion;
#[cfg(feature = "anthropic")]
pub mod count_tokens;
pub mod dropped;
pub mod embeddings;
mod first_try;
#[cfg(feature = "anthropic")]
pub mod messages_anthropic;
#[cfg(feature = "anthropic")]
pub mod messages_chat;
pub mod model_field;
#[cfg(feature = "anthropic")]
pub mod openai_anthropic;
pub mod openai_azure;
#[cfg(feature = "bedrock")]
pub mod openai_bedrock;
#[cfg(feature = "gemini")]
pub mod openai_gemini;
pub mod openai_openai;
pub mod options;
pub mod reasoning;
pub mod request_fields;
/// Responses in, on backends that do not speak it: only builds that carry such a backend.
#[cfg(any(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
pub mod responses_chat;
pub mod responses_openai;
pub mod telemetry;

/// A golden fixture's text: `fixtures/translate/<pair>/<name>` (a path from the crate root,
/// so every test module below uses this one macro).
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
macro_rules! fixture {
    ($pair:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/translate/",
            $pair,
            "/",
            $name
        ))
    };
}

// The suites below exercise every family; a lean build's tests are `family_tests`.
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod bedrock_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod cache_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod embeddings_tests;
#[cfg(test)]
mod family_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod golden;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod golden_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod messages_chat_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod messages_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod provider_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod reasoning_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod tests;

use std::collections::HashMap;
use std::rc::Rc;

use serde::Deserialize;

use crate::config::{self, ConfigError};
use crate::dialect::{ClientApi, Operation};
use crate::error::{ApiError, ErrorType};
use crate::facts::{self, Fact, RateLimitFacts, RouterFacts, UsageFact};
use crate::filter::{Env, FilterRoot, Flow, HttpFilter};
use crate::headers::{self, HeaderMap};
use crate::host::{self, Host};
use crate::metrics::Metrics;
pub use crate::schema::openai::Usage;
use first_try::FirstTry;
use telemetry::{MetricsConfig, TryTelemetry};

/// Where a try learns its provider: the chosen endpoint's metadata.
pub const PROVIDER_METADATA: [&str; 5] = [
    "xds",
    "upstream_host_metadata",
    "filter_metadata",
    "llmgw",
    "provider",
];

/// Request headers that carry the *client's* credentials (or select the account those belong
/// to: OpenAI answers 401 when `openai-organization` does not match the key); never forwarded
/// to a provider, which gets llmgw's key instead.
const CLIENT_CREDENTIALS: [&str; 5] = [
    "authorization",
    "x-api-key",
    "api-key",
    "openai-organization",
    "openai-project",
];

const EMBEDDINGS: &str = "/v1/embeddings";

// ---------------------------------------------------------------------------------------------
// Config

/// Stage one: the JSON as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    providers: Vec<RawProvider>,
    #[serde(default)]
    metrics: MetricsConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    schema: Schema,
    /// Required by every schema but `bedrock` (AWS credentials instead), and absent with
    /// `auth: "none"` (see [`options`]).
    #[serde(default)]
    key_env: Option<String>,
    #[serde(default)]
    base_path: Option<String>,
    #[serde(default)]
    anthropic_version: Option<String>,
    #[serde(default)]
    default_max_tokens: Option<u32>,
    #[serde(default)]
    anthropic_betas: Option<Vec<String>>,
    // Options (see [`options`]), kept as written until compiled.
    #[serde(default)]
    auth: Option<options::RawAuth>,
    #[serde(default)]
    refuse_fields: Option<Vec<String>>,
    #[serde(default)]
    drop_fields: Option<Vec<String>>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    deployments: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    region: Option<String>,
    // `bedrock` schema (see `openai_bedrock::compile_endpoint`); `region` above is shared.
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    access_key_env: Option<String>,
    #[serde(default)]
    secret_key_env: Option<String>,
    #[serde(default)]
    session_token_env: Option<String>,
}

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Schema {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Azure OpenAI: OpenAI's body, deployment paths and the `api-key` header.
    #[serde(rename = "azure")]
    Azure,
    /// Google Gemini API (AI Studio), `x-goog-api-key`.
    #[serde(rename = "gemini")]
    Gemini,
    /// Gemini on Vertex AI: the same body, project paths and an OAuth bearer token.
    #[serde(rename = "vertex")]
    Vertex,
    /// Amazon Bedrock's Converse API, signed with AWS SigV4.
    #[serde(rename = "bedrock")]
    Bedrock,
}

impl Schema {
    fn name(self) -> &'static str {
        match self {
            Schema::OpenAi => "openai",
            Schema::Anthropic => "anthropic",
            Schema::Azure => "azure",
            Schema::Gemini => "gemini",
            Schema::Vertex => "vertex",
            Schema::Bedrock => "bedrock",
        }
    }

    /// Every schema (a test checks the list against the config's spelling).
    pub const ALL: [Schema; 6] = [
        Schema::OpenAi,
        Schema::Anthropic,
        Schema::Azure,
        Schema::Gemini,
        Schema::Vertex,
        Schema::Bedrock,
    ];

    /// The schema a config names `name` (`"anthropic"`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|schema| schema.name() == name)
    }

    /// The family whose translators speak this schema.
    pub const fn family(self) -> Family {
        match self {
            Schema::OpenAi | Schema::Azure => Family::OpenAi,
            Schema::Anthropic => Family::Anthropic,
            Schema::Gemini | Schema::Vertex => Family::Gemini,
            Schema::Bedrock => Family::Bedrock,
        }
    }
}

/// A provider family: the translators one Cargo feature of llmgw-core (and llmgw-translate)
/// brings. Envoy builds carry only the extensions they need; translate builds likewise carry
/// only the families a deployment's clusters speak (issue #6: each module ≤ 400 KB), and
/// `make build` ships two: translate.wasm (every family) and translate-openai.wasm (the OpenAI
/// wire family alone). [`Schema`] stays whole in every build, so a config or an endpoint that
/// names a family the build lacks is refused by what it is, never read as an unknown schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenAI, Azure OpenAI and OpenAI-compatible servers: always built.
    OpenAi,
    /// Anthropic Messages (feature `anthropic`).
    Anthropic,
    /// Gemini API and Vertex AI (feature `gemini`).
    Gemini,
    /// Amazon Bedrock with SigV4 and the AWS event stream (feature `bedrock`).
    Bedrock,
}

impl Family {
    /// Whether this build carries the family's translators.
    pub const fn is_built(self) -> bool {
        match self {
            Family::OpenAi => true,
            Family::Anthropic => cfg!(feature = "anthropic"),
            Family::Gemini => cfg!(feature = "gemini"),
            Family::Bedrock => cfg!(feature = "bedrock"),
        }
    }

    /// The Cargo feature that builds it (`None`: always built).
    pub const fn feature(self) -> Option<&'static str> {
        match self {
            Family::OpenAi => None,
            Family::Anthropic => Some("anthropic"),
            Family::Gemini => Some("gemini"),
            Family::Bedrock => Some("bedrock"),
        }
    }
}

/// Whether this build lacks a family (it is not translate.wasm).
const LACKS_A_FAMILY: bool = !cfg!(all(
    feature = "anthropic",
    feature = "gemini",
    feature = "bedrock"
));

/// The module that carries every family.
pub const FULL_MODULE: &str = "translate.wasm";
/// The module with the OpenAI wire family alone.
pub const OPENAI_MODULE: &str = "translate-openai.wasm";

/// Why `schema` cannot be served by this build (`None`: it can). Names the schema, this build
/// and the module to load instead: "`anthropic` is not in this build of translate
/// (translate-openai.wasm); load translate.wasm".
pub fn not_built(schema: Schema) -> Option<String> {
    if !LACKS_A_FAMILY {
        return None; // (the full build links none of what follows)
    }
    let family = schema.family();
    let feature = family.feature().filter(|_| !family.is_built())?;
    let openai_only = !cfg!(any(
        feature = "anthropic",
        feature = "gemini",
        feature = "bedrock"
    ));
    let build = if openai_only {
        OPENAI_MODULE.to_string()
    } else {
        format!("built without Cargo feature `{feature}`")
    };
    Some(format!(
        "`{}` is not in this build of translate ({build}); load {FULL_MODULE}",
        schema.name()
    ))
}

/// The 500 a try gets when its provider speaks a schema this build lacks (a config naming it is
/// refused, so this is an endpoint or router naming a provider translate was not given).
fn not_built_error(provider: &str, why: &str) -> ApiError {
    ApiError::new(
        500,
        ErrorType::ApiError,
        format!("llmgw translate: provider `{provider}`: {why}"),
    )
    .with_code("provider_not_in_build")
}

/// Compiled settings of a family this build lacks: no value exists, so no backend of it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotBuilt {}

#[cfg(feature = "bedrock")]
type BedrockSettings = Rc<openai_bedrock::BedrockEndpoint>;
#[cfg(not(feature = "bedrock"))]
type BedrockSettings = NotBuilt;

/// A secret string (a provider key). `Debug` prints `***`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Stage two: a provider's compiled settings, by schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// OpenAI and every OpenAI-compatible API (Groq, Together, vLLM, …).
    OpenAi {
        /// Replaces the client's `/v1` prefix, without a trailing slash (`/v1`, `/openai/v1`).
        base_path: String,
    },
    Anthropic {
        /// The `anthropic-version` header (<https://docs.anthropic.com/en/api/versioning>).
        version: String,
        /// Anthropic requires `max_tokens`; OpenAI does not.
        default_max_tokens: u32,
    },
    Azure(options::AzureBackend),
    Gemini,
    Vertex(options::VertexBackend),
    /// Amazon Bedrock runtime (Converse, and InvokeModel for embeddings).
    Bedrock(BedrockSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    /// Empty when the provider takes no key (`auth: "none"`).
    pub key: Secret,
    pub backend: Backend,
    /// Auth style and request fields to refuse or drop.
    pub options: options::ProviderOptions,
}

impl Provider {
    /// The schema of the provider's backend.
    pub fn schema(&self) -> Schema {
        match &self.backend {
            Backend::OpenAi { .. } => Schema::OpenAi,
            Backend::Anthropic { .. } => Schema::Anthropic,
            Backend::Azure(_) => Schema::Azure,
            Backend::Gemini => Schema::Gemini,
            Backend::Vertex(_) => Schema::Vertex,
            Backend::Bedrock(_) => Schema::Bedrock,
        }
    }

    /// This build cannot translate for the provider: its schema's family is not built. `compile`
    /// refuses such a provider, so only a backend made some other way gets here. (Bedrock's
    /// backend cannot even be made without its family: [`NotBuilt`].)
    #[cfg(not(all(feature = "anthropic", feature = "gemini")))]
    fn not_built(&self) -> ApiError {
        let why = not_built(self.schema()).unwrap_or_default();
        not_built_error(&self.name, &why)
    }

    /// The translator for `POST /v1/chat/completions`. The families this build lacks have no
    /// translator (Cargo features, [`Family`]): their arms answer with [`not_built_error`].
    fn translator(&self, upstream_model: Option<&str>) -> Result<Box<dyn Translator>, ApiError> {
        let drop = self.options.drop_fields.clone();
        Ok(match &self.backend {
            Backend::OpenAi { base_path } => Box::new(
                openai_openai::OpenAiOpenAi::new(base_path.clone())
                    .with_fields(self.options.refuse_fields.clone(), drop),
            ),
            #[cfg(feature = "anthropic")]
            Backend::Anthropic {
                default_max_tokens, ..
            } => Box::new(
                openai_anthropic::OpenAiAnthropic::new(*default_max_tokens).with_drop_fields(drop),
            ),
            Backend::Azure(azure) => Box::new(openai_azure::OpenAiAzure::new(
                azure.clone(),
                openai_azure::Operation::ChatCompletions,
                upstream_model,
                drop,
            )),
            #[cfg(feature = "gemini")]
            Backend::Gemini => Box::new(openai_gemini::OpenAiGemini::new(
                openai_gemini::Endpoint::AiStudio,
                drop,
            )),
            #[cfg(feature = "gemini")]
            Backend::Vertex(vertex) => Box::new(openai_gemini::OpenAiGemini::new(
                openai_gemini::Endpoint::Vertex(vertex.clone()),
                drop,
            )),
            #[cfg(feature = "bedrock")]
            Backend::Bedrock(endpoint) => {
                Box::new(openai_bedrock::OpenAiBedrock::new(Rc::clone(endpoint)))
            }
            #[cfg(not(feature = "anthropic"))]
            Backend::Anthropic { .. } => return Err(self.not_built()),
            #[cfg(not(feature = "gemini"))]
            Backend::Gemini | Backend::Vertex(_) => return Err(self.not_built()),
            #[cfg(not(feature = "bedrock"))]
            Backend::Bedrock(not_built) => match *not_built {},
        })
    }

    /// The translator for an Anthropic Messages client (`POST /v1/messages`, `…/count_tokens`):
    /// a passthrough to Anthropic, the Messages ↔ Chat adapter around the Chat translator
    /// elsewhere. The Messages dialect comes with the Anthropic family (feature `anthropic`),
    /// so a build without it (translate-openai.wasm) refuses it.
    fn messages_translator(
        &self,
        operation: Operation,
        upstream_model: Option<&str>,
    ) -> Result<Box<dyn Translator>, ApiError> {
        match &self.backend {
            #[cfg(feature = "anthropic")]
            Backend::Anthropic { .. } => Ok(Box::new(messages_anthropic::MessagesAnthropic::new(
                operation,
            ))),
            // (count_tokens elsewhere is answered by the filter itself: `count_tokens`.)
            #[cfg(feature = "anthropic")]
            _ => {
                let adapter = messages_chat::MessagesChat::new(self.translator(upstream_model)?);
                // The Chat translators that parse the body read `cache_control`; the OpenAI
                // passthroughs would send it on.
                Ok(Box::new(match &self.backend {
                    Backend::OpenAi { .. } | Backend::Azure(_) => adapter,
                    _ => adapter.with_cache_hints(),
                }))
            }
            #[cfg(not(feature = "anthropic"))]
            Backend::Anthropic { .. } => Err(self.not_built()),
            #[cfg(not(feature = "anthropic"))]
            _ => {
                let _ = upstream_model;
                Err(ApiError::new(
                    404,
                    ErrorType::NotFoundError,
                    format!(
                        "`{}` needs the Anthropic family, which is not in this build of \
                         translate ({OPENAI_MODULE}); load {FULL_MODULE}",
                        dialect_path(operation)
                    ),
                )
                .with_code("dialect_not_in_build"))
            }
        }
    }

    /// The translator for an OpenAI Responses client (`POST /v1/responses`): a passthrough to
    /// OpenAI and Azure OpenAI, which speak it ([`responses_openai`]); everywhere else the
    /// Responses ↔ Chat adapter ([`responses_chat`]) around the backend's Chat translator.
    fn responses_translator(
        &self,
        upstream_model: Option<&str>,
    ) -> Result<Box<dyn Translator>, ApiError> {
        use responses_openai::{ResponsesOpenAi, Target};
        match &self.backend {
            Backend::OpenAi { base_path } => Ok(Box::new(ResponsesOpenAi::new(Target::OpenAi {
                base_path: base_path.clone(),
            }))),
            Backend::Azure(azure) => {
                Ok(Box::new(ResponsesOpenAi::new(Target::Azure(azure.clone()))))
            }
            Backend::Anthropic { .. }
            | Backend::Gemini
            | Backend::Vertex(_)
            | Backend::Bedrock(_) => {
                let inner = self.translator(upstream_model)?;
                #[cfg(any(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
                return Ok(Box::new(responses_chat::ResponsesChat::new(
                    inner, &self.name,
                )));
                // (A build without these families has no such backend: `translator` refused.)
                #[cfg(not(any(feature = "anthropic", feature = "gemini", feature = "bedrock")))]
                {
                    drop(inner);
                    Err(ApiError::new(
                        500,
                        ErrorType::ApiError,
                        "no Responses adapter in this build",
                    ))
                }
            }
        }
    }

    /// The translator for `POST /v1/embeddings`, where the provider has an embeddings API
    /// (`Ok(None)`: it has none).
    fn embeddings_translator(
        &self,
        upstream_model: Option<&str>,
    ) -> Result<Option<Box<dyn Translator>>, ApiError> {
        Ok(match &self.backend {
            Backend::OpenAi { base_path } => Some(Box::new(embeddings::OpenAiEmbeddings::new(
                base_path.clone(),
            ))),
            #[cfg(feature = "bedrock")]
            Backend::Bedrock(endpoint) => Some(Box::new(embeddings::BedrockEmbeddings::new(
                Rc::clone(endpoint),
            ))),
            Backend::Azure(azure) => Some(Box::new(openai_azure::OpenAiAzure::new(
                azure.clone(),
                openai_azure::Operation::Embeddings,
                upstream_model,
                self.options.drop_fields.clone(),
            ))),
            #[cfg(feature = "gemini")]
            Backend::Gemini => Some(Box::new(embeddings::GeminiEmbeddings::new(
                openai_gemini::Endpoint::AiStudio,
            ))),
            #[cfg(feature = "gemini")]
            Backend::Vertex(vertex) => Some(Box::new(embeddings::GeminiEmbeddings::new(
                openai_gemini::Endpoint::Vertex(vertex.clone()),
            ))),
            // Anthropic has no embeddings API: refused with a 404.
            #[cfg(feature = "anthropic")]
            Backend::Anthropic { .. } => None,
            #[cfg(not(feature = "anthropic"))]
            Backend::Anthropic { .. } => return Err(self.not_built()),
            #[cfg(not(feature = "gemini"))]
            Backend::Gemini | Backend::Vertex(_) => return Err(self.not_built()),
            #[cfg(not(feature = "bedrock"))]
            Backend::Bedrock(not_built) => match *not_built {},
        })
    }
}

/// The client path of a Messages operation, for messages.
#[cfg(not(feature = "anthropic"))]
fn dialect_path(operation: Operation) -> &'static str {
    match operation {
        Operation::Create => crate::dialect::MESSAGES,
        Operation::CountTokens => crate::dialect::MESSAGES_COUNT_TOKENS,
    }
}

#[cfg(feature = "bedrock")]
fn bedrock_backend(
    p: &RawProvider,
    env: &dyn Env,
    at: &dyn Fn(&str) -> String,
) -> Result<Backend, ConfigError> {
    Ok(Backend::Bedrock(Rc::new(openai_bedrock::compile_endpoint(
        p, env, at,
    )?)))
}

/// Not reached: `compile` refuses the schema of a family this build lacks first.
#[cfg(not(feature = "bedrock"))]
fn bedrock_backend(
    _: &RawProvider,
    _: &dyn Env,
    at: &dyn Fn(&str) -> String,
) -> Result<Backend, ConfigError> {
    let why = not_built(Schema::Bedrock).unwrap_or_default();
    Err(ConfigError::new(at("schema"), why))
}

fn compile(raw: RawConfig, env: &dyn Env) -> Result<Vec<Provider>, ConfigError> {
    if raw.providers.is_empty() {
        return Err(ConfigError::new(
            "providers",
            "at least one provider is required",
        ));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (i, p) in raw.providers.into_iter().enumerate() {
        let at = |field: &str| format!("providers[{i}].{field}");
        if p.name.trim().is_empty() {
            return Err(ConfigError::new(at("name"), "must not be empty"));
        }
        if let Some(first) = seen.insert(p.name.clone(), i) {
            return Err(ConfigError::new(
                at("name"),
                format!(
                    "duplicate provider name `{}` (also providers[{first}].name)",
                    p.name
                ),
            ));
        }
        // Before any other field: a schema this build lacks is what needs fixing.
        if let Some(why) = not_built(p.schema) {
            return Err(ConfigError::new(at("schema"), why));
        }
        let more = options::RawOptions {
            auth: p.auth,
            refuse_fields: p.refuse_fields.clone(),
            drop_fields: p.drop_fields.clone(),
            api_version: p.api_version.clone(),
            deployments: p.deployments.clone(),
            project: p.project.clone(),
            region: p.region.clone(),
            anthropic_betas: p.anthropic_betas.clone(),
        };
        let provider_options = options::compile_options(&more, p.schema, &at)?;
        let key = match (&p.key_env, provider_options.auth) {
            // Bedrock has no bearer key: it signs with AWS credentials (its own fields).
            (None, _) if p.schema == Schema::Bedrock => Secret::new(""),
            (Some(_), _) if p.schema == Schema::Bedrock => {
                return Err(ConfigError::new(
                    at("key_env"),
                    "not used by schema `bedrock`, which signs with AWS credentials \
                     (access_key_env, secret_key_env, session_token_env)",
                ))
            }
            (None, options::Auth::None) => Secret::new(""),
            (Some(_), options::Auth::None) => {
                return Err(ConfigError::new(
                    at("key_env"),
                    "must be absent with `auth: \"none\"` (no key is sent)",
                ))
            }
            (None, options::Auth::Key) => {
                return Err(ConfigError::new(
                    at("key_env"),
                    "required (or `auth: \"none\"` for a server without keys)",
                ))
            }
            (Some(key_env), options::Auth::Key) => {
                if key_env.is_empty() {
                    return Err(ConfigError::new(at("key_env"), "must not be empty"));
                }
                match env.var(key_env) {
                    Some(key) if !key.trim().is_empty() => Secret::new(key.trim()),
                    _ => {
                        return Err(ConfigError::new(
                            at("key_env"),
                            format!("environment variable {key_env} is not set or empty"),
                        ))
                    }
                }
            }
        };
        let only_for = |field: &str, schema: Schema| {
            ConfigError::new(
                at(field),
                format!(
                    "only valid for schema `{}`, this provider's schema is `{}`",
                    schema.name(),
                    p.schema.name()
                ),
            )
        };
        if p.schema != Schema::Bedrock {
            let aws_fields = [
                // Vertex has a region of its own (see `options`).
                ("region", p.region.is_some() && p.schema != Schema::Vertex),
                ("host", p.host.is_some()),
                ("access_key_env", p.access_key_env.is_some()),
                ("secret_key_env", p.secret_key_env.is_some()),
                ("session_token_env", p.session_token_env.is_some()),
            ];
            if let Some((field, _)) = aws_fields.iter().find(|(_, set)| *set) {
                return Err(only_for(field, Schema::Bedrock));
            }
        }
        let backend = match p.schema {
            Schema::OpenAi => {
                if p.anthropic_version.is_some() {
                    return Err(only_for("anthropic_version", Schema::Anthropic));
                }
                if p.default_max_tokens.is_some() {
                    return Err(only_for("default_max_tokens", Schema::Anthropic));
                }
                let base_path = p.base_path.unwrap_or_else(|| "/v1".to_string());
                if !base_path.starts_with('/') || base_path.contains(['?', '#']) {
                    return Err(ConfigError::new(
                        at("base_path"),
                        format!("`{base_path}` must be a path starting with `/`, without query"),
                    ));
                }
                Backend::OpenAi {
                    base_path: base_path.trim_end_matches('/').to_string(),
                }
            }
            Schema::Anthropic => {
                if p.base_path.is_some() {
                    return Err(only_for("base_path", Schema::OpenAi));
                }
                let version = p
                    .anthropic_version
                    .unwrap_or_else(|| "2023-06-01".to_string());
                if version.trim().is_empty() {
                    return Err(ConfigError::new(
                        at("anthropic_version"),
                        "must not be empty",
                    ));
                }
                let default_max_tokens = p.default_max_tokens.unwrap_or(4096);
                if default_max_tokens == 0 {
                    return Err(ConfigError::new(
                        at("default_max_tokens"),
                        "must be at least 1",
                    ));
                }
                Backend::Anthropic {
                    version,
                    default_max_tokens,
                }
            }
            Schema::Azure | Schema::Gemini | Schema::Vertex => {
                for (field, set) in [
                    ("base_path", p.base_path.is_some()),
                    ("anthropic_version", p.anthropic_version.is_some()),
                    ("default_max_tokens", p.default_max_tokens.is_some()),
                ] {
                    if set {
                        return Err(ConfigError::new(
                            at(field),
                            format!("not valid for schema `{}`", p.schema.name()),
                        ));
                    }
                }
                options::compile_backend(&more, p.schema, &at)?
            }
            Schema::Bedrock => {
                if p.base_path.is_some() {
                    return Err(only_for("base_path", Schema::OpenAi));
                }
                if p.anthropic_version.is_some() {
                    return Err(only_for("anthropic_version", Schema::Anthropic));
                }
                if p.default_max_tokens.is_some() {
                    return Err(only_for("default_max_tokens", Schema::Anthropic));
                }
                bedrock_backend(&p, env, &at)?
            }
        };
        providers.push(Provider {
            name: p.name,
            key,
            backend,
            options: provider_options,
        });
    }
    Ok(providers)
}

// ---------------------------------------------------------------------------------------------
// The translator trait

/// How the filter treats a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// Let it through unchanged and unread.
    Untouched,
    /// Wait for the whole body, translate it once (non-streamed answers and errors).
    Buffer,
    /// Translate (or watch) chunk by chunk as it arrives; never buffer the stream.
    Stream,
    /// Pass the body unchanged (its length too) while the translator reads it, e.g. for usage.
    Watch,
}

/// A translator's decision on the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePlan {
    pub mode: ResponseMode,
    /// Replace `:status` (e.g. Anthropic's 529 becomes 503).
    pub status: Option<u16>,
    /// Replace `content-type`.
    pub content_type: Option<&'static str>,
}

impl ResponsePlan {
    pub const UNTOUCHED: Self = Self {
        mode: ResponseMode::Untouched,
        status: None,
        content_type: None,
    };
}

/// A translated whole body, and the status it goes with when that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBody {
    pub status: Option<u16>,
    pub body: Vec<u8>,
}

/// How a translator that rewrites whole answers and errors plans the response: a 2xx the
/// provider streams (`stream`: its streaming media type, not content-encoded) is translated
/// chunk by chunk into SSE; other 2xx answers and every error are buffered and rewritten as
/// JSON, errors with `error_status` when the provider's status maps to another; anything else
/// (1xx, 3xx) passes untouched.
pub fn buffer_plan(status: u16, stream: bool, error_status: u16) -> ResponsePlan {
    let ok = (200..300).contains(&status);
    if ok && stream {
        ResponsePlan {
            mode: ResponseMode::Stream,
            status: None,
            content_type: Some("text/event-stream"),
        }
    } else if ok || status >= 400 {
        ResponsePlan {
            mode: ResponseMode::Buffer,
            status: (status >= 400 && error_status != status).then_some(error_status),
            content_type: Some("application/json"),
        }
    } else {
        ResponsePlan::UNTOUCHED
    }
}

/// What turns a provider's 2xx answer into the OpenAI body, for [`buffered_answer`].
pub type Translate<'a> = dyn FnMut(&[u8]) -> Result<Vec<u8>, ApiError> + 'a;

/// The whole answer [`buffer_plan`] buffered: for an error `status`, the provider's error as
/// `error` normalizes it (a new status only where it differs from `error_status`, which the
/// plan already set); for a 2xx, what `translate` makes of it, or the 502 that replaces an
/// answer llmgw cannot read. (`dyn`: one copy of this serves every translator.)
pub fn buffered_answer(
    status: u16,
    error_status: u16,
    body: &[u8],
    error: &dyn Fn(&[u8]) -> ApiError,
    translate: &mut Translate<'_>,
) -> ResponseBody {
    let error = if status >= 400 {
        let error = error(body);
        if error.status == error_status {
            return ResponseBody {
                status: None,
                body: error.body(),
            };
        }
        error
    } else {
        match translate(body) {
            Ok(body) => return ResponseBody { status: None, body },
            Err(error) => error,
        }
    };
    ResponseBody {
        status: Some(error.status),
        body: error.body(),
    }
}

/// A 2xx answer llmgw cannot read (`what` it is not) is not passed on as if it were an answer.
pub fn unreadable_answer(what: &str) -> ApiError {
    ApiError::new(
        502,
        ErrorType::ApiError,
        format!("the provider answered something unreadable: {what}"),
    )
    .with_code("upstream_unreadable")
}

/// A provider's error answer (HTTP `status`) whose body llmgw cannot read: still an OpenAI
/// error, of `kind`, sent with `client_status`.
pub fn unreadable_error(status: u16, client_status: u16, kind: ErrorType) -> ApiError {
    ApiError::new(
        client_status,
        kind,
        format!("the provider answered HTTP {status} with an unreadable error body"),
    )
}

/// A provider's 2xx answer read as `T`; one llmgw cannot read (`what` it then is, e.g. "not an
/// Anthropic message") is logged and becomes the 502 of [`unreadable_answer`].
pub fn read_answer<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| {
        log::warn!("llmgw.translate: unreadable answer, {what}: {err}");
        unreadable_answer(what)
    })
}

/// What a translator made of a 2xx answer: the OpenAI body, with its usage kept in `usage`. An
/// answer it could not re-encode (`what` it then is) is the 502 of [`unreadable_answer`].
pub fn with_usage(
    translated: Result<(Vec<u8>, Usage), serde_json::Error>,
    usage: &mut Option<Usage>,
    what: &str,
) -> Result<Vec<u8>, ApiError> {
    let (body, recorded) = translated.map_err(|_| unreadable_answer(what))?;
    *usage = Some(recorded);
    Ok(body)
}

/// One request's translation between the client's OpenAI format and one provider's format.
/// A new translator is made per try, so it keeps the per-response state (stream ids, the SSE
/// decoder's partial frames, usage).
pub trait Translator {
    /// The provider path for a chat completions request (`query` is the client's, if any).
    fn chat_path(&self, query: Option<&str>) -> String;
    /// Whether [`Translator::request_body`] needs the body (reading it costs a copy). Every
    /// translator that rewrites the body does; passthroughs say when they can skip it.
    fn needs_request_body(&self, _upstream_model: Option<&str>) -> bool {
        true
    }
    /// The whole request body in, the provider's body out (`None`: send it unchanged).
    fn request_body(
        &mut self,
        body: &[u8],
        upstream_model: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError>;
    /// Decide on the response from its status and headers. `created` is the Unix time (s)
    /// stamped on translated answers.
    fn response_headers(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        encoded: bool,
        created: u64,
    ) -> ResponsePlan;
    /// The whole response body in ([`ResponseMode::Buffer`]), the OpenAI body out.
    fn response_body(&mut self, body: &[u8]) -> ResponseBody;
    /// One piece of a streamed response in ([`ResponseMode::Stream`]), what replaces it out
    /// (`None`: leave the piece as it is). Translators that only buffer never get one.
    fn response_chunk(&mut self, _chunk: &[u8], _end_of_stream: bool) -> Option<Vec<u8>> {
        None
    }
    /// Token usage, once the provider reported it.
    fn usage(&self) -> Option<Usage>;
    /// llmgw forced `stream_options.include_usage` (to charge tokens; the client did not ask):
    /// keep reading the usage, but send the client no usage-only chunk. Called after
    /// [`Translator::request_body`].
    fn hide_usage_chunk(&mut self) {}
    /// Request headers to set once the rewritten body is final, called with that body (only
    /// when [`Translator::request_body`] rewrote it): the real `:path` and a signature that
    /// covers the body, for providers that sign requests (Bedrock, SigV4).
    fn finish_request(&mut self, _body: &[u8], _now_ms: u64) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Response headers the translator reads (e.g. AWS's `x-amzn-errortype`); each present one
    /// is handed to [`Translator::note_response_header`] before [`Translator::response_headers`].
    fn response_headers_read(&self) -> &'static [&'static str] {
        &[]
    }
    fn note_response_header(&mut self, _name: &str, _value: &str) {}
    /// A streamed answer ended with an error frame (the provider's, or a cut stream's).
    fn stream_failed(&self) -> bool {
        false
    }
    /// What the provider sent that had no place in the OpenAI answer, by kind and count
    /// ([`dropped`]).
    fn dropped(&self) -> &[(&'static str, u64)] {
        &[]
    }
    /// The provider path once the body was read, when it depends on the body (Gemini's model
    /// and stream method, Azure's deployment); `None` keeps [`Translator::chat_path`]'s.
    fn request_path(&self) -> Option<String> {
        None
    }
}

/// Is `content_type` of this media type (`text/event-stream; charset=utf-8` is
/// `text/event-stream`)? Media types are case-insensitive (RFC 9110 §8.3.1).
pub fn has_media_type(content_type: Option<&str>, media_type: &str) -> bool {
    content_type.is_some_and(|ct| {
        ct.trim_start()
            .get(..media_type.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(media_type))
    })
}

/// The SSE frame OpenAI clients raise on: `data: {"error":{…}}`. The OpenAI Python SDK turns a
/// data frame with an `error` key into an `APIError`.
pub fn stream_error_frame(out: &mut Vec<u8>, error: &ApiError) {
    crate::sse::write_data(out, &error.body());
}

/// The frame appended when the provider's stream ends before its terminal event.
pub fn truncated_stream_error() -> ApiError {
    ApiError::new(
        502,
        ErrorType::ApiError,
        "upstream stream ended before completion",
    )
    .with_code("upstream_stream_truncated")
}

// ---------------------------------------------------------------------------------------------
// The filter

/// The translate filter's compiled configuration.
#[derive(Debug)]
pub struct TranslateRoot {
    providers: Rc<[Provider]>,
    metrics_config: MetricsConfig,
    metrics: Metrics,
}

impl TranslateRoot {
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }
}

impl FilterRoot for TranslateRoot {
    type Filter = TranslateFilter;
    const NAME: &'static str = "llmgw.translate";

    fn configure(json: &[u8], env: &dyn Env) -> Result<Self, ConfigError> {
        let raw: RawConfig = config::parse(json)?;
        let metrics_config = raw.metrics;
        let providers = compile(raw, env)?;
        Ok(Self {
            providers: providers.into(),
            metrics_config,
            metrics: Metrics::default(),
        })
    }

    fn new_filter(&self) -> TranslateFilter {
        TranslateFilter {
            providers: Rc::clone(&self.providers),
            provider: None,
            upstream_model: None,
            translator: None,
            chat: false,
            replied: false,
            mode: ResponseMode::Untouched,
            force_usage: false,
            count_tokens: false,
            api: ClientApi::ChatCompletions,
            metrics_config: self.metrics_config,
            metrics: self.metrics.clone(),
            telemetry: TryTelemetry::default(),
        }
    }
}

/// One try through the translate filter.
pub struct TranslateFilter {
    providers: Rc<[Provider]>,
    provider: Option<usize>,
    upstream_model: Option<String>,
    /// Set for `POST /v1/chat/completions` only; other paths pass through unread.
    translator: Option<Box<dyn Translator>>,
    chat: bool,
    /// A local reply was sent; the remaining callbacks do nothing.
    replied: bool,
    mode: ResponseMode,
    /// ratelimit forced the stream's usage ([`RateLimitFacts::force_usage`]): ask the
    /// provider for it though the client did not (ratelimit charges it, then hides it).
    force_usage: bool,
    /// A Messages `count_tokens` this try answers itself with an estimate.
    count_tokens: bool,
    /// The client's dialect: local answers are rendered in it.
    api: ClientApi,
    metrics_config: MetricsConfig,
    metrics: Metrics,
    telemetry: TryTelemetry,
}

impl TranslateFilter {
    /// The provider serving this try, once the request headers were seen.
    pub fn provider(&self) -> Option<&str> {
        self.provider
            .and_then(|i| self.providers.get(i))
            .map(|p| p.name.as_str())
    }

    /// Token usage of this try in OpenAI terms, once the provider reported it (for a streamed
    /// answer: after its final usage event). `None` for responses translate does not read
    /// (openai-schema non-streamed answers pass through unread).
    pub fn usage(&self) -> Option<Usage> {
        self.translator.as_ref().and_then(|t| t.usage())
    }

    /// `count_tokens` on a backend without it: the estimate, answered here. It spends no
    /// tokens, which the usage handed on says.
    #[cfg(feature = "anthropic")]
    fn count_tokens_locally(&mut self, host: &mut dyn Host, size: usize) -> Flow {
        match count_tokens::estimate_input_tokens(&host.request_body(size)) {
            Ok(tokens) => {
                self.replied = true;
                UsageFact::Reported(Usage::default()).publish(host);
                let body = count_tokens::answer(tokens);
                host.send_response(200, &[("content-type", "application/json")], &body);
                Flow::Pause
            }
            Err(error) => self.reply(host, &error),
        }
    }

    #[cfg(not(feature = "anthropic"))]
    fn count_tokens_locally(&mut self, _host: &mut dyn Host, _size: usize) -> Flow {
        Flow::Continue // not reached: the Messages dialect is not in this build
    }

    fn reply(&mut self, host: &mut dyn Host, error: &ApiError) -> Flow {
        self.replied = true;
        self.telemetry.replied();
        host::send_error_in(host, self.api, error);
        Flow::Pause
    }

    /// Must this try read (and perhaps rewrite) the request body? Not when the translator
    /// sends it as it came: no field policy, no forced usage, and the model the provider is
    /// asked for is the one the body names. `requested` is router's
    /// [`RouterFacts::requested_model`], the body's `model` as sent (every try re-sends the
    /// client's body); without router, the body is read and compared.
    fn needs_body(&self, translator: &dyn Translator, requested: Option<&str>) -> bool {
        if self.force_usage {
            return true; // `stream_options.include_usage` is added to the body.
        }
        let upstream = self.upstream_model.as_deref();
        let model_change = match (upstream, requested) {
            (Some(upstream), Some(requested)) if upstream == requested => None,
            (upstream, _) => upstream,
        };
        translator.needs_request_body(model_change)
    }

    /// The configured provider this try goes to, else the name it was given (empty: none).
    fn resolve_provider(&self, host: &dyn Host, routed: Option<&str>) -> Result<usize, String> {
        let by_name = |name: &str| {
            self.providers
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| name.to_string())
        };
        if let Some(bytes) = host.property(&PROVIDER_METADATA) {
            let name = String::from_utf8_lossy(&bytes);
            let name = name.trim().trim_matches('"').trim();
            if !name.is_empty() {
                // The endpoint's metadata is authoritative: never fall back to a header when
                // it names a provider translate does not know.
                return by_name(name);
            }
        }
        if let Some(name) = routed {
            return by_name(name.trim());
        }
        match &*self.providers {
            [_only] => Ok(0),
            _ => Err(String::new()),
        }
    }
}

/// The 500 of a try whose provider (`name`, from the endpoint or router) translate was not
/// given. Named after a schema of a family this build lacks (the providers of `make run` and
/// the examples are), the provider most likely speaks it: the answer says which module to load
/// (a config that names the schema is refused, so it cannot be configured here).
fn unknown_provider(name: &str) -> ApiError {
    // (Not even looked up in the full build, which lacks nothing.)
    let schema = Schema::from_name(name).filter(|_| LACKS_A_FAMILY);
    if let Some(why) = schema.and_then(not_built) {
        return not_built_error(name, &why);
    }
    ApiError::new(
        500,
        ErrorType::ApiError,
        "llmgw translate: no provider configured for this upstream",
    )
}

impl HttpFilter for TranslateFilter {
    fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        let providers = Rc::clone(&self.providers);
        // One copy of every request header: everything below reads from it, and removes only
        // headers it shows, instead of one host call per header asked for or removed.
        let all = host.request_headers();
        // The client's path as the first try saw it (a retry shares its rewritten headers).
        let first = FirstTry::load_or_save(host, &all);
        self.api = ClientApi::for_errors(&first.path);
        let routed = RouterFacts::read_or_default(host);
        let resolved = self.resolve_provider(host, routed.provider.as_deref());
        let Some((index, provider)) = resolved
            .as_ref()
            .ok()
            .and_then(|&i| providers.get(i).map(|p| (i, p)))
        else {
            let name = resolved.err().unwrap_or_default();
            return self.reply(host, &unknown_provider(&name));
        };
        self.provider = Some(index);
        // A fallback chain names the model per provider; this try's provider picks its own.
        self.upstream_model = routed.model_for(&provider.name).map(str::to_string);
        self.telemetry = TryTelemetry::start(
            host,
            self.metrics_config,
            first.is_retry,
            routed.price_for(&provider.name),
            &provider.name,
            self.upstream_model.as_deref(),
        );
        // Only ratelimit forces usage, and only on a Chat stream whose client did not ask for
        // it (Messages and Responses always report it).
        self.force_usage = self.api == ClientApi::ChatCompletions
            && routed.stream_without_usage()
            && RateLimitFacts::read_or_default(host).force_usage;

        // Nothing of llmgw's and none of the client's credentials leave for the provider.
        let mut removed: Vec<&str> = Vec::new();
        for (name, _) in all.iter() {
            let drop = facts::is_reserved_header(name)
                || CLIENT_CREDENTIALS
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(name));
            // A header listed twice (two values) is removed once.
            if drop && !removed.contains(&name) {
                host.remove_request_header(name);
                removed.push(name);
            }
        }
        match &provider.backend {
            Backend::OpenAi { .. } => {
                if provider.options.auth == options::Auth::Key {
                    let bearer = format!("Bearer {}", provider.key.expose());
                    host.set_request_header("authorization", &bearer);
                }
            }
            Backend::Azure(_) => {
                // <https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference#authentication>
                host.set_request_header("api-key", provider.key.expose());
            }
            Backend::Gemini => {
                // <https://ai.google.dev/gemini-api/docs/api-key>
                host.set_request_header("x-goog-api-key", provider.key.expose());
            }
            Backend::Vertex(_) => {
                // An OAuth 2 access token (`gcloud auth print-access-token`, or a workload
                // identity refresher writing the env var), <https://cloud.google.com/vertex-ai/docs/authentication>.
                let bearer = format!("Bearer {}", provider.key.expose());
                host.set_request_header("authorization", &bearer);
            }
            Backend::Anthropic { version, .. } => {
                // <https://docs.anthropic.com/en/api/overview#authentication>
                host.set_request_header("x-api-key", provider.key.expose());
                // A Messages client's own `anthropic-version` is what its body is written for.
                let own = self.api == ClientApi::Messages
                    && headers::find(&all, "anthropic-version").is_some_and(|v| !v.is_empty());
                if !own {
                    host.set_request_header("anthropic-version", version);
                }
                // Only the beta flags this provider accepts: one it does not know would fail
                // the whole request.
                if let Some(betas) = headers::find(&all, "anthropic-beta") {
                    match provider.options.accepted_betas(betas) {
                        Some(kept) if kept == betas => {}
                        Some(kept) => host.set_request_header("anthropic-beta", &kept),
                        None => host.remove_request_header("anthropic-beta"),
                    }
                }
            }
            // Signed in the body callback: the signature covers the final body.
            Backend::Bedrock(_) => {}
        }

        if !matches!(provider.backend, Backend::Anthropic { .. }) {
            // Anthropic's headers mean nothing to another backend.
            for name in ["anthropic-version", "anthropic-beta"] {
                if headers::find(&all, name).is_some() {
                    host.remove_request_header(name);
                }
            }
        }

        let path = first.path;
        let (path_only, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path.as_str(), None),
        };
        let is_post =
            headers::find(&all, ":method").is_some_and(|m| m.eq_ignore_ascii_case("POST"));
        let counts_locally = is_post
            && cfg!(feature = "anthropic")
            && ClientApi::from_path(path_only)
                == Some((ClientApi::Messages, Operation::CountTokens))
            && !matches!(provider.backend, Backend::Anthropic { .. });
        if counts_locally {
            // No such endpoint there: translate answers with an estimate (`count_tokens`).
            if end_of_stream {
                let error = ApiError::invalid_request("a count_tokens request needs a JSON body");
                return self.reply(host, &error);
            }
            self.count_tokens = true;
            return Flow::Pause;
        }
        let translator = match (is_post, ClientApi::from_path(path_only)) {
            (true, Some((ClientApi::ChatCompletions, _))) => provider
                .translator(self.upstream_model.as_deref())
                .map(Some),
            (true, Some((ClientApi::Messages, operation))) => provider
                .messages_translator(operation, self.upstream_model.as_deref())
                .map(Some),
            (true, Some((ClientApi::Responses, _))) => provider
                .responses_translator(self.upstream_model.as_deref())
                .map(Some),
            (true, None) if path_only == EMBEDDINGS => {
                provider.embeddings_translator(self.upstream_model.as_deref())
            }
            _ => Ok(None),
        };
        let translator = match translator {
            Ok(translator) => translator,
            Err(error) => return self.reply(host, &error),
        };
        if let Some(translator) = translator {
            if end_of_stream {
                return self.reply(
                    host,
                    &ApiError::invalid_request(format!(
                        "a `{path_only}` request needs a JSON body"
                    )),
                );
            }
            host.set_request_header(":path", &translator.chat_path(query));
            // A compressed answer could be neither translated nor watched for its end.
            if headers::find(&all, "accept-encoding").is_some() {
                host.remove_request_header("accept-encoding");
            }
            if !self.needs_body(&*translator, routed.requested_model.as_deref()) {
                // Passthrough: the body leaves as the client sent it, so it is neither
                // buffered nor copied into the VM, and its content-length stays right.
                self.translator = Some(translator);
                return Flow::Continue;
            }
            // The body is rewritten; the length is set again once it is known.
            host.remove_request_header("content-length");
            self.translator = Some(translator);
            self.chat = true;
            // Wait for the body; Envoy's `allow_on_headers_stop_iteration` lets the header
            // changes made in the body callback still reach the provider.
            return Flow::Pause;
        }
        match &provider.backend {
            Backend::OpenAi { base_path } => {
                // Other OpenAI endpoints (models, embeddings, …) pass through unread.
                if let Some(rest) = path.strip_prefix("/v1") {
                    if rest.is_empty() || rest.starts_with(['/', '?']) {
                        let new_path = format!("{base_path}{rest}");
                        host.set_request_header(":path", &new_path);
                    }
                }
                Flow::Continue
            }
            Backend::Anthropic { .. }
            | Backend::Azure(_)
            | Backend::Gemini
            | Backend::Vertex(_)
            | Backend::Bedrock(_) => {
                let error = ApiError::new(
                    404,
                    ErrorType::NotFoundError,
                    format!(
                        "`{path_only}` is not supported by provider {}",
                        provider.name
                    ),
                );
                self.reply(host, &error)
            }
        }
    }

    fn on_request_trailers(&mut self, host: &mut dyn Host) -> Flow {
        if !self.chat || self.replied {
            return Flow::Continue;
        }
        crate::filter::end_of_body_on_trailers(self, host)
    }

    fn on_request_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        if self.count_tokens && !self.replied {
            if !end_of_stream {
                return Flow::Pause;
            }
            return self.count_tokens_locally(host, size);
        }
        if !self.chat || self.replied {
            return Flow::Continue;
        }
        if !end_of_stream {
            return Flow::Pause; // Envoy buffers until the whole body is there.
        }
        let Some(translator) = self.translator.as_mut() else {
            return Flow::Continue;
        };
        let upstream_model = self.upstream_model.as_deref();
        // The client's body with `stream_options.include_usage` set, when forced: every
        // translator then reports usage as if the client had asked.
        let forced = if self.force_usage {
            crate::ratelimit::estimate::force_include_usage(&host.request_body(size))
        } else {
            None
        };
        let result = if let Some(body) = &forced {
            translator
                .request_body(body, upstream_model)
                .map(|out| out.or_else(|| Some(body.clone())))
        } else if translator.needs_request_body(upstream_model) {
            let body = host.request_body(size);
            translator.request_body(&body, upstream_model)
        } else {
            Ok(None)
        };
        if result.is_ok() {
            if let Some(path) = translator.request_path() {
                host.set_request_header(":path", &path);
            }
            if forced.is_some() {
                // The client did not ask for the usage chunk: translate drops it (its usage
                // still reaches ratelimit, through `facts::USAGE`).
                translator.hide_usage_chunk();
            }
        }
        match result {
            Ok(Some(new_body)) => {
                host.set_request_body(size, &new_body);
                host.set_request_header("content-length", &new_body.len().to_string());
                for (name, value) in translator.finish_request(&new_body, host.now_ms()) {
                    host.set_request_header(&name, &value);
                }
                Flow::Continue
            }
            Ok(None) => {
                host.set_request_header("content-length", &size.to_string());
                Flow::Continue
            }
            Err(error) => self.reply(host, &error),
        }
    }

    fn on_response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        let flow = self.response_headers(host, end_of_stream);
        if end_of_stream {
            self.response_ended(host);
        }
        flow
    }

    fn on_response_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        let flow = self.response_body(host, size, end_of_stream);
        if end_of_stream {
            self.response_ended(host);
        }
        flow
    }

    fn on_stream_done(&mut self, host: &mut dyn Host) {
        let Some(provider) = self.provider.and_then(|i| self.providers.get(i)) else {
            return;
        };
        let usage = self.translator.as_ref().and_then(|t| t.usage());
        let outcome = telemetry::Outcome {
            usage,
            stream_failed: self.translator.as_ref().is_some_and(|t| t.stream_failed()),
            dropped: self.translator.as_ref().map_or(&[][..], |t| t.dropped()),
        };
        self.telemetry.report(
            host,
            &self.metrics,
            &provider.name,
            self.upstream_model.as_deref(),
            outcome,
        );
    }
}

impl TranslateFilter {
    /// The try's response reached its end: its outcome goes to the access log now, before
    /// Envoy writes the request's line (`on_stream_done` may come after that).
    fn response_ended(&mut self, host: &mut dyn Host) {
        if self.provider.is_none() {
            return;
        }
        let usage = self.translator.as_ref().and_then(|t| t.usage());
        let stream_failed = self.translator.as_ref().is_some_and(|t| t.stream_failed());
        self.telemetry.log_outcome(host, usage, stream_failed);
        // For the filters in front, before they see the end of the answer.
        if let Some(usage) = usage {
            UsageFact::Reported(usage).publish(host);
        }
    }

    fn response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        // One copy of the response headers serves every read below.
        let all = host.response_headers();
        let status = headers::find(&all, ":status")
            .and_then(|s| s.trim().parse::<u16>().ok())
            .unwrap_or(0);
        self.telemetry.status_changed(status);
        if self.replied {
            return Flow::Continue;
        }
        if let Some(flow) = self.shield_account(host, &all, status) {
            return flow;
        }
        let Some(translator) = self.translator.as_mut() else {
            return Flow::Continue;
        };
        let content_type = headers::find(&all, "content-type");
        let encoded = headers::find(&all, "content-encoding")
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
        for name in translator.response_headers_read() {
            if let Some(value) = headers::find(&all, name) {
                translator.note_response_header(name, value);
            }
        }
        let created = host.now_ms() / 1000;
        let plan = translator.response_headers(status, content_type, encoded, created);
        self.mode = plan.mode;
        if (200..300).contains(&status) {
            // From here translate reports this answer's usage: ratelimit need not read it.
            UsageFact::Pending.publish(host);
        }
        if let Some(new_status) = plan.status {
            self.telemetry.status_changed(new_status);
        }
        if matches!(plan.mode, ResponseMode::Untouched | ResponseMode::Watch) {
            return Flow::Continue;
        }
        host.remove_response_header("content-length");
        if let Some(content_type) = plan.content_type {
            host.set_response_header("content-type", content_type);
        }
        if let Some(new_status) = plan.status {
            host.set_response_header(":status", &new_status.to_string());
        }
        match plan.mode {
            ResponseMode::Buffer if end_of_stream => {
                // No body will follow, yet the client must get a readable one.
                let out = translator.response_body(b"");
                let status = out.status.or(plan.status).unwrap_or(status);
                self.telemetry.status_changed(status);
                self.replied = true;
                host.send_response(status, &[("content-type", "application/json")], &out.body);
                Flow::Pause
            }
            // Hold the headers: the status may still change once the body is read.
            ResponseMode::Buffer => Flow::Pause,
            ResponseMode::Stream | ResponseMode::Untouched | ResponseMode::Watch => Flow::Continue,
        }
    }

    /// The provider account is the operator's ([`account_headers`]): a refusal of our
    /// credentials becomes the gateway's 502 (`Some`: answered), and the account's headers
    /// never reach the client; its request id does, renamed.
    fn shield_account(
        &mut self,
        host: &mut dyn Host,
        all: &HeaderMap,
        status: u16,
    ) -> Option<Flow> {
        let provider = self.provider()?;
        if account_headers::refused_our_credentials(status) {
            log::warn!(
                "llmgw.translate: provider {provider} refused our credentials (HTTP {status})"
            );
            self.telemetry.status_changed(502);
            return Some(self.reply(host, &account_headers::upstream_auth_failed(status)));
        }
        for (name, _) in all.iter() {
            if account_headers::is_account_header(name) {
                host.remove_response_header(name);
            }
        }
        if let Some(id) = account_headers::provider_request_id(all) {
            host.set_response_header(account_headers::PROVIDER_REQUEST_ID, id);
        }
        None
    }

    fn response_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        if self.replied {
            return Flow::Continue;
        }
        let Some(translator) = self.translator.as_mut() else {
            return Flow::Continue;
        };
        self.telemetry.body_received(host);
        match self.mode {
            ResponseMode::Untouched => Flow::Continue,
            ResponseMode::Watch => {
                let chunk = host.response_body(size);
                let _unchanged = translator.response_chunk(&chunk, end_of_stream);
                Flow::Continue
            }
            ResponseMode::Buffer => {
                if !end_of_stream {
                    return Flow::Pause;
                }
                let body = host.response_body(size);
                let out = translator.response_body(&body);
                if let Some(status) = out.status {
                    self.telemetry.status_changed(status);
                    host.set_response_header(":status", &status.to_string());
                }
                host.set_response_header("content-length", &out.body.len().to_string());
                host.set_response_body(size, &out.body);
                Flow::Continue
            }
            ResponseMode::Stream => {
                let chunk = if size == 0 {
                    Vec::new()
                } else {
                    host.response_body(size)
                };
                if let Some(out) = translator.response_chunk(&chunk, end_of_stream) {
                    host.set_response_body(size, &out);
                }
                Flow::Continue
            }
        }
    }
}
