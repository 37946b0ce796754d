//! auth → router → ratelimit in one module: the three downstream filters in one Wasm VM.
//!
//! Each wasm filter in an Envoy chain costs a VM per worker and a crossing into it for every
//! callback of every request, whatever the filter does (BENCHMARKS.md: the no-op floor). The
//! three downstream filters always run back to back, so deployments that use all of them can
//! load this one module instead of three: same code, same facts contract, same config
//! (one section per filter), a third of the crossings. translate stays its own upstream filter.
//!
//! [`Chain`] runs the filters the way Envoy would run them as separate filters: request
//! callbacks in order, response callbacks in reverse. A filter that pauses holds the filters
//! after it: they get their request headers (and the buffered body) only once it continues,
//! in the body callback or after a gRPC answer ([`Host::resume_request`]). A local reply ends
//! the request for every filter. The facts one filter writes for the next
//! ([`facts::DOWNSTREAM`]) still go to filter state, for translate and the access log, and the
//! chain keeps a copy: a later filter of the module reads it without a host call.

use serde::Deserialize;

use crate::auth::AuthRoot;
use crate::config::{self, ConfigError};
use crate::facts;
use crate::filter::{Callback, Env, FilterRoot, Flow, HttpFilter};
use crate::headers::HeaderMap;
use crate::host::{Host, MetricKind, SharedDataError, SharedValue};
use crate::ratelimit::RateLimitRoot;
use crate::router::RouterRoot;

/// `{"auth": {…}, "router": {…}, "ratelimit": {…}}`: each section is that filter's own
/// configuration (README); a missing section leaves its filter out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    auth: Option<serde_json::Value>,
    router: Option<serde_json::Value>,
    ratelimit: Option<serde_json::Value>,
}

/// Configure one section with its filter's own parser; paths in refusals start with the section.
fn section<R: FilterRoot>(
    name: &str,
    value: Option<serde_json::Value>,
    env: &dyn Env,
) -> Result<Option<R>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let json = serde_json::to_vec(&value).map_err(|e| ConfigError::new(name, e.to_string()))?;
    R::configure(&json, env).map(Some).map_err(|err| {
        let path = match err.path.as_str() {
            "(root)" => name.to_string(),
            p if p.starts_with('[') => format!("{name}{p}"),
            p => format!("{name}.{p}"),
        };
        ConfigError::new(path, err.reason)
    })
}

