//! The shape of a filter: a root built once from config, and one [`HttpFilter`] per request.
//!
//! `llmgw-wasm-host` adapts these to proxy-wasm's `RootContext` / `HttpContext`, so a filter
//! crate is one line naming its [`FilterRoot`].

use crate::config::ConfigError;
use crate::host::Host;

/// What Envoy should do after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop iteration: wait for more body, or a local reply was sent.
    Pause,
}

/// Where a filter reads secrets: the VM's environment (`vm_config.environment_variables`).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// A per-request callback of [`HttpFilter`] that a filter may leave at its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    /// [`HttpFilter::on_stream_done`] (proxy-wasm's `on_log` and `on_done`).
    StreamDone,
}

/// A filter's compiled configuration; makes the per-request filters.
pub trait FilterRoot: Sized + 'static {
    type Filter: HttpFilter;
    /// The filter's name, used in logs (`llmgw.auth`, …).
    const NAME: &'static str;
    /// The callbacks this filter leaves at [`HttpFilter`]'s defaults (`Continue`, no host
    /// call). The wasm build does not export them, so Envoy does not cross into the VM for
    /// them (`llmgw_wasm_host::unused_exports`); `testing::scenario` checks that each is a
    /// no-op.
    const UNUSED_CALLBACKS: &'static [Callback];

    /// Parse and validate the plugin configuration (JSON). A refusal names the field and why.
    fn configure(json: &[u8], env: &dyn Env) -> Result<Self, ConfigError>;

    fn new_filter(&self) -> Self::Filter;
}

/// Per-request callbacks; each defaults to `Continue`.
#[allow(unused_variables)]
pub trait HttpFilter {
    fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        Flow::Continue
    }
    fn on_request_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        Flow::Continue
    }
    /// The request ends with trailers (HTTP/2, or chunked HTTP/1.1): Envoy then never says
    /// `end_of_stream` with the body, so a filter that waits for the whole body must take this
    /// as its end ([`end_of_body_on_trailers`]).
    fn on_request_trailers(&mut self, host: &mut dyn Host) -> Flow {
        Flow::Continue
    }
    fn on_response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        Flow::Continue
    }
    fn on_response_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        Flow::Continue
    }
    /// The answer to a [`Host::grpc_call`]: `status` is the gRPC status (0 = OK), the message
    /// (`size` bytes) is read with [`Host::grpc_response_body`]. A filter that paused for the
    /// call resumes with [`Host::resume_request`] or answers with a local reply.
    fn on_grpc_response(&mut self, host: &mut dyn Host, token: u32, status: u32, size: usize) {}
    /// The stream is done, however it ended (also after a reset): report what happened.
    /// Envoy may signal this twice (access log, then context end); filters report once.
    fn on_stream_done(&mut self, host: &mut dyn Host) {}
}

/// For a filter that buffers the request body: trailers end the body, so run its body callback
/// once more with `end_of_stream` on all that Envoy has buffered (its size is not passed with
/// trailers, so it is read once to learn it).
pub fn end_of_body_on_trailers<F: HttpFilter + ?Sized>(
    filter: &mut F,
    host: &mut dyn Host,
) -> Flow {
    let size = host.request_body(usize::MAX).len();
    filter.on_request_body(host, size, true)
}
