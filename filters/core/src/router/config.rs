//! Router configuration: the JSON as written (stage one), compiled into a [`Catalogue`]
//! (stage two) with every cross-reference checked and a refusal that names the field.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::catalogue::{Capabilities, Catalogue, Entry, Fallback, Model, Price, Rollout, Target};
use super::health::{self, HealthPolicy};
use super::policy::Policy;
use crate::config::ConfigError;
use crate::facts;
use crate::metrics::MetricsConfig;

/// Router configuration as written in the plugin's JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    models: Vec<RawModel>,
    #[serde(default)]
    aliases: BTreeMap<String, RawAlias>,
    /// Envoy cluster per provider; a provider without an entry uses its own name.
    #[serde(default)]
    clusters: BTreeMap<String, String>,
    #[serde(default)]
    health: RawHealth,
    #[serde(default)]
    expose: Expose,
    /// Output tokens assumed when a request sets no `max_tokens` (cost and context checks).
    #[serde(default = "default_output_tokens")]
    default_output_tokens: u64,
    #[serde(default)]
    metrics: MetricsConfig,
}

fn default_output_tokens() -> u64 {
    1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    #[serde(default)]
    policy: Option<Policy>,
    targets: Vec<RawTarget>,
    #[serde(default)]
    fallback: Option<RawFallback>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFallback {
    /// The Envoy aggregate cluster whose member clusters are the targets' clusters, in order.
    cluster: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    provider: String,
    model: String,
    #[serde(default = "default_weight")]
    weight: u32,
    /// The Envoy cluster of this deployment; default: `clusters[provider]`, else the provider.
    #[serde(default)]
    cluster: Option<String>,
    /// Input plus output tokens the model accepts; absent = no limit known.
    #[serde(default)]
    context_window: Option<u64>,
    #[serde(default)]
    price: Option<RawPrice>,
    /// What the target can do; absent = everything.
    #[serde(default)]
    capabilities: Option<Vec<Capability>>,
}

fn default_weight() -> u32 {
    1
}

/// US dollars (or any currency, consistently) per million tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    input: f64,
    output: f64,
    /// Input tokens read from the provider's prompt cache; default: `input`.
    #[serde(default)]
    cache_read: Option<f64>,
    /// Input tokens written to the provider's prompt cache; default: `input`.
    #[serde(default)]
    cache_write: Option<f64>,
}

/// A capability a request may need and a target may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Tools,
    Vision,
    JsonSchema,
    Streaming,
}

/// An alias: a plain name, or a pinned version with an optional rollout to a new version.
#[derive(Debug)]
enum RawAlias {
    Plain(String),
    Pinned(RawPinned),
}

/// Told apart by the value's type as it is read, so a mistake inside the object is refused
/// with its own path and reason (`#[serde(untagged)]` would buffer the value and could only say
/// that no variant matched).
impl<'de> Deserialize<'de> for RawAlias {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AliasVisitor;
        impl<'de> Visitor<'de> for AliasVisitor {
            type Value = RawAlias;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a model name or an object with `version` (and `rollout`)")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<RawAlias, E> {
                Ok(RawAlias::Plain(name.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAlias, A::Error> {
                RawPinned::deserialize(MapAccessDeserializer::new(map)).map(RawAlias::Pinned)
            }
        }
        deserializer.deserialize_any(AliasVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPinned {
    version: String,
    #[serde(default)]
    rollout: Option<RawRollout>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRollout {
    version: String,
    /// Share of consumers (0 < percent ≤ 100) sent to the new version.
    percent: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    #[serde(default = "default_threshold")]
    failure_threshold: u32,
    #[serde(default = "default_cooldown")]
    cooldown_seconds: u64,
    /// Envoy's `healthy_panic_threshold`: below this percentage of healthy targets, route to all.
    #[serde(default = "default_panic_threshold")]
    panic_threshold_percent: u8,
    /// The longest cool-down a provider's 429 `Retry-After` can set.
    #[serde(default = "default_max_retry_after")]
    max_retry_after_seconds: u64,
}

impl Default for RawHealth {
    fn default() -> Self {
        Self {
            failure_threshold: default_threshold(),
            cooldown_seconds: default_cooldown(),
            panic_threshold_percent: default_panic_threshold(),
            max_retry_after_seconds: default_max_retry_after(),
        }
    }
}

fn default_panic_threshold() -> u8 {
    50
}

/// Five minutes: long enough for a provider's per-minute limits to reset, short enough that a
/// wrong date in a header does not park a deployment for hours.
fn default_max_retry_after() -> u64 {
    300
}

fn default_threshold() -> u32 {
    5
}

fn default_cooldown() -> u64 {
    30
}

/// Which facts router adds to the client's response headers. Off by default: which provider
/// serves a model is the operator's business.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expose {
    /// `x-llmgw-model`: the model that served the request.
    #[serde(default)]
    pub model: bool,
    /// `x-llmgw-provider`: the provider that served it.
    #[serde(default)]
    pub provider: bool,
}

/// The compiled configuration.
#[derive(Debug)]
pub(super) struct Compiled {
    pub catalogue: Catalogue,
    pub health: HealthPolicy,
    pub expose: Expose,
    pub default_output_tokens: u64,
    pub metrics: MetricsConfig,
}

fn check_name(path: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            path,
            format!("`{name}` must be non-empty and use only letters, digits and . _ - : / @"),
        ))
    }
}

fn check_price(path: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            path,
            "must be a price per million tokens, 0 or more",
        ))
    }
}

