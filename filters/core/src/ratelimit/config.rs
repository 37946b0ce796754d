//! ratelimit's configuration: the serde form (stage one) and the compiled [`Policy`].
//!
//! ```json
//! {"default":   {"requests_per_minute": 600, "total_tokens_per_minute": 200000},
//!  "teams":     {"ml":    {"requests_per_minute": 6000}},
//!  "consumers": {"alice": {"input_tokens_per_hour": 1000000}},
//!  "limits": [
//!    {"name": "team-tokens", "by": ["team"], "total_tokens_per_day": 50000000},
//!    {"name": "gpt41", "by": ["consumer", "model"], "models": ["gpt-4.1"],
//!     "output_tokens_per_minute": 20000}],
//!  "default_max_output_tokens": 1024}
//! ```
//! A rate is a field `<kind>_per_<window>`: kind `requests`, `input_tokens`, `output_tokens` or
//! `total_tokens`; window `second`, `minute`, `hour` or `day`. A budget is a rate of kind `usd`
//! (`"usd_per_month": 500`, `"usd_per_day": 0.01`): USD, at most 6 decimal places, kept as
//! integer micro-USD; window `hour`, `day`, `week` (from Monday 00:00 UTC) or `month` (the
//! calendar month, UTC).
//!
//! `default`, `teams` and `consumers` are per-consumer limits (the shape of llmgw's first
//! version, kept): each consumer has its own counters; for each rate (kind and window) the most
//! specific entry that sets it wins: consumer, then team, then default. A team entry is thus the
//! limit of each member. `limits` adds limits on any other key: the counter is shared by all
//! requests with the same values of the `by` dimensions (`[]` = one counter for everybody);
//! `models` restricts a limit to some resolved models; `consumers` gives some consumers other
//! rates for the same limit. Every limit that applies is checked.

use std::collections::{BTreeMap, HashMap};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::window::{Limit, LimitKind, Window};
use crate::auth::check_id;
use crate::config::ConfigError;
use crate::text;

/// `default_max_output_tokens` when the config sets none.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 1024;

/// `budget_warning_percent` when the config sets none.
pub const DEFAULT_BUDGET_WARNING_PERCENT: u64 = 80;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitConfig {
    #[serde(default)]
    default: Option<Rates>,
    #[serde(default)]
    teams: BTreeMap<String, Rates>,
    #[serde(default)]
    consumers: BTreeMap<String, Rates>,
    #[serde(default)]
    limits: Vec<RuleConfig>,
    #[serde(default)]
    default_max_output_tokens: Option<u64>,
    /// A budget used to this percentage (after a request's worst case) warns in a header.
    #[serde(default)]
    budget_warning_percent: Option<u64>,
    #[serde(default)]
    pub(super) global: Option<super::global::GlobalConfig>,
    /// The admin role (local mode's `GET /llmgw/budgets`, on an admin listener).
    #[serde(default)]
    pub(super) admin: Option<super::admin::AdminConfig>,
}

/// `<kind>_per_<window>` → max, checked at compile time (so a typo names the field). A JSON
/// number: whole for requests and tokens, USD with up to 6 decimal places for budgets.
type Rates = BTreeMap<String, serde_json::Number>;

/// A named limit: its own fields, and every other field is one of its rates.
#[derive(Debug)]
struct RuleConfig {
    name: String,
    by: Vec<String>,
    models: Option<Vec<String>>,
    /// Per-consumer overrides: these rates replace the rule's for that consumer's requests.
    consumers: BTreeMap<String, Rates>,
    rates: Rates,
}

