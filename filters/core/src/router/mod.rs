//! The router filter: which provider and which upstream model serve a request.
//!
//! It is the one filter that parses the request body (once, [`request`]), so it also hands on
//! what it learnt to the filters after it ([`RouterFacts`] in filter state), and enforces auth's
//! model allow-list. Envoy then routes on [`facts::CLUSTER_HEADER`] (`cluster_header`); setting a
//! header in the body callback clears the route cache, which needs
//! `allow_on_headers_stop_iteration: true`.
//!
//! What router decides, and what it leaves to Envoy:
//! - router: the name → version (aliases, sticky rollouts, [`catalogue`]), which targets can
//!   serve the request (context window, capabilities) and which are healthy, and the policy
//!   among them (weighted, ordered, cheapest, fastest, [`policy`]); health and latency live in
//!   shared data ([`health`]).
//! - Envoy: connections, load balancing inside a cluster, and fallbacks. A model with a
//!   `fallback` chain is sent to an aggregate cluster whose members are the chain's providers in
//!   order; the route's `retry_policy` (429, 5xx, reset, connect failure) with
//!   `previous_priorities` moves each retry to the next provider, and translate (an upstream
//!   filter, once per try) speaks that provider's format with the model
//!   [`RouterFacts::targets`] names for it. Envoy retries only before it forwards response headers, so a stream falls
//!   back only before its first byte reached the client.

mod catalogue;
mod config;
mod health;
mod models;
mod policy;
mod request;
mod retry_after;

#[cfg(test)]
mod tests;

use std::rc::Rc;

pub use self::catalogue::{sticky_hash, Capabilities, Model, Target};
pub use self::config::{Capability, Expose};
pub use self::health::{Health, HealthPolicy, Outcome};
pub use self::policy::{Healthy, Needs, Policy, SelectError, Selected, TargetState};
pub use self::request::RequestFacts;

use self::request::PeekError;
use crate::access_log::{self, Field};
use crate::auth;
use crate::config::{self as config_parse, ConfigError};
use crate::dialect::{ClientApi, Operation};
use crate::error::{ApiError, ErrorType};
use crate::facts::{self, AuthFacts, RouterFacts};
use crate::filter::{Callback, Env, FilterRoot, Flow, HttpFilter};
use crate::headers;
use crate::host::{send_error_in, Host};
use crate::metrics::Metrics;

/// The paths router serves besides the client dialects' ([`ClientApi::from_path`]); anything
/// else gets a 404 for an unknown URL.
const EMBEDDINGS: &str = "/v1/embeddings";
const MODELS: &str = "/v1/models";

/// Response headers naming what served the request (only when `expose` asks for them).
pub const EXPOSED_MODEL: &str = "x-llmgw-model";
pub const EXPOSED_PROVIDER: &str = "x-llmgw-provider";

/// The endpoint's provider: in a downstream filter it names the host of the last try.
pub const UPSTREAM_PROVIDER: [&str; 5] = [
    "xds",
    "upstream_host_metadata",
    "filter_metadata",
    "llmgw",
    "provider",
];
/// `via_upstream` when the provider answered; `upstream_…` when Envoy gave up on it; anything
/// else is a local reply (e.g. ratelimit's 429), which says nothing about the provider.
const RESPONSE_CODE_DETAILS: [&str; 2] = ["response", "code_details"];

/// The compiled router configuration.
#[derive(Debug)]
pub struct RouterRoot {
    shared: Rc<config::Compiled>,
    metrics: Metrics,
}

impl FilterRoot for RouterRoot {
    type Filter = RouterFilter;
    const NAME: &'static str = "llmgw.router";
    const UNUSED_CALLBACKS: &'static [Callback] = &[Callback::ResponseBody, Callback::StreamDone];

    fn configure(json: &[u8], _env: &dyn Env) -> Result<Self, ConfigError> {
        let raw: config::RawConfig = config_parse::parse(json)?;
        Ok(Self {
            shared: Rc::new(config::compile(raw)?),
            metrics: Metrics::default(),
        })
    }

    fn new_filter(&self) -> RouterFilter {
        RouterFilter {
            config: Rc::clone(&self.shared),
            metrics: self.metrics.clone(),
            routed: None,
            api: ClientApi::ChatCompletions,
            operation: Operation::Create,
            awaiting_body: false,
        }
    }
}

