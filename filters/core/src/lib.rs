//! llmgw's filter logic, free of proxy-wasm so that all of it is testable natively and on wasm32.
//!
//! Each filter is a [`filter::FilterRoot`] (compiled config, built once in `on_configure`) that
//! makes one [`filter::HttpFilter`] per request. Filters touch Envoy only through the
//! [`host::Host`] trait; `llmgw-wasm-host` implements it over proxy-wasm and
//! [`testing::FakeHost`] implements it for tests. Filters talk to each other only through the
//! filter-state facts listed in [`facts`].
#![forbid(unsafe_code)]

pub mod access_log;
pub mod auth;
#[cfg(feature = "bedrock")]
pub mod aws;
pub mod calendar;
pub mod config;
pub mod dialect;
pub mod error;
#[cfg(feature = "bedrock")]
pub mod eventstream;
pub mod facts;
pub mod filter;
pub mod gateway;
pub mod headers;
pub mod host;
pub mod json;
pub mod json_write;
pub mod metrics;
pub mod ratelimit;
pub mod router;
pub mod schema;
pub mod sse;
pub mod text;
pub mod translate;
pub mod usage_stream;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
