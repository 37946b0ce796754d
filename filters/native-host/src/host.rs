//! [`NativeHost`]: the core [`Host`] over Envoy's dynamic module callbacks, for one stream.
//!
//! Mirrors `llmgw-wasm-host`'s `ProxyWasmHost`: failures are logged and the request goes on.
//! Where the two ABIs differ, this side reproduces what the filters saw through proxy-wasm:
//! - a body callback sees everything buffered so far plus the piece just received (proxy-wasm
//!   hands the filter Envoy's buffered body the same way);
//! - properties: a fact `llmgw.<name>` is Envoy filter state `wasm.llmgw.<name>`, the key a wasm
//!   filter's property has, so access logs, facts and mixed native/wasm chains use one name;
//! - shared data lives in process memory ([`crate::shared_data`]);
//! - a gRPC call travels as an HTTP/2 callout ([`crate::grpc`]).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use llmgw_core::headers::HeaderMap;
use llmgw_core::host::{Host, MetricKind, SharedDataError, SharedValue};

use crate::abi::{self, body_type, header_type, EnvoyBuffer, FilterEnvoyPtr, ModuleBuffer};
use crate::config::FilterConfig;
use crate::{grpc, shared_data};

/// Which body callback is running: only there does Envoy hand over a received piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Other,
    RequestBody,
    ResponseBody,
}

/// The core `Host` for one stream of one filter.
pub struct NativeHost {
    envoy: FilterEnvoyPtr,
    config: Arc<FilterConfig>,
    rng: u64,
    pub(crate) phase: Phase,
    /// The message of the gRPC answer being delivered (`on_grpc_response`).
    pub(crate) grpc_message: Vec<u8>,
}

/// The filter-state key of a wasm filter's property `name`: Envoy prefixes `wasm.`.
const WASM_PREFIX: &str = "wasm.";

/// Room for `wasm.` + the longest fact or field name on the stack (`wasm.llmgw.requested_model`
/// is 26 bytes); a longer name takes the heap.
const KEY_ON_STACK: usize = 64;

/// Run `f` with the filter-state key of property `name` (`wasm.<name>`), built on the stack:
/// each request writes ~15 keys and reads ~5, and a `format!` for each cost ~800 instructions
/// (bench/analysis.md, "Native build").
fn with_state_key<T>(name: &str, f: impl FnOnce(&[u8]) -> T) -> T {
    let len = WASM_PREFIX.len() + name.len();
    if len > KEY_ON_STACK {
        return f(format!("{WASM_PREFIX}{name}").as_bytes());
    }
    let mut key = [0u8; KEY_ON_STACK];
    key[..WASM_PREFIX.len()].copy_from_slice(WASM_PREFIX.as_bytes());
    key[WASM_PREFIX.len()..len].copy_from_slice(name.as_bytes());
    f(&key[..len])
}

/// Header maps of up to this many headers are listed on the stack (a chat request has ~10).
const HEADERS_ON_STACK: usize = 32;
/// Bodies in up to this many chunks likewise (a chat request's body is one or two).
const CHUNKS_ON_STACK: usize = 8;

/// Run `f` on the `count` items `fill` writes (Envoy's listing of headers or body chunks): on
/// the stack up to `N` of them, else on the heap. `fill` failing gives `f` nothing.
fn filled<T: Copy, R, const N: usize>(
    null: T,
    count: usize,
    fill: impl FnOnce(*mut T) -> bool,
    f: impl FnOnce(&[T]) -> R,
) -> R {
    if count == 0 {
        return f(&[]);
    }
    let mut stack = [null; N];
    let mut heap = Vec::new();
    let items = match stack.get_mut(..count) {
        Some(items) => items,
        None => {
            heap.resize(count, null);
            &mut heap[..]
        }
    };
    if fill(items.as_mut_ptr()) {
        f(items)
    } else {
        f(&[])
    }
}

impl NativeHost {
    pub fn new(envoy: FilterEnvoyPtr, config: Arc<FilterConfig>, seed: u64) -> Self {
        Self {
            envoy,
            config,
            rng: seed | 1,
            phase: Phase::Other,
            grpc_message: Vec::new(),
        }
    }

