//! A unary gRPC call as an HTTP/2 callout: the dynamic module ABI has HTTP callouts but no gRPC
//! client, so the call is framed here (gRPC over HTTP/2: a 5-byte length prefix, `POST
//! /<service>/<method>`, `content-type: application/grpc`) and sent to the cluster, which must
//! speak HTTP/2 (the rate limit service's cluster does, as Envoy's own gRPC client needs).
//!
//! <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>

use crate::abi::{self, EnvoyBuffer, EnvoyHttpHeader, FilterEnvoyPtr, ModuleBuffer};

/// gRPC status UNAVAILABLE: the call did not complete.
const UNAVAILABLE: u32 = 14;

/// Start the call; its id is the token the answer comes back with.
pub fn call(
    filter: FilterEnvoyPtr,
    cluster: &str,
    service: &str,
    method: &str,
    message: &[u8],
    timeout_ms: u64,
) -> Option<u32> {
    let path = format!("/{service}/{method}");
    let mut headers = [
        abi::ModuleHttpHeader::new(":method", "POST"),
        abi::ModuleHttpHeader::new(":path", &path),
        abi::ModuleHttpHeader::new("host", cluster),
        abi::ModuleHttpHeader::new("content-type", "application/grpc"),
        abi::ModuleHttpHeader::new("te", "trailers"),
    ];
    let length = u32::try_from(message.len()).ok()?;
    let mut body = Vec::with_capacity(message.len() + 5);
    body.push(0); // not compressed
    body.extend_from_slice(&length.to_be_bytes());
    body.extend_from_slice(message);
    let mut id = 0u64;
    // SAFETY: `filter` is the live stream's filter; headers, the strings they point into, the
    // cluster name and the body outlive the call, which copies them into the request.
    let result = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_http_callout(
            filter,
            &mut id,
            ModuleBuffer::from(cluster),
            headers.as_mut_ptr(),
            headers.len(),
            ModuleBuffer::from(body.as_slice()),
            timeout_ms,
        )
    };
    if result != abi::CALLOUT_INIT_SUCCESS {
        log::warn!("llmgw: gRPC call to cluster {cluster} could not start ({result})");
        return None;
    }
    // Callout ids count up from 1 per stream: they fit the core's u32 tokens.
    u32::try_from(id).ok()
}

/// The gRPC status and message of a finished callout.
///
/// The callout hands over headers and body but not trailers, where a successful call's
/// `grpc-status` travels: an error answered without a message ("trailers-only") carries it in
/// the headers and is read there; an HTTP 200 with a whole framed message is taken as OK.
///
/// # Safety
/// `headers` and `chunks` are the arrays Envoy passed to the callout-done hook that is running.
pub unsafe fn answer(
    result: u32,
    headers: *const EnvoyHttpHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
) -> (u32, Vec<u8>) {
    if result != abi::CALLOUT_SUCCESS {
        return (UNAVAILABLE, Vec::new());
    }
    let headers: &[EnvoyHttpHeader] = if headers.is_null() {
        &[]
    } else {
        // SAFETY: Envoy's array of `headers_size` headers (caller's contract).
        unsafe { std::slice::from_raw_parts(headers, headers_size) }
    };
    let mut http_status = None;
    let mut grpc_status = None;
    for header in headers {
        // SAFETY: Envoy's header bytes, valid during the hook.
        let (name, value) = unsafe {
            (
                EnvoyBuffer {
                    ptr: header.key_ptr,
                    length: header.key_length,
                }
                .bytes(),
                EnvoyBuffer {
                    ptr: header.value_ptr,
                    length: header.value_length,
                }
                .bytes(),
            )
        };
        let value = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok());
        match name {
            b":status" => http_status = value,
            b"grpc-status" => grpc_status = value,
            _ => {}
        }
    }
    let mut body = Vec::new();
    if !chunks.is_null() {
        // SAFETY: Envoy's array of `chunks_size` buffers (caller's contract).
        for chunk in unsafe { std::slice::from_raw_parts(chunks, chunks_size) } {
            // SAFETY: Envoy's chunk bytes, valid during the hook.
            body.extend_from_slice(unsafe { chunk.bytes() });
        }
    }
    if let Some(status) = grpc_status {
        return (status, Vec::new());
    }
    if http_status != Some(200) {
        return (UNAVAILABLE, Vec::new());
    }
    match unframe(&body) {
        Some(message) => (0, message.to_vec()),
        None => (UNAVAILABLE, Vec::new()),
    }
}

/// The message inside one length-prefixed, uncompressed gRPC frame.
fn unframe(body: &[u8]) -> Option<&[u8]> {
    let (&flag, rest) = body.split_first()?;
    if flag != 0 || rest.len() < 4 {
        return None;
    }
    let (length, message) = rest.split_at(4);
    let length = u32::from_be_bytes(length.try_into().ok()?) as usize;
    message.get(..length)
}
