//! The thin shell: runs an `llmgw-core` filter inside Envoy through proxy-wasm.
//!
//! [`ProxyWasmHost`] implements the core `Host` trait over the proxy-wasm ABI directly
//! ([`abi`]), not the SDK's `proxy_wasm::hostcalls`: those panic on any host status they do not
//! expect, and a panic traps the VM for every later request on that worker. Failures are
//! logged and the request goes on. The SDK still owns the `proxy_on_*` exports, their dispatch
//! to [`Root`] and [`Http`], the logger, and starting a gRPC call (see `grpc_call`).
//!
//! A filter crate is one line: `llmgw_wasm_host::export_filter!(llmgw_core::auth::AuthRoot);`

#![deny(clippy::undocumented_unsafe_blocks)]

mod abi;

use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use abi::Failure;
use llmgw_core::filter::{Callback, FilterRoot, Flow, HttpFilter};
use llmgw_core::headers::{self, HeaderMap};
use llmgw_core::host::{property_path, Host, MetricKind, SharedDataError, SharedValue};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};

#[doc(hidden)]
pub use proxy_wasm;

#[doc(hidden)]
pub use llmgw_core::filter::FilterRoot as __FilterRoot;

/// Register `$root` (a `llmgw_core::filter::FilterRoot`) as this module's filter, and name the
/// exports it does without in the module's custom section `llmgw.unused_exports`
/// ([`unused_exports`]), which `make build` removes (`tools/trim_exports.py`).
#[macro_export]
macro_rules! export_filter {
    ($root:ty) => {
        #[cfg_attr(target_arch = "wasm32", link_section = "llmgw.unused_exports")]
        #[used]
        static LLMGW_UNUSED_EXPORTS: [u8; $crate::unused_exports_len(
            <$root as $crate::__FilterRoot>::UNUSED_CALLBACKS,
        )] = $crate::unused_exports(<$root as $crate::__FilterRoot>::UNUSED_CALLBACKS);

        $crate::proxy_wasm::main! {{
            $crate::proxy_wasm::set_log_level($crate::proxy_wasm::types::LogLevel::Info);
            $crate::proxy_wasm::set_root_context(|_| {
                ::std::boxed::Box::new($crate::Root::<$root>::default())
            });
        }}
    };
}

/// Exports no filter needs: [`Http`] leaves `on_http_response_trailers` at the SDK's `Continue`.
const NEVER_USED: &[&str] = &["proxy_on_response_trailers"];

/// The proxy-wasm exports through which Envoy delivers `callback`.
const fn exports_of(callback: Callback) -> &'static [&'static str] {
    match callback {
        Callback::RequestBody => &["proxy_on_request_body"],
        Callback::RequestTrailers => &["proxy_on_request_trailers"],
        Callback::ResponseHeaders => &["proxy_on_response_headers"],
        Callback::ResponseBody => &["proxy_on_response_body"],
        Callback::StreamDone => &["proxy_on_log", "proxy_on_done"],
    }
}

/// Each name and its newline.
const fn names_len(names: &[&str]) -> usize {
    let (mut len, mut i) = (0, 0);
    while i < names.len() {
        len += names[i].len() + 1;
        i += 1;
    }
    len
}

/// The size of [`unused_exports`] for `callbacks`.
pub const fn unused_exports_len(callbacks: &[Callback]) -> usize {
    let (mut len, mut i) = (names_len(NEVER_USED), 0);
    while i < callbacks.len() {
        len += names_len(exports_of(callbacks[i]));
        i += 1;
    }
    len
}

/// The exports a filter whose unused callbacks are `callbacks` does without, one per line.
/// Envoy's proxy-wasm host calls into the VM only through the callbacks a module exports and
/// goes on as after `Continue` for one that is missing (proxy-wasm-cpp-host,
/// `ContextBase::onResponseBody`: `if (!wasm_->on_response_body_) return
/// FilterDataStatus::Continue;`; a missing `proxy_on_done` reads as done), while the SDK exports
/// every callback whatever the filter implements: each is a crossing into the VM per request
/// (~2–3 k instructions in Envoy, bench/analysis.md) that changes nothing.
///
/// <https://github.com/proxy-wasm/proxy-wasm-cpp-host/blob/main/src/context.cc>
pub const fn unused_exports<const N: usize>(callbacks: &[Callback]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = put(&mut out, 0, NEVER_USED);
    let mut i = 0;
    while i < callbacks.len() {
        at = put(&mut out, at, exports_of(callbacks[i]));
        i += 1;
    }
    out
}