    fn header(&self, kind: u32, name: &str) -> Option<String> {
        let mut value = EnvoyBuffer::NULL;
        let mut count = 0usize;
        // SAFETY: `self.envoy` is the live filter of this stream (hooks run on its worker while
        // Envoy's filter exists); `name` outlives the call; `value` and `count` are writable.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                self.envoy,
                kind,
                ModuleBuffer::from(name),
                &mut value,
                0,
                &mut count,
            )
        };
        if !ok || count == 0 {
            return None;
        }
        // SAFETY: Envoy just filled `value`; it is read before any other callback.
        Some(String::from_utf8_lossy(unsafe { value.bytes() }).into_owned())
    }

    fn headers(&self, kind: u32) -> HeaderMap {
        // SAFETY: live filter pointer (see `header`).
        let size =
            unsafe { abi::envoy_dynamic_module_callback_http_get_headers_size(self.envoy, kind) };
        let fill = |raw: *mut abi::EnvoyHttpHeader| {
            // SAFETY: `raw` has room for the `size` headers Envoy just counted.
            unsafe { abi::envoy_dynamic_module_callback_http_get_headers(self.envoy, kind, raw) }
        };
        filled::<_, _, HEADERS_ON_STACK>(abi::EnvoyHttpHeader::NULL, size, fill, |raw| {
            let bytes = |ptr, length| {
                // SAFETY: Envoy filled these during this hook; nothing was set since.
                unsafe { EnvoyBuffer { ptr, length }.bytes() }
            };
            HeaderMap::from_pairs(raw.iter().map(|h| {
                (
                    bytes(h.key_ptr, h.key_length),
                    bytes(h.value_ptr, h.value_length),
                )
            }))
        })
    }

    fn set_header(&self, kind: u32, name: &str, value: Option<&str>) {
        let value = value.map_or(ModuleBuffer::NULL, ModuleBuffer::from);
        // SAFETY: live filter pointer; `name` and `value` outlive the call (Envoy copies them).
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                self.envoy,
                kind,
                ModuleBuffer::from(name),
                value,
            )
        };
        if !ok {
            log::warn!("llmgw: set header {name} failed");
        }
        if kind == header_type::REQUEST {
            // Route again on the new headers (router's `x-llmgw-cluster` is set once the body
            // is read), as Envoy's wasm host does on every request header change; a no-op where
            // routing is over (upstream filters).
            // SAFETY: live filter pointer.
            unsafe { abi::envoy_dynamic_module_callback_http_clear_route_cache(self.envoy) }
        }
    }

    /// Run `f` on the chunks of body `kind` (none when Envoy has no such body).
    fn with_chunks<R>(&self, kind: u32, f: impl FnOnce(&[EnvoyBuffer]) -> R) -> R {
        // SAFETY: live filter pointer.
        let count = unsafe {
            abi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.envoy, kind)
        };
        let fill = |chunks: *mut EnvoyBuffer| {
            // SAFETY: `chunks` has room for the `count` buffers Envoy just counted.
            unsafe {
                abi::envoy_dynamic_module_callback_http_get_body_chunks(self.envoy, kind, chunks)
            }
        };
        filled::<_, _, CHUNKS_ON_STACK>(EnvoyBuffer::NULL, count, fill, f)
    }

    /// (received, buffered) body types of a direction.
    fn body_types(request: bool) -> (u32, u32) {
        if request {
            (body_type::RECEIVED_REQUEST, body_type::BUFFERED_REQUEST)
        } else {
            (body_type::RECEIVED_RESPONSE, body_type::BUFFERED_RESPONSE)
        }
    }

    fn in_body(&self, request: bool) -> bool {
        self.phase
            == if request {
                Phase::RequestBody
            } else {
                Phase::ResponseBody
            }
    }

    /// Did this body callback receive the very buffer an earlier filter buffered?
    fn received_is_buffered(&self, request: bool) -> bool {
        // SAFETY: live filter pointer; a plain query.
        unsafe {
            if request {
                abi::envoy_dynamic_module_callback_http_received_buffered_request_body(self.envoy)
            } else {
                abi::envoy_dynamic_module_callback_http_received_buffered_response_body(self.envoy)
            }
        }
    }

    /// The body as proxy-wasm shows it, piece by piece: what is buffered, then what this
    /// callback received.
    fn for_each_part(&self, request: bool, mut f: impl FnMut(&[u8])) {
        let (received, buffered) = Self::body_types(request);
        let mut each = |chunks: &[EnvoyBuffer]| {
            for chunk in chunks {
                // SAFETY: Envoy filled the chunk list during this hook; nothing changed since.
                f(unsafe { chunk.bytes() });
            }
        };
        if !self.in_body(request) {
            self.with_chunks(buffered, &mut each);
        } else if self.received_is_buffered(request) {
            self.with_chunks(received, &mut each);
        } else {
            self.with_chunks(buffered, &mut each);
            self.with_chunks(received, &mut each);
        }
    }

    /// The body's size as [`Self::for_each_part`] counts it (the size the filter is told).
    pub fn body_size(&self, request: bool) -> usize {
        let (received, buffered) = Self::body_types(request);
        // SAFETY: live filter pointer; plain queries.
        let size = |kind| unsafe {
            abi::envoy_dynamic_module_callback_http_get_body_size(self.envoy, kind)
        };
        if !self.in_body(request) {
            size(buffered)
        } else if self.received_is_buffered(request) {
            size(received)
        } else {
            size(buffered) + size(received)
        }
    }

    /// `len` bytes of the body from `start`, copied out of Envoy's chunks.
    fn body_range(&self, request: bool, start: usize, len: usize) -> Vec<u8> {
        let end = start.saturating_add(len);
        let available = self.body_size(request).saturating_sub(start);
        let mut out = Vec::with_capacity(len.min(available));
        let mut offset = 0usize;
        self.for_each_part(request, |bytes| {
            let (from, to) = (offset, offset + bytes.len());
            offset = to;
            if to <= start || from >= end {
                return;
            }
            let lo = start.saturating_sub(from);
            let hi = bytes.len().min(end - from);
            out.extend_from_slice(bytes.get(lo..hi).unwrap_or_default());
        });
        out
    }

    /// Replace the first `size` bytes of the body with `body` (proxy-wasm's `set_buffer`).
    fn set_body(&self, request: bool, size: usize, body: &[u8]) {
        let total = self.body_size(request);
        let mut whole = body.to_vec();
        if size < total {
            whole.extend(self.body_range(request, size, total - size));
        }
        let (received, buffered) = Self::body_types(request);
        // Empty both (in a body callback the received piece joins the buffer after it, so the
        // new body goes into the received piece; elsewhere only the buffer exists).
        let target = if self.in_body(request) {
            received
        } else {
            buffered
        };
        // SAFETY: live filter pointer; `whole` outlives the append (Envoy copies it).
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_drain_body(self.envoy, buffered, usize::MAX);
            if target == received {
                abi::envoy_dynamic_module_callback_http_drain_body(
                    self.envoy,
                    received,
                    usize::MAX,
                );
            }
            abi::envoy_dynamic_module_callback_http_append_body(
                self.envoy,
                target,
                ModuleBuffer::from(whole.as_slice()),
            )
        };
        if !ok {
            log::warn!("llmgw: set body failed");
        }
    }

    /// A property llmgw reads from Envoy itself (not a fact): endpoint metadata, attributes.
    fn envoy_property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let mut result = EnvoyBuffer::NULL;
        let ok = match path {
            // SAFETY: live filter pointer; the module buffers outlive the call; Envoy fills
            // `result`, read right after.
            ["xds", "upstream_host_metadata", "filter_metadata", namespace, key] => unsafe {
                abi::envoy_dynamic_module_callback_http_get_metadata_string(
                    self.envoy,
                    abi::metadata_source::HOST,
                    ModuleBuffer::from(*namespace),
                    ModuleBuffer::from(*key),
                    &mut result,
                )
            },
            // SAFETY: as above.
            ["response", "code_details"] => unsafe {
                abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
                    self.envoy,
                    abi::attribute::RESPONSE_CODE_DETAILS,
                    &mut result,
                )
            },
            _ => {
                log::warn!("llmgw: property {path:?} is not available in the native build");
                false
            }
        };
        // SAFETY: filled by Envoy just now.
        (ok && !result.ptr.is_null()).then(|| unsafe { result.bytes() }.to_vec())
    }
}