impl RouterRoot {
    /// The catalogue's models, in config order.
    pub fn models(&self) -> impl Iterator<Item = &catalogue::Model> {
        self.shared.catalogue.models()
    }

    /// The model version a name resolves to for `consumer` (tests and tools).
    pub fn resolve(&self, name: &str, consumer: Option<&str>, draw: u64) -> Option<&Rc<Model>> {
        self.shared.catalogue.resolve(name, consumer, draw)
    }
}

/// Router's errors, each becoming an OpenAI error at the edge.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("Invalid URL ({method} {path})")]
    UnknownUrl { method: String, path: String },
    #[error("The request body is empty; a JSON object with `model` is required.")]
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
    #[error("No deployment of the model `{model}` can serve this request: {}.", reasons.join("; "))]
    CannotServe { model: String, reasons: Vec<String> },
    #[error("Every deployment of the model `{model}` is failing; retry in {retry_after_s} s.")]
    AllUnhealthy { model: String, retry_after_s: u64 },
}

impl From<PeekError> for RouteError {
    fn from(err: PeekError) -> Self {
        match err {
            PeekError::Malformed(msg) => RouteError::MalformedJson(msg),
            PeekError::MissingModel => RouteError::MissingModel,
            PeekError::ModelNotString => RouteError::ModelNotString,
            PeekError::StreamNotBool => RouteError::StreamNotBool,
        }
    }
}

impl From<RouteError> for ApiError {
    fn from(err: RouteError) -> Self {
        let message = err.to_string();
        match err {
            RouteError::UnknownUrl { .. } => {
                ApiError::new(404, ErrorType::InvalidRequestError, message)
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
                ApiError::new(404, ErrorType::InvalidRequestError, message)
                    .with_param("model")
                    .with_code("model_not_found")
            }
            RouteError::CannotServe { .. } => {
                ApiError::invalid_request(message).with_code("no_deployment_can_serve")
            }
            RouteError::AllUnhealthy { retry_after_s, .. } => {
                ApiError::new(503, ErrorType::ServiceUnavailableError, message)
                    .with_code("all_deployments_unhealthy")
                    .with_header("retry-after", retry_after_s.to_string())
            }
        }
    }
}

/// What router chose for this request, kept for the response path.
struct Routed {
    model: Rc<Model>,
    /// Index of the chosen target (for a chain: the first step).
    target: usize,
    started_ms: u64,
    /// auth's consumer and team, for the request metric's labels.
    consumer: Option<String>,
    team: Option<String>,
}

/// One request through router.
pub struct RouterFilter {
    config: Rc<config::Compiled>,
    metrics: Metrics,
    routed: Option<Routed>,
    /// The client's dialect (errors are answered in it) and what it asks.
    api: ClientApi,
    operation: Operation,
    /// Headers are held until the body (or the trailers) end.
    awaiting_body: bool,
}