/// Read field by field, as `#[serde(flatten)] rates` would, but without buffering the rule into
/// serde's `Content` tree first: a rate of the wrong type is refused with its own path.
impl<'de> Deserialize<'de> for RuleConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RuleVisitor;
        impl<'de> Visitor<'de> for RuleVisitor {
            type Value = RuleConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a limit: `name`, optional `by`, `models`, `consumers`, and rates")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RuleConfig, A::Error> {
                let mut name = None;
                let mut rule = RuleConfig {
                    name: String::new(),
                    by: Vec::new(),
                    models: None,
                    consumers: BTreeMap::new(),
                    rates: Rates::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => name = Some(map.next_value()?),
                        "by" => rule.by = map.next_value()?,
                        "models" => rule.models = map.next_value()?,
                        "consumers" => rule.consumers = map.next_value()?,
                        _ => {
                            let max = map.next_value()?;
                            rule.rates.insert(key, max);
                        }
                    }
                }
                rule.name = name.ok_or_else(|| serde::de::Error::missing_field("name"))?;
                Ok(rule)
            }
        }
        deserializer.deserialize_map(RuleVisitor)
    }
}

/// A request dimension a limit can be keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Consumer,
    Team,
    /// The resolved model: router's upstream model fact, so an alias and the model it
    /// points at share a budget.
    Model,
    /// The name the client wrote (router's requested model fact).
    RequestedModel,
    Provider,
}

impl Dimension {
    const ALL: [Dimension; 5] = [
        Dimension::Consumer,
        Dimension::Team,
        Dimension::Model,
        Dimension::RequestedModel,
        Dimension::Provider,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Dimension::Consumer => "consumer",
            Dimension::Team => "team",
            Dimension::Model => "model",
            Dimension::RequestedModel => "requested_model",
            Dimension::Provider => "provider",
        }
    }
}

/// What ratelimit knows of a request when it admits it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub consumer: String,
    pub team: Option<String>,
    pub model: Option<String>,
    pub requested_model: Option<String>,
    pub provider: Option<String>,
}

impl Identity {
    fn get(&self, dim: Dimension) -> Option<&str> {
        match dim {
            Dimension::Consumer => Some(&self.consumer),
            Dimension::Team => self.team.as_deref(),
            Dimension::Model => self.model.as_deref(),
            Dimension::RequestedModel => self.requested_model.as_deref(),
            Dimension::Provider => self.provider.as_deref(),
        }
    }
}

/// One limit that applies to a request, with the counter it spends from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The config path of the limit, named in the 429 (`consumers.alice.requests_per_minute`,
    /// `limits.team-tokens.total_tokens_per_day`).
    pub name: String,
    pub limit: Limit,
    /// The rule the counter belongs to (`consumer` for the per-consumer sections).
    pub rule: String,
    /// The key's dimensions and their values, in the order configured.
    pub key: Vec<(&'static str, String)>,
}

fn parse_rates(path: &str, rates: &Rates) -> Result<Vec<Limit>, ConfigError> {
    let mut out = Vec::new();
    for (field, value) in rates {
        let at = format!("{path}.{field}");
        let parsed = field
            .split_once("_per_")
            .and_then(|(k, w)| Some((LimitKind::parse(k)?, Window::parse(w)?)));
        let Some((kind, window)) = parsed else {
            return Err(ConfigError::new(
                at,
                "unknown field; a rate is <kind>_per_<window> with kind requests, input_tokens, \
                 output_tokens or total_tokens and window second, minute, hour or day, or a \
                 budget usd_per_<window> with window hour, day, week or month",
            ));
        };
        if !kind.allows(window) {
            let why = if kind == LimitKind::Usd {
                "unknown budget period; a budget is usd_per_hour, usd_per_day, usd_per_week or \
                 usd_per_month"
            } else {
                "weeks and months are for budgets (usd_per_week, usd_per_month); a rate of \
                 requests or tokens is <kind>_per_<window> with window second, minute, hour or \
                 day"
            };
            return Err(ConfigError::new(at, why));
        }
        let max = if kind == LimitKind::Usd {
            usd_micros(value).map_err(|why| ConfigError::new(at.clone(), why))?
        } else {
            value
                .as_u64()
                .ok_or_else(|| ConfigError::new(at.clone(), "must be a whole number, at least 1"))?
        };
        if max == 0 {
            let why = if kind == LimitKind::Usd {
                "must be more than 0 (leave the budget out for no budget)"
            } else {
                "must be at least 1 (leave the limit out for no limit)"
            };
            return Err(ConfigError::new(at, why));
        }
        out.push(Limit { kind, window, max });
    }
    if out.is_empty() {
        return Err(ConfigError::new(
            path,
            "sets no limit; add a rate such as requests_per_minute or total_tokens_per_hour",
        ));
    }
    Ok(out)
}