/// A budget must price every model it covers: with router and ratelimit in one module, a
/// budget covering a model with an unpriced target is refused at load (separate filters cannot
/// see each other's config; there ratelimit refuses such a request when it comes, with 500
/// `budget_unpriced_model`).
fn check_budget_prices(
    router: &RouterRoot,
    policy: &crate::ratelimit::Policy,
) -> Result<(), ConfigError> {
    for (path, restricted) in policy.budgets() {
        for model in router.models() {
            let covered = restricted
                .is_none_or(|names| model.targets.iter().any(|t| names.contains(&t.model)));
            let unpriced = model
                .targets
                .iter()
                .enumerate()
                .find(|(_, t)| t.price.is_none());
            if let (true, Some((i, target))) = (covered, unpriced) {
                return Err(ConfigError::new(
                    format!("ratelimit.{path}"),
                    format!(
                        "this budget covers model `{}`, whose target {i} ({} {}) has no price \
                         (router.models[].targets[].price): price it, or restrict the budget to \
                         priced models with `models`",
                        model.name, target.provider, target.model
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The compiled sections.
#[derive(Debug)]
pub struct GatewayRoot {
    auth: Option<AuthRoot>,
    router: Option<RouterRoot>,
    ratelimit: Option<RateLimitRoot>,
}

impl FilterRoot for GatewayRoot {
    type Filter = Chain;
    const NAME: &'static str = "llmgw.gateway";
    const UNUSED_CALLBACKS: &'static [Callback] = &[];

    fn configure(json: &[u8], env: &dyn Env) -> Result<Self, ConfigError> {
        let raw: RawGateway = config::parse(json)?;
        if raw.auth.is_none() && raw.router.is_none() && raw.ratelimit.is_none() {
            return Err(ConfigError::new(
                "(root)",
                "needs at least one of `auth`, `router`, `ratelimit`",
            ));
        }
        let root = Self {
            auth: section("auth", raw.auth, env)?,
            router: section("router", raw.router, env)?,
            ratelimit: section("ratelimit", raw.ratelimit, env)?,
        };
        if let (Some(router), Some(ratelimit)) = (&root.router, &root.ratelimit) {
            check_budget_prices(router, ratelimit.policy())?;
        }
        Ok(root)
    }

    fn new_filter(&self) -> Chain {
        let mut filters: Vec<Box<dyn HttpFilter>> = Vec::with_capacity(3);
        if let Some(root) = &self.auth {
            filters.push(Box::new(root.new_filter()));
        }
        if let Some(root) = &self.router {
            filters.push(Box::new(root.new_filter()));
        }
        if let Some(root) = &self.ratelimit {
            filters.push(Box::new(root.new_filter()));
        }
        Chain::new(filters)
    }
}

/// Filters run in sequence inside one VM, as Envoy runs a filter chain.
pub struct Chain {
    filters: Vec<Box<dyn HttpFilter>>,
    /// Filters `[0, started)` have had their request headers.
    started: usize,
    /// The filter holding the request, if one paused it.
    held_by: Option<usize>,
    /// The request headers ended the request (no body follows).
    headers_ended: bool,
    /// The request body as far as Envoy has delivered it: `(size, end_of_stream)`.
    body: Option<(usize, bool)>,
    /// A filter answered the request itself.
    replied: bool,
    /// The facts this request's filters wrote: property and value.
    facts: Vec<(String, Vec<u8>)>,
    /// Request headers as a filter of the module read them during the current callback.
    headers: HeaderCache,
}

/// The request header map one filter of the module read, kept for the next one within the
/// same callback: auth and router each read every request header, and Envoy's map does not
/// change between them but through the module's own writes, which the cache follows (a
/// removal is applied to it, a write drops it). Each callback of the chain starts without it:
/// between callbacks, filters after the module may have changed the map. One map read is
/// ~12–21 k instructions in Envoy (bench/analysis.md).
#[derive(Default)]
struct HeaderCache {
    request: std::cell::RefCell<Option<HeaderMap>>,
}

impl HeaderCache {
    fn clear(&mut self) {
        self.request.get_mut().take();
    }
}

impl Chain {
    pub fn new(filters: Vec<Box<dyn HttpFilter>>) -> Self {
        Self {
            filters,
            started: 0,
            held_by: None,
            headers_ended: false,
            body: None,
            replied: false,
            facts: Vec::new(),
            headers: HeaderCache::default(),
        }
    }

    /// Run filter `i`'s callback through a host that notices replies and resumes.
    fn call<T>(
        &mut self,
        host: &mut dyn Host,
        i: usize,
        callback: impl FnOnce(&mut dyn HttpFilter, &mut dyn Host) -> T,
    ) -> (T, Tracked) {
        let mut tracked = TrackingHost {
            inner: host,
            seen: Tracked::default(),
            facts: &mut self.facts,
            headers: &self.headers,
        };
        let out = match self.filters.get_mut(i) {
            Some(filter) => callback(filter.as_mut(), &mut tracked),
            None => callback(&mut Nothing, &mut tracked),
        };
        if tracked.seen.replied {
            self.replied = true;
        }
        (out, tracked.seen)
    }

    /// Filter `i` paused (or answered): the filters after it wait.
    fn hold(&mut self, i: usize) -> Flow {
        if !self.replied {
            self.held_by = Some(i);
        }
        Flow::Pause
    }

    /// Hand the request on from filter `from` (which let it go) to the filters after it: each
    /// gets its headers, then the body delivered so far.
    fn pass_on(&mut self, host: &mut dyn Host, from: usize) -> Flow {
        self.held_by = None;
        for i in from..self.filters.len() {
            if i >= self.started {
                self.started = i + 1;
                let end_of_stream = self.headers_ended;
                let (flow, _) = self.call(host, i, |f, h| f.on_request_headers(h, end_of_stream));
                if flow == Flow::Pause || self.replied {
                    return self.hold(i);
                }
            }
            if let Some((size, end)) = self.body {
                let (flow, _) = self.call(host, i, |f, h| f.on_request_body(h, size, end));
                if flow == Flow::Pause || self.replied {
                    return self.hold(i);
                }
            }
        }
        Flow::Continue
    }
}

impl HttpFilter for Chain {
    fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        self.headers.clear();
        self.headers_ended = end_of_stream;
        for i in 0..self.filters.len() {
            self.started = i + 1;
            let (flow, _) = self.call(host, i, |f, h| f.on_request_headers(h, end_of_stream));
            if flow == Flow::Pause || self.replied {
                return self.hold(i);
            }
        }
        Flow::Continue
    }

    fn on_request_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        self.headers.clear();
        if self.replied {
            return Flow::Pause;
        }
        self.body = Some((size, end_of_stream));
        // Envoy gives the body to every filter up to the one holding the request.
        let last = self.held_by.unwrap_or(self.filters.len().saturating_sub(1));
        for i in 0..=last.min(self.filters.len().saturating_sub(1)) {
            let (flow, _) = self.call(host, i, |f, h| f.on_request_body(h, size, end_of_stream));
            if flow == Flow::Pause || self.replied {
                return self.hold(i);
            }
        }
        match self.held_by {
            Some(held) => self.pass_on(host, held + 1),
            None => Flow::Continue,
        }
    }

    fn on_request_trailers(&mut self, host: &mut dyn Host) -> Flow {
        self.headers.clear();
        if self.replied || self.body.is_some_and(|(_, end)| end) {
            return Flow::Continue;
        }
        // The body ended with trailers: every filter gets it as ended, as it would without.
        crate::filter::end_of_body_on_trailers(self, host)
    }

    fn on_grpc_response(&mut self, host: &mut dyn Host, token: u32, status: u32, size: usize) {
        self.headers.clear();
        let mut resumed_by = None;
        for i in 0..self.started {
            let (_, seen) = self.call(host, i, |f, h| f.on_grpc_response(h, token, status, size));
            if seen.resumed && self.held_by == Some(i) {
                resumed_by = Some(i);
            }
        }
        if self.replied {
            return;
        }
        let Some(held) = resumed_by else {
            return;
        };
        // The filter that waited for the call lets the request go: it still gets the body
        // Envoy delivered meanwhile, then the filters after it run; Envoy resumes once all have.
        if let Some((size, end)) = self.body {
            let (flow, _) = self.call(host, held, |f, h| f.on_request_body(h, size, end));
            if flow == Flow::Pause || self.replied {
                self.hold(held);
                return;
            }
        }
        if self.pass_on(host, held + 1) == Flow::Continue {
            host.resume_request();
        }
    }

    fn on_response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        self.headers.clear();
        for i in (0..self.started).rev() {
            let (flow, _) = self.call(host, i, |f, h| f.on_response_headers(h, end_of_stream));
            // The downstream filters never hold a response; if one did, those before it wait.
            if flow == Flow::Pause {
                return Flow::Pause;
            }
        }
        Flow::Continue
    }

    fn on_response_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        self.headers.clear();
        for i in (0..self.started).rev() {
            let (flow, _) = self.call(host, i, |f, h| f.on_response_body(h, size, end_of_stream));
            if flow == Flow::Pause {
                return Flow::Pause;
            }
        }
        Flow::Continue
    }

    fn on_stream_done(&mut self, host: &mut dyn Host) {
        self.headers.clear();
        for i in (0..self.started).rev() {
            self.call(host, i, |f, h| f.on_stream_done(h));
        }
    }
}

/// A filter that does nothing (stands in for an index out of range; never reached).
struct Nothing;
impl HttpFilter for Nothing {}

/// What a filter did through the host during one callback.
#[derive(Debug, Default, Clone, Copy)]
struct Tracked {
    replied: bool,
    resumed: bool,
}

/// The host, with local replies and resumes noted instead of lost (a filter's `resume_request`
/// must not resume Envoy while filters after it have yet to run), and the facts the chain's
/// filters wrote kept for the filters after them.
struct TrackingHost<'a> {
    inner: &'a mut dyn Host,
    seen: Tracked,
    facts: &'a mut Vec<(String, Vec<u8>)>,
    headers: &'a HeaderCache,
}

/// The one-segment property path of a downstream fact, if `path` is one.
fn downstream_fact<'p>(path: &[&'p str]) -> Option<&'p str> {
    match path {
        [name] if facts::DOWNSTREAM.contains(name) => Some(name),
        _ => None,
    }
}

