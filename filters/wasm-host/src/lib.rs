//! The thin shell: runs an `llmgw-core` filter inside Envoy through proxy-wasm.
//!
//! [`ProxyWasmHost`] implements the core `Host` trait with `proxy_wasm::hostcalls`, which
//! return `Result`s; the SDK's `HttpContext` convenience methods unwrap them and would kill the
//! VM (for every request on that worker) on a call Envoy may legally refuse. Failures are
//! logged and the request goes on.
//!
//! A filter crate is one line: `llmgw_wasm_host::export_filter!(llmgw_core::auth::AuthRoot);`

use std::marker::PhantomData;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use llmgw_core::filter::{FilterRoot, Flow, HttpFilter};
use llmgw_core::host::{Host, MetricKind, SharedDataError, SharedValue};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType, Status};

#[doc(hidden)]
pub use proxy_wasm;

/// Register `$root` (a `llmgw_core::filter::FilterRoot`) as this module's filter.
#[macro_export]
macro_rules! export_filter {
    ($root:ty) => {
        $crate::proxy_wasm::main! {{
            $crate::proxy_wasm::set_log_level($crate::proxy_wasm::types::LogLevel::Info);
            $crate::proxy_wasm::set_root_context(|_| {
                ::std::boxed::Box::new($crate::Root::<$root>::default())
            });
        }}
    };
}

/// The core `Host` over proxy-wasm hostcalls, for the stream being processed.
pub struct ProxyWasmHost {
    rng: u64,
}

impl ProxyWasmHost {
    fn new(seed: u64) -> Self {
        Self { rng: seed | 1 }
    }
}

fn log_err<T>(what: &str, result: Result<T, Status>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(status) => {
            log::warn!("llmgw: {what} failed: {status:?}");
            None
        }
    }
}

fn body(kind: BufferType, size: usize) -> Vec<u8> {
    log_err("get body", hostcalls::get_buffer(kind, 0, size))
        .flatten()
        .unwrap_or_default()
}

impl Host for ProxyWasmHost {
    fn request_header(&self, name: &str) -> Option<String> {
        log_err(
            "get request header",
            hostcalls::get_map_value(MapType::HttpRequestHeaders, name),
        )
        .flatten()
    }
    fn request_headers(&self) -> Vec<(String, String)> {
        log_err(
            "get request headers",
            hostcalls::get_map(MapType::HttpRequestHeaders),
        )
        .unwrap_or_default()
    }
    fn set_request_header(&mut self, name: &str, value: &str) {
        log_err(
            "set request header",
            hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)),
        );
    }
    fn remove_request_header(&mut self, name: &str) {
        log_err(
            "remove request header",
            hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None),
        );
    }
    fn response_header(&self, name: &str) -> Option<String> {
        log_err(
            "get response header",
            hostcalls::get_map_value(MapType::HttpResponseHeaders, name),
        )
        .flatten()
    }
    fn response_headers(&self) -> Vec<(String, String)> {
        log_err(
            "get response headers",
            hostcalls::get_map(MapType::HttpResponseHeaders),
        )
        .unwrap_or_default()
    }
    fn set_response_header(&mut self, name: &str, value: &str) {
        log_err(
            "set response header",
            hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value)),
        );
    }
    fn remove_response_header(&mut self, name: &str) {
        log_err(
            "remove response header",
            hostcalls::set_map_value(MapType::HttpResponseHeaders, name, None),
        );
    }
    fn request_body(&self, size: usize) -> Vec<u8> {
        body(BufferType::HttpRequestBody, size)
    }
    fn set_request_body(&mut self, size: usize, body: &[u8]) {
        log_err(
            "set request body",
            hostcalls::set_buffer(BufferType::HttpRequestBody, 0, size, body),
        );
    }
    fn response_body(&self, size: usize) -> Vec<u8> {
        body(BufferType::HttpResponseBody, size)
    }
    fn set_response_body(&mut self, size: usize, body: &[u8]) {
        log_err(
            "set response body",
            hostcalls::set_buffer(BufferType::HttpResponseBody, 0, size, body),
        );
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        // Absent properties are normal (e.g. no endpoint metadata): no warning.
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }
    fn set_property(&mut self, path: &[&str], value: &[u8]) {
        log_err(
            "set property",
            hostcalls::set_property(path.to_vec(), Some(value)),
        );
    }
    fn shared_data(&self, key: &str) -> SharedValue {
        match hostcalls::get_shared_data(key) {
            Ok((data, cas)) => SharedValue { data, cas },
            Err(status) => {
                log::warn!("llmgw: get shared data failed: {status:?}");
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
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(SharedDataError::CasMismatch),
            Err(status) => {
                log::warn!("llmgw: set shared data failed: {status:?}");
                Err(SharedDataError::Unavailable)
            }
        }
    }
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        log_err(
            "send local response",
            hostcalls::send_http_response(u32::from(status), headers.to_vec(), Some(body)),
        );
    }
    fn now_ms(&self) -> u64 {
        log_err("get current time", hostcalls::get_current_time())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Option<u32> {
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
        };
        log_err("define metric", hostcalls::define_metric(kind, name))
    }
    fn increment_metric(&mut self, id: u32, delta: i64) {
        log_err("increment metric", hostcalls::increment_metric(id, delta));
    }
    fn record_metric(&mut self, id: u32, value: u64) {
        log_err("record metric", hostcalls::record_metric(id, value));
    }
    fn random_u64(&mut self) -> u64 {
        // splitmix64: fast, well distributed, good enough for weighted splits (not secrets).
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn grpc_call(
        &mut self,
        cluster: &str,
        service: &str,
        method: &str,
        message: &[u8],
        timeout_ms: u64,
    ) -> Option<u32> {
        log_err(
            "dispatch gRPC call",
            hostcalls::dispatch_grpc_call(
                cluster,
                service,
                method,
                Vec::new(),
                Some(message),
                Duration::from_millis(timeout_ms),
            ),
        )
    }
    fn grpc_response_body(&self, size: usize) -> Vec<u8> {
        body(BufferType::GrpcReceiveBuffer, size)
    }
    fn resume_request(&mut self) {
        log_err("resume request", hostcalls::resume_http_request());
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
            hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX),
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

impl<R: FilterRoot> HttpContext for Http<R> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
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
