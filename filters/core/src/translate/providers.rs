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

/// A provider's JSON object as serde reads it: every field any schema has, flat. Only
/// [`RawProvider::into_spec`] looks at it, turning it into a [`ProviderSpec`] whose kind
/// carries its schema's fields alone, and refusing a field of another schema by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) name: String,
    pub(super) schema: Schema,
    #[serde(default)]
    key_env: Option<String>,
    #[serde(default)]
    key_header: Option<String>,
    #[serde(default)]
    auth: Option<options::RawAuth>,
    #[serde(default)]
    drop_fields: Option<Vec<String>>,
    #[serde(default)]
    base_path: Option<String>,
    #[serde(default)]
    refuse_fields: Option<Vec<String>>,
    #[serde(default)]
    anthropic_version: Option<String>,
    #[serde(default)]
    default_max_tokens: Option<u32>,
    #[serde(default)]
    anthropic_betas: Option<Vec<String>>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    deployments: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    access_key_env: Option<String>,
    #[serde(default)]
    secret_key_env: Option<String>,
    #[serde(default)]
    session_token_env: Option<String>,
}

/// A provider as written, by kind: the fields every schema has, and its schema's own.
#[derive(Debug)]
pub(super) struct ProviderSpec {
    pub(super) name: String,
    /// Required by every schema but `bedrock` (AWS credentials instead), and absent with
    /// `auth: "none"` (see [`options`]).
    pub(super) key_env: Option<String>,
    /// Instead of `key_env`: the request header an Envoy filter before translate fills with the
    /// key on every try (`credential_injector` with an SDS secret Envoy reloads when its file
    /// changes), so a rotated key takes effect without a restart.
    pub(super) key_header: Option<String>,
    /// `"key"` (default: the schema's key header) or `"none"` (`openai` only).
    pub(super) auth: Option<options::RawAuth>,
    /// Request fields removed before the request is translated (every schema).
    pub(super) drop_fields: Option<Vec<String>>,
    pub(super) kind: ProviderKind,
}

/// The fields of one schema ([`Schema`] names the kinds in the JSON: `"schema": "azure"`).
#[derive(Debug)]
pub(super) enum ProviderKind {
    OpenAi {
        /// Replaces the client's `/v1` prefix (`/v1`, `/openai/v1`).
        base_path: Option<String>,
        /// Request fields answered with a 400 naming them.
        refuse_fields: Option<Vec<String>>,
    },
    Anthropic {
        /// The `anthropic-version` header (<https://docs.anthropic.com/en/api/versioning>).
        version: Option<String>,
        default_max_tokens: Option<u32>,
        /// The `anthropic-beta` flags the provider accepts (others are removed).
        betas: Option<Vec<String>>,
    },
    Azure(options::RawAzure),
    Gemini,
    Vertex(options::RawVertex),
    Bedrock(RawBedrock),
}

/// `bedrock` schema: where and with which AWS credentials (see `openai_bedrock::compile_endpoint`).
#[derive(Debug)]
// (Read by `openai_bedrock`, which a build without the Bedrock family does not have.)
#[cfg_attr(not(feature = "bedrock"), allow(dead_code))]
pub(super) struct RawBedrock {
    pub(super) region: Option<String>,
    pub(super) host: Option<String>,
    pub(super) access_key_env: Option<String>,
    pub(super) secret_key_env: Option<String>,
    pub(super) session_token_env: Option<String>,
}

impl RawBedrock {
    /// Whether any AWS credential variable is named.
    pub(super) fn names_credentials(&self) -> bool {
        self.access_key_env.is_some()
            || self.secret_key_env.is_some()
            || self.session_token_env.is_some()
    }
}

/// The schema-specific fields, in the order they are checked, with the schemas they belong to.
const FIELD_SCHEMAS: [(&str, &[Schema]); 13] = [
    // Other schemas refuse what they cannot map anyway.
    ("refuse_fields", &[Schema::OpenAi]),
    ("api_version", &[Schema::Azure]),
    ("deployments", &[Schema::Azure]),
    ("project", &[Schema::Vertex]),
    ("region", &[Schema::Vertex, Schema::Bedrock]),
    ("anthropic_betas", &[Schema::Anthropic]),
    ("base_path", &[Schema::OpenAi]),
    ("anthropic_version", &[Schema::Anthropic]),
    ("default_max_tokens", &[Schema::Anthropic]),
    ("host", &[Schema::Bedrock]),
    ("access_key_env", &[Schema::Bedrock]),
    ("secret_key_env", &[Schema::Bedrock]),
    ("session_token_env", &[Schema::Bedrock]),
];

