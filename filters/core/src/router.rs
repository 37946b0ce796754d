//! The router filter: which provider and which upstream model serve a request.
//!
//! It is the one filter that parses the request body (once), so it also hands on what it learnt
//! in `x-llmgw-*` headers for the filters after it, and enforces auth's model allow-list.
//! Envoy then routes on [`headers::CLUSTER`] (`cluster_header`); setting a header in the body
//! callback clears the route cache, which needs `allow_on_headers_stop_iteration: true`.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use serde::Deserialize;

use crate::auth;
use crate::config::{self, ConfigError};
use crate::error::ApiError;
use crate::filter::{Env, FilterRoot, Flow, HttpFilter};
use crate::headers;
use crate::host::{send_error, Host};

/// The paths router serves; anything else gets OpenAI's 404 for an unknown URL.
const CHAT_COMPLETIONS: &str = "/v1/chat/completions";

/// Router configuration as written in the plugin's JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    models: Vec<RawModel>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    /// Envoy cluster per provider; a provider without an entry uses its own name.
    #[serde(default)]
    clusters: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    targets: Vec<RawTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    provider: String,
    model: String,
    #[serde(default = "default_weight")]
    weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// Where a request may go: a provider, its model name, and the Envoy cluster that reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub provider: String,
    pub model: String,
    pub cluster: String,
    pub weight: u32,
}

/// A catalogue entry with the weights already summed.
#[derive(Debug)]
struct Model {
    targets: Vec<Target>,
    total_weight: u64,
}

impl Model {
    /// Weighted choice; `draw` is any uniformly distributed number.
    fn pick(&self, draw: u64) -> Option<&Target> {
        let mut point = draw % self.total_weight.max(1);
        for target in &self.targets {
            let weight = u64::from(target.weight);
            if point < weight {
                return Some(target);
            }
            point -= weight;
        }
        None
    }
}

/// The compiled router configuration.
#[derive(Debug)]
pub struct RouterRoot {
    /// Exact names and aliases, both pointing at the shared entry.
    catalogue: HashMap<String, Rc<Model>>,
}

fn check_name(path: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            path,
            format!("`{name}` must be non-empty and use only letters, digits and . _ - : / @"),
        ))
    }
}

impl RouterRoot {
    fn compile(raw: RawConfig) -> Result<Self, ConfigError> {
        if raw.models.is_empty() {
            return Err(ConfigError::new("models", "at least one model is required"));
        }
        let mut catalogue = HashMap::new();
        for (i, model) in raw.models.into_iter().enumerate() {
            check_name(&format!("models[{i}].name"), &model.name)?;
            if model.targets.is_empty() {
                return Err(ConfigError::new(
                    format!("models[{i}].targets"),
                    "at least one target is required",
                ));
            }
            let mut targets = Vec::with_capacity(model.targets.len());
            for (j, t) in model.targets.into_iter().enumerate() {
                check_name(&format!("models[{i}].targets[{j}].provider"), &t.provider)?;
                check_name(&format!("models[{i}].targets[{j}].model"), &t.model)?;
                let cluster = raw
                    .clusters
                    .get(&t.provider)
                    .cloned()
                    .unwrap_or_else(|| t.provider.clone());
                targets.push(Target {
                    provider: t.provider,
                    model: t.model,
                    cluster,
                    weight: t.weight,
                });
            }
            let total_weight = targets.iter().map(|t| u64::from(t.weight)).sum();
            if total_weight == 0 {
                return Err(ConfigError::new(
                    format!("models[{i}].targets"),
                    "every target has weight 0, so no request could be routed",
                ));
            }
            let entry = Rc::new(Model {
                targets,
                total_weight,
            });
            if catalogue.insert(model.name.clone(), entry).is_some() {
                return Err(ConfigError::new(
                    format!("models[{i}].name"),
                    format!("model `{}` is listed twice", model.name),
                ));
            }
        }
        for (alias, model) in &raw.aliases {
            let path = format!("aliases.{alias}");
            check_name(&path, alias)?;
            if catalogue.contains_key(alias) {
                return Err(ConfigError::new(
                    path,
                    format!("`{alias}` is already a model name"),
                ));
            }
            let Some(entry) = catalogue.get(model).cloned() else {
                return Err(ConfigError::new(
                    path,
                    format!("points at `{model}`, which is not in `models`"),
                ));
            };
            catalogue.insert(alias.clone(), entry);
        }
        for provider in raw.clusters.keys() {
            check_name(&format!("clusters.{provider}"), provider)?;
        }
        Ok(Self { catalogue })
    }
}

impl FilterRoot for RouterRoot {
    type Filter = RouterFilter;
    const NAME: &'static str = "llmgw.router";

