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
use llmgw_core::headers::HeaderMap;
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

/// The header-map calls without the SDK's panics: its `get_map` and `get_map_value` unwrap
/// `String::from_utf8` (any client can send a value that is not UTF-8: HTTP allows obs-text
/// bytes), and every one of its header calls panics on a status it does not expect (a write
/// Envoy refuses, say). A panic traps the VM: every later request on that worker fails. These
/// return the status instead, read Envoy's bytes as they are (the UTF-8 question is
/// [`HeaderMap`]'s), and read the whole map into one buffer rather than a `String` pair per
/// header.
mod header_abi {
    use proxy_wasm::types::MapType;

    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: MapType,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> u32;
        fn proxy_get_header_map_value(
            map_type: MapType,
            key_data: *const u8,
            key_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        fn proxy_replace_header_map_value(
            map_type: MapType,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        fn proxy_remove_header_map_value(
            map_type: MapType,
            key_data: *const u8,
            key_size: usize,
        ) -> u32;
    }

    const OK: u32 = 0;
    const NOT_FOUND: u32 = 1;

    /// A buffer the host filled: it allocated it through the SDK's `proxy_on_memory_allocate`
    /// (a `Vec<u8>` of that size, leaked), so it is ours to take back.
    ///
    /// SAFETY: `data`/`size` must come from a host call that just returned them.
    unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
        if data.is_null() {
            Vec::new()
        } else {
            Vec::from_raw_parts(data, size, size)
        }
    }

    /// The whole map in proxy-wasm's serialized form (see `HeaderMap::from_wire`), or the status.
    pub fn pairs(map: MapType) -> Result<Vec<u8>, u32> {
        let (mut data, mut size) = (std::ptr::null_mut(), 0);
        // SAFETY: the host writes the out-pointers only; `take` follows the ABI's ownership.
        match unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) } {
            OK => Ok(unsafe { take(data, size) }),
            status => Err(status),
        }
    }

    /// Replace header `name` (add it when absent), or remove it (`None`).
    pub fn set(map: MapType, name: &str, value: Option<&str>) -> Result<(), u32> {
        // SAFETY: the host reads the given slices during the call only.
        let status = unsafe {
            match value {
                Some(v) => proxy_replace_header_map_value(
                    map,
                    name.as_ptr(),
                    name.len(),
                    v.as_ptr(),
                    v.len(),
                ),
                None => proxy_remove_header_map_value(map, name.as_ptr(), name.len()),
            }
        };
        match status {
            OK => Ok(()),
            status => Err(status),
        }
    }

    /// One header's value, `None` when absent, or the status.
    pub fn value(map: MapType, name: &str) -> Result<Option<Vec<u8>>, u32> {
        let (mut data, mut size) = (std::ptr::null_mut(), 0);
        // SAFETY: as above; `name` outlives the call.
        let status = unsafe {
            proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut size)
        };
        match status {
            OK => Ok(Some(unsafe { take(data, size) })),
            NOT_FOUND => Ok(None),
            status => Err(status),
        }
    }
}

fn header_map(map: MapType) -> HeaderMap {
    match header_abi::pairs(map) {
        Ok(bytes) => HeaderMap::from_wire(&bytes).unwrap_or_else(|| {
            log::warn!("llmgw: get headers: the host's header map is malformed");
            HeaderMap::new()
        }),
        Err(status) => {
            log::warn!("llmgw: get headers failed: status {status}");
            HeaderMap::new()
        }
    }
}

fn set_header(what: &str, map: MapType, name: &str, value: Option<&str>) {
    if let Err(status) = header_abi::set(map, name, value) {
        log::warn!("llmgw: {what} {name} failed: status {status}");
    }
}

fn header_value(map: MapType, name: &str) -> Option<String> {
    match header_abi::value(map, name) {
        Ok(value) => value.map(|v| String::from_utf8_lossy(&v).into_owned()),
        Err(status) => {
            log::warn!("llmgw: get header failed: status {status}");
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