impl RouterFilter {
    /// Parse the body once, check the allow-list, pick a target and publish it: the cluster in
    /// [`facts::CLUSTER_HEADER`] for Envoy, the rest in [`RouterFacts`].
    fn route(&mut self, host: &mut dyn Host, body: &[u8]) -> Result<(), ApiError> {
        let peek =
            RequestFacts::parse_in(body, self.api, self.operation).map_err(RouteError::from)?;
        let requested = peek.model.as_str();
        // auth's word on the client (none without auth in front), borrowed from its record.
        let auth = facts::stored(host, facts::AUTH);
        let mut client = AuthFacts::view(auth.as_deref());
        if let Some(allowed) = &client.allowed_models {
            if !auth::model_allowed(allowed, requested) {
                return Err(auth::model_not_allowed(requested));
            }
        }
        let consumer = client.consumer.take();
        let draw = host.random_u64();
        let model = self
            .config
            .catalogue
            .resolve(requested, consumer, draw)
            .cloned()
            .ok_or_else(|| RouteError::UnknownModel(requested.to_string()))?;
        let needs = peek.needs(body.len(), self.config.default_output_tokens);
        let now_ms = host.now_ms();
        let panic_percent = self.config.health.panic_threshold_percent;
        let (chosen, panic) = {
            let state = health::SharedState {
                host: &*host,
                now_ms,
            };
            let picked = if model.fallback.is_some() {
                // Envoy walks the chain; router only checks it can serve and is not all down.
                policy::fitting(&model, &needs)
                    .and_then(|fit| policy::healthy(fit, &state, panic_percent))
                    .map(|healthy| (0, healthy.panic))
            } else {
                let draw = host_draw(draw);
                policy::select(&model, &needs, &state, draw, panic_percent).map(|selected| {
                    let index = model
                        .targets
                        .iter()
                        .position(|o| std::ptr::eq(o, selected.target))
                        .unwrap_or(0);
                    (index, selected.panic)
                })
            };
            picked.map_err(|err| match err {
                SelectError::CannotServe(reasons) => RouteError::CannotServe {
                    model: requested.to_string(),
                    reasons,
                },
                SelectError::AllUnhealthy { retry_after_ms } => RouteError::AllUnhealthy {
                    model: requested.to_string(),
                    retry_after_s: retry_after_ms.div_ceil(1000).max(1),
                },
            })?
        };
        let Some(target) = model.targets.get(chosen) else {
            return Err(RouteError::UnknownModel(requested.to_string()).into());
        };
        if panic {
            // Too few healthy targets: they all take traffic again (Envoy's panic rule).
            log::warn!(
                "llmgw.router: panic mode for model {}: under {panic_percent}% of its targets are \
                 healthy, routing across all of them",
                model.name
            );
            let labels = [("model", model.name.as_str())];
            self.metrics
                .count(host, "llmgw_router_panic_total", &labels, 1);
        }
        access_log::record(host, Field::RequestedModel, requested);
        let (cluster, targets, prices) = match &model.fallback {
            Some(chain) => (
                &chain.cluster,
                Some(chain.targets_fact.as_str()),
                chain.prices_fact.as_deref(),
            ),
            None => (&target.cluster, None, target.price_fact.as_deref()),
        };
        host.set_request_header(facts::CLUSTER_HEADER, cluster);
        // Borrowed from the body and the catalogue: the record copies them once.
        RouterFacts {
            requested_model: Some(requested),
            provider: Some(target.provider.as_str()),
            upstream_model: Some(target.model.as_str()),
            stream: peek.stream,
            targets,
            prices,
            // Text as bytes / 4, images by their pixels.
            input_tokens_estimate: peek.input_tokens(body.len()),
            max_output_tokens: peek.max_output_tokens,
            include_usage: peek.stream && peek.include_usage,
            client_api: Some(self.api),
        }
        .publish(host);
        let labelled = self.config.metrics.consumer_labels;
        self.routed = Some(Routed {
            model,
            target: chosen,
            started_ms: now_ms,
            consumer: consumer.filter(|_| labelled).map(str::to_string),
            team: client.team.take().filter(|_| labelled).map(str::to_string),
        });
        Ok(())
    }

    /// One client request, however many tries it took: `llmgw_requests_total` with the
    /// catalogue's model name (`gen_ai.request.model`), the provider that answered and the status
    /// the client got, a refusal by ratelimit included.
    fn count_request(&self, host: &mut dyn Host, routed: &Routed, target: &Target, status: u16) {
        let status = status.to_string();
        let labels = [
            ("model", routed.model.name.as_str()),
            ("provider", target.provider.as_str()),
            ("consumer", routed.consumer.as_deref().unwrap_or("-")),
            ("team", routed.team.as_deref().unwrap_or("-")),
            ("status", status.as_str()),
        ];
        self.metrics.count(host, "llmgw_requests_total", &labels, 1);
    }

    /// The target that answered: for a chain, the one whose provider the last try reached.
    fn served_by<'a>(&self, host: &dyn Host, routed: &'a Routed) -> Option<&'a Target> {
        if routed.model.fallback.is_some() {
            if let Some(bytes) = host.property(&UPSTREAM_PROVIDER) {
                let name = String::from_utf8_lossy(&bytes);
                let name = name.trim().trim_matches('"');
                if let Some(t) = routed.model.targets.iter().find(|t| t.provider == name) {
                    return Some(t);
                }
            }
        }
        routed.model.targets.get(routed.target)
    }
}