const fn put<const N: usize>(out: &mut [u8; N], mut at: usize, names: &[&str]) -> usize {
    let mut i = 0;
    while i < names.len() {
        let name = names[i].as_bytes();
        let mut j = 0;
        while j < name.len() {
            out[at] = name[j];
            at += 1;
            j += 1;
        }
        out[at] = b'\n';
        at += 1;
        i += 1;
    }
    at
}

/// The core `Host` over the proxy-wasm ABI, for the stream being processed.
pub struct ProxyWasmHost {
    rng: u64,
}

impl ProxyWasmHost {
    fn new(seed: u64) -> Self {
        Self { rng: seed | 1 }
    }
}

fn log_err<T>(what: &str, result: Result<T, Failure>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(failure) => {
            log::warn!("llmgw: {what} failed: {failure:?}");
            None
        }
    }
}

fn body(kind: BufferType, size: usize) -> Vec<u8> {
    log_err("get body", abi::buffer(kind, 0, size))
        .flatten()
        .unwrap_or_default()
}

fn header_map(map: MapType) -> HeaderMap {
    match abi::header_pairs(map) {
        Ok(bytes) => HeaderMap::from_wire(&bytes).unwrap_or_else(|| {
            log::warn!("llmgw: get headers: the host's header map is malformed");
            HeaderMap::new()
        }),
        Err(failure) => {
            log::warn!("llmgw: get headers failed: {failure}");
            HeaderMap::new()
        }
    }
}

fn set_header(what: &str, map: MapType, name: &str, value: Option<&str>) {
    if let Err(failure) = abi::set_header(map, name, value) {
        log::warn!("llmgw: {what} {name} failed: {failure}");
    }
}

fn header_value(map: MapType, name: &str) -> Option<String> {
    match abi::header_value(map, name) {
        Ok(value) => value.map(|v| String::from_utf8_lossy(&v).into_owned()),
        Err(failure) => {
            log::warn!("llmgw: get header failed: {failure}");
            None
        }
    }
}