/// A budget's USD amount in micro-USD, exactly: the number's decimal text is read digit by
/// digit, never through a float, so `0.01` is 10000 and not 9999.
fn usd_micros(value: &serde_json::Number) -> Result<u64, &'static str> {
    const TOO_LARGE: &str = "too large (at most 18446744073709 USD)";
    let text = value.to_string();
    if text.starts_with('-') {
        return Err("must not be negative");
    }
    if text.contains(['e', 'E']) {
        // serde_json writes very small or large numbers with an exponent: read those through
        // f64, and only when they are a whole number of micro-USD.
        let micros = value.as_f64().unwrap_or(f64::NAN) * 1e6;
        if !(micros.is_finite() && micros.fract() == 0.0 && micros < 1.8e19) {
            return Err("must be USD with at most 6 decimal places (micro-USD)");
        }
        return Ok(micros as u64);
    }
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let frac = frac.trim_end_matches('0');
    if frac.len() > 6 {
        return Err("must be USD with at most 6 decimal places (micro-USD)");
    }
    let whole: u64 = whole.parse().map_err(|_| TOO_LARGE)?;
    let frac: u64 = format!("{frac:0<6}").parse().map_err(|_| TOO_LARGE)?;
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or(TOO_LARGE)
}

/// A `limits[]` entry, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    name: String,
    by: Vec<Dimension>,
    models: Option<Vec<String>>,
    limits: Vec<Limit>,
    overrides: HashMap<String, Vec<Limit>>,
}

/// The compiled configuration: who gets which limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    default: Vec<Limit>,
    teams: HashMap<String, Vec<Limit>>,
    consumers: HashMap<String, Vec<Limit>>,
    rules: Vec<Rule>,
    pub default_max_output_tokens: u64,
    /// Budgets used to this per mille or more warn (`x-llmgw-budget-warning`).
    pub budget_warning_permille: u64,
}

/// The rule name of the per-consumer sections.
pub const CONSUMER_RULE: &str = "consumer";

impl Policy {
    /// The per-consumer limits of `consumer` (of `team`): for each kind and window, the
    /// consumer's own entry, else the team's, else the default. Empty = unlimited.
    pub fn limits_for(&self, consumer: &str, team: Option<&str>) -> Vec<Limit> {
        self.consumer_limits(consumer, team)
            .into_iter()
            .map(|(_, l)| l)
            .collect()
    }

    fn consumer_limits(&self, consumer: &str, team: Option<&str>) -> Vec<(String, Limit)> {
        let chain = [
            self.consumers
                .get(consumer)
                .map(|l| (text::concat(&["consumers.", consumer]), l)),
            team.and_then(|t| self.teams.get(t).map(|l| (text::concat(&["teams.", t]), l))),
            Some(("default".to_string(), &self.default)),
        ];
        let mut out: Vec<(String, Limit)> = Vec::new();
        for (path, limits) in chain.iter().flatten() {
            for limit in limits.iter() {
                let taken = out
                    .iter()
                    .any(|(_, l)| l.kind == limit.kind && l.window == limit.window);
                if !taken {
                    let name = text::concat(&[
                        path,
                        ".",
                        limit.kind.as_str(),
                        "_per_",
                        limit.window.as_str(),
                    ]);
                    out.push((name, *limit));
                }
            }
        }
        out
    }