    fn configure(json: &[u8], _env: &dyn Env) -> Result<Self, ConfigError> {
        Self::compile(config::parse(json)?)
    }

    fn new_filter(&self) -> RouterFilter {
        RouterFilter {
            catalogue: self.catalogue.clone(),
        }
    }
}

/// The fields of a Chat Completions request router needs; everything else is skipped unparsed.
#[derive(Deserialize)]
struct ChatRequestPeek<'a> {
    #[serde(borrow, default)]
    model: Option<Typed<std::borrow::Cow<'a, str>>>,
    #[serde(default)]
    stream: Option<Typed<bool>>,
    /// The facts ratelimit's token estimate needs (`max_tokens`, …), read in the same pass.
    #[serde(default)]
    max_tokens: crate::ratelimit::estimate::Lenient<u64>,
    #[serde(default)]
    max_completion_tokens: crate::ratelimit::estimate::Lenient<u64>,
    #[serde(default)]
    stream_options:
        crate::ratelimit::estimate::Lenient<crate::ratelimit::estimate::StreamOptionsPeek>,
}

/// A field of the expected type, or of another type (so the error can name the field).
#[derive(Deserialize)]
#[serde(untagged)]
enum Typed<T> {
    Valid(T),
    Invalid(serde::de::IgnoredAny),
}

/// Router's errors, each becoming an OpenAI error at the edge.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("Invalid URL ({method} {path})")]
    UnknownUrl { method: String, path: String },
    #[error("The request body is empty; a JSON object with `model` and `messages` is required.")]
    EmptyBody,
    #[error("We could not parse the JSON body of your request: {0}")]
    MalformedJson(String),
    #[error("You must provide a model parameter.")]
    MissingModel,
    #[error("`model` must be a string.")]
    ModelNotString,
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    UnknownModel(String),
    #[error("`stream` must be a boolean.")]
    StreamNotBool,
}

impl From<RouteError> for ApiError {
    fn from(err: RouteError) -> Self {
        let message = err.to_string();
        match err {
            RouteError::UnknownUrl { .. } => {
                ApiError::new(404, crate::error::ErrorType::InvalidRequestError, message)
            }
            RouteError::EmptyBody | RouteError::MalformedJson(_) => {
                ApiError::invalid_request(message)
            }
            RouteError::MissingModel => ApiError::invalid_request(message)
                .with_param("model")
                .with_code("missing_required_parameter"),
            RouteError::ModelNotString => ApiError::invalid_request(message)
                .with_param("model")
                .with_code("invalid_type"),
            RouteError::StreamNotBool => ApiError::invalid_request(message)
                .with_param("stream")
                .with_code("invalid_type"),
            RouteError::UnknownModel(_) => {
                ApiError::new(404, crate::error::ErrorType::InvalidRequestError, message)
                    .with_param("model")
                    .with_code("model_not_found")
            }
        }
    }
}

/// One request through router.
pub struct RouterFilter {
    catalogue: HashMap<String, Rc<Model>>,
}

impl RouterFilter {
    /// Parse the body once, check the allow-list, pick a target and publish it in headers.
    fn route(&self, host: &mut dyn Host, body: &[u8]) -> Result<(), ApiError> {
        let peek: ChatRequestPeek = serde_json::from_slice(body)
            .map_err(|err| RouteError::MalformedJson(err.to_string()))?;
        let requested = match peek.model {
            None => return Err(RouteError::MissingModel.into()),
            Some(Typed::Invalid(_)) => return Err(RouteError::ModelNotString.into()),
            Some(Typed::Valid(name)) => name,
        };
        let stream = match peek.stream {
            None => false,
            Some(Typed::Valid(stream)) => stream,
            Some(Typed::Invalid(_)) => return Err(RouteError::StreamNotBool.into()),
        };
        if requested.is_empty() {
            return Err(RouteError::MissingModel.into());
        }
        if let Some(allowed) = host.request_header(headers::ALLOWED_MODELS) {
            if !auth::model_allowed(&allowed, &requested) {
                return Err(auth::model_not_allowed(&requested));
            }
        }
        let model = self
            .catalogue
            .get(requested.as_ref())
            .ok_or_else(|| RouteError::UnknownModel(requested.to_string()))?;
        let target = model
            .pick(host.random_u64())
            .ok_or_else(|| RouteError::UnknownModel(requested.to_string()))?;
        host.set_request_header(headers::REQUESTED_MODEL, &requested);
        host.set_request_header(headers::PROVIDER, &target.provider);
        host.set_request_header(headers::UPSTREAM_MODEL, &target.model);
        host.set_request_header(headers::CLUSTER, &target.cluster);
        host.set_request_header(headers::STREAM, if stream { "true" } else { "false" });
        let (max, max_completion, options) = (
            peek.max_tokens,
            peek.max_completion_tokens,
            peek.stream_options,
        );
        let len = body.len();
        crate::ratelimit::estimate::publish(host, len, stream, max, max_completion, options);
        Ok(())
    }
}