fn compile_target(
    at: &str,
    raw: RawTarget,
    clusters: &BTreeMap<String, String>,
) -> Result<Target, ConfigError> {
    check_name(&format!("{at}.provider"), &raw.provider)?;
    check_name(&format!("{at}.model"), &raw.model)?;
    if raw.context_window == Some(0) {
        return Err(ConfigError::new(
            format!("{at}.context_window"),
            "must be at least 1",
        ));
    }
    let price = match raw.price {
        Some(p) => {
            check_price(&format!("{at}.price.input"), p.input)?;
            check_price(&format!("{at}.price.output"), p.output)?;
            let cache_read = p.cache_read.unwrap_or(p.input);
            let cache_write = p.cache_write.unwrap_or(p.input);
            check_price(&format!("{at}.price.cache_read"), cache_read)?;
            check_price(&format!("{at}.price.cache_write"), cache_write)?;
            Some(Price {
                input: p.input,
                output: p.output,
                cache_read,
                cache_write,
            })
        }
        None => None,
    };
    let capabilities = match raw.capabilities {
        Some(list) => Capabilities::of(&list),
        None => Capabilities::ALL,
    };
    if let Some(cluster) = &raw.cluster {
        check_name(&format!("{at}.cluster"), cluster)?;
    }
    let cluster = raw
        .cluster
        .or_else(|| clusters.get(&raw.provider).cloned())
        .unwrap_or_else(|| raw.provider.clone());
    Ok(Target {
        health_key: health::health_key(&raw.provider, &raw.model),
        latency_key: health::latency_key(&raw.provider, &raw.model),
        price_fact: price.map(|p| facts::format_price(&raw.provider, p)),
        provider: raw.provider,
        model: raw.model,
        cluster,
        weight: raw.weight,
        context_window: raw.context_window,
        price,
        capabilities,
    })
}

fn compile_model(
    i: usize,
    raw: RawModel,
    clusters: &BTreeMap<String, String>,
) -> Result<Model, ConfigError> {
    let at = format!("models[{i}]");
    check_name(&format!("{at}.name"), &raw.name)?;
    if raw.targets.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.targets"),
            "at least one target is required",
        ));
    }
    let mut targets = Vec::with_capacity(raw.targets.len());
    for (j, t) in raw.targets.into_iter().enumerate() {
        targets.push(compile_target(&format!("{at}.targets[{j}]"), t, clusters)?);
    }
    let fallback = match raw.fallback {
        None => None,
        Some(fb) => {
            check_name(&format!("{at}.fallback.cluster"), &fb.cluster)?;
            if raw.policy.is_some_and(|p| p != Policy::Ordered) {
                return Err(ConfigError::new(
                    format!("{at}.policy"),
                    "a fallback chain is tried in the order of `targets` (policy `ordered`)",
                ));
            }
            // translate finds the model of a try by its provider, and Envoy moves to the next
            // *cluster*: both must be unique within one chain.
            for (j, t) in targets.iter().enumerate() {
                if let Some(k) = targets[..j].iter().position(|o| o.provider == t.provider) {
                    return Err(ConfigError::new(
                        format!("{at}.targets[{j}].provider"),
                        format!(
                            "provider `{}` is already targets[{k}]; a fallback chain uses each \
                             provider once",
                            t.provider
                        ),
                    ));
                }
                if let Some(k) = targets[..j].iter().position(|o| o.cluster == t.cluster) {
                    return Err(ConfigError::new(
                        format!("{at}.targets[{j}].provider"),
                        format!(
                            "cluster `{}` is already targets[{k}]'s; each step of a fallback \
                             chain needs its own member cluster",
                            t.cluster
                        ),
                    ));
                }
                if t.cluster == fb.cluster {
                    return Err(ConfigError::new(
                        format!("{at}.fallback.cluster"),
                        "must be the aggregate cluster, not a member cluster",
                    ));
                }
            }
            Some(Fallback {
                cluster: fb.cluster,
                targets_fact: super::catalogue::targets_fact(&targets),
                prices_fact: super::catalogue::prices_fact(&targets),
            })
        }
    };
    let policy = raw.policy.unwrap_or(if fallback.is_some() {
        Policy::Ordered
    } else {
        Policy::Weighted
    });
    let total_weight: u64 = targets.iter().map(|t| u64::from(t.weight)).sum();
    if policy == Policy::Weighted && total_weight == 0 {
        return Err(ConfigError::new(
            format!("{at}.targets"),
            "every target has weight 0, so no request could be routed",
        ));
    }
    if policy == Policy::Cheapest {
        if let Some(j) = targets.iter().position(|t| t.price.is_none()) {
            return Err(ConfigError::new(
                format!("{at}.targets[{j}].price"),
                "policy `cheapest` needs a price on every target",
            ));
        }
    }
    Ok(Model {
        name: raw.name,
        policy,
        targets,
        total_weight,
        fallback,
    })
}

