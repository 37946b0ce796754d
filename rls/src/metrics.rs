//! Prometheus metrics of the service, served at `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// How a `ShouldRateLimit` call ended: the `result` label of `llmgw_rls_requests_total`.
#[derive(Clone, Copy)]
pub enum Outcome {
    /// Every descriptor admitted (and counted).
    Ok,
    /// At least one descriptor over its limit (nothing counted).
    OverLimit,
    /// A descriptor the service cannot count (no `limit`, no unit, negative hits).
    Invalid,
    /// Redis failed: the caller gets `UNAVAILABLE` and its failure mode decides.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 4] = [Self::Ok, Self::OverLimit, Self::Invalid, Self::Error];

    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::OverLimit => "over_limit",
            Self::Invalid => "invalid",
            Self::Error => "error",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    redis_errors: IntCounter,
    duration: Histogram,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "llmgw_rls_requests_total",
                "ShouldRateLimit calls by result (ok, over_limit, invalid, error)",
            ),
            &["result"],
        )?;
        let redis_errors = IntCounter::new(
            "llmgw_rls_redis_errors_total",
            "Redis connects and commands that failed",
        )?;
        // From a local Redis round trip (~0.2 ms) to Envoy's longest sensible timeout.
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "llmgw_rls_request_duration_seconds",
                "Time to answer a ShouldRateLimit call",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
        )?;
        let registry = Registry::new();
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(redis_errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        // Every result shows from the start (0), so a rate over it is defined at once.
        for outcome in Outcome::ALL {
            requests.with_label_values(&[outcome.label()]);
        }
        Ok(Self {
            registry,
            requests,
            redis_errors,
            duration,
        })
    }

    pub fn request(&self, outcome: Outcome, seconds: f64) {
        self.requests.with_label_values(&[outcome.label()]).inc();
        self.duration.observe(seconds);
    }

    pub fn redis_error(&self) {
        self.redis_errors.inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> Result<String, String> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| e.to_string())?;
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}
