//! The rate limit filter: how much each consumer may spend, in requests and tokens.
//!
//! Layers, each in its own module:
//! - [`window`]: the limit model ([`Limit`], [`LimitKind`], [`Window`]) and its arithmetic
//!   (window bounds, remaining, OpenAI's header formats);
//! - `config`: which limits apply to a request ([`Policy`], [`Identity`], [`Applied`]);
//! - [`estimate`]: what a request should cost before it goes upstream, from router's facts,
//!   and the real cost from the response's `usage`;
//! - [`watch`]: reading that usage off the response as it streams past (and hiding the usage
//!   chunk llmgw asked for on the client's behalf);
//! - [`store`]: local mode, counters in Envoy shared data updated with compare-and-swap;
//! - [`global`] and [`proto`]: global mode, Envoy's rate limit service protocol over gRPC;
//! - `admin`: local mode's admin read path (`GET /llmgw/budgets` on an admin listener; Cargo
//!   feature `admin`, which gateway.wasm is built without: `admin_not_built` refuses the role
//!   there), and [`budget_index`]: the index of budget counters it reads, which every build
//!   writes;
//! - this module: the filter. It admits the request against every applicable limit at its
//!   estimated cost (all or nothing: a request refused by one limit gives back what the others
//!   took), answers 429 when over, writes OpenAI's `x-ratelimit-*` headers on every response,
//!   and charges the real usage when the response ends.
//!
//! Budgets (`usd_per_<window>`, micro-USD counters) go through the same machinery: admitted at
//! the request's worst-case cost ([`estimate::worst_case_usd_micros`]), settled at the real cost
//! of the provider that answered, refused with OpenAI's `insufficient_quota` 429, and reported
//! in llmgw's `x-llmgw-budget-*` headers (README "Budgets").
//!
//! Why not Envoy's native rate limit filters: their buckets come from route or descriptor
//! config, not per consumer from one JSON shared with auth; they count requests, not tokens
//! estimated from the body and reconciled from the answer (Envoy 1.40's `hits_addend` from
//! metadata needs other filters to compute it, and older Envoys and Istio proxies lack it); and
//! OpenAI clients expect the `x-ratelimit-*` headers this filter writes.

#[cfg(feature = "admin")]
pub mod admin;
#[cfg(not(feature = "admin"))]
mod admin_not_built;
pub mod budget_index;
mod config;
pub mod estimate;
pub mod global;
pub mod image_tokens;
pub mod proto;
pub mod store;
pub mod watch;
pub mod window;

pub use self::config::{Applied, Dimension, Identity, Policy, DEFAULT_MAX_OUTPUT_TOKENS};
pub use self::window::{
    format_duration_ms, format_usd, format_utc, remaining, retry_after_secs, Limit, LimitKind,
    Usage, Window,
};

use std::ops::Deref;
use std::rc::Rc;

use self::admin::AdminConfig;
#[cfg(not(feature = "admin"))]
use self::admin_not_built as admin;
use self::budget_index::Indexed;
use self::config::RateLimitConfig;
use self::estimate::Cost;
use self::global::{FailureMode, GlobalConfig};
use self::proto::{Code, RateLimitResponse};
use self::store::{adjust, applied_key, try_acquire, Acquire, Counter};
use self::watch::{BodyRead, ResponseWatcher};
use crate::auth::is_valid_id;
use crate::config::ConfigError;
use crate::dialect::ClientApi;
use crate::error::{ApiError, ErrorType};
use crate::facts::{self, AuthFacts, Fact, RateLimitFacts, RouterFacts, UsageFact};
use crate::filter::{Callback, Env, FilterRoot, Flow, HttpFilter};
use crate::host::{self, Host};
use crate::metrics::Metrics;

/// The consumer of requests auth did not name (no auth in front, or auth let an
/// unauthenticated route through). Subject to `default` and to `consumers.anonymous`.
pub const ANONYMOUS: &str = "anonymous";

