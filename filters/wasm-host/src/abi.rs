//! The proxy-wasm host calls llmgw makes on a request path, imported from the ABI directly.
//!
//! Why not `proxy_wasm::hostcalls`: each of its functions `panic!`s on a host status it does not
//! expect (Envoy 1.40's `proxy_set_property` answers `BadArgument` for a value the property's
//! type refuses, `proxy_set_buffer_bytes` `NotFound` when there is no body, …), and its header
//! reads unwrap `String::from_utf8` on bytes any client chooses. With `panic = "abort"` a panic
//! traps the VM, and every later request on that Envoy worker fails. The SDK also types each
//! import as returning its `Status` enum, which lacks codes the spec defines (6, 12, …): a host
//! answering one of those is undefined behaviour in Rust. Here every import returns a plain
//! `u32`, each wrapper returns [`Failure`] instead of panicking, and the caller logs it and lets
//! the request go on.
//!
//! Spec: <https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1>. Serializing what the
//! host reads (property paths, header maps) is pure and tested in `llmgw_core`
//! ([`llmgw_core::host::property_path`], [`llmgw_core::headers::to_wire`],
//! [`llmgw_core::headers::HeaderMap::from_wire`]).
//!
//! What stays the SDK's: the `proxy_on_*` exports and their dispatch to contexts, the logger,
//! and `proxy_grpc_call` (see `grpc_call` in the crate root for why).

use std::fmt;
use std::ptr::null_mut;

use proxy_wasm::types::{BufferType, MapType, MetricType, StreamType};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> u32;
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
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_define_metric(
        metric_type: MetricType,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_continue_stream(stream_type: StreamType) -> u32;
}

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const CAS_MISMATCH: u32 = 8;

/// Why a host call did not do what was asked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The host's status (anything but `Ok`, and `NotFound` where that means "absent").
    Status(u32),
    /// The host said `Ok` but its answer does not hold what it says (no buffer, yet a size).
    Malformed,
}

impl Failure {
    pub const CAS_MISMATCH: Self = Self::Status(CAS_MISMATCH);
}

/// `{:?}` prints the status's name as the SDK's `Status` did (`BadArgument`), so warnings read
/// as they did before these calls left the SDK; codes the SDK does not name print as numbers.
impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Malformed => "malformed host answer",
            Self::Status(1) => "NotFound",
            Self::Status(2) => "BadArgument",
            Self::Status(3) => "SerializationFailure",
            Self::Status(4) => "ParseFailure",
            Self::Status(6) => "InvalidMemoryAccess",
            Self::Status(7) => "Empty",
            Self::Status(8) => "CasMismatch",
            Self::Status(10) => "InternalFailure",
            Self::Status(12) => "Unimplemented",
            Self::Status(code) => return write!(f, "status {code}"),
        };
        f.write_str(name)
    }
}

/// `{}` prints `status <code>`, as the header calls always logged it.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(code) => write!(f, "status {code}"),
            Self::Malformed => f.write_str("malformed host answer"),
        }
    }
}

fn status(code: u32) -> Result<(), Failure> {
    match code {
        OK => Ok(()),
        code => Err(Failure::Status(code)),
    }
}

/// Out-pointers for a host call that returns a buffer it allocated.
struct Returned {
    data: *mut u8,
    size: usize,
}

impl Returned {
    fn new() -> Self {
        Self {
            data: null_mut(),
            size: 0,
        }
    }

    /// The buffer the host returned, `None` when it returned none (Envoy answers `Ok` and writes
    /// nothing for an empty result). The host allocated it through the SDK's
    /// `proxy_on_memory_allocate` (a boxed `[u8]` of exactly `size` bytes, leaked), so it is ours
    /// to take back as a `Vec` of that length and capacity.
    ///
    /// # Safety
    ///
    /// Call once, only after a host call that answered `Ok` wrote these out-pointers (or left
    /// them as [`Returned::new`] set them).
    unsafe fn take(self) -> Result<Option<Vec<u8>>, Failure> {
        match (self.data.is_null(), self.size) {
            (true, 0) => Ok(None),
            (true, _) => Err(Failure::Malformed),
            // SAFETY: per this function's contract the host allocated `data` with
            // `proxy_on_memory_allocate(size)`, whose layout is that of a `Vec<u8>` with length
            // and capacity `size`, and nobody else owns it.
            (false, size) => Ok(Some(unsafe { Vec::from_raw_parts(self.data, size, size) })),
        }
    }
}

/// Up to `max_size` bytes of buffer `kind` from `start`; `None` when there is no such buffer.
pub fn buffer(kind: BufferType, start: usize, max_size: usize) -> Result<Option<Vec<u8>>, Failure> {
    let mut out = Returned::new();
    // SAFETY: the host only writes the two out-pointers, which live across the call.
    let code =
        unsafe { proxy_get_buffer_bytes(kind, start, max_size, &mut out.data, &mut out.size) };
    match code {
        // SAFETY: the call answered `Ok` and wrote (or left) the out-pointers.
        OK => unsafe { out.take() },
        NOT_FOUND => Ok(None),
        code => Err(Failure::Status(code)),
    }
}