impl Host for ProxyWasmHost {
    fn request_header(&self, name: &str) -> Option<String> {
        header_value(MapType::HttpRequestHeaders, name)
    }
    fn request_headers(&self) -> HeaderMap {
        header_map(MapType::HttpRequestHeaders)
    }
    fn set_request_header(&mut self, name: &str, value: &str) {
        set_header(
            "set request header",
            MapType::HttpRequestHeaders,
            name,
            Some(value),
        );
    }
    fn remove_request_header(&mut self, name: &str) {
        set_header(
            "remove request header",
            MapType::HttpRequestHeaders,
            name,
            None,
        );
    }
    fn response_header(&self, name: &str) -> Option<String> {
        header_value(MapType::HttpResponseHeaders, name)
    }
    fn response_headers(&self) -> HeaderMap {
        header_map(MapType::HttpResponseHeaders)
    }
    fn set_response_header(&mut self, name: &str, value: &str) {
        set_header(
            "set response header",
            MapType::HttpResponseHeaders,
            name,
            Some(value),
        );
    }
    fn remove_response_header(&mut self, name: &str) {
        set_header(
            "remove response header",
            MapType::HttpResponseHeaders,
            name,
            None,
        );
    }
    fn request_body(&self, size: usize) -> Vec<u8> {
        body(BufferType::HttpRequestBody, size)
    }
    fn set_request_body(&mut self, size: usize, body: &[u8]) {
        log_err(
            "set request body",
            abi::set_buffer(BufferType::HttpRequestBody, 0, size, body),
        );
    }
    fn response_body(&self, size: usize) -> Vec<u8> {
        body(BufferType::HttpResponseBody, size)
    }
    fn response_body_from(&self, start: usize, len: usize) -> Vec<u8> {
        log_err(
            "get body",
            abi::buffer(BufferType::HttpResponseBody, start, len),
        )
        .flatten()
        .unwrap_or_default()
    }
    fn set_response_body(&mut self, size: usize, body: &[u8]) {
        log_err(
            "set response body",
            abi::set_buffer(BufferType::HttpResponseBody, 0, size, body),
        );
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        // Absent properties are normal (e.g. no endpoint metadata), and a read the host refuses
        // reads as absent too, as it did through the SDK: no warning.
        let found = abi::property(&property_path(path)?).ok().flatten();
        match (found, path) {
            // A fact `llmgw.<name>` Envoy did not find as a wasm filter's own kind of entry
            // (a `CelState`) may have been written by the native build (libllmgw.so), whose
            // filter state is plain bytes under the same key: the `filter_state` attribute
            // reads any kind. Mixed native/wasm chains hand facts on this way (README, "Native
            // build"); an all-wasm chain pays this call only for a fact that is absent.
            (None, [name]) => {
                let key = format!("wasm.{name}");
                abi::property(&property_path(&["filter_state", &key])?)
                    .ok()
                    .flatten()
            }
            (found, _) => found,
        }
    }
    fn set_property(&mut self, path: &[&str], value: &[u8]) {
        // Paths are llmgw's constants; one with a NUL in a segment would name another property.
        let Some(path) = property_path(path) else {
            log::warn!("llmgw: set property failed: a path segment holds a NUL");
            return;
        };
        log_err("set property", abi::set_property(&path, value));
    }
    fn shared_data(&self, key: &str) -> SharedValue {
        match abi::shared_data(key) {
            Ok((data, cas)) => SharedValue { data, cas },
            Err(failure) => {
                log::warn!("llmgw: get shared data failed: {failure:?}");
                SharedValue::default()
            }
        }
    }
    fn set_shared_data(
        &mut self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), SharedDataError> {
        match abi::set_shared_data(key, value, cas.unwrap_or(0)) {
            Ok(()) => Ok(()),
            Err(Failure::CAS_MISMATCH) => Err(SharedDataError::CasMismatch),
            Err(failure) => {
                log::warn!("llmgw: set shared data failed: {failure:?}");
                Err(SharedDataError::Unavailable)
            }
        }
    }
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        // Only a name or value of 4 GiB fails to serialize: not in a wasm32 VM.
        let Some(headers) = headers::to_wire(headers) else {
            log::warn!("llmgw: send local response failed: a header does not fit the ABI");
            return;
        };
        log_err(
            "send local response",
            abi::send_local_response(u32::from(status), &headers, body),
        );
    }
    fn now_ms(&self) -> u64 {
        log_err("get current time", abi::current_time_ns())
            .map(|nanos| nanos / 1_000_000)
            .unwrap_or(0)
    }
    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        log_err("define metric", abi::define_metric(kind, name))
    }
    fn increment_metric(&mut self, id: u32, delta: i64) {
        log_err("increment metric", abi::increment_metric(id, delta));
    }
    fn record_metric(&mut self, id: u32, value: u64) {
        log_err("record metric", abi::record_metric(id, value));
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
        // The one call left to the SDK: the answer reaches `Http::on_grpc_call_response` only
        // through the SDK's dispatcher, which routes it by the token this call registers, and
        // that registration is private to the SDK. A `proxy_grpc_call` of our own would start
        // the call and drop its answer. The SDK's wrapper panics on a status other than
        // `ParseFailure` (unknown cluster) and `InternalFailure`; Envoy 1.40 also answers
        // `BadArgument` when it cannot create the gRPC client. Envoy first tries to read the
        // name as a serialized `GrpcService`: a name that parses as one (`hh`, `pp`: a varint
        // field and its value) has no target, and Envoy 1.40 aborts the whole process ("unset
        // oneof", checked with ratelimit's `global.cluster` = `hh`), whoever makes the call;
        // ratelimit's config refuses such names (`ratelimit::proto::is_wire_message`).
        log_err(
            "dispatch gRPC call",
            hostcalls::dispatch_grpc_call(
                cluster,
                service,
                method,
                Vec::new(),
                Some(message),
                Duration::from_millis(timeout_ms),
            )
            .map_err(|status| Failure::Status(status as u32)),
        )
    }
    fn grpc_response_body(&self, size: usize) -> Vec<u8> {
        body(BufferType::GrpcReceiveBuffer, size)
    }
    fn resume_request(&mut self) {
        log_err("resume request", abi::resume_request());
    }
}

