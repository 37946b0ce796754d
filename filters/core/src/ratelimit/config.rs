//! ratelimit's configuration: the serde form (stage one) and the compiled [`Policy`].
//!
//! ```json
//! {"default":   {"requests_per_minute": 60},
//!  "teams":     {"ml":    {"requests_per_minute": 600}},
//!  "consumers": {"alice": {"requests_per_minute": 1000}}}
//! ```
//! Every section is optional. Each consumer has its own counter; a team entry is the limit of
//! each member of the team (not a budget the team shares). For each kind of limit the most
//! specific entry wins: consumer, then team, then default; none at all means unlimited.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::window::{Limit, LimitKind, Window};
use crate::auth::check_id;
use crate::config::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitConfig {
    #[serde(default)]
    default: Option<LimitsConfig>,
    #[serde(default)]
    teams: BTreeMap<String, LimitsConfig>,
    #[serde(default)]
    consumers: BTreeMap<String, LimitsConfig>,
}

/// One entry's limits. Token limits will sit beside `requests_per_minute`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsConfig {
    #[serde(default)]
    requests_per_minute: Option<u64>,
}

impl LimitsConfig {
    fn compile(&self, path: &str) -> Result<LimitSet, ConfigError> {
        let mut limits = Vec::new();
        if let Some(max) = self.requests_per_minute {
            if max == 0 {
                return Err(ConfigError::new(
                    format!("{path}.requests_per_minute"),
                    "must be at least 1 (leave the limit out for no limit)",
                ));
            }
            limits.push(Limit {
                kind: LimitKind::Requests,
                window: Window::Minute,
                max,
            });
        }
        if limits.is_empty() {
            return Err(ConfigError::new(
                path,
                "sets no limit; add requests_per_minute",
            ));
        }
        Ok(LimitSet { limits })
    }
}

/// The limits one config entry sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitSet {
    limits: Vec<Limit>,
}

impl LimitSet {
    fn of_kind(&self, kind: LimitKind) -> impl Iterator<Item = &Limit> {
        self.limits.iter().filter(move |l| l.kind == kind)
    }
}

/// The compiled configuration: who gets which limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    default: LimitSet,
    teams: HashMap<String, LimitSet>,
    consumers: HashMap<String, LimitSet>,
}

impl Policy {
    /// The limits that apply to `consumer` (of `team`): per kind, the consumer's own entry, else
    /// the team's, else the default. Empty = unlimited.
    pub fn limits_for(&self, consumer: &str, team: Option<&str>) -> Vec<Limit> {
        let chain = [
            self.consumers.get(consumer),
            team.and_then(|t| self.teams.get(t)),
            Some(&self.default),
        ];
        let mut out = Vec::new();
        for kind in LimitKind::ALL {
            if let Some(set) = chain
                .iter()
                .flatten()
                .find(|set| set.of_kind(kind).next().is_some())
            {
                out.extend(set.of_kind(kind).copied());
            }
        }
        out
    }
}

impl RateLimitConfig {
    pub(super) fn compile(self) -> Result<Policy, ConfigError> {
        let default = match &self.default {
            Some(limits) => limits.compile("default")?,
            None => LimitSet::default(),
        };
        let section = |name: &str, entries: &BTreeMap<String, LimitsConfig>| {
            entries
                .iter()
                .map(|(id, limits)| {
                    let path = format!("{name}.{id}");
                    check_id(id).map_err(|reason| ConfigError::new(path.clone(), reason))?;
                    Ok((id.clone(), limits.compile(&path)?))
                })
                .collect::<Result<HashMap<_, _>, ConfigError>>()
        };
        Ok(Policy {
            default,
            teams: section("teams", &self.teams)?,
            consumers: section("consumers", &self.consumers)?,
        })
    }
}