impl HttpFilter for RouterFilter {
    fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        let method = host.request_header(":method").unwrap_or_default();
        let path = host.request_header(":path").unwrap_or_default();
        let route_path = path.split('?').next().unwrap_or_default();
        if method != "POST" || route_path != CHAT_COMPLETIONS {
            send_error(host, &RouteError::UnknownUrl { method, path }.into());
            return Flow::Pause;
        }
        if end_of_stream {
            send_error(host, &RouteError::EmptyBody.into());
            return Flow::Pause;
        }
        // Hold the headers until the body says which cluster to route to.
        Flow::Pause
    }

    fn on_request_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        if !end_of_stream {
            return Flow::Pause; // Envoy buffers until the whole body is here.
        }
        let body = host.request_body(size);
        if body.is_empty() {
            send_error(host, &RouteError::EmptyBody.into());
            return Flow::Pause;
        }
        match self.route(host, &body) {
            Ok(()) => Flow::Continue,
            Err(err) => {
                send_error(host, &err);
                Flow::Pause
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testing::FakeHost;

    const CONFIG: &str = r#"{
        "models": [
            {"name": "gpt-4o-mini", "targets": [{"provider": "openai", "model": "gpt-4o-mini"}]},
            {"name": "claude-haiku", "targets": [
                {"provider": "anthropic", "model": "claude-3-5-haiku-20241022"}]},
            {"name": "split", "targets": [
                {"provider": "openai", "model": "gpt-4o-mini", "weight": 3},
                {"provider": "anthropic", "model": "claude-3-5-haiku-20241022", "weight": 1}]}
        ],
        "aliases": {"fast": "gpt-4o-mini"},
        "clusters": {"anthropic": "llm-anthropic"}
    }"#;

    fn root() -> RouterRoot {
        RouterRoot::configure(CONFIG.as_bytes(), &|_: &str| None).unwrap()
    }

    fn refusal(json: &str) -> ConfigError {
        RouterRoot::configure(json.as_bytes(), &|_: &str| None).unwrap_err()
    }

    /// Runs a chat completion request through router; returns the host afterwards.
    fn route(body: &str, host: FakeHost) -> (Flow, FakeHost) {
        let mut host = host
            .with_request_header(":method", "POST")
            .with_request_header(":path", "/v1/chat/completions")
            .with_request_body(body);
        let mut filter = root().new_filter();
        assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
        let size = host.request_body.len();
        assert_eq!(filter.on_request_body(&mut host, 3, false), Flow::Pause);
        let flow = filter.on_request_body(&mut host, size, true);
        (flow, host)
    }

    #[test]
    fn exact_model_sets_the_contract_headers() {
        let (flow, host) = route(r#"{"model":"gpt-4o-mini","stream":true}"#, FakeHost::new());
        assert_eq!(flow, Flow::Continue);
        assert_eq!(host.req(headers::REQUESTED_MODEL), Some("gpt-4o-mini"));
        assert_eq!(host.req(headers::PROVIDER), Some("openai"));
        assert_eq!(host.req(headers::UPSTREAM_MODEL), Some("gpt-4o-mini"));
        assert_eq!(host.req(headers::CLUSTER), Some("openai"));
        assert_eq!(host.req(headers::STREAM), Some("true"));
        assert!(host.local_response.is_none());
    }

    #[test]
    fn alias_resolves_and_cluster_mapping_applies() {
        let (_, host) = route(r#"{"model":"fast"}"#, FakeHost::new());
        assert_eq!(host.req(headers::REQUESTED_MODEL), Some("fast"));
        assert_eq!(host.req(headers::UPSTREAM_MODEL), Some("gpt-4o-mini"));
        assert_eq!(host.req(headers::STREAM), Some("false"));
        let (_, host) = route(r#"{"model":"claude-haiku"}"#, FakeHost::new());
        assert_eq!(host.req(headers::CLUSTER), Some("llm-anthropic"));
    }

    #[test]
    fn weighted_split_follows_the_draw() {
        // Weights 3:1 → draws 0,1,2 go to openai, 3 to anthropic, 4 wraps to openai.
        let providers: Vec<String> = (0..5)
            .map(|draw| {
                let (_, host) = route(
                    r#"{"model":"split"}"#,
                    FakeHost::new().with_randoms(&[draw]),
                );
                host.req(headers::PROVIDER).unwrap().to_string()
            })
            .collect();
        assert_eq!(
            providers,
            ["openai", "openai", "openai", "anthropic", "openai"]
        );
    }

    #[test]
    fn weighted_split_converges() {
        let root = root();
        let model = root.catalogue.get("split").unwrap();
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut openai = 0;
        for _ in 0..10_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if model.pick(rng).unwrap().provider == "openai" {
                openai += 1;
            }
        }
        assert!(
            (7300..=7700).contains(&openai),
            "openai got {openai} of 10000"
        );
    }

    #[test]
    fn unknown_model_is_404_model_not_found() {
        let (flow, host) = route(r#"{"model":"gpt-9"}"#, FakeHost::new());
        assert_eq!(flow, Flow::Pause);
        assert!(host.req(headers::CLUSTER).is_none());
        let reply = host.local_response.unwrap();
        assert_eq!(reply.status, 404);
        assert_eq!(reply.json()["error"]["code"], "model_not_found");
    }

    #[test]
    fn bad_bodies_are_400() {
        for (body, code) in [
            (r#"{"model": 4}"#, Some("invalid_type")),
            (r#"{"messages": []}"#, Some("missing_required_parameter")),
            (r#"{"model": ""}"#, Some("missing_required_parameter")),
            (r#"{"model": "fast""#, None),
            ("not json", None),
            (r#"{"model":"fast","stream":"yes"}"#, Some("invalid_type")),
        ] {
            let (flow, host) = route(body, FakeHost::new());
            assert_eq!(flow, Flow::Pause, "{body}");
            let reply = host.local_response.unwrap();
            assert_eq!(reply.status, 400, "{body}");
            let json = reply.json();
            assert_eq!(json["error"]["type"], "invalid_request_error");
            assert_eq!(json["error"]["code"].as_str(), code, "{body}");
        }
    }

    #[test]
    fn allow_list_from_auth_is_enforced_on_the_requested_name() {
        let allowed = FakeHost::new().with_request_header(headers::ALLOWED_MODELS, "gpt-*,fast");
        let (flow, _) = route(r#"{"model":"fast"}"#, allowed.clone());
        assert_eq!(flow, Flow::Continue);
        let (flow, host) = route(r#"{"model":"claude-haiku"}"#, allowed);
        assert_eq!(flow, Flow::Pause);
        let reply = host.local_response.unwrap();
        assert_eq!(reply.status, 403);
        assert_eq!(reply.json()["error"]["param"], "model");
    }

    #[test]
    fn other_urls_are_404_and_empty_bodies_400() {
        let mut host = FakeHost::new()
            .with_request_header(":method", "GET")
            .with_request_header(":path", "/v1/engines");
        let mut filter = root().new_filter();
        assert_eq!(filter.on_request_headers(&mut host, true), Flow::Pause);
        assert_eq!(host.local_response.unwrap().status, 404);

        let mut host = FakeHost::new()
            .with_request_header(":method", "POST")
            .with_request_header(":path", "/v1/chat/completions?x=1");
        assert_eq!(filter.on_request_headers(&mut host, true), Flow::Pause);
        assert_eq!(host.local_response.unwrap().status, 400);
    }

    #[test]
    fn config_refusals_name_the_field() {
        let err = refusal(
            r#"{"models":[{"name":"a","targets":[{"provider":"p","model":"m","weight":0}]}]}"#,
        );
        assert_eq!(err.path, "models[0].targets");
        assert!(err.reason.contains("weight 0"));

        let err = refusal(
            r#"{"models":[{"name":"a","targets":[{"provider":"p","model":"m"}]}],"aliases":{"b":"c"}}"#,
        );
        assert_eq!(err.path, "aliases.b");

        let err = refusal(
            r#"{"models":[{"name":"a","targets":[{"provider":"p","model":"m","wieght":1}]}]}"#,
        );
        assert_eq!(err.path, "models[0].targets[0].wieght");

        let err = refusal(r#"{"models":[{"name":"a","targets":[]}]}"#);
        assert_eq!(err.path, "models[0].targets");

        let err = refusal(r#"{"models":[]}"#);
        assert_eq!(err.path, "models");

        let err = refusal(
            r#"{"models":[{"name":"a","targets":[{"provider":"p","model":"m"}]},
                          {"name":"a","targets":[{"provider":"p","model":"m"}]}]}"#,
        );
        assert_eq!(err.path, "models[1].name");

        let err =
            refusal(r#"{"models":[{"name":"a b","targets":[{"provider":"p","model":"m"}]}]}"#);
        assert_eq!(err.path, "models[0].name");
    }
}
