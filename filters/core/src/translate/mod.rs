//! The translate filter: each client speaks its API (OpenAI Chat Completions, Anthropic
//! Messages, OpenAI Responses), each provider its own format.
//!
//! translate runs as an Envoy *upstream* HTTP filter on the provider cluster, so it runs once
//! per try: a fallback try to another provider is translated for the provider it actually goes
//! to. Per try it
//!
//! 1. learns the provider from the endpoint metadata
//!    (`xds.upstream_host_metadata.filter_metadata.llmgw.provider`), else from router's
//!    [`RouterFacts::provider`], else the only configured provider;
//! 2. removes every `x-llmgw-*` header and the client's credentials, and sets the provider's key
//!    (Envoy's `credential_injector` could set a key too, but not per try and per provider of an
//!    aggregate cluster, and older Envoys and Istio proxies lack it);
//! 3. rewrites path and body with a per-request [`Translator`] for the client's dialect and the
//!    provider's wire format: a passthrough where they match (`messages_anthropic`,
//!    `responses_openai`), a Chat translator per provider pair (`openai_openai`,
//!    `openai_anthropic`, …), wrapped by a client adapter for the other dialects
//!    (`messages_chat`, `responses_chat`);
//! 4. translates the answer back into the client's API (JSON, errors, or SSE event by event),
//!    and hands the token usage on in filter state (`llmgw.usage`).
//!
//! Where things are: [`providers`] the configuration and the provider families a build carries,
//! [`translator`] the trait every translator implements and its shared helpers, [`filter`] the
//! Envoy filter that runs them.
//!
//! Secrets: provider keys come from the VM's environment at configure time, or per try from a
//! reserved request header that Envoy's credential_injector fills from an SDS secret
//! (`key_header`: keys that rotate); they never appear in logs or `Debug` output ([`Secret`]).

pub mod account_headers;
mod azure_stream;
/// The Chat request pieces the client adapters write: only builds that carry one.
#[cfg(any(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
pub mod chat_write;
pub mod completion;
#[cfg(feature = "anthropic")]
pub mod count_tokens;
pub mod dropped;
pub mod embeddings;
mod first_try;
#[cfg(feature = "anthropic")]
pub mod messages_anthropic;
#[cfg(feature = "anthropic")]
pub mod messages_chat;
pub mod model_field;
#[cfg(feature = "anthropic")]
pub mod openai_anthropic;
pub mod openai_azure;
#[cfg(feature = "bedrock")]
pub mod openai_bedrock;
#[cfg(feature = "gemini")]
pub mod openai_gemini;
pub mod openai_openai;
pub mod options;
pub mod reasoning;
pub mod request_fields;
/// Responses in, on backends that do not speak it: only builds that carry such a backend.
#[cfg(any(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
pub mod responses_chat;
pub mod responses_openai;
pub mod telemetry;

pub mod filter;
pub mod providers;
pub mod translator;
pub use filter::*;
pub use providers::*;
pub use translator::*;

/// A golden fixture's text: `fixtures/translate/<pair>/<name>` (a path from the crate root,
/// so every test module below uses this one macro).
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
macro_rules! fixture {
    ($pair:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/translate/",
            $pair,
            "/",
            $name
        ))
    };
}

// The suites below exercise every family; a lean build's tests are `family_tests`.
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod bedrock_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod cache_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod embeddings_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod envoy_removal_tests;
#[cfg(test)]
mod family_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod golden;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod golden_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod key_header_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod messages_chat_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod messages_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod provider_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod reasoning_tests;
#[cfg(test)]
#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
mod tests;

use std::collections::HashMap;
use std::rc::Rc;

use serde::Deserialize;

use crate::config::{self, ConfigError};
use crate::dialect::{ClientApi, Operation};
use crate::error::{ApiError, ErrorType};
use crate::facts::{self, Fact, RateLimitFacts, RouterFacts, UsageFact};
use crate::filter::{Callback, Env, FilterRoot, Flow, HttpFilter};
use crate::headers::{self, HeaderMap};
use crate::host::{self, Host};
use crate::metrics::Metrics;
pub use crate::schema::openai::Usage;
use first_try::FirstTry;
use telemetry::{MetricsConfig, TryTelemetry};

/// Where a try learns its provider: the chosen endpoint's metadata.
pub const PROVIDER_METADATA: [&str; 5] = [
    "xds",
    "upstream_host_metadata",
    "filter_metadata",
    "llmgw",
    "provider",
];