impl RawProvider {
    /// The provider as its kind, or the first field (in [`FIELD_SCHEMAS`]' order) that another
    /// schema's: "only valid for schema `azure`, this provider's schema is `openai`".
    pub(super) fn into_spec(
        self,
        at: &dyn Fn(&str) -> String,
    ) -> Result<ProviderSpec, ConfigError> {
        let schema = self.schema;
        let only = |field: &str, allowed: String| {
            ConfigError::new(
                at(field),
                format!(
                    "only valid for schema {allowed}, this provider's schema is `{}`",
                    schema.name()
                ),
            )
        };
        if self.auth == Some(options::RawAuth::None) && schema != Schema::OpenAi {
            return Err(only("auth", "`openai` (\"none\")".to_string()));
        }
        let set = [
            self.refuse_fields.is_some(),
            self.api_version.is_some(),
            self.deployments.is_some(),
            self.project.is_some(),
            self.region.is_some(),
            self.anthropic_betas.is_some(),
            self.base_path.is_some(),
            self.anthropic_version.is_some(),
            self.default_max_tokens.is_some(),
            self.host.is_some(),
            self.access_key_env.is_some(),
            self.secret_key_env.is_some(),
            self.session_token_env.is_some(),
        ];
        let misplaced = FIELD_SCHEMAS
            .iter()
            .zip(set)
            .find(|((_, owners), set)| *set && !owners.contains(&schema));
        if let Some(((field, owners), _)) = misplaced {
            let names: Vec<String> = owners.iter().map(|s| format!("`{}`", s.name())).collect();
            return Err(only(field, names.join(" or ")));
        }
        let kind = match schema {
            Schema::OpenAi => ProviderKind::OpenAi {
                base_path: self.base_path,
                refuse_fields: self.refuse_fields,
            },
            Schema::Anthropic => ProviderKind::Anthropic {
                version: self.anthropic_version,
                default_max_tokens: self.default_max_tokens,
                betas: self.anthropic_betas,
            },
            Schema::Azure => ProviderKind::Azure(options::RawAzure {
                api_version: self.api_version,
                deployments: self.deployments,
            }),
            Schema::Gemini => ProviderKind::Gemini,
            Schema::Vertex => ProviderKind::Vertex(options::RawVertex {
                project: self.project,
                region: self.region,
            }),
            Schema::Bedrock => ProviderKind::Bedrock(RawBedrock {
                region: self.region,
                host: self.host,
                access_key_env: self.access_key_env,
                secret_key_env: self.secret_key_env,
                session_token_env: self.session_token_env,
            }),
        };
        Ok(ProviderSpec {
            name: self.name,
            key_env: self.key_env,
            key_header: self.key_header,
            auth: self.auth,
            drop_fields: self.drop_fields,
            kind,
        })
    }
}

impl ProviderSpec {
    pub(super) fn schema(&self) -> Schema {
        match self.kind {
            ProviderKind::OpenAi { .. } => Schema::OpenAi,
            ProviderKind::Anthropic { .. } => Schema::Anthropic,
            ProviderKind::Azure(_) => Schema::Azure,
            ProviderKind::Gemini => Schema::Gemini,
            ProviderKind::Vertex(_) => Schema::Vertex,
            ProviderKind::Bedrock(_) => Schema::Bedrock,
        }
    }
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
    bedrock: &RawBedrock,
    key_header: bool,
    env: &dyn Env,
    at: &dyn Fn(&str) -> String,
) -> Result<Backend, ConfigError> {
    Ok(Backend::Bedrock(Rc::new(openai_bedrock::compile_endpoint(
        bedrock, key_header, env, at,
    )?)))
}

/// Not reached: `compile` refuses the schema of a family this build lacks first.
#[cfg(not(feature = "bedrock"))]
pub(super) fn bedrock_backend(
    _: &RawBedrock,
    _: bool,
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
        let spec = p.into_spec(&at)?;
        providers.push(compile_provider(spec, env, &at)?);
    }
    Ok(providers)
}

/// One provider of its kind.
fn compile_provider(
    p: ProviderSpec,
    env: &dyn Env,
    at: &dyn Fn(&str) -> String,
) -> Result<Provider, ConfigError> {
    let schema = p.schema();
    let provider_options = options::compile_options(&p, at)?;
    let key_header = compile_key_header(&p, provider_options.auth, at)?;
    let key = match (&p.key_env, provider_options.auth) {
        (None, _) if key_header.is_some() => Secret::new(""),
        // Bedrock has no bearer key: it signs with AWS credentials (its own fields).
        (None, _) if schema == Schema::Bedrock => Secret::new(""),
        (Some(_), _) if schema == Schema::Bedrock => {
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
    let backend = match p.kind {
        ProviderKind::OpenAi { base_path, .. } => {
            let base_path = base_path.unwrap_or_else(|| "/v1".to_string());
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
        ProviderKind::Anthropic {
            version,
            default_max_tokens,
            ..
        } => {
            let version = version.unwrap_or_else(|| "2023-06-01".to_string());
            if version.trim().is_empty() {
                return Err(ConfigError::new(
                    at("anthropic_version"),
                    "must not be empty",
                ));
            }
            let default_max_tokens = default_max_tokens.unwrap_or(4096);
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
        ProviderKind::Azure(azure) => options::compile_azure(azure, at)?,
        ProviderKind::Gemini => Backend::Gemini,
        ProviderKind::Vertex(vertex) => options::compile_vertex(vertex, at)?,
        ProviderKind::Bedrock(bedrock) => bedrock_backend(&bedrock, key_header.is_some(), env, at)?,
    };
    Ok(Provider {
        name: p.name,
        key,
        key_header,
        backend,
        options: provider_options,
    })
}

/// `key_header`, checked: a provider with a key takes it from `key_env` or from this header,
/// not both (Bedrock: from its AWS `*_env` fields or from this header, holding
/// `<access key id>:<secret access key>[:<session token>]`, one value so that the three change
/// together). The header must be one of llmgw's
/// reserved `x-llmgw-` headers: translate removes those from every provider request (the
/// fallback chain's other providers' keys included), and auth from every client request.
fn compile_key_header(
    p: &ProviderSpec,
    auth: options::Auth,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<String>, ConfigError> {
    let Some(name) = &p.key_header else {
        return Ok(None);
    };
    let refuse = |why: &str| Err(ConfigError::new(at("key_header"), why));
    if matches!(&p.kind, ProviderKind::Bedrock(bedrock) if bedrock.names_credentials()) {
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
