//! The [`Host`] trait: everything a filter may ask of Envoy.
//!
//! Implemented over proxy-wasm by `llmgw-wasm-host` and by [`crate::testing::FakeHost`] in
//! tests. Every call is fallible on the Envoy side (a header write after headers were sent,
//! say); implementations log and carry on rather than panic, so methods return plain values.
//! No method has a default body: a new host must implement every call, so none is forgotten
//! silently.

use crate::dialect::ClientApi;
use crate::error::ApiError;
use crate::headers::HeaderMap;

/// Shared data could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SharedDataError {
    /// Another worker wrote the key since we read it: read again and retry.
    #[error("compare-and-swap mismatch")]
    CasMismatch,
    #[error("shared data unavailable")]
    Unavailable,
}

/// A value in Envoy's shared data and its compare-and-swap token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedValue {
    pub data: Option<Vec<u8>>,
    pub cas: Option<u32>,
}

/// Envoy's metric types (proxy-wasm `MetricType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

pub trait Host {
    /// A request header (names are lower-case in Envoy).
    fn request_header(&self, name: &str) -> Option<String>;
    /// All request headers, in order, pseudo-headers included.
    fn request_headers(&self) -> HeaderMap;
    /// Set (replace) a request header.
    fn set_request_header(&mut self, name: &str, value: &str);
    fn remove_request_header(&mut self, name: &str);

    fn response_header(&self, name: &str) -> Option<String>;
    /// All response headers, in order, `:status` included.
    fn response_headers(&self) -> HeaderMap;
    fn set_response_header(&mut self, name: &str, value: &str);
    fn remove_response_header(&mut self, name: &str);

    /// The first `size` bytes of the buffered request body (the whole body when buffered to its
    /// end, the current chunk when streaming).
    fn request_body(&self, size: usize) -> Vec<u8>;
    /// Replace the first `size` bytes of the buffered request body with `body`.
    fn set_request_body(&mut self, size: usize, body: &[u8]);
    fn response_body(&self, size: usize) -> Vec<u8>;
    /// `len` bytes of the response body from byte `start` (the end of a piece, without copying
    /// what comes before it into the VM).
    fn response_body_from(&self, start: usize, len: usize) -> Vec<u8>;
    fn set_response_body(&mut self, size: usize, body: &[u8]);

    /// A stream property, e.g. `["xds", "upstream_host_metadata", "filter_metadata", "llmgw", "provider"]`.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// Set a stream property (Envoy filter state `wasm.<name>`), readable with [`Host::property`]
    /// by every filter of the stream, upstream filters and later tries included.
    fn set_property(&mut self, path: &[&str], value: &[u8]);

    /// Envoy shared data, common to every worker thread of the VM (same `vm_id`).
    fn shared_data(&self, key: &str) -> SharedValue;
    /// Write shared data; with `cas` the write fails if another worker wrote the key since.
    fn set_shared_data(
        &mut self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError>;

    /// Answer the client directly; the request goes no further.
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]);

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// A uniformly distributed random number (not for secrets).
    fn random_u64(&mut self) -> u64;

    /// Start a unary gRPC call to Envoy cluster `cluster`; its answer reaches
    /// [`crate::filter::HttpFilter::on_grpc_response`] with the token returned here. `None`: the
    /// call could not be started (unknown cluster, or a host without callouts).
    fn grpc_call(
        &mut self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout_ms: u64,
    ) -> Option<u32>;
    /// The first `size` bytes of the gRPC answer being delivered (inside `on_grpc_response`).
    fn grpc_response_body(&self, size: usize) -> Vec<u8>;
    /// Let a request paused in a callback go on (after a callout answered).
    fn resume_request(&mut self);
    /// Define (or look up) a metric by its full stat name; `None` if Envoy refuses it.
    /// Callers cache the id: see [`crate::metrics::Metrics`].
    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Option<u32>;
    fn increment_metric(&mut self, id: u32, delta: i64);
    fn record_metric(&mut self, id: u32, value: u64);
}

/// A property path as proxy-wasm's `proxy_get_property` / `proxy_set_property` take it: the
/// segments joined by NUL (`["xds", "cluster_name"]` is `xds\0cluster_name`). `None` when a
/// segment holds a NUL itself: the host would split it there and read some other property.
///
/// <https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_get_property>
pub fn property_path(path: &[&str]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.iter().map(|s| s.len() + 1).sum());
    for (i, segment) in path.iter().enumerate() {
        if segment.as_bytes().contains(&0) {
            return None;
        }
        if i > 0 {
            out.push(0);
        }
        out.extend(segment.as_bytes());
    }
    Some(out)
}

/// The next number of a splitmix64 generator with state `state`: what both hosts'
/// [`Host::random_u64`] return. Fast and well distributed, good enough for weighted splits; not
/// for secrets.
///
/// <https://prng.di.unimi.it/splitmix64.c>
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Answer with an OpenAI-format error body.
pub fn send_error(host: &mut dyn Host, error: &ApiError) {
    send_error_in(host, ClientApi::ChatCompletions, error);
}

/// [`send_error`] in the client's dialect: Anthropic's error shape for a Messages client.
pub fn send_error_in(host: &mut dyn Host, api: ClientApi, error: &ApiError) {
    log::debug!("llmgw: answering {error}");
    crate::access_log::record(host, crate::access_log::Field::Error, error.class());
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    headers.extend(error.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    host.send_response(error.status, &headers, &api.error_body(error));
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn property_paths_are_joined_by_nul() {
        let path = ["xds", "upstream_host_metadata", "filter_metadata", "llmgw"];
        assert_eq!(
            property_path(&path).unwrap(),
            b"xds\0upstream_host_metadata\0filter_metadata\0llmgw"
        );
        assert_eq!(
            property_path(&["llmgw.consumer"]).unwrap(),
            b"llmgw.consumer"
        );
        assert_eq!(property_path(&[]).unwrap(), b"");
        assert_eq!(property_path(&["a", ""]).unwrap(), b"a\0");
    }

    #[test]
    fn splitmix64_matches_the_reference() {
        // The first outputs of the reference implementation seeded with 0.
        let mut state = 0;
        assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut state), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn a_segment_with_a_nul_is_refused_not_split() {
        assert_eq!(property_path(&["xds", "cluster\0name"]), None);
    }
}