/// The selection draw: the request's random number, spread again so the rollout bucket (which
/// may use the same draw when there is no consumer) and the target choice are independent.
fn host_draw(draw: u64) -> u64 {
    catalogue::mix(draw ^ 0x5851_f42d_4c95_7f2d)
}

impl HttpFilter for RouterFilter {
    fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        // One copy of the request headers serves every read below and in the body callback.
        let all = host.request_headers();
        let header = |name: &str| headers::find(&all, name).map(str::to_string);
        let method = header(":method").unwrap_or_default();
        let path = header(":path").unwrap_or_default();
        let route_path = path.split('?').next().unwrap_or_default();
        if method == "GET" && route_path == MODELS {
            let auth = facts::stored(host, facts::AUTH);
            let allowed = AuthFacts::view(auth.as_deref()).allowed_models;
            let body = models::list_body(self.config.catalogue.names(), allowed);
            host.send_response(200, &[("content-type", "application/json")], &body);
            return Flow::Pause;
        }
        self.api = ClientApi::for_errors(route_path);
        let dialect = ClientApi::from_path(route_path);
        if let Some((_, operation)) = dialect {
            self.operation = operation;
        }
        if method != "POST" || (dialect.is_none() && route_path != EMBEDDINGS) {
            send_error_in(
                host,
                self.api,
                &RouteError::UnknownUrl { method, path }.into(),
            );
            return Flow::Pause;
        }
        if end_of_stream {
            send_error_in(host, self.api, &RouteError::EmptyBody.into());
            return Flow::Pause;
        }
        // Hold the headers until the body says which cluster to route to.
        self.awaiting_body = true;
        Flow::Pause
    }

    fn on_request_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        if !end_of_stream {
            return Flow::Pause; // Envoy buffers until the whole body is here.
        }
        self.awaiting_body = false;
        let body = host.request_body(size);
        if body.is_empty() {
            send_error_in(host, self.api, &RouteError::EmptyBody.into());
            return Flow::Pause;
        }
        match self.route(host, &body) {
            Ok(()) => Flow::Continue,
            Err(err) => {
                send_error_in(host, self.api, &err);
                Flow::Pause
            }
        }
    }

    fn on_request_trailers(&mut self, host: &mut dyn Host) -> Flow {
        if !self.awaiting_body {
            return Flow::Continue; // answered already (404, /v1/models, …)
        }
        crate::filter::end_of_body_on_trailers(self, host)
    }

    fn on_response_headers(&mut self, host: &mut dyn Host, _end_of_stream: bool) -> Flow {
        let Some(routed) = self.routed.take() else {
            return Flow::Continue; // router answered itself, or did not route
        };
        let status = host
            .response_header(":status")
            .and_then(|s| s.trim().parse::<u16>().ok())
            .unwrap_or(0);
        let details = host
            .property(&RESPONSE_CODE_DETAILS)
            .map(|d| String::from_utf8_lossy(&d).into_owned());
        // A reply a filter made itself (ratelimit's 429, say: its details are empty) is not the
        // provider's doing.
        let from_provider = details
            .as_deref()
            .is_some_and(|d| d == "via_upstream" || d.starts_with("upstream_"));
        let Some(target) = self.served_by(host, &routed) else {
            return Flow::Continue;
        };
        let now_ms = host.now_ms();
        if from_provider {
            let outcome = Outcome::of_status(status);
            // Only a 429's Retry-After sets the cool-down: one more header read, on 429s only.
            let retry_after_ms = (status == 429)
                .then(|| host.response_header("retry-after"))
                .flatten()
                .and_then(|value| retry_after::parse(&value, now_ms));
            let policy = &self.config.health;
            health::record_outcome(host, target, outcome, policy, now_ms, retry_after_ms);
            if outcome == Outcome::Success && routed.model.policy == Policy::Fastest {
                health::record_latency(host, target, now_ms.saturating_sub(routed.started_ms));
            }
        }
        self.count_request(host, &routed, target, status);
        if self.config.expose.model {
            host.set_response_header(EXPOSED_MODEL, &target.model);
        }
        if self.config.expose.provider {
            host.set_response_header(EXPOSED_PROVIDER, &target.provider);
        }
        Flow::Continue
    }
}
