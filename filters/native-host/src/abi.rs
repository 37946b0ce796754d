//! Envoy's dynamic module ABI: the callbacks this module calls, hand-written from the ABI's C
//! header (`source/extensions/dynamic_modules/abi/abi.h` in Envoy's tree; the facts only: names,
//! signatures, semantics), and the few types they exchange. No bindgen: only what llmgw uses.
//!
//! Every name below was checked against the symbols the Envoy 1.40.0 binary exports
//! (`nm -D --defined-only`); signatures are those of the 1.40 header. C enums are `int`-sized
//! and passed as `u32`; a struct of a pointer and a `size_t` passed by value travels in two
//! registers on x86-64 and aarch64, exactly like a pointer and a length.
//!
//! <https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/dynamic_modules>

use std::ffi::c_void;

/// `envoy_dynamic_module_type_http_filter_envoy_ptr`: Envoy's `DynamicModuleHttpFilter`, valid
/// until the module's filter is destroyed.
pub type FilterEnvoyPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_config_envoy_ptr`: Envoy's filter configuration.
pub type ConfigEnvoyPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr`: a scheduler Envoy made
/// for one configuration, owned by the module until `scheduler_delete`.
pub type SchedulerPtr = *mut c_void;

/// The ABI version this module reports from `envoy_dynamic_module_on_program_init`; Envoy 1.40
/// logs "Dynamic module ABI version v0.2.0 matched." for it (a mismatch is only a warning there).
pub const ABI_VERSION: &[u8] = b"v0.2.0\0";

/// `envoy_dynamic_module_type_envoy_buffer`: bytes owned by Envoy, valid until the end of the
/// current event hook (or until a setter changes what they point into).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl EnvoyBuffer {
    pub const NULL: Self = Self {
        ptr: std::ptr::null(),
        length: 0,
    };

    /// The bytes, or nothing for a null buffer.
    ///
    /// # Safety
    /// Envoy filled this buffer during the current event hook and nothing changed what it
    /// points into since.
    pub unsafe fn bytes<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: Envoy's buffer: `length` readable bytes at `ptr` (caller's contract).
            unsafe { std::slice::from_raw_parts(self.ptr, self.length) }
        }
    }
}

/// `envoy_dynamic_module_type_module_buffer`: bytes owned by the module for the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl ModuleBuffer {
    /// A null buffer: "remove" for `http_set_header`.
    pub const NULL: Self = Self {
        ptr: std::ptr::null(),
        length: 0,
    };
}

impl From<&[u8]> for ModuleBuffer {
    fn from(bytes: &[u8]) -> Self {
        Self {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }
}

impl From<&str> for ModuleBuffer {
    fn from(text: &str) -> Self {
        Self::from(text.as_bytes())
    }
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl ModuleHttpHeader {
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            key_ptr: name.as_ptr(),
            key_length: name.len(),
            value_ptr: value.as_ptr(),
            value_length: value.len(),
        }
    }
}

/// `envoy_dynamic_module_type_envoy_http_header`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EnvoyHttpHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl EnvoyHttpHeader {
    pub const NULL: Self = Self {
        key_ptr: std::ptr::null(),
        key_length: 0,
        value_ptr: std::ptr::null(),
        value_length: 0,
    };
}

/// `envoy_dynamic_module_type_http_header_type`.
pub mod header_type {
    pub const REQUEST: u32 = 0;
    pub const RESPONSE: u32 = 2;
}

/// `envoy_dynamic_module_type_http_body_type`.
pub mod body_type {
    pub const RECEIVED_REQUEST: u32 = 0;
    pub const BUFFERED_REQUEST: u32 = 1;
    pub const RECEIVED_RESPONSE: u32 = 2;
    pub const BUFFERED_RESPONSE: u32 = 3;
}

/// `envoy_dynamic_module_type_metadata_source`.
pub mod metadata_source {
    /// The chosen upstream host's (`LbEndpoint`) metadata.
    pub const HOST: u32 = 3;
}

/// `envoy_dynamic_module_type_attribute_id`: the attributes llmgw reads.
pub mod attribute {
    /// `response.code_details`.
    pub const RESPONSE_CODE_DETAILS: u32 = 16;
}