impl Host for TrackingHost<'_> {
    fn request_header(&self, name: &str) -> Option<String> {
        self.inner.request_header(name)
    }
    fn request_headers(&self) -> HeaderMap {
        let mut cached = self.headers.request.borrow_mut();
        cached
            .get_or_insert_with(|| self.inner.request_headers())
            .clone()
    }
    fn set_request_header(&mut self, name: &str, value: &str) {
        // Where Envoy puts a replaced header is its business: read the map again after.
        self.headers.request.borrow_mut().take();
        self.inner.set_request_header(name, value);
    }
    fn remove_request_header(&mut self, name: &str) {
        if let Some(map) = self.headers.request.borrow_mut().as_mut() {
            map.remove(name);
        }
        self.inner.remove_request_header(name);
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.inner.response_header(name)
    }
    fn response_headers(&self) -> HeaderMap {
        self.inner.response_headers()
    }
    fn set_response_header(&mut self, name: &str, value: &str) {
        self.inner.set_response_header(name, value);
    }
    fn remove_response_header(&mut self, name: &str) {
        self.inner.remove_response_header(name);
    }
    fn request_body(&self, size: usize) -> Vec<u8> {
        self.inner.request_body(size)
    }
    fn set_request_body(&mut self, size: usize, body: &[u8]) {
        self.inner.set_request_body(size, body);
    }
    fn response_body(&self, size: usize) -> Vec<u8> {
        self.inner.response_body(size)
    }
    fn response_body_from(&self, start: usize, len: usize) -> Vec<u8> {
        self.inner.response_body_from(start, len)
    }
    fn set_response_body(&mut self, size: usize, body: &[u8]) {
        self.inner.set_response_body(size, body);
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        if let Some(name) = downstream_fact(path) {
            if let Some((_, value)) = self.facts.iter().find(|(n, _)| n == name) {
                return Some(value.clone());
            }
        }
        self.inner.property(path)
    }
    fn set_property(&mut self, path: &[&str], value: &[u8]) {
        if let Some(name) = downstream_fact(path) {
            self.facts.retain(|(n, _)| n != name);
            self.facts.push((name.to_string(), value.to_vec()));
        }
        self.inner.set_property(path, value);
    }
    fn shared_data(&self, key: &str) -> SharedValue {
        self.inner.shared_data(key)
    }
    fn set_shared_data(
        &mut self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError> {
        self.inner.set_shared_data(key, value, cas)
    }
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.seen.replied = true;
        self.inner.send_response(status, headers, body);
    }
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }
    fn random_u64(&mut self) -> u64 {
        self.inner.random_u64()
    }
    fn grpc_call(
        &mut self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout_ms: u64,
    ) -> Option<u32> {
        self.inner
            .grpc_call(cluster, service, method, message, timeout_ms)
    }
    fn grpc_response_body(&self, size: usize) -> Vec<u8> {
        self.inner.grpc_response_body(size)
    }
    fn resume_request(&mut self) {
        // The chain resumes Envoy itself, once every filter after this one has run.
        self.seen.resumed = true;
    }
    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        self.inner.define_metric(kind, name)
    }
    fn increment_metric(&mut self, id: u32, delta: i64) {
        self.inner.increment_metric(id, delta);
    }
    fn record_metric(&mut self, id: u32, value: u64) {
        self.inner.record_metric(id, value);
    }
}

#[cfg(test)]
mod tests;
