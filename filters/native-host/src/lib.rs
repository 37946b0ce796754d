//! The thin shell for Envoy's dynamic modules: runs the `llmgw-core` filters natively inside
//! Envoy, as `build/native/libllmgw.so`.
//!
//! The same filters as the wasm build (`llmgw-wasm-host`), from the same JSON configurations:
//! Envoy's `DynamicModuleFilter` names the module (`llmgw`) and the filter (`filter_name`:
//! `llmgw.auth`, `llmgw.router`, `llmgw.ratelimit`, `llmgw.translate` or `llmgw.gateway`), and
//! its `filter_config` (a `google.protobuf.StringValue`) carries the JSON.
//!
//! - [`abi`]: the ABI's types and the callbacks llmgw calls, hand-written from Envoy's header;
//! - [`host`]: the core `Host` over those callbacks;
//! - [`config`]: filter names → compiled configurations, per worker;
//! - [`shared_data`], [`metrics`], [`grpc`]: what proxy-wasm's host provides and this ABI does
//!   differently (process memory, per-configuration metrics, HTTP/2 callouts);
//! - [`coalesce`]: counters added up in process memory and handed to Envoy from its main thread;
//! - this file: the event hooks Envoy calls (`envoy_dynamic_module_on_*`), each a few lines that
//!   find the stream and hand the event to the core filter.
//!
//! Nothing here panics: the workspace denies `unwrap`/`expect`/`panic`, and the release profile
//! aborts on panic, so an unwinding panic never crosses the FFI boundary.
//!
//! <https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/dynamic_modules>

#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(clippy::missing_safety_doc)] // the hooks' contract is Envoy's ABI header

mod abi;
mod coalesce;
mod config;
mod grpc;
mod host;
mod logger;
mod metrics;
mod shared_data;

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use llmgw_core::filter::{Flow, HttpFilter};

use abi::{status, ConfigEnvoyPtr, EnvoyBuffer, EnvoyHttpHeader, FilterEnvoyPtr};
use config::FilterConfig;
use host::{NativeHost, Phase};

/// One stream through one filter: what `envoy_dynamic_module_on_http_filter_new` hands Envoy.
struct Stream {
    filter: Box<dyn HttpFilter>,
    host: NativeHost,
}

/// The stream behind a module pointer.
///
/// # Safety
/// `ptr` came from `envoy_dynamic_module_on_http_filter_new` and the stream is not destroyed;
/// Envoy calls one stream's hooks on one worker thread, one at a time.
unsafe fn stream<'a>(ptr: *const c_void) -> &'a mut Stream {
    // SAFETY: the caller's contract.
    unsafe { &mut *(ptr as *mut Stream) }
}

fn headers_status(flow: Flow) -> u32 {
    match flow {
        Flow::Continue => status::CONTINUE,
        Flow::Pause => status::STOP_ITERATION,
    }
}