impl Host for NativeHost {
    fn request_header(&self, name: &str) -> Option<String> {
        self.header(header_type::REQUEST, name)
    }
    fn request_headers(&self) -> HeaderMap {
        self.headers(header_type::REQUEST)
    }
    fn set_request_header(&mut self, name: &str, value: &str) {
        self.set_header(header_type::REQUEST, name, Some(value));
    }
    fn remove_request_header(&mut self, name: &str) {
        self.set_header(header_type::REQUEST, name, None);
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.header(header_type::RESPONSE, name)
    }
    fn response_headers(&self) -> HeaderMap {
        self.headers(header_type::RESPONSE)
    }
    fn set_response_header(&mut self, name: &str, value: &str) {
        self.set_header(header_type::RESPONSE, name, Some(value));
    }
    fn remove_response_header(&mut self, name: &str) {
        self.set_header(header_type::RESPONSE, name, None);
    }
    fn request_body(&self, size: usize) -> Vec<u8> {
        self.body_range(true, 0, size)
    }
    fn set_request_body(&mut self, size: usize, body: &[u8]) {
        self.set_body(true, size, body);
    }
    fn response_body(&self, size: usize) -> Vec<u8> {
        self.body_range(false, 0, size)
    }
    fn response_body_from(&self, start: usize, len: usize) -> Vec<u8> {
        self.body_range(false, start, len)
    }
    fn set_response_body(&mut self, size: usize, body: &[u8]) {
        self.set_body(false, size, body);
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let [name] = path else {
            return self.envoy_property(path);
        };
        let mut result = EnvoyBuffer::NULL;
        let ok = with_state_key(name, |key| {
            // SAFETY: live filter pointer; `key` outlives the call; `result` is read right
            // after. The typed read serializes any object: ours (bytes) and a wasm filter's
            // `CelState`.
            unsafe {
                abi::envoy_dynamic_module_callback_http_get_filter_state_typed(
                    self.envoy,
                    ModuleBuffer::from(key),
                    &mut result,
                )
            }
        });
        // SAFETY: filled by Envoy just now.
        ok.then(|| unsafe { result.bytes() }.to_vec())
    }
    fn set_property(&mut self, path: &[&str], value: &[u8]) {
        let [name] = path else {
            log::warn!("llmgw: set property {path:?}: only filter state can be set");
            return;
        };
        let ok = with_state_key(name, |key| {
            // SAFETY: live filter pointer; `key` and `value` outlive the call (Envoy copies
            // them).
            unsafe {
                abi::envoy_dynamic_module_callback_http_set_filter_state_bytes(
                    self.envoy,
                    ModuleBuffer::from(key),
                    ModuleBuffer::from(value),
                )
            }
        });
        if !ok {
            log::warn!("llmgw: set filter state {WASM_PREFIX}{name} failed");
        }
    }
    fn shared_data(&self, key: &str) -> SharedValue {
        shared_data::get(key)
    }
    fn set_shared_data(
        &mut self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError> {
        shared_data::set(key, value, cas)
    }
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let mut headers: Vec<abi::ModuleHttpHeader> = headers
            .iter()
            .map(|(name, value)| abi::ModuleHttpHeader::new(name, value))
            .collect();
        // SAFETY: live filter pointer; `headers` and `body` (and the strings they point into)
        // outlive the call, which copies them into the local reply.
        unsafe {
            abi::envoy_dynamic_module_callback_http_send_response(
                self.envoy,
                u32::from(status),
                headers.as_mut_ptr(),
                headers.len(),
                ModuleBuffer::from(body),
                ModuleBuffer::from("llmgw"),
            );
        }
    }
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
    fn random_u64(&mut self) -> u64 {
        llmgw_core::host::splitmix64(&mut self.rng)
    }
    fn grpc_call(
        &mut self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout_ms: u64,
    ) -> Option<u32> {
        grpc::call(self.envoy, cluster, service, method, message, timeout_ms)
    }
    fn grpc_response_body(&self, size: usize) -> Vec<u8> {
        self.grpc_message
            .get(..size.min(self.grpc_message.len()))
            .unwrap_or_default()
            .to_vec()
    }
    fn resume_request(&mut self) {
        // SAFETY: live filter pointer.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(self.envoy) }
    }
    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        self.config.metrics.define(kind, name)
    }
    fn increment_metric(&mut self, id: u32, delta: i64) {
        self.config.metrics.increment(self.envoy, id, delta);
    }
    fn record_metric(&mut self, id: u32, value: u64) {
        self.config.metrics.record(self.envoy, id, value);
    }
}
