//! [`FakeHost`]: an in-memory [`Host`] for tests, built builder-style.
//!
//! ```ignore
//! let mut host = FakeHost::new().with_request_header("authorization", "Bearer k");
//! let flow = filter.on_request_headers(&mut host, false);
//! assert_eq!(host.local_response.unwrap().status, 401);
//! ```
#![allow(clippy::unwrap_used)]

pub mod scenario;

use std::collections::HashMap;

use crate::facts::{AuthFacts, Fact, RateLimitFacts, RouterFacts};
use crate::headers::HeaderMap;
use crate::host::{Host, MetricKind, SharedDataError, SharedValue};

/// A reply sent with [`Host::send_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LocalResponse {
    pub fn json(&self) -> serde_json::Value {
        crate::json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default, Clone)]
pub struct FakeHost {
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub properties: HashMap<Vec<String>, Vec<u8>>,
    pub shared: HashMap<String, (Vec<u8>, u32)>,
    pub local_response: Option<LocalResponse>,
    pub now_ms: u64,
    /// Values handed out by `random_u64`, in turn; 0 once used up.
    pub randoms: Vec<u64>,
    /// Make the next N compare-and-swap writes fail, as if another worker got there first.
    pub cas_conflicts: u32,
    /// gRPC calls started: (cluster, service, method, message).
    pub grpc_calls: Vec<(String, String, String, Vec<u8>)>,
    /// `grpc_call` fails to start (no such cluster).
    pub grpc_unavailable: bool,
    /// What `grpc_response_body` returns.
    pub grpc_response: Vec<u8>,
    /// How often `resume_request` was called.
    pub resumed: u32,
    /// Metrics by stat name: kind, counter value, histogram samples.
    pub metrics: Vec<(String, MetricKind, i64, Vec<u64>)>,
    /// How many times `define_metric` was called.
    pub metrics_defined: usize,
    /// How many `Host` calls the filters made: in Envoy each is a call out of the VM (and, for
    /// one that returns data, an allocation call back into it). `request_cost` prints them.
    pub host_calls: std::cell::Cell<u32>,
    /// Every property path read, in order.
    pub property_reads: std::cell::RefCell<Vec<String>>,
    /// Every host call, by name and argument, in order.
    pub call_log: std::cell::RefCell<Vec<String>>,
}

impl FakeHost {
    fn tick(&self) {
        self.host_calls.set(self.host_calls.get() + 1);
    }

    fn log_call(&self, what: String) {
        self.call_log.borrow_mut().push(what);
    }

    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_request_header(mut self, name: &str, value: &str) -> Self {
        self.request_headers
            .push((name.to_string(), value.to_string()));
        self
    }

    pub fn with_response_header(mut self, name: &str, value: &str) -> Self {
        self.response_headers
            .push((name.to_string(), value.to_string()));
        self
    }