    /// Every limit that applies to the request of `who`.
    pub fn applicable(&self, who: &Identity) -> Vec<Applied> {
        let mut out: Vec<Applied> = self
            .consumer_limits(&who.consumer, who.team.as_deref())
            .into_iter()
            .map(|(name, limit)| Applied {
                name,
                limit,
                rule: CONSUMER_RULE.to_string(),
                key: vec![("consumer", who.consumer.clone())],
            })
            .collect();
        'rules: for rule in &self.rules {
            if let Some(models) = &rule.models {
                match who.model.as_deref() {
                    Some(m) if models.iter().any(|x| x == m) => {}
                    _ => continue,
                }
            }
            let mut key = Vec::with_capacity(rule.by.len());
            for dim in &rule.by {
                // A limit keyed by a dimension the request lacks (no team) does not apply.
                let Some(value) = who.get(*dim) else {
                    continue 'rules;
                };
                key.push((dim.as_str(), value.to_string()));
            }
            let limits = rule.overrides.get(&who.consumer).unwrap_or(&rule.limits);
            for limit in limits {
                out.push(Applied {
                    name: text::concat(&[
                        "limits.",
                        &rule.name,
                        ".",
                        limit.kind.as_str(),
                        "_per_",
                        limit.window.as_str(),
                    ]),
                    limit: *limit,
                    rule: rule.name.clone(),
                    key: key.clone(),
                });
            }
        }
        out
    }
}

impl Policy {
    /// Every configured limit with its config path (`teams.ml.usd_per_month`).
    fn all_limits(&self) -> Vec<(String, Limit)> {
        let mut out = Vec::new();
        let mut add = |path: String, limits: &[Limit]| {
            for l in limits {
                let field = format!("{}_per_{}", l.kind.as_str(), l.window.as_str());
                out.push((format!("{path}.{field}"), *l));
            }
        };
        add("default".to_string(), &self.default);
        for (id, limits) in &self.teams {
            add(format!("teams.{id}"), limits);
        }
        for (id, limits) in &self.consumers {
            add(format!("consumers.{id}"), limits);
        }
        for (i, rule) in self.rules.iter().enumerate() {
            add(format!("limits[{i}]"), &rule.limits);
            for (id, limits) in &rule.overrides {
                add(format!("limits[{i}].consumers.{id}"), limits);
            }
        }
        out
    }

    /// Every budget with its config path and the models it is restricted to (`None`: every
    /// model).
    pub fn budgets(&self) -> Vec<(String, Option<&[String]>)> {
        let restricted: HashMap<String, &[String]> = self
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((format!("limits[{i}]"), r.models.as_deref()?)))
            .collect();
        self.all_limits()
            .into_iter()
            .filter(|(_, l)| l.kind == LimitKind::Usd)
            .map(|(path, _)| {
                let rule = path.split('.').next().unwrap_or_default();
                let models = restricted.get(rule).copied();
                (path, models)
            })
            .collect()
    }

    /// Global mode counts a budget exactly up to 2^53 micro-USD (llmgw-rls's Lua numbers).
    fn check_global_budgets(&self) -> Result<(), ConfigError> {
        for (path, limit) in self.all_limits() {
            if limit.kind == LimitKind::Usd && limit.max > super::global::MAX_GLOBAL_BUDGET_MICROS {
                return Err(ConfigError::new(
                    path,
                    "in global mode a budget is at most 9007199254.740992 USD per period \
                     (llmgw-rls counts micro-USD in Redis's Lua numbers, exact up to 2^53)",
                ));
            }
        }
        Ok(())
    }
}

impl RateLimitConfig {
    /// The admin role answers `GET /llmgw/budgets` and nothing else: no limits of its own (they
    /// belong to the public listener's ratelimit) and no global mode (there llmgw-rls's
    /// `GET /budgets` is the read path).
    pub(super) fn check_admin_role(&self) -> Result<(), ConfigError> {
        if self.global.is_some() {
            return Err(ConfigError::new(
                "admin",
                "global mode keeps budgets in the rate limit service: read them from \
                 llmgw-rls's GET /budgets (--admin-key-sha256)",
            ));
        }
        let limited = self.default.is_some()
            || !self.teams.is_empty()
            || !self.consumers.is_empty()
            || !self.limits.is_empty();
        if limited {
            return Err(ConfigError::new(
                "admin",
                "a ratelimit in the admin role only answers GET /llmgw/budgets on the admin \
                 listener: put limits and budgets in the public listener's ratelimit",
            ));
        }
        Ok(())
    }