/// Counters (`/stats`: `wasmcustom.<name>`; unlabelled).
pub mod metrics {
    /// A successful answer ended without usage (a cut stream): charged by its estimate.
    pub const USAGE_MISSING: &str = "llmgw_ratelimit_usage_missing_total";
    /// The rate limit service failed, timed out or answered nonsense.
    pub const RLS_FAILURES: &str = "llmgw_ratelimit_rls_failures_total";
    /// Shared data could not be updated (the request was let through).
    pub const STORE_FAILURES: &str = "llmgw_ratelimit_store_failures_total";
    /// Requests refused with 429.
    pub const REFUSED: &str = "llmgw_ratelimit_refused_total";
    /// Responses that carried a budget warning (label `budget`: its config path).
    pub const BUDGET_WARNINGS: &str = "llmgw_budget_warnings_total";
    /// Budgeted requests refused because a provider they may reach has no price.
    pub const BUDGET_UNPRICED: &str = "llmgw_budget_unpriced_total";
    /// Gauges per budget counter (labels `budget`: its config path, `key`: the values of its
    /// `by` dimensions joined by `/`): micro-USD spent in the current window as this Envoy last
    /// saw it (reservations in flight included), and the budget's limit.
    pub const BUDGET_SPENT: &str = "llmgw_budget_spent_usd_micros";
    pub const BUDGET_LIMIT: &str = "llmgw_budget_limit_usd_micros";
}

/// Response headers of the tightest budget (README "Budgets"), beside the three of
/// [`LimitKind::headers`].
pub mod budget_headers {
    /// The tightest budget's config path (`limits[0].usd_per_day`).
    pub const NAME: &str = "x-llmgw-budget";
    /// When it resets, RFC 3339 UTC.
    pub const RESET_AT: &str = "x-llmgw-budget-reset-at";
    /// Set when a budget is used to `budget_warning_percent` or more.
    pub const WARNING: &str = "x-llmgw-budget-warning";
}

/// The 429 for a request whose worst case does not fit in budget `name`: OpenAI's
/// `insufficient_quota` (<https://platform.openai.com/docs/guides/error-codes>), naming the
/// budget, its period and when it resets. `x-should-retry: false` tells the OpenAI and Anthropic
/// SDKs not to retry it: retrying cannot help before the reset.
pub fn budget_exceeded(who: &str, name: &str, usage: &Usage, cost: u64, now_ms: u64) -> ApiError {
    let limit = usage.limit;
    let resets_at = format_utc(limit.window.end(now_ms));
    ApiError::new(
        429,
        ErrorType::InsufficientQuota,
        format!(
            "Budget {name} for {who} is spent: {} of {} USD per {} (UTC) used, and this request \
             may cost up to {} USD. It resets at {resets_at}.",
            format_usd(usage.used),
            format_usd(limit.max),
            limit.window.as_str(),
            format_usd(cost),
        ),
    )
    .with_code("insufficient_quota")
    .with_header("x-should-retry", "false")
}

/// The 429 for a request over `usage.limit` (configured as `name`), OpenAI-shaped, with
/// `retry-after` and the `x-ratelimit-*` headers of `all`.
pub fn rate_limited(consumer: &str, name: &str, usage: &Usage, all: &[Usage]) -> ApiError {
    let retry_after = retry_after_secs(usage.reset_ms);
    let limit = usage.limit;
    let mut err = ApiError::new(
        429,
        ErrorType::RateLimitError,
        format!(
            "Rate limit reached for consumer {consumer} on {name}: {} {} per {}. Retry after {retry_after}s.",
            limit.max,
            limit.kind.unit(),
            limit.window.as_str()
        ),
    )
    .with_code("rate_limit_exceeded")
    .with_header("retry-after", retry_after.to_string());
    for (name, value) in response_headers(all) {
        err = err.with_header(name, value);
    }
    err
}

/// OpenAI's six headers: per trio (requests, tokens) the tightest counter, the one with the
/// least remaining.
pub fn response_headers(usage: &[Usage]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for tokens in [false, true] {
        let tightest = usage
            .iter()
            .filter(|u| u.limit.kind != LimitKind::Usd && u.limit.kind.is_tokens() == tokens)
            .min_by_key(|u| (u.remaining(), u.reset_ms));
        if let Some(u) = tightest {
            out.extend(u.headers());
        }
    }
    out
}