/// The `on_http_filter_*` statuses: `envoy_dynamic_module_type_on_http_filter_*_status`.
pub mod status {
    pub const CONTINUE: u32 = 0;
    /// Headers and trailers: `StopIteration`.
    pub const STOP_ITERATION: u32 = 1;
    /// Bodies: `StopIterationAndBuffer`.
    pub const STOP_ITERATION_AND_BUFFER: u32 = 1;
}

/// `envoy_dynamic_module_type_http_callout_init_result_Success`.
pub const CALLOUT_INIT_SUCCESS: u32 = 0;
/// `envoy_dynamic_module_type_http_callout_result_Success`.
pub const CALLOUT_SUCCESS: u32 = 0;
/// `envoy_dynamic_module_type_metrics_result_Success`.
pub const METRICS_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_log_level`.
pub mod log_level {
    pub const TRACE: u32 = 0;
    pub const DEBUG: u32 = 1;
    pub const INFO: u32 = 2;
    pub const WARN: u32 = 3;
    pub const ERROR: u32 = 4;
}

#[allow(clippy::too_many_arguments)]
extern "C" {
    pub fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);
    pub fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;

    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: FilterEnvoyPtr,
        header_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterEnvoyPtr,
        header_type: u32,
        result_headers: *mut EnvoyHttpHeader,
    ) -> bool;
    /// Replace every value of `key`; a null `value` removes the header.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterEnvoyPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: FilterEnvoyPtr,
        status_code: u32,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );

    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter: FilterEnvoyPtr,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: FilterEnvoyPtr,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterEnvoyPtr,
        body_type: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_append_body(
        filter: FilterEnvoyPtr,
        body_type: u32,
        data: ModuleBuffer,
    ) -> bool;
    /// Drains `bytes` from the front (all of it when `bytes` exceeds the size).
    pub fn envoy_dynamic_module_callback_http_drain_body(
        filter: FilterEnvoyPtr,
        body_type: u32,
        bytes: usize,
    ) -> bool;
    /// The body this hook received is the one an earlier filter buffered (it resumed the chain).
    pub fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter: FilterEnvoyPtr,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_response_body(
        filter: FilterEnvoyPtr,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_get_metadata_string(
        filter: FilterEnvoyPtr,
        source: u32,
        namespace: ModuleBuffer,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;

    /// Stores a `StringAccessor` (serializes as its bytes: `%FILTER_STATE(key:PLAIN)%` prints it).
    pub fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    /// Any filter-state object as its `serializeAsString()`: also a wasm filter's `CelState`.
    pub fn envoy_dynamic_module_callback_http_get_filter_state_typed(
        filter: FilterEnvoyPtr,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoyPtr,
        attribute_id: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;

    /// Route the request again (its headers changed); a no-op once routing is over.
    pub fn envoy_dynamic_module_callback_http_clear_route_cache(filter: FilterEnvoyPtr);

    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: FilterEnvoyPtr);

    /// Headers must hold `:method`, `:path` and `host`; the answer reaches
    /// `envoy_dynamic_module_on_http_filter_http_callout_done` with `callout_id_out`.
    pub fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter: FilterEnvoyPtr,
        callout_id_out: *mut u64,
        cluster_name: ModuleBuffer,
        headers: *mut ModuleHttpHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_milliseconds: u64,
    ) -> u32;

    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        id_out: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        id_out: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        config: ConfigEnvoyPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        id_out: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_set_gauge(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_record_histogram_value(
        filter: FilterEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;

    // The configuration's own metric updates and its scheduler (src/coalesce.rs): Envoy 1.39 and
    // 1.40 export them. The updates take the label values per call like the stream's (interned
    // into a stat-name pool that lives for the call), and work from any thread; the scheduler's
    // `commit` posts an event to Envoy's main thread, which runs
    // `envoy_dynamic_module_on_http_filter_config_scheduled` there while the configuration is
    // alive (Envoy holds it weakly: an event committed after the configuration is gone is dropped).
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config: ConfigEnvoyPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    /// Any thread; the scheduler holds the configuration weakly and Envoy's main dispatcher.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: ConfigEnvoyPtr,
    ) -> SchedulerPtr;
    /// Thread-safe (a post to the main dispatcher); not concurrently with `scheduler_delete`.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: SchedulerPtr,
        event_id: u64,
    );
    /// Events already committed still run (or are dropped with the configuration).
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: SchedulerPtr,
    );
}
