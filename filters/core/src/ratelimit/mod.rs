//! The rate limit filter: how much each consumer may spend.
//!
//! Three layers, so token limits and global (rate limit service) limits can join later without
//! touching the others:
//! - [`window`]: the limit model ([`Limit`], [`LimitKind`], [`Window`]) and its arithmetic
//!   (window bounds, remaining, OpenAI's header formats);
//! - [`store`]: counters in Envoy shared data, updated with compare-and-swap;
//! - this module: the filter, which resolves the limits for the consumer auth identified
//!   ([`crate::headers::CONSUMER`], [`crate::headers::TEAM`]), counts the request, answers 429
//!   when over, and reports OpenAI's `x-ratelimit-*` headers on every response.
//!
//! Why not Envoy's native local rate limit filter: its buckets are per route or per descriptor
//! set in Envoy config, not per consumer from one JSON shared with auth, and it has no token
//! counting; OpenAI clients also expect the `x-ratelimit-*` headers this filter writes.

mod config;
pub mod store;
pub mod window;

pub use self::config::Policy;
pub use self::window::{
    format_duration_ms, remaining, retry_after_secs, Limit, LimitKind, Usage, Window,
};

use std::rc::Rc;

use self::config::RateLimitConfig;
use self::store::{counter_key, try_acquire, Acquire};
use crate::auth::is_valid_id;
use crate::config::ConfigError;
use crate::error::{ApiError, ErrorType};
use crate::filter::{Env, FilterRoot, Flow, HttpFilter};
use crate::headers;
use crate::host::{self, Host};

/// The consumer of requests that carry no consumer header (no auth in front, or auth let an
/// unauthenticated route through). Subject to `default` and to `consumers.anonymous`.
pub const ANONYMOUS: &str = "anonymous";

/// The 429 for a consumer over `usage.limit`, OpenAI-shaped, with `retry-after` and the
/// `x-ratelimit-*` headers.
pub fn rate_limited(consumer: &str, usage: &Usage) -> ApiError {
    let retry_after = retry_after_secs(usage.reset_ms);
    let limit = usage.limit;
    let mut err = ApiError::new(
        429,
        ErrorType::RateLimitError,
        format!(
            "Rate limit reached for consumer {consumer}: {} {} per {}. Retry after {retry_after}s.",
            limit.max,
            limit.kind.unit(),
            limit.window.as_str()
        ),
    )
    .with_code("rate_limit_exceeded")
    .with_header("retry-after", retry_after.to_string());
    for (name, value) in usage.headers() {
        err = err.with_header(name, value);
    }
    err
}

/// ratelimit's compiled configuration.
#[derive(Debug, Clone)]
pub struct RateLimitRoot {
    policy: Rc<Policy>,
}

impl RateLimitRoot {
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl FilterRoot for RateLimitRoot {
    type Filter = RateLimitFilter;
    const NAME: &'static str = "llmgw.ratelimit";

    fn configure(json: &[u8], _env: &dyn Env) -> Result<Self, ConfigError> {
        let policy = crate::config::parse::<RateLimitConfig>(json)?.compile()?;
        Ok(Self {
            policy: Rc::new(policy),
        })
    }

    fn new_filter(&self) -> RateLimitFilter {
        RateLimitFilter {
            policy: self.policy.clone(),
            usage: Vec::new(),
        }
    }
}

/// One request through ratelimit.
#[derive(Debug)]
pub struct RateLimitFilter {
    policy: Rc<Policy>,
    /// Where each applicable counter stood when the request was counted; written to the
    /// response headers.
    usage: Vec<Usage>,
}

impl RateLimitFilter {
    /// Counters as computed for this request (empty when unlimited or not yet counted).
    pub fn usage(&self) -> &[Usage] {
        &self.usage
    }
}

/// The consumer and team auth set. Anything that is not a valid id (a client talking to this
/// filter without auth in front could send anything) counts as absent, so it can neither mint
/// unbounded shared-data keys nor inject odd bytes into them.
fn identity(host: &dyn Host) -> (String, Option<String>) {
    let consumer = host
        .request_header(headers::CONSUMER)
        .filter(|c| is_valid_id(c))
        .unwrap_or_else(|| ANONYMOUS.to_string());
    let team = host
        .request_header(headers::TEAM)
        .filter(|t| is_valid_id(t));
    (consumer, team)
}

impl HttpFilter for RateLimitFilter {
    fn on_request_headers(&mut self, host: &mut dyn Host, _end_of_stream: bool) -> Flow {
        let (consumer, team) = identity(host);
        let limits = self.policy.limits_for(&consumer, team.as_deref());
        if limits.is_empty() {
            return Flow::Continue;
        }
        let now = host.now_ms();
        // One limit per kind and window today. With several (per minute and per day), a request
        // refused by the second must give back what the first took; that comes with them.
        for limit in limits {
            let cost = match limit.kind {
                LimitKind::Requests => 1,
            };
            let key = counter_key(&limit, &consumer);
            let window_start = limit.window.start(now);
            let reset_ms = limit.window.reset_ms(now);
            match try_acquire(host, &key, window_start, limit.max, cost) {
                Acquire::Admitted { count } => self.usage.push(Usage {
                    limit,
                    used: count,
                    reset_ms,
                }),
                Acquire::Denied { count } => {
                    let usage = Usage {
                        limit,
                        used: count,
                        reset_ms,
                    };
                    self.usage.push(usage);
                    log::debug!("llmgw.ratelimit: {consumer} over {limit:?}");
                    host::send_error(host, &rate_limited(&consumer, &usage));
                    return Flow::Pause;
                }
                Acquire::Unavailable(err) => {
                    // Fail open: a shared-data hiccup must not take the gateway down.
                    log::warn!(
                        "llmgw.ratelimit: counter {key} not updated ({err}); request let through"
                    );
                }
            }
        }
        Flow::Continue
    }

    fn on_response_headers(&mut self, host: &mut dyn Host, _end_of_stream: bool) -> Flow {
        // Every response: the provider's, an upstream error, or a later filter's local reply.
        // `set` replaces, so a provider's own x-ratelimit-* headers never reach the client: they
        // describe llmgw's provider account, not this consumer.
        for usage in &self.usage {
            for (name, value) in usage.headers() {
                host.set_response_header(name, &value);
            }
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests;