/// The tightest budget's headers (the least remaining), and the warning of the most used
/// budget at `warn_permille` or more: `(headers, budget warned about)`. `applied[i]` is the
/// limit of `usage[i]`.
pub fn budget_response_headers(
    applied: &[Applied],
    usage: &[Usage],
    now_ms: u64,
    warn_permille: u64,
) -> (Vec<(&'static str, String)>, Option<String>) {
    let budgets = || {
        applied
            .iter()
            .zip(usage)
            .filter(|(_, u)| u.limit.kind == LimitKind::Usd)
    };
    let mut out = Vec::new();
    if let Some((a, u)) = budgets().min_by_key(|(_, u)| (u.remaining(), u.reset_ms)) {
        out.extend(u.headers());
        out.push((budget_headers::NAME, a.name.clone()));
        out.push((
            budget_headers::RESET_AT,
            format_utc(a.limit.window.end(now_ms)),
        ));
    }
    let warned = budgets()
        .filter(|(_, u)| u.used_permille() >= warn_permille)
        .max_by_key(|(_, u)| u.used_permille());
    let warned = warned.map(|(a, u)| {
        let permille = u.used_permille();
        out.push((
            budget_headers::WARNING,
            format!(
                "{}.{}% of budget {} used ({} of {} USD per {})",
                permille / 10,
                permille % 10,
                a.name,
                format_usd(u.used),
                format_usd(u.limit.max),
                u.limit.window.as_str()
            ),
        ));
        a.name.clone()
    });
    (out, warned)
}

/// ratelimit's compiled configuration.
#[derive(Debug, Clone)]
pub struct RateLimitRoot {
    policy: Rc<Policy>,
    global: Option<Rc<GlobalConfig>>,
    metrics: Metrics,
    /// The admin role: this filter answers `GET /llmgw/budgets` and nothing else.
    admin: Option<Rc<AdminConfig>>,
    indexed: Indexed,
}

impl RateLimitRoot {
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl FilterRoot for RateLimitRoot {
    type Filter = RateLimitFilter;
    const NAME: &'static str = "llmgw.ratelimit";
    const UNUSED_CALLBACKS: &'static [Callback] = &[];

    fn configure(json: &[u8], _env: &dyn Env) -> Result<Self, ConfigError> {
        let raw = crate::config::parse::<RateLimitConfig>(json)?;
        let policy = raw.compile()?;
        if let Some(global) = &raw.global {
            global.validate()?;
        }
        if let Some(admin) = &raw.admin {
            admin.validate()?;
            raw.check_admin_role()?;
        }
        Ok(Self {
            policy: Rc::new(policy),
            global: raw.global.map(Rc::new),
            metrics: Metrics::default(),
            admin: raw.admin.map(Rc::new),
            indexed: Indexed::default(),
        })
    }

    fn new_filter(&self) -> RateLimitFilter {
        RateLimitFilter {
            policy: self.policy.clone(),
            global: self.global.clone(),
            metrics: self.metrics.clone(),
            admin: self.admin.clone(),
            indexed: self.indexed.clone(),
            consumer: String::new(),
            applied: Vec::new(),
            estimate: Cost::default(),
            usage: Vec::new(),
            charged: Vec::new(),
            hide_usage: false,
            watcher: None,
            api: ClientApi::ChatCompletions,
            pending_call: None,
            done: false,
            prices: None,
            answered_by: None,
        }
    }
}

/// A token counter this request was charged its estimate on (local mode).
#[derive(Debug, Clone)]
struct Charge {
    key: String,
    window_start: u64,
    kind: LimitKind,
}

/// One request through ratelimit.
#[derive(Debug)]
pub struct RateLimitFilter {
    policy: Rc<Policy>,
    global: Option<Rc<GlobalConfig>>,
    metrics: Metrics,
    admin: Option<Rc<AdminConfig>>,
    indexed: Indexed,
    consumer: String,
    applied: Vec<Applied>,
    estimate: Cost,
    /// Where each applicable counter stood once the request was counted; written to the
    /// response headers.
    usage: Vec<Usage>,
    charged: Vec<Charge>,
    /// The client did not ask for the stream's usage chunk: remove it.
    hide_usage: bool,
    watcher: Option<ResponseWatcher>,
    /// The client's dialect: errors are answered in it. Only a Chat answer's usage is read off
    /// the body (ratelimit alone); any dialect's is translate's [`facts::USAGE`] when present.
    api: ClientApi,
    /// The admission call to the rate limit service in flight.
    pending_call: Option<u32>,
    /// The real usage was charged (or the request was refused): nothing more to do.
    done: bool,
    /// Router's prices of the targets the request may reach (budgets only).
    prices: Option<String>,
    /// The provider of the try that answered (budgets only): its price settles the budget.
    answered_by: Option<String>,
}

impl RateLimitFilter {
    /// Counters as computed for this request (empty when unlimited or not yet counted).
    pub fn usage(&self) -> &[Usage] {
        &self.usage
    }

    fn refuse(&mut self, host: &mut dyn Host, name: &str, usage: Usage) -> Flow {
        self.done = true;
        log::debug!("llmgw.ratelimit: {} over {name}", self.consumer);
        // The limit's config path (`consumers.carol.requests_per_minute`): bounded by config.
        self.metrics
            .count(host, metrics::REFUSED, &[("limit", name)], 1);
        let err = if usage.limit.kind == LimitKind::Usd {
            let cost = self.estimate.usd_micros;
            budget_exceeded(&self.consumer, name, &usage, cost, host.now_ms())
        } else {
            rate_limited(&self.consumer, name, &usage, &self.usage)
        };
        host::send_error_in(host, self.api, &err);
        Flow::Pause
    }

    /// The budget gauges of `a`, now at `used`.
    fn report_budget(&self, host: &mut dyn Host, a: &Applied, used: u64) {
        if a.limit.kind != LimitKind::Usd {
            return;
        }
        let key: Vec<&str> = a.key.iter().map(|(_, v)| v.as_str()).collect();
        let key = key.join("/");
        let labels = [("budget", a.name.as_str()), ("key", key.as_str())];
        self.metrics.set(host, metrics::BUDGET_SPENT, &labels, used);
        self.metrics
            .set(host, metrics::BUDGET_LIMIT, &labels, a.limit.max);
    }

    /// A budget applies but a provider the request may reach has no price: it cannot be
    /// counted, so it is not sent (a budget that unpriced models escape would be no cap).
    fn refuse_unpriced(&mut self, host: &mut dyn Host, provider: &str) -> Flow {
        self.done = true;
        let budget = self
            .applied
            .iter()
            .find(|a| a.limit.kind == LimitKind::Usd)
            .map(|a| a.name.clone())
            .unwrap_or_default();
        self.metrics
            .count(host, metrics::BUDGET_UNPRICED, &[("budget", &budget)], 1);
        let whose = if provider.is_empty() {
            "router named no provider".to_string()
        } else {
            format!("provider {provider} has no price in router's catalogue")
        };
        log::warn!("llmgw.ratelimit: budget {budget} cannot price a request: {whose}");
        let err = ApiError::new(
            500,
            ErrorType::ApiError,
            format!(
                "Budget {budget} applies to this request, but its cost cannot be counted: \
                 {whose}. The request was not sent; the gateway's operator must add the price."
            ),
        )
        .with_code("budget_unpriced_model");
        host::send_error_in(host, self.api, &err);
        Flow::Pause
    }

    /// Local mode: spend the estimate from every counter, or from none.
    fn admit_locally(&mut self, host: &mut dyn Host) -> Flow {
        let now = host.now_ms();
        let applied = std::mem::take(&mut self.applied);
        let mut taken: Vec<(String, u64, u64)> = Vec::new();
        for (i, a) in applied.iter().enumerate() {
            let cost = self.estimate.of(a.limit.kind);
            let key = applied_key(a);
            let window_start = a.limit.window.start(now);
            let reset_ms = a.limit.window.reset_ms(now);
            let acquired = try_acquire(host, &key, window_start, a.limit.max, cost);
            if let Acquire::Admitted { count } | Acquire::Denied { count } = acquired {
                self.report_budget(host, a, count);
                if a.limit.kind == LimitKind::Usd {
                    self.indexed.note(host, a, &key);
                }
            }
            match acquired {
                Acquire::Admitted { count } => {
                    self.usage.push(Usage {
                        limit: a.limit,
                        used: count,
                        reset_ms,
                    });
                    if a.limit.kind.is_settled() {
                        self.charged.push(Charge {
                            key: key.clone(),
                            window_start,
                            kind: a.limit.kind,
                        });
                    }
                    taken.push((key, window_start, cost));
                }
                Acquire::Denied { count } => {
                    // Give back what the other limits took: a refused request costs nothing.
                    for ((key, start, cost), usage) in taken.iter().zip(self.usage.iter_mut()) {
                        adjust(host, key, *start, -i128::from(*cost));
                        usage.used = usage.used.saturating_sub(*cost);
                    }
                    self.charged.clear();
                    for (key, start, _) in &taken {
                        let given_back = applied.iter().find(|a| applied_key(a) == *key);
                        if let Some(a) = given_back.filter(|a| a.limit.kind == LimitKind::Usd) {
                            let stored = host.shared_data(key);
                            self.report_budget(
                                host,
                                a,
                                Counter::count_in(stored.data.as_deref(), *start),
                            );
                        }
                    }
                    let usage = Usage {
                        limit: a.limit,
                        used: count,
                        reset_ms,
                    };
                    self.usage.push(usage);
                    // The 429 reports every counter, also those not reached.
                    for rest in applied.iter().skip(i + 1) {
                        let stored = host.shared_data(&applied_key(rest));
                        let start = rest.limit.window.start(now);
                        self.usage.push(Usage {
                            limit: rest.limit,
                            used: Counter::count_in(stored.data.as_deref(), start),
                            reset_ms: rest.limit.window.reset_ms(now),
                        });
                    }
                    return self.refuse(host, &a.name, usage);
                }
                Acquire::Unavailable(err) => {
                    // Fail open: a shared-data hiccup must not take the gateway down.
                    self.metrics.count(host, metrics::STORE_FAILURES, &[], 1);
                    log::warn!(
                        "llmgw.ratelimit: counter {key} not updated ({err}); request let through"
                    );
                }
            }
        }
        self.applied = applied;
        Flow::Continue
    }

    /// Global mode: ask the rate limit service; the answer resumes or refuses the request.
    fn admit_globally(&mut self, host: &mut dyn Host, global: &GlobalConfig) -> Flow {
        let request = global::admission(&global.domain, &self.applied, &self.estimate);
        match host.grpc_call(
            &global.cluster,
            global::SERVICE,
            global::METHOD,
            &request.encode(),
            global.timeout_ms,
        ) {
            Some(token) => {
                self.pending_call = Some(token);
                Flow::Pause
            }
            None => self.rls_failed(host, global, "the call could not be started", false),
        }
    }

    /// The rate limit service could not answer: fail open or closed as configured.
    fn rls_failed(
        &mut self,
        host: &mut dyn Host,
        global: &GlobalConfig,
        why: &str,
        paused: bool,
    ) -> Flow {
        self.metrics.count(host, metrics::RLS_FAILURES, &[], 1);
        match global.failure_mode {
            FailureMode::Open => {
                log::warn!(
                    "llmgw.ratelimit: rate limit service {}: {why}; request let through",
                    global.cluster
                );
                // Nothing was counted: nothing to reconcile.
                self.applied.clear();
                if paused {
                    host.resume_request();
                }
                Flow::Continue
            }
            FailureMode::Closed => {
                log::warn!(
                    "llmgw.ratelimit: rate limit service {}: {why}; request refused",
                    global.cluster
                );
                self.done = true;
                let err = ApiError::new(
                    503,
                    ErrorType::ApiError,
                    "The rate limit service is unavailable; the request was not sent. Retry later.",
                )
                .with_code("rate_limit_service_unavailable");
                host::send_error_in(host, self.api, &err);
                Flow::Pause
            }
        }
    }

    fn on_rls_answer(&mut self, host: &mut dyn Host, global: &GlobalConfig, body: &[u8]) {
        let answer = match RateLimitResponse::decode(body) {
            Ok(answer) if answer.overall_code != Code::Unknown => answer,
            Ok(_) => {
                self.rls_failed(host, global, "answer without a code", true);
                return;
            }
            Err(err) => {
                self.rls_failed(host, global, &format!("unreadable answer ({err})"), true);
                return;
            }
        };
        let now = host.now_ms();
        let mut refused: Option<(String, Usage)> = None;
        for (i, a) in self.applied.iter().enumerate() {
            let status = answer.statuses.get(i);
            let remaining = answer.remaining(i).unwrap_or(a.limit.max);
            let reset_ms = status
                .and_then(|s| s.duration_until_reset_ms)
                .filter(|ms| *ms > 0)
                .unwrap_or_else(|| a.limit.window.reset_ms(now));
            // A budget's reset is exact from the calendar (the service rounds to seconds).
            let reset_ms = match a.limit.kind {
                LimitKind::Usd => a.limit.window.reset_ms(now),
                _ => reset_ms,
            };
            let usage = Usage {
                limit: a.limit,
                used: a.limit.max.saturating_sub(remaining),
                reset_ms,
            };
            if refused.is_none() && status.is_some_and(|s| s.code == Code::OverLimit) {
                refused = Some((a.name.clone(), usage));
            }
            self.usage.push(usage);
        }
        for (a, usage) in self.applied.iter().zip(&self.usage) {
            self.report_budget(host, a, usage.used);
        }
        match refused {
            Some((name, usage)) => {
                self.refuse(host, &name, usage);
            }
            None if answer.overall_code == Code::OverLimit => {
                // Over, but no descriptor said which: name the first.
                let name = self.applied.first().map(|a| a.name.clone());
                let usage = self.usage.first().copied();
                if let (Some(name), Some(usage)) = (name, usage) {
                    self.refuse(host, &name, usage);
                } else {
                    host.resume_request();
                }
            }
            None => host.resume_request(),
        }
    }

    /// When translate reports the usage: read it, now that the answer ended.
    fn read_reported_usage(&mut self, host: &mut dyn Host) {
        if let Some(watcher) = self.watcher.as_mut().filter(|w| w.is_reported()) {
            watcher.set_reported(facts::read_usage(host));
        }
    }

    /// The response ended: charge what it really cost instead of the estimate.
    fn reconcile(&mut self, host: &mut dyn Host, status_ok: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let watcher = self.watcher.take();
        let actual = match watcher.as_ref().and_then(ResponseWatcher::usage) {
            Some(usage) => {
                let mut cost = Cost::from_usage(&usage);
                // At the price of the provider that answered; unknown (no price, no provider):
                // the reservation stands.
                let price = self
                    .answered_by
                    .as_deref()
                    .and_then(|p| facts::price_for_provider(self.prices.as_deref()?, p));
                cost.usd_micros = match price {
                    Some(price) => estimate::usd_micros(&usage, price),
                    None => self.estimate.usd_micros,
                };
                cost
            }
            None if !status_ok => Cost::default(), // the provider refused: no tokens spent
            None => {
                if watcher.as_ref().is_some_and(ResponseWatcher::expects_usage) {
                    self.metrics.count(host, metrics::USAGE_MISSING, &[], 1);
                    log::info!(
                        "llmgw.ratelimit: answer for {} ended without usage; charged by its estimate",
                        self.consumer
                    );
                }
                return;
            }
        };
        match self.global.clone() {
            None => {
                for charge in std::mem::take(&mut self.charged) {
                    let delta = actual.delta(&self.estimate, charge.kind);
                    if !adjust(host, &charge.key, charge.window_start, delta) {
                        self.metrics.count(host, metrics::STORE_FAILURES, &[], 1);
                    }
                    if charge.kind == LimitKind::Usd {
                        let stored = host.shared_data(&charge.key);
                        let used = Counter::count_in(stored.data.as_deref(), charge.window_start);
                        let budget = self.applied.iter().find(|a| applied_key(a) == charge.key);
                        if let Some(a) = budget {
                            self.report_budget(host, a, used);
                        }
                    }
                }
            }
            Some(global) => {
                if let Some(request) =
                    global::reconciliation(&global.domain, &self.applied, &self.estimate, &actual)
                {
                    // Fire and forget: the answer (ignored) may arrive after this request.
                    host.grpc_call(
                        &global.cluster,
                        global::SERVICE,
                        global::METHOD,
                        &request.encode(),
                        global.timeout_ms,
                    );
                }
            }
        }
    }

    /// The budget headers and warning; and which provider answered, whose price settles.
    fn budget_headers(&mut self, host: &mut dyn Host) {
        let now = host.now_ms();
        let warn = self.policy.budget_warning_permille;
        let (headers, warned) = budget_response_headers(&self.applied, &self.usage, now, warn);
        for (name, value) in headers {
            host.set_response_header(name, &value);
        }
        if let Some(budget) = warned {
            self.metrics
                .count(host, metrics::BUDGET_WARNINGS, &[("budget", &budget)], 1);
        }
        self.answered_by = host
            .property(&crate::router::UPSTREAM_PROVIDER)
            .and_then(|v| String::from_utf8(v).ok());
    }

    /// Must the response be watched: tokens to reconcile, or a forced usage chunk to hide?
    fn needs_usage(&self) -> bool {
        !self.done
            && (self.hide_usage
                || !self.charged.is_empty()
                || (self.global.is_some()
                    && self.applied.iter().any(|a| a.limit.kind.is_settled())))
    }
}

/// Who is asking, from auth's and router's facts. Their writers take them from validated
/// config; they are checked again because they become shared-data and descriptor keys: an id
/// or name of another shape counts as absent.
fn identity<S: Deref<Target = str>>(auth: AuthFacts<S>, routed: &RouterFacts<S>) -> Identity {
    let id = |v: Option<&str>| v.filter(|v| is_valid_id(v)).map(str::to_string);
    let name = |v: Option<&str>| v.filter(|v| is_valid_name(v)).map(str::to_string);
    Identity {
        consumer: id(auth.consumer.as_deref()).unwrap_or_else(|| ANONYMOUS.to_string()),
        team: id(auth.team.as_deref()),
        model: name(routed.upstream_model.as_deref()),
        requested_model: name(routed.requested_model.as_deref()),
        provider: name(routed.provider.as_deref()),
    }
}

/// Model and provider names as router's config validates them (letters, digits, `._-:/@`).
fn is_valid_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/@".contains(&b))
}

impl HttpFilter for RateLimitFilter {
    fn on_request_headers(&mut self, host: &mut dyn Host, _end_of_stream: bool) -> Flow {
        // The admin role (its own listener): the budgets, never a limit.
        if let Some(config) = self.admin.clone() {
            self.done = true;
            admin::serve(host, &config);
            return Flow::Pause;
        }
        // Both records borrowed: identity copies the few names it keeps.
        let router = facts::stored(host, facts::ROUTER);
        let routed = RouterFacts::view(router.as_deref());
        let auth = facts::stored(host, facts::AUTH);
        let who = identity(AuthFacts::view(auth.as_deref()), &routed);
        self.applied = self.policy.applicable(&who);
        self.consumer = who.consumer;
        if self.applied.is_empty() {
            return Flow::Continue;
        }
        // The client's dialect (a refusal is answered in it; Messages and Responses usage comes
        // from translate's fact): router's, else (no router in the chain) from `:path`, only
        // when a limit applies.
        self.api = match routed.client_api {
            Some(api) => api,
            None => ClientApi::for_errors(&host.request_header(":path").unwrap_or_default()),
        };
        // A stream whose client did not ask for usage: have translate ask for it when tokens
        // are to be charged, and hide it again on the way back.
        if routed.stream_without_usage() && self.applied.iter().any(|a| a.limit.kind.is_settled()) {
            RateLimitFacts { force_usage: true }.publish(host);
            self.hide_usage = true;
        }
        self.estimate = Cost::estimate(&routed, self.policy.default_max_output_tokens);
        if self.applied.iter().any(|a| a.limit.kind == LimitKind::Usd) {
            match estimate::worst_case_usd_micros(&routed, &self.estimate) {
                Ok(micros) => self.estimate.usd_micros = micros,
                Err(provider) => {
                    let provider = provider.to_string();
                    return self.refuse_unpriced(host, &provider);
                }
            }
            self.prices = routed.prices.map(str::to_string);
        }
        match self.global.clone() {
            Some(global) => self.admit_globally(host, &global),
            None => self.admit_locally(host),
        }
    }

    fn on_request_body(&mut self, _host: &mut dyn Host, _size: usize, _end: bool) -> Flow {
        // Waiting for the rate limit service: hold the body with the headers.
        if self.pending_call.is_some() {
            Flow::Pause
        } else {
            Flow::Continue
        }
    }

    fn on_request_trailers(&mut self, _host: &mut dyn Host) -> Flow {
        // The same for trailers: `Continue` would let the request go before the answer.
        if self.pending_call.is_some() {
            Flow::Pause
        } else {
            Flow::Continue
        }
    }

    fn on_grpc_response(&mut self, host: &mut dyn Host, token: u32, status: u32, size: usize) {
        if self.pending_call != Some(token) {
            return; // a reconciliation's answer: nothing to do
        }
        self.pending_call = None;
        let Some(global) = self.global.clone() else {
            return;
        };
        if status != 0 {
            let why = format!("gRPC status {status}");
            self.rls_failed(host, &global, &why, true);
            return;
        }
        let body = host.grpc_response_body(size);
        self.on_rls_answer(host, &global, &body);
    }

    fn on_response_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        // Every response: the provider's, an upstream error, or a local reply. `set` replaces,
        // so a provider's own x-ratelimit-* headers never reach the client: they describe
        // llmgw's provider account, not this consumer.
        for (name, value) in response_headers(&self.usage) {
            host.set_response_header(name, &value);
        }
        if self.prices.is_some() {
            self.budget_headers(host);
        }
        // The status matters only to a response that is watched: no header read otherwise.
        if !self.needs_usage() && self.watcher.is_none() {
            return Flow::Continue;
        }
        let status = host
            .response_header(":status")
            .and_then(|s| s.trim().parse::<u16>().ok())
            .unwrap_or(0);
        let status_ok = (200..300).contains(&status);
        if self.needs_usage() {
            // translate in the chain reports the usage (and hides a forced usage chunk): the
            // body need not be read. Alone, ratelimit watches a Chat answer's body.
            let watcher = if UsageFact::read(host).is_some() {
                ResponseWatcher::reported(status)
            } else if self.api == ClientApi::ChatCompletions {
                let content_type = host.response_header("content-type");
                ResponseWatcher::new(status, content_type.as_deref(), self.hide_usage)
            } else {
                ResponseWatcher::ignoring()
            };
            if watcher.rewrites() {
                host.remove_response_header("content-length");
            }
            self.watcher = Some(watcher);
            if end_of_stream {
                self.read_reported_usage(host);
                self.reconcile(host, status_ok);
            }
        }
        if !status_ok && self.watcher.is_some() {
            // No usage to wait for: give the estimate back now.
            self.reconcile(host, false);
        }
        Flow::Continue
    }

    fn on_response_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        let Some(watcher) = self.watcher.as_mut() else {
            return Flow::Continue;
        };
        let (piece, whole) = match watcher.body_read(size) {
            _ if size == 0 => (Vec::new(), true),
            BodyRead::Nothing => (Vec::new(), true),
            BodyRead::Tail(len) => (host.response_body_from(size - len, len), false),
            BodyRead::All => (host.response_body(size), true),
        };
        if let Some(out) = watcher.chunk(&piece, whole, end_of_stream) {
            host.set_response_body(size, &out);
        }
        if end_of_stream {
            self.read_reported_usage(host);
            self.reconcile(host, true);
        }
        Flow::Continue
    }

    fn on_stream_done(&mut self, host: &mut dyn Host) {
        // A stream reset mid-answer never says end of stream: it stays charged its estimate.
        if self.watcher.is_some() {
            self.reconcile(host, true);
        }
    }
}

#[cfg(test)]
mod tests;
