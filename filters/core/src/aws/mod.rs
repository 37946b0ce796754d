//! AWS plumbing for the Bedrock backend: Signature Version 4 request signing ([`sigv4`]).
//!
//! Envoy 1.40 has a native `aws_request_signing` filter, but it signs once per request on the
//! downstream side; translate signs per upstream try, after it has rewritten the body (the
//! signature covers the final body), and older Envoys and Istio proxies lack that filter.

pub mod sigv4;