/// The root context of filter `R`: holds its compiled config once `on_configure` accepted it.
pub struct Root<R: FilterRoot> {
    root: Option<Rc<R>>,
    seed: u64,
}

impl<R: FilterRoot> Default for Root<R> {
    fn default() -> Self {
        Self {
            root: None,
            seed: 0,
        }
    }
}

impl<R: FilterRoot> Context for Root<R> {}

impl<R: FilterRoot> RootContext for Root<R> {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = log_err(
            "get plugin configuration",
            abi::buffer(BufferType::PluginConfiguration, 0, usize::MAX),
        )
        .flatten()
        .unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok();
        match R::configure(&config, &env) {
            Ok(root) => {
                self.root = Some(Rc::new(root));
                self.seed = ProxyWasmHost::new(0).now_ms();
                log::info!("{}: configuration accepted", R::NAME);
                true
            }
            Err(err) => {
                log::error!("{}: configuration refused: {err}", R::NAME);
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let root = self.root.as_ref()?;
        Some(Box::new(Http::<R> {
            filter: root.new_filter(),
            host: ProxyWasmHost::new(self.seed ^ (u64::from(context_id) << 32)),
            _root: PhantomData,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One request through filter `R`.
pub struct Http<R: FilterRoot> {
    filter: R::Filter,
    host: ProxyWasmHost,
    _root: PhantomData<R>,
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

impl<R: FilterRoot> Context for Http<R> {
    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        self.filter
            .on_grpc_response(&mut self.host, token_id, status_code, response_size);
    }
    // Upstream filters get no access-log callback; the end of the context is their last word.
    fn on_done(&mut self) -> bool {
        self.filter.on_stream_done(&mut self.host);
        true
    }
}

/// Test builds only (feature `crash-test`, built into build/test/, never into build/wasm/): a
/// request carrying [`crash_test::HEADER`] traps the VM, as a bug would, so
/// tests/e2e/test_vm_failure.py can check that Envoy's `failure_policy` replaces a failed VM.
#[cfg(feature = "crash-test")]
mod crash_test {
    use super::{abi, MapType};

    pub const HEADER: &str = "llmgw-test-crash";

    pub fn on_request_headers() {
        if matches!(
            abi::header_value(MapType::HttpRequestHeaders, HEADER),
            Ok(Some(_))
        ) {
            log::error!("llmgw: crash-test build: trapping the VM as asked by {HEADER}");
            std::process::abort();
        }
    }
}

impl<R: FilterRoot> HttpContext for Http<R> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "crash-test")]
        crash_test::on_request_headers();
        action(
            self.filter
                .on_request_headers(&mut self.host, end_of_stream),
        )
    }
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(
            self.filter
                .on_request_body(&mut self.host, body_size, end_of_stream),
        )
    }
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        action(self.filter.on_request_trailers(&mut self.host))
    }
    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        action(
            self.filter
                .on_response_headers(&mut self.host, end_of_stream),
        )
    }
    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(
            self.filter
                .on_response_body(&mut self.host, body_size, end_of_stream),
        )
    }
    fn on_log(&mut self) {
        self.filter.on_stream_done(&mut self.host);
    }
}

// The crate's tests do not run outside Envoy (tests/e2e/test_config.py checks every built
// module's exports); this one is checked at compile time.
const _: () = {
    const UNUSED: &[Callback] = &[Callback::ResponseBody, Callback::StreamDone];
    let names = unused_exports::<{ unused_exports_len(UNUSED) }>(UNUSED);
    let expected =
        b"proxy_on_response_trailers\nproxy_on_response_body\nproxy_on_log\nproxy_on_done\n";
    assert!(names.len() == expected.len());
    let mut i = 0;
    while i < expected.len() {
        assert!(names[i] == expected[i]);
        i += 1;
    }
};