fn body_status(flow: Flow) -> u32 {
    match flow {
        Flow::Continue => status::CONTINUE,
        Flow::Pause => status::STOP_ITERATION_AND_BUFFER,
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    logger::init();
    abi::ABI_VERSION.as_ptr().cast()
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: ConfigEnvoyPtr,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    // SAFETY: Envoy's buffers, valid during this hook.
    let (name, config) = unsafe { (name.bytes(), config.bytes()) };
    let name = String::from_utf8_lossy(name);
    match FilterConfig::new(envoy, &name, config) {
        Some(config) => Arc::into_raw(Arc::new(config)).cast(),
        None => std::ptr::null(),
    }
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    if !config.is_null() {
        // SAFETY: the pointer `config_new` made with `Arc::into_raw`; Envoy destroys it once.
        let config = unsafe { Arc::from_raw(config as *const FilterConfig) };
        // Envoy's configuration is still valid in this hook: the counts not yet flushed go to it.
        config.metrics.close();
        config.forget();
    }
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    envoy: FilterEnvoyPtr,
) -> *const c_void {
    if config.is_null() {
        return std::ptr::null();
    }
    let config = config as *const FilterConfig;
    // SAFETY: a live pointer from `config_new` (Envoy keeps the configuration until after its
    // streams): one more owner for this stream, released when the stream is destroyed.
    let config = unsafe {
        Arc::increment_strong_count(config);
        Arc::from_raw(config)
    };
    let Some(filter) = config.new_filter() else {
        return std::ptr::null();
    };
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ (envoy as u64).rotate_left(32);
    let stream = Stream {
        filter,
        host: NativeHost::new(envoy, config, seed),
    };
    Box::into_raw(Box::new(stream)).cast()
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: Envoy passes the pointer `filter_new` returned, for a live stream.
    let s = unsafe { stream(module) };
    headers_status(s.filter.on_request_headers(&mut s.host, end_of_stream))
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: as in request_headers.
    let s = unsafe { stream(module) };
    s.host.phase = Phase::RequestBody;
    let size = s.host.body_size(true);
    let flow = s.filter.on_request_body(&mut s.host, size, end_of_stream);
    s.host.phase = Phase::Other;
    body_status(flow)
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
) -> u32 {
    // SAFETY: as in request_headers.
    let s = unsafe { stream(module) };
    headers_status(s.filter.on_request_trailers(&mut s.host))
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: as in request_headers.
    let s = unsafe { stream(module) };
    headers_status(s.filter.on_response_headers(&mut s.host, end_of_stream))
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    // SAFETY: as in request_headers.
    let s = unsafe { stream(module) };
    s.host.phase = Phase::ResponseBody;
    let size = s.host.body_size(false);
    let flow = s.filter.on_response_body(&mut s.host, size, end_of_stream);
    s.host.phase = Phase::Other;
    body_status(flow)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
) -> u32 {
    status::CONTINUE
}

/// Before Envoy writes the access log: what the filters report at the end lands in it.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
) {
    // SAFETY: as in request_headers.
    let s = unsafe { stream(module) };
    s.filter.on_stream_done(&mut s.host);
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(module: *const c_void) {
    if module.is_null() {
        return;
    }
    // SAFETY: the pointer `filter_new` made with `Box::into_raw`; Envoy destroys it once. The
    // filters report a stream once, so a second `on_stream_done` (after `stream_complete`, or
    // instead of it for a reset stream) is harmless, as with proxy-wasm's `on_log` + `on_done`.
    let mut s = unsafe { Box::from_raw(module as *mut Stream) };
    let Stream { filter, host } = &mut *s;
    filter.on_stream_done(host);
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _envoy: FilterEnvoyPtr,
    module: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHttpHeader,
    headers_size: usize,
    body_chunks: *const EnvoyBuffer,
    body_chunks_size: usize,
) {
    // SAFETY: as in request_headers.
    let s = unsafe { stream(module) };
    // SAFETY: the arrays and sizes Envoy passed to this hook, valid while it runs.
    let (grpc_status, message) =
        unsafe { grpc::answer(result, headers, headers_size, body_chunks, body_chunks_size) };
    let size = message.len();
    s.host.grpc_message = message;
    let token = u32::try_from(callout_id).unwrap_or(u32::MAX);
    s.filter
        .on_grpc_response(&mut s.host, token, grpc_status, size);
    s.host.grpc_message = Vec::new();
}

/// The metrics flush ([`coalesce`]: counts the workers added up since the last), on Envoy's main
/// thread.
#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    _envoy: ConfigEnvoyPtr,
    config: *const c_void,
    _event_id: u64,
) {
    if config.is_null() {
        return;
    }
    // SAFETY: the pointer `config_new` made; Envoy runs this hook only while the configuration
    // is alive (before `config_destroy`), and the hook only borrows it.
    let config = unsafe { &*(config as *const FilterConfig) };
    config.metrics.flush();
}

// The hooks llmgw has no use for. Envoy resolves every `on_http_filter_*` hook when it loads the
// configuration, so each is exported with the header's signature and does nothing.

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    _name: EnvoyBuffer,
    _config: EnvoyBuffer,
) -> *const c_void {
    log::error!("llmgw: per-route configuration is not supported; configure the filter itself");
    std::ptr::null()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    _config: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
    _event_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
) {
}

/// `LocalErrorStatus::Continue`: a local reply goes out as Envoy made it.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
    _response_code: u32,
    _details: EnvoyBuffer,
    _reset_imminent: bool,
) -> u32 {
    status::CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
    _stream_id: u64,
    _headers: *const EnvoyHttpHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
    _stream_id: u64,
    _trailers: *const EnvoyHttpHeader,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _envoy: FilterEnvoyPtr,
    _module: *const c_void,
    _stream_id: u64,
    _reason: u32,
) {
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _callout_id: u64,
    _result: u32,
    _headers: *const EnvoyHttpHeader,
    _headers_size: usize,
    _body_chunks: *const EnvoyBuffer,
    _body_chunks_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _stream_id: u64,
    _headers: *const EnvoyHttpHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _stream_id: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _stream_id: u64,
    _trailers: *const EnvoyHttpHeader,
    _trailers_size: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
    _envoy: ConfigEnvoyPtr,
    _config: *const c_void,
    _stream_id: u64,
    _reason: u32,
) {
}
