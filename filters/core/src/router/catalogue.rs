//! The compiled catalogue: models with their targets, aliases pinned to a version, rollouts.

use std::collections::HashMap;
use std::rc::Rc;

use super::config::Capability;
use super::policy::Policy;
use crate::facts;

/// Capabilities as a bit set: checking a request against a target is one `&`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(u8);

impl Capabilities {
    pub const NONE: Self = Self(0);
    pub const ALL: Self = Self(0b1111);

    fn bit(c: Capability) -> u8 {
        match c {
            Capability::Tools => 1,
            Capability::Vision => 2,
            Capability::JsonSchema => 4,
            Capability::Streaming => 8,
        }
    }

    pub fn of(list: &[Capability]) -> Self {
        Self(list.iter().fold(0, |acc, c| acc | Self::bit(*c)))
    }

    pub fn with(self, c: Capability) -> Self {
        Self(self.0 | Self::bit(c))
    }

    /// The capabilities in `self` that `other` lacks, by name.
    pub fn missing_from(self, other: Self) -> Vec<&'static str> {
        [
            (Capability::Tools, "tools"),
            (Capability::Vision, "vision"),
            (Capability::JsonSchema, "json_schema"),
            (Capability::Streaming, "streaming"),
        ]
        .into_iter()
        .filter(|(c, _)| self.0 & Self::bit(*c) != 0 && other.0 & Self::bit(*c) == 0)
        .map(|(_, name)| name)
        .collect()
    }
}

/// USD per million input and output tokens (also handed to translate, which counts cost).
pub use crate::facts::Price;

/// Where a request may go: a provider, its model name, and the Envoy cluster that reaches it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub provider: String,
    pub model: String,
    pub cluster: String,
    pub weight: u32,
    pub context_window: Option<u64>,
    pub price: Option<Price>,
    /// [`facts::RouterFacts::prices`] when this target alone serves the request, built once.
    pub price_fact: Option<String>,
    pub capabilities: Capabilities,
    /// This target's health record in shared data (`llmgw.router.health.<provider>/<model>`),
    /// built once: every request reads it and every answer updates it.
    pub health_key: String,
    /// This target's latency average in shared data (`llmgw.router.latency.<provider>/<model>`).
    pub latency_key: String,
}

/// A fallback chain: Envoy's aggregate cluster tries the targets' clusters in order.
#[derive(Debug)]
pub struct Fallback {
    pub cluster: String,
    /// [`facts::RouterFacts::targets`] for this chain, built once.
    pub targets_fact: String,
    /// [`facts::RouterFacts::prices`] for the chain's priced targets, built once (`None`: none priced).
    pub prices_fact: Option<String>,
}

/// A catalogue entry: one exact model name (a version).
#[derive(Debug)]
pub struct Model {
    pub name: String,
    pub policy: Policy,
    pub targets: Vec<Target>,
    pub total_weight: u64,
    pub fallback: Option<Fallback>,
}

/// A share of an alias's consumers moved to another version.
#[derive(Debug)]
pub struct Rollout {
    pub to: Rc<Model>,
    /// Buckets out of 10 000 that go to `to`.
    pub per_10k: u32,
}

#[derive(Debug)]
pub enum Entry {
    Model(Rc<Model>),
    Alias {
        pinned: Rc<Model>,
        rollout: Option<Rollout>,
    },
}

/// Exact names and aliases, and the order the config lists them in (for `/v1/models`).
#[derive(Debug)]
pub struct Catalogue {
    entries: HashMap<String, Entry>,
    order: Vec<String>,
}

impl Catalogue {
    pub fn new(entries: HashMap<String, Entry>, order: Vec<String>) -> Self {
        Self { entries, order }
    }

    /// The models (exact names, not aliases), in config order.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.order
            .iter()
            .filter_map(|name| match self.entries.get(name)? {
                Entry::Model(model) => Some(model.as_ref()),
                Entry::Alias { .. } => None,
            })
    }

    /// Every name a client may use, models first, in config order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// The model version that serves `name` for this caller. A rollout buckets the caller by
    /// the hash of its consumer id, so one consumer stays on one version (a conversation does
    /// not flip between versions); without a consumer the request's own `draw` decides.
    pub fn resolve(&self, name: &str, consumer: Option<&str>, draw: u64) -> Option<&Rc<Model>> {
        match self.entries.get(name)? {
            Entry::Model(model) => Some(model),
            Entry::Alias { pinned, rollout } => match rollout {
                Some(rollout) => {
                    let point = match consumer {
                        Some(id) => sticky_hash(name, id),
                        None => draw,
                    };
                    if point % 10_000 < u64::from(rollout.per_10k) {
                        Some(&rollout.to)
                    } else {
                        Some(pinned)
                    }
                }
                None => Some(pinned),
            },
        }
    }
}

/// FNV-1a over `alias \0 consumer`, finished with splitmix64's mixer so every bit (and so
/// `% 10_000`) is well spread. Salting with the alias makes rollouts of different aliases
/// independent: the same consumers are not always the canaries.
pub fn sticky_hash(alias: &str, consumer: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in alias.bytes().chain([0]).chain(consumer.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

/// splitmix64's finalizer: a bijection that spreads every input bit over the output.
pub fn mix(mut h: u64) -> u64 {
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The [`facts::RouterFacts::targets`] value of a chain: `provider=model,…` in fallback order.
pub fn targets_fact(targets: &[Target]) -> String {
    let pairs: Vec<(&str, &str)> = targets
        .iter()
        .map(|t| (t.provider.as_str(), t.model.as_str()))
        .collect();
    facts::format_targets(&pairs)
}

/// The [`facts::RouterFacts::prices`] value of a chain: its priced targets, in fallback order.
pub fn prices_fact(targets: &[Target]) -> Option<String> {
    let prices: Vec<&str> = targets
        .iter()
        .filter_map(|t| t.price_fact.as_deref())
        .collect();
    (!prices.is_empty()).then(|| prices.join(","))
}
