//! Choosing a target: first the targets that *can* serve the request (context window,
//! capabilities), then the healthy ones, then the model's policy among those.
//!
//! Health follows Envoy's panic threshold (`healthy_panic_threshold`): when fewer than
//! `panic_threshold_percent` of the targets that can serve are healthy, router is in *panic*
//! and chooses among all of them, unhealthy ones included. Otherwise a burst of failures (one
//! tenant's, say) would take a model with one deployment down for everyone until the cool-down
//! ends, even after the provider recovered.

use serde::Deserialize;

use super::catalogue::{Capabilities, Model, Target};

/// How a model picks among its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// In proportion to `weight` (load balancing across deployments).
    Weighted,
    /// The first target in config order.
    Ordered,
    /// The lowest estimated cost for this request (input and output token prices).
    Cheapest,
    /// The lowest recent latency to response headers (exponentially weighted average).
    Fastest,
}

/// What a request needs, read once from its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// Estimated input tokens (body bytes / 4).
    pub input_tokens: u64,
    /// `max_tokens` / `max_completion_tokens`, or the configured default.
    pub output_tokens: u64,
    pub capabilities: Capabilities,
}

/// What router knows about each target's recent behaviour (shared data in Envoy).
pub trait TargetState {
    /// Milliseconds left in the target's cool-down; `None` when it is healthy.
    fn unhealthy_for_ms(&self, target: &Target) -> Option<u64>;
    /// Recent latency to response headers, in ms; `None` before the first measurement.
    fn latency_ms(&self, target: &Target) -> Option<f64>;
}

/// Why no target was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    /// No target can serve the request; one reason per target.
    CannotServe(Vec<String>),
    /// Every target that could serve is cooling down and panic mode is off
    /// (`panic_threshold_percent` 0); the soonest is back in this many ms.
    AllUnhealthy { retry_after_ms: u64 },
}

/// The targets a request may go to after health is taken into account.
#[derive(Debug)]
pub struct Healthy<'a> {
    pub targets: Vec<&'a Target>,
    /// Too few were healthy: `targets` holds every candidate, cooling ones included.
    pub panic: bool,
}

/// The chosen target, and whether health was ignored to choose it.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    pub target: &'a Target,
    pub panic: bool,
}

/// Why `target` cannot serve `needs`, if it cannot.
pub fn unfit(target: &Target, needs: &Needs) -> Option<String> {
    let missing = needs.capabilities.missing_from(target.capabilities);
    if !missing.is_empty() {
        return Some(format!(
            "{} does not support {}",
            target.model,
            missing.join(", ")
        ));
    }
    if let Some(window) = target.context_window {
        let wanted = needs.input_tokens.saturating_add(needs.output_tokens);
        if wanted > window {
            return Some(format!(
                "{} has a context window of {window} tokens; this request needs about {wanted} \
                 (~{} input + {} output)",
                target.model, needs.input_tokens, needs.output_tokens
            ));
        }
    }
    None
}

/// The estimated cost of a request on a target, in price units × 10⁶ (only compared).
fn cost(target: &Target, needs: &Needs) -> f64 {
    target.price.map_or(f64::INFINITY, |p| {
        p.input * needs.input_tokens as f64 + p.output * needs.output_tokens as f64
    })
}

/// Of every `EXPLORE_ONE_IN` requests, `fastest` sends one by weight instead, so a target
/// that was slow once is measured again and can win back its traffic.
const EXPLORE_ONE_IN: u64 = 20;

fn weighted<'a>(candidates: &[&'a Target], draw: u64) -> Option<&'a Target> {
    let total: u64 = candidates.iter().map(|t| u64::from(t.weight)).sum();
    if total == 0 {
        return candidates.first().copied();
    }
    let mut point = draw % total;
    for target in candidates {
        let weight = u64::from(target.weight);
        if point < weight {
            return Some(target);
        }
        point -= weight;
    }
    None
}

/// The targets of `model` that can serve `needs`, in config order (or why none can).
pub fn fitting<'a>(model: &'a Model, needs: &Needs) -> Result<Vec<&'a Target>, SelectError> {
    let mut fit = Vec::with_capacity(model.targets.len());
    let mut reasons = Vec::new();
    for target in &model.targets {
        match unfit(target, needs) {
            Some(reason) => reasons.push(reason),
            None => fit.push(target),
        }
    }
    if fit.is_empty() {
        Err(SelectError::CannotServe(reasons))
    } else if model.fallback.is_some() && !reasons.is_empty() {
        // Envoy tries a chain's clusters in their fixed order whatever router thinks of them,
        // so a chain serves a request only when every step can.
        Err(SelectError::CannotServe(reasons))
    } else {
        Ok(fit)
    }
}

/// Drop the targets that are cooling down, unless fewer than `panic_threshold_percent` of the
/// candidates are healthy: then keep them all (panic). With 0 (no panic mode) and none healthy,
/// say when the first is back.
pub fn healthy<'a>(
    candidates: Vec<&'a Target>,
    state: &dyn TargetState,
    panic_threshold_percent: u8,
) -> Result<Healthy<'a>, SelectError> {
    let mut soonest: Option<u64> = None;
    let mut alive = Vec::with_capacity(candidates.len());
    for target in &candidates {
        match state.unhealthy_for_ms(target) {
            Some(ms) => soonest = Some(soonest.map_or(ms, |s| s.min(ms))),
            None => alive.push(*target),
        }
    }
    let Some(retry_after_ms) = soonest else {
        return Ok(Healthy {
            targets: alive,
            panic: false,
        });
    };
    // Envoy's rule: panic when the healthy share is below the threshold.
    let healthy_share = alive.len() * 100;
    if healthy_share < usize::from(panic_threshold_percent) * candidates.len() {
        return Ok(Healthy {
            targets: candidates,
            panic: true,
        });
    }
    if alive.is_empty() {
        return Err(SelectError::AllUnhealthy { retry_after_ms });
    }
    Ok(Healthy {
        targets: alive,
        panic: false,
    })
}

/// Pick one target of `model` for a request with `needs`. `draw` is a uniform random number
/// (the only source of chance, so a test can fix it).
pub fn select<'a>(
    model: &'a Model,
    needs: &Needs,
    state: &dyn TargetState,
    draw: u64,
    panic_threshold_percent: u8,
) -> Result<Selected<'a>, SelectError> {
    let Healthy {
        targets: candidates,
        panic,
    } = healthy(fitting(model, needs)?, state, panic_threshold_percent)?;
    let chosen = match model.policy {
        Policy::Weighted => weighted(&candidates, draw),
        Policy::Ordered => candidates.first().copied(),
        Policy::Cheapest => candidates
            .iter()
            .copied()
            // `min_by` keeps the first of equals, so ties go to config order.
            .min_by(|a, b| cost(a, needs).total_cmp(&cost(b, needs))),
        Policy::Fastest => {
            if draw % EXPLORE_ONE_IN == 0 {
                weighted(&candidates, draw / EXPLORE_ONE_IN)
            } else {
                // An unmeasured target counts as instant, so each one gets measured.
                candidates.iter().copied().min_by(|a, b| {
                    let a = state.latency_ms(a).unwrap_or(0.0);
                    let b = state.latency_ms(b).unwrap_or(0.0);
                    a.total_cmp(&b)
                })
            }
        }
    };
    chosen
        .map(|target| Selected { target, panic })
        .ok_or(SelectError::CannotServe(Vec::new()))
}