    pub(super) fn compile(&self) -> Result<Policy, ConfigError> {
        let default = match &self.default {
            Some(rates) => parse_rates("default", rates)?,
            None => Vec::new(),
        };
        let section = |name: &str, entries: &BTreeMap<String, Rates>| {
            entries
                .iter()
                .map(|(id, rates)| {
                    let path = format!("{name}.{id}");
                    check_id(id).map_err(|reason| ConfigError::new(path.clone(), reason))?;
                    Ok((id.clone(), parse_rates(&path, rates)?))
                })
                .collect::<Result<HashMap<_, _>, ConfigError>>()
        };
        let mut rules: Vec<Rule> = Vec::new();
        for (i, raw) in self.limits.iter().enumerate() {
            let path = format!("limits[{i}]");
            check_id(&raw.name)
                .map_err(|reason| ConfigError::new(format!("{path}.name"), reason))?;
            if raw.name == CONSUMER_RULE || rules.iter().any(|r| r.name == raw.name) {
                return Err(ConfigError::new(
                    format!("{path}.name"),
                    format!("`{}` is used by another limit", raw.name),
                ));
            }
            let mut by = Vec::new();
            for (j, dim) in raw.by.iter().enumerate() {
                let Some(d) = Dimension::ALL.into_iter().find(|d| d.as_str() == dim) else {
                    return Err(ConfigError::new(
                        format!("{path}.by[{j}]"),
                        format!(
                            "unknown dimension `{dim}`; use consumer, team, model, \
                             requested_model or provider"
                        ),
                    ));
                };
                if by.contains(&d) {
                    return Err(ConfigError::new(
                        format!("{path}.by[{j}]"),
                        format!("`{dim}` is listed twice"),
                    ));
                }
                by.push(d);
            }
            if raw.models.as_ref().is_some_and(|m| m.is_empty()) {
                return Err(ConfigError::new(
                    format!("{path}.models"),
                    "an empty list matches no request; leave it out to match every model",
                ));
            }
            let mut overrides = HashMap::new();
            for (consumer, rates) in &raw.consumers {
                let at = format!("{path}.consumers.{consumer}");
                check_id(consumer).map_err(|reason| ConfigError::new(at.clone(), reason))?;
                overrides.insert(consumer.clone(), parse_rates(&at, rates)?);
            }
            rules.push(Rule {
                name: raw.name.clone(),
                by,
                models: raw.models.clone(),
                limits: parse_rates(&path, &raw.rates)?,
                overrides,
            });
        }
        let default_max_output_tokens = match self.default_max_output_tokens {
            Some(0) => {
                return Err(ConfigError::new(
                    "default_max_output_tokens",
                    "must be at least 1",
                ))
            }
            Some(n) => n,
            None => DEFAULT_MAX_OUTPUT_TOKENS,
        };
        let budget_warning_percent = self
            .budget_warning_percent
            .unwrap_or(DEFAULT_BUDGET_WARNING_PERCENT);
        if !(1..=100).contains(&budget_warning_percent) {
            return Err(ConfigError::new(
                "budget_warning_percent",
                "must be between 1 and 100",
            ));
        }
        let policy = Policy {
            default,
            teams: section("teams", &self.teams)?,
            consumers: section("consumers", &self.consumers)?,
            rules,
            default_max_output_tokens,
            budget_warning_permille: budget_warning_percent * 10,
        };
        if self.global.is_some() {
            policy.check_global_budgets()?;
        }
        Ok(policy)
    }
}
