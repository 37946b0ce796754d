//! Makes one kind of proxy-wasm host call N times in each request's header callback, so that
//! Envoy's CPU per request, less that of the same filter with N = 0, prices one call. The
//! configuration is `<call>:<N>`, e.g. `get_headers:50`; the calls are those llmgw's filters
//! make (the `Host` trait in filters/core/src/host.rs). Results are ignored: only the cost counts.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::<ProbeRoot>::default());
}}

#[derive(Default, Clone)]
struct Plan {
    call: String,
    times: usize,
    metric: u32,
}

#[derive(Default)]
struct ProbeRoot {
    plan: Plan,
}

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let config = String::from_utf8_lossy(&config);
        let Some((call, times)) = config.trim().split_once(':') else {
            return false;
        };
        let Ok(times) = times.parse() else {
            return false;
        };
        self.plan = Plan {
            call: call.to_string(),
            times,
            metric: hostcalls::define_metric(MetricType::Counter, "probe_total").unwrap_or(0),
        };
        hostcalls::set_shared_data("probe", Some(b"0123456789abcdef"), None).is_ok()
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            plan: self.plan.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Probe {
    plan: Plan,
}

impl Context for Probe {}

/// Distinct names, as a filter writes distinct headers and properties.
const NAMES: [&str; 10] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let request = MapType::HttpRequestHeaders;
        if self.plan.call == "get_property" {
            // Something to find: a read that hits also calls back into the VM to allocate.
            let _ = hostcalls::set_property(vec!["llmgw", "a"], Some(b"value"));
        }
        for i in 0..self.plan.times {
            let name = NAMES[i % NAMES.len()];
            let _ = match self.plan.call.as_str() {
                "get_headers" => hostcalls::get_map(request).map(drop),
                "get_header" => hostcalls::get_map_value(request, "authorization").map(drop),
                "get_header_absent" => hostcalls::get_map_value(request, "x-absent").map(drop),
                "get_headers_raw" => raw_header_map().map(drop),
                "set_header" => {
                    hostcalls::set_map_value(request, &format!("x-probe-{name}"), Some("value"))
                }
                "remove_header" => hostcalls::set_map_value(request, "x-absent", None),
                "set_headers" => hostcalls::get_map(request).and_then(|all| {
                    let pairs = all.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    hostcalls::set_map(request, pairs)
                }),
                "set_property" => hostcalls::set_property(vec!["llmgw", name], Some(b"value")),
                "get_property" => hostcalls::get_property(vec!["llmgw", "a"]).map(drop),
                "get_attribute" => hostcalls::get_property(vec!["request", "path"]).map(drop),
                "increment_metric" => hostcalls::increment_metric(self.plan.metric, 1),
                "define_metric" => {
                    hostcalls::define_metric(MetricType::Counter, "probe_total").map(drop)
                }
                "get_shared" => hostcalls::get_shared_data("probe").map(drop),
                "set_shared" => hostcalls::get_shared_data("probe").and_then(|(_, cas)| {
                    hostcalls::set_shared_data("probe", Some(b"0123456789abcdef"), cas)
                }),
                "time" => hostcalls::get_current_time().map(drop),
                _ => Ok(()),
            };
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.plan.call != "buffer_body" {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause; // as router does: Envoy buffers the whole body
        }
        let _ = hostcalls::get_buffer(proxy_wasm::types::BufferType::HttpRequestBody, 0, body_size);
        Action::Continue
    }
}

extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// The request header map as Envoy serializes it, in one buffer: what `get_map` costs before
/// the SDK splits it into one `String` pair per header.
fn raw_header_map() -> Result<Vec<u8>, proxy_wasm::types::Status> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a buffer it allocated through proxy_on_memory_allocate (the
    // SDK's allocator: a Vec<u8> of `size`), which is ours to own and free.
    unsafe {
        if proxy_get_header_map_pairs(0, &mut data, &mut size) != 0 {
            return Err(proxy_wasm::types::Status::InternalFailure);
        }
        if data.is_null() {
            return Ok(Vec::new());
        }
        Ok(Vec::from_raw_parts(data, size, size))
    }
}
