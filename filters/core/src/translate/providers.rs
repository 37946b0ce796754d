//! translate's configuration: the providers it serves, each compiled from its JSON into a
//! [`Provider`] with the backend settings of its wire format ([`Schema`]), and the provider
//! families a build carries ([`Family`]).

use super::*;

/// Stage one: the JSON as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) providers: Vec<RawProvider>,
    #[serde(default)]
    pub(super) metrics: MetricsConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) name: String,
    pub(super) schema: Schema,
    /// Required by every schema but `bedrock` (AWS credentials instead), and absent with
    /// `auth: "none"` (see [`options`]).
    #[serde(default)]
    pub(super) key_env: Option<String>,
    /// Instead of `key_env`: the request header an Envoy filter before translate fills with the
    /// key on every try (`credential_injector` with an SDS secret Envoy reloads when its file
    /// changes), so a rotated key takes effect without a restart.
    #[serde(default)]
    pub(super) key_header: Option<String>,
    #[serde(default)]
    pub(super) base_path: Option<String>,
    #[serde(default)]
    pub(super) anthropic_version: Option<String>,
    #[serde(default)]
    pub(super) default_max_tokens: Option<u32>,
    #[serde(default)]
    pub(super) anthropic_betas: Option<Vec<String>>,
    // Options (see [`options`]), kept as written until compiled.
    #[serde(default)]
    pub(super) auth: Option<options::RawAuth>,
    #[serde(default)]
    pub(super) refuse_fields: Option<Vec<String>>,
    #[serde(default)]
    pub(super) drop_fields: Option<Vec<String>>,
    #[serde(default)]
    pub(super) api_version: Option<String>,
    #[serde(default)]
    pub(super) deployments: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub(super) project: Option<String>,
    #[serde(default)]
    pub(super) region: Option<String>,
    // `bedrock` schema (see `openai_bedrock::compile_endpoint`); `region` above is shared.
    #[serde(default)]
    pub(super) host: Option<String>,
    #[serde(default)]
    pub(super) access_key_env: Option<String>,
    #[serde(default)]
    pub(super) secret_key_env: Option<String>,
    #[serde(default)]
    pub(super) session_token_env: Option<String>,
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
    pub(super) fn name(self) -> &'static str {
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
pub(super) const LACKS_A_FAMILY: bool = !cfg!(all(
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
pub(super) fn not_built_error(provider: &str, why: &str) -> ApiError {
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
pub(super) type BedrockSettings = Rc<openai_bedrock::BedrockEndpoint>;
#[cfg(not(feature = "bedrock"))]
pub(super) type BedrockSettings = NotBuilt;

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
    /// Empty when the provider takes no key (`auth: "none"`) or reads it from `key_header`.
    pub key: Secret,
    /// The request header this try's key is read from (lower case, `x-llmgw-…`), if not `key`.
    pub key_header: Option<String>,
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
    pub(super) fn not_built(&self) -> ApiError {
        let why = not_built(self.schema()).unwrap_or_default();
        not_built_error(&self.name, &why)
    }

    /// This provider for one try whose AWS credentials are `value`, the Bedrock `key_header`'s
    /// `<access key id>:<secret access key>[:<session token>]`; `None` when it is not that.
    #[cfg(feature = "bedrock")]
    pub(super) fn with_aws_credentials(&self, value: &str) -> Option<Provider> {
        let Backend::Bedrock(endpoint) = &self.backend else {
            return None;
        };
        Some(Provider {
            backend: Backend::Bedrock(Rc::new(endpoint.with_credentials(value)?)),
            ..self.clone()
        })
    }

    /// Not reached: `compile` refuses the schema of a family this build lacks first.
    #[cfg(not(feature = "bedrock"))]
    pub(super) fn with_aws_credentials(&self, _value: &str) -> Option<Provider> {
        None
    }

    /// The translator for `POST /v1/chat/completions`. The families this build lacks have no
    /// translator (Cargo features, [`Family`]): their arms answer with [`not_built_error`].
    pub(super) fn translator(
        &self,
        upstream_model: Option<&str>,
    ) -> Result<Box<dyn Translator>, ApiError> {
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
    pub(super) fn messages_translator(
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
    pub(super) fn responses_translator(
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
    pub(super) fn embeddings_translator(
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
pub(super) fn dialect_path(operation: Operation) -> &'static str {
    match operation {
        Operation::Create => crate::dialect::MESSAGES,
        Operation::CountTokens => crate::dialect::MESSAGES_COUNT_TOKENS,
    }
}

#[cfg(feature = "bedrock")]
pub(super) fn bedrock_backend(
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
pub(super) fn bedrock_backend(
    _: &RawProvider,
    _: &dyn Env,
    at: &dyn Fn(&str) -> String,
) -> Result<Backend, ConfigError> {
    let why = not_built(Schema::Bedrock).unwrap_or_default();
    Err(ConfigError::new(at("schema"), why))
}

pub(super) fn compile(raw: RawConfig, env: &dyn Env) -> Result<Vec<Provider>, ConfigError> {
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
        let key_header = compile_key_header(&p, provider_options.auth, &at)?;
        let key = match (&p.key_env, provider_options.auth) {
            (None, _) if key_header.is_some() => Secret::new(""),
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
                    "required, or `key_header` (or `auth: \"none\"` for a server without keys)",
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
            key_header,
            backend,
            options: provider_options,
        });
    }
    Ok(providers)
}

/// `key_header`, checked: a provider with a key takes it from `key_env` or from this header,
/// not both (Bedrock: from its AWS `*_env` fields or from this header, holding
/// `<access key id>:<secret access key>[:<session token>]`, one value so that the three change
/// together). The header must be one of llmgw's
/// reserved `x-llmgw-` headers: translate removes those from every provider request (the
/// fallback chain's other providers' keys included), and auth from every client request.
fn compile_key_header(
    p: &RawProvider,
    auth: options::Auth,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<String>, ConfigError> {
    let Some(name) = &p.key_header else {
        return Ok(None);
    };
    let refuse = |why: &str| Err(ConfigError::new(at("key_header"), why));
    let aws_env =
        p.access_key_env.is_some() || p.secret_key_env.is_some() || p.session_token_env.is_some();
    if p.schema == Schema::Bedrock && aws_env {
        return refuse(
            "set either key_header or access_key_env / secret_key_env / session_token_env, \
             not both",
        );
    }
    if auth == options::Auth::None {
        return refuse("must be absent with `auth: \"none\"` (no key is sent)");
    }
    if p.key_env.is_some() {
        return refuse("set either key_env or key_header, not both");
    }
    let name = name.to_ascii_lowercase();
    let valid = name.len() > crate::facts::RESERVED_PREFIX.len()
        && crate::facts::is_reserved_header(&name)
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid {
        return Err(ConfigError::new(
            at("key_header"),
            format!(
                "`{name}` must be a header name starting with `{}` (translate removes those \
                 before the provider, so the key goes no further)",
                crate::facts::RESERVED_PREFIX
            ),
        ));
    }
    Ok(Some(name))
}