    pub fn with_request_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.request_body = body.into();
        self
    }

    pub fn with_response_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.response_body = body.into();
        self
    }

    pub fn with_property(mut self, path: &[&str], value: &[u8]) -> Self {
        self.properties
            .insert(path.iter().map(|s| s.to_string()).collect(), value.to_vec());
        self
    }

    /// A writer's facts as a later filter finds them in filter state.
    pub fn with_fact<F: Fact>(mut self, facts: &F) -> Self {
        self.properties
            .insert(vec![F::PROPERTY.to_string()], facts.encode());
        self
    }

    /// A writer's facts in filter state (`None`: it wrote none).
    pub fn fact<F: Fact>(&self) -> Option<F> {
        F::decode(self.properties.get(&vec![F::PROPERTY.to_string()])?)
    }

    /// auth's facts as the filters after it read them (defaults when none).
    pub fn auth_facts(&self) -> AuthFacts {
        self.fact().unwrap_or_default()
    }

    /// router's facts as the filters after it read them (defaults when none).
    pub fn routed(&self) -> RouterFacts {
        self.fact().unwrap_or_default()
    }

    /// auth's facts, changed by `edit`.
    pub fn with_auth(self, edit: impl FnOnce(&mut AuthFacts)) -> Self {
        let mut facts = self.fact::<AuthFacts>().unwrap_or_default();
        edit(&mut facts);
        self.with_fact(&facts)
    }

    /// router's facts, changed by `edit`.
    pub fn with_routed(self, edit: impl FnOnce(&mut RouterFacts)) -> Self {
        let mut facts = self.fact::<RouterFacts>().unwrap_or_default();
        edit(&mut facts);
        self.with_fact(&facts)
    }

    /// router saw a stream; `asked`: its client asked for usage (`stream_options.include_usage`).
    pub fn with_stream_usage(self, asked: bool) -> Self {
        self.with_routed(|r| {
            r.stream = true;
            r.include_usage = asked;
        })
    }

    /// ratelimit forced the stream's usage.
    pub fn forced_usage(&self) -> bool {
        self.fact::<RateLimitFacts>().is_some_and(|f| f.force_usage)
    }

    /// auth named this consumer.
    pub fn with_consumer(self, consumer: &str) -> Self {
        self.with_auth(|a| a.consumer = Some(consumer.to_string()))
    }

    /// auth named this team.
    pub fn with_team(self, team: &str) -> Self {
        self.with_auth(|a| a.team = Some(team.to_string()))
    }

    /// router chose this provider.
    pub fn with_provider(self, provider: &str) -> Self {
        self.with_routed(|r| r.provider = Some(provider.to_string()))
    }

    /// router chose this upstream model.
    pub fn with_upstream_model(self, model: &str) -> Self {
        self.with_routed(|r| r.upstream_model = Some(model.to_string()))
    }

    pub fn with_now_ms(mut self, now_ms: u64) -> Self {
        self.now_ms = now_ms;
        self
    }

    pub fn with_randoms(mut self, randoms: &[u64]) -> Self {
        self.randoms = randoms.iter().rev().copied().collect();
        self
    }

    /// A counter's value, if it was defined.
    pub fn counter(&self, stat: &str) -> Option<i64> {
        self.metrics
            .iter()
            .find(|(name, kind, _, _)| name == stat && *kind == MetricKind::Counter)
            .map(|(_, _, value, _)| *value)
    }

    /// A histogram's samples (empty if it was never defined).
    pub fn histogram(&self, stat: &str) -> Vec<u64> {
        self.metrics
            .iter()
            .find(|(name, kind, _, _)| name == stat && *kind == MetricKind::Histogram)
            .map(|(_, _, _, samples)| samples.clone())
            .unwrap_or_default()
    }

    /// The request header as the next filter would see it.
    pub fn req(&self, name: &str) -> Option<&str> {
        find(&self.request_headers, name)
    }

    /// The response header as the client would see it.
    pub fn resp(&self, name: &str) -> Option<&str> {
        find(&self.response_headers, name)
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    remove(headers, name);
    headers.push((name.to_string(), value.to_string()));
}

fn remove(headers: &mut Vec<(String, String)>, name: &str) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
}

fn replace_prefix(buffer: &mut Vec<u8>, size: usize, data: &[u8]) {
    let size = size.min(buffer.len());
    buffer.splice(..size, data.iter().copied());
}