/// Replace `size` bytes of buffer `kind` from `start` with `value`.
pub fn set_buffer(
    kind: BufferType,
    start: usize,
    size: usize,
    value: &[u8],
) -> Result<(), Failure> {
    // SAFETY: the host reads `value` during the call only.
    status(unsafe { proxy_set_buffer_bytes(kind, start, size, value.as_ptr(), value.len()) })
}

/// The whole header map in proxy-wasm's serialized form (read it with `HeaderMap::from_wire`).
/// Envoy's bytes as they are: the UTF-8 question is `HeaderMap`'s, not a reason to fail here.
pub fn header_pairs(map: MapType) -> Result<Vec<u8>, Failure> {
    let mut out = Returned::new();
    // SAFETY: the host only writes the two out-pointers, which live across the call.
    status(unsafe { proxy_get_header_map_pairs(map, &mut out.data, &mut out.size) })?;
    // SAFETY: the call answered `Ok` and wrote (or left) the out-pointers.
    Ok(unsafe { out.take() }?.unwrap_or_default())
}

/// One header's value, `None` when absent.
pub fn header_value(map: MapType, name: &str) -> Result<Option<Vec<u8>>, Failure> {
    let mut out = Returned::new();
    // SAFETY: the host reads `name` and writes the out-pointers during the call only.
    let code = unsafe {
        proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut out.data, &mut out.size)
    };
    match code {
        // SAFETY: the call answered `Ok` and wrote (or left) the out-pointers.
        OK => Ok(Some(unsafe { out.take() }?.unwrap_or_default())),
        NOT_FOUND => Ok(None),
        code => Err(Failure::Status(code)),
    }
}

/// Replace header `name` (add it when absent), or remove it (`None`).
pub fn set_header(map: MapType, name: &str, value: Option<&str>) -> Result<(), Failure> {
    // SAFETY: the host reads the given slices during the call only.
    let code = unsafe {
        match value {
            Some(v) => {
                proxy_replace_header_map_value(map, name.as_ptr(), name.len(), v.as_ptr(), v.len())
            }
            None => proxy_remove_header_map_value(map, name.as_ptr(), name.len()),
        }
    };
    status(code)
}

/// The value of the property at `path` (serialized by `llmgw_core::host::property_path`);
/// `None` when absent.
pub fn property(path: &[u8]) -> Result<Option<Vec<u8>>, Failure> {
    let mut out = Returned::new();
    // SAFETY: the host reads `path` and writes the out-pointers during the call only.
    let code =
        unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut out.data, &mut out.size) };
    match code {
        // SAFETY: the call answered `Ok` and wrote (or left) the out-pointers.
        OK => unsafe { out.take() },
        NOT_FOUND => Ok(None),
        code => Err(Failure::Status(code)),
    }
}

/// Set the property at `path` (serialized as for [`property`]).
pub fn set_property(path: &[u8], value: &[u8]) -> Result<(), Failure> {
    // SAFETY: the host reads both slices during the call only.
    status(unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) })
}

/// Shared data under `key` and its compare-and-swap token (`None` for 0, which means none);
/// `(None, None)` when the key is absent.
pub fn shared_data(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), Failure> {
    let (mut out, mut cas) = (Returned::new(), 0);
    // SAFETY: the host reads `key` and writes the three out-pointers during the call only.
    let code = unsafe {
        proxy_get_shared_data(
            key.as_ptr(),
            key.len(),
            &mut out.data,
            &mut out.size,
            &mut cas,
        )
    };
    match code {
        // SAFETY: the call answered `Ok` and wrote (or left) the out-pointers.
        OK => Ok((unsafe { out.take() }?, (cas != 0).then_some(cas))),
        NOT_FOUND => Ok((None, None)),
        code => Err(Failure::Status(code)),
    }
}

/// Write shared data; a non-zero `cas` makes the write fail with [`Failure::CAS_MISMATCH`] when
/// another worker wrote the key since it was read.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), Failure> {
    // SAFETY: the host reads both slices during the call only.
    status(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Answer the client: `headers` in proxy-wasm's serialized map form (`llmgw_core::headers::
/// to_wire`), no status details, not a gRPC answer (-1).
pub fn send_local_response(status_code: u32, headers: &[u8], body: &[u8]) -> Result<(), Failure> {
    // SAFETY: the host reads the slices during the call only; a null, empty details string is
    // what the spec and the SDK pass for "none".
    status(unsafe {
        proxy_send_local_response(
            status_code,
            std::ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// The host's wall clock, nanoseconds since the Unix epoch.
pub fn current_time_ns() -> Result<u64, Failure> {
    let mut nanos = 0;
    // SAFETY: the host writes the out-pointer during the call only.
    status(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// Define (or look up) a metric by its full name; its id.
pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, Failure> {
    let mut id = 0;
    // SAFETY: the host reads `name` and writes the out-pointer during the call only.
    status(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, delta: i64) -> Result<(), Failure> {
    // SAFETY: plain values only.
    status(unsafe { proxy_increment_metric(id, delta) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), Failure> {
    // SAFETY: plain values only.
    status(unsafe { proxy_record_metric(id, value) })
}

/// Let the paused request go on.
pub fn resume_request() -> Result<(), Failure> {
    // SAFETY: a plain value only.
    status(unsafe { proxy_continue_stream(StreamType::HttpRequest) })
}