fn compile_rollout(
    path: &str,
    pinned: &str,
    raw: RawRollout,
    models: &HashMap<String, Rc<Model>>,
) -> Result<Rollout, ConfigError> {
    let Some(to) = models.get(&raw.version).cloned() else {
        return Err(ConfigError::new(
            format!("{path}.rollout.version"),
            format!("`{}` is not in `models`", raw.version),
        ));
    };
    if raw.version == pinned {
        return Err(ConfigError::new(
            format!("{path}.rollout.version"),
            "is the pinned version itself",
        ));
    }
    if !(raw.percent > 0.0 && raw.percent <= 100.0) {
        return Err(ConfigError::new(
            format!("{path}.rollout.percent"),
            "must be more than 0 and at most 100",
        ));
    }
    // Basis points: 12.5 % → 1250 of 10 000 buckets.
    let per_10k = (raw.percent * 100.0).round() as u32;
    Ok(Rollout {
        to,
        per_10k: per_10k.clamp(1, 10_000),
    })
}

pub(super) fn compile(raw: RawConfig) -> Result<Compiled, ConfigError> {
    if raw.models.is_empty() {
        return Err(ConfigError::new("models", "at least one model is required"));
    }
    for provider in raw.clusters.keys() {
        check_name(&format!("clusters.{provider}"), provider)?;
    }
    let mut models: HashMap<String, Rc<Model>> = HashMap::new();
    let mut order = Vec::new();
    for (i, raw_model) in raw.models.into_iter().enumerate() {
        let model = compile_model(i, raw_model, &raw.clusters)?;
        let name = model.name.clone();
        if models.insert(name.clone(), Rc::new(model)).is_some() {
            return Err(ConfigError::new(
                format!("models[{i}].name"),
                format!("model `{name}` is listed twice"),
            ));
        }
        order.push(name);
    }
    let mut entries: HashMap<String, Entry> = models
        .iter()
        .map(|(name, model)| (name.clone(), Entry::Model(Rc::clone(model))))
        .collect();
    for (alias, target) in raw.aliases {
        let path = format!("aliases.{alias}");
        check_name(&path, &alias)?;
        if models.contains_key(&alias) {
            return Err(ConfigError::new(
                path,
                format!("`{alias}` is already a model name"),
            ));
        }
        let (version, rollout, version_path) = match target {
            RawAlias::Plain(name) => (name, None, path.clone()),
            RawAlias::Pinned(p) => (p.version, p.rollout, format!("{path}.version")),
        };
        let Some(pinned) = models.get(&version).cloned() else {
            return Err(ConfigError::new(
                version_path,
                format!("points at `{version}`, which is not in `models`"),
            ));
        };
        let rollout = match rollout {
            Some(r) => Some(compile_rollout(&path, &version, r, &models)?),
            None => None,
        };
        entries.insert(alias.clone(), Entry::Alias { pinned, rollout });
        order.push(alias);
    }
    if raw.health.failure_threshold == 0 {
        return Err(ConfigError::new(
            "health.failure_threshold",
            "must be at least 1",
        ));
    }
    if raw.health.panic_threshold_percent > 100 {
        return Err(ConfigError::new(
            "health.panic_threshold_percent",
            "must be between 0 and 100",
        ));
    }
    Ok(Compiled {
        catalogue: Catalogue::new(entries, order),
        health: HealthPolicy {
            failure_threshold: raw.health.failure_threshold,
            cooldown_ms: raw.health.cooldown_seconds.saturating_mul(1000),
            panic_threshold_percent: raw.health.panic_threshold_percent,
            max_retry_after_ms: raw.health.max_retry_after_seconds.saturating_mul(1000),
        },
        expose: raw.expose,
        default_output_tokens: raw.default_output_tokens,
        metrics: raw.metrics,
    })
}