impl Host for FakeHost {
    fn request_header(&self, name: &str) -> Option<String> {
        self.tick();
        self.log_call(format!("request_header {:?}", name));
        self.req(name).map(str::to_string)
    }
    fn request_headers(&self) -> HeaderMap {
        self.tick();
        self.log_call("request_headers".to_string());
        self.request_headers.iter().map(|(n, v)| (n, v)).collect()
    }
    fn set_request_header(&mut self, name: &str, value: &str) {
        self.tick();
        self.log_call(format!("set_request_header {:?}", name));
        set(&mut self.request_headers, name, value)
    }
    fn remove_request_header(&mut self, name: &str) {
        self.tick();
        self.log_call(format!("remove_request_header {:?}", name));
        remove(&mut self.request_headers, name)
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.tick();
        self.log_call(format!("response_header {:?}", name));
        self.resp(name).map(str::to_string)
    }
    fn response_headers(&self) -> HeaderMap {
        self.tick();
        self.log_call("response_headers".to_string());
        self.response_headers.iter().map(|(n, v)| (n, v)).collect()
    }
    fn set_response_header(&mut self, name: &str, value: &str) {
        self.tick();
        self.log_call(format!("set_response_header {:?}", name));
        set(&mut self.response_headers, name, value)
    }
    fn remove_response_header(&mut self, name: &str) {
        self.tick();
        self.log_call(format!("remove_response_header {:?}", name));
        remove(&mut self.response_headers, name)
    }
    fn request_body(&self, size: usize) -> Vec<u8> {
        self.tick();
        self.log_call("request_body".to_string());
        self.request_body[..size.min(self.request_body.len())].to_vec()
    }
    fn set_request_body(&mut self, size: usize, body: &[u8]) {
        self.tick();
        self.log_call("set_request_body".to_string());
        replace_prefix(&mut self.request_body, size, body)
    }
    fn response_body(&self, size: usize) -> Vec<u8> {
        self.tick();
        self.log_call("response_body".to_string());
        self.response_body[..size.min(self.response_body.len())].to_vec()
    }
    fn response_body_from(&self, start: usize, len: usize) -> Vec<u8> {
        self.tick();
        self.log_call("response_body_from".to_string());
        let end = start.saturating_add(len).min(self.response_body.len());
        self.response_body[start.min(end)..end].to_vec()
    }
    fn set_response_body(&mut self, size: usize, body: &[u8]) {
        self.tick();
        self.log_call("set_response_body".to_string());
        replace_prefix(&mut self.response_body, size, body)
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.tick();
        self.log_call(format!("property {:?}", path));
        self.property_reads.borrow_mut().push(path.join("."));
        let key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.properties.get(&key).cloned()
    }
    fn set_property(&mut self, path: &[&str], value: &[u8]) {
        self.tick();
        self.log_call(format!("set_property {:?}", path));
        self.properties
            .insert(path.iter().map(|s| s.to_string()).collect(), value.to_vec());
    }
    fn shared_data(&self, key: &str) -> SharedValue {
        self.tick();
        self.log_call(format!("shared_data {:?}", key));
        match self.shared.get(key) {
            Some((data, cas)) => SharedValue {
                data: Some(data.clone()),
                cas: Some(*cas),
            },
            None => SharedValue::default(),
        }
    }
    fn set_shared_data(
        &mut self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError> {
        self.tick();
        self.log_call(format!("set_shared_data {:?}", key));
        if cas.is_some() && self.cas_conflicts > 0 {
            self.cas_conflicts -= 1;
            return Err(SharedDataError::CasMismatch);
        }
        let current = self.shared.get(key).map(|(_, c)| *c);
        if let (Some(expected), Some(current)) = (cas, current) {
            if expected != current {
                return Err(SharedDataError::CasMismatch);
            }
        }
        let next = current.unwrap_or(0) + 1;
        self.shared.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.tick();
        self.log_call("send_response".to_string());
        self.local_response = Some(LocalResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        });
    }
    fn now_ms(&self) -> u64 {
        self.tick();
        self.log_call("now_ms".to_string());
        self.now_ms
    }
    fn random_u64(&mut self) -> u64 {
        // No tick: every host draws from its own generator in the module (`host::splitmix64`),
        // no call out of it.
        self.randoms.pop().unwrap_or(0)
    }
    fn grpc_call(
        &mut self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        _timeout_ms: u64,
    ) -> Option<u32> {
        self.tick();
        self.log_call("grpc_call".to_string());
        if self.grpc_unavailable {
            return None;
        }
        self.grpc_calls.push((
            cluster.to_string(),
            service.to_string(),
            method.to_string(),
            message.to_vec(),
        ));
        Some(self.grpc_calls.len() as u32)
    }
    fn grpc_response_body(&self, size: usize) -> Vec<u8> {
        self.tick();
        self.log_call("grpc_response_body".to_string());
        self.grpc_response[..size.min(self.grpc_response.len())].to_vec()
    }
    fn resume_request(&mut self) {
        self.tick();
        self.log_call("resume_request".to_string());
        self.resumed += 1;
    }
    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        self.tick();
        self.log_call(format!("define_metric {:?}", name));
        // The native host can only define the listed families: so must every test.
        assert!(
            crate::metrics::family_of(kind, name).is_some(),
            "metric {name} ({kind:?}) is not in llmgw_core::metrics::FAMILIES"
        );
        self.metrics_defined += 1;
        let found = self
            .metrics
            .iter()
            .position(|(n, k, _, _)| n == name && *k == kind);
        Some(found.unwrap_or_else(|| {
            self.metrics.push((name.to_string(), kind, 0, Vec::new()));
            self.metrics.len() - 1
        }) as u32)
    }
    fn increment_metric(&mut self, id: u32, delta: i64) {
        self.tick();
        let name = self.metrics.get(id as usize).map(|m| m.0.clone());
        self.log_call(format!("increment_metric {name:?}"));
        if let Some(metric) = self.metrics.get_mut(id as usize) {
            metric.2 += delta;
        }
    }
    fn record_metric(&mut self, id: u32, value: u64) {
        self.tick();
        let name = self.metrics.get(id as usize).map(|m| m.0.clone());
        self.log_call(format!("record_metric {name:?}"));
        if let Some(metric) = self.metrics.get_mut(id as usize) {
            metric.3.push(value);
        }
    }
}
