//! auth's configuration: the serde form (stage one) and the compiled key table (stage two).
//!
//! ```json
//! {"keys": [
//!   {"sha256": "<SHA-256 of the key, 64 hex chars>", "consumer": "alice", "team": "ml",
//!    "models": ["gpt-4o*", "fast"], "expires_at": "2027-01-01T00:00:00Z"}
//! ]}
//! ```
//! Only hashes are configured, never keys: `printf %s "$KEY" | sha256sum` makes one.

use serde::Deserialize;

use super::rfc3339::parse_rfc3339_ms;
use crate::config::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthConfig {
    keys: Vec<KeyConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyConfig {
    sha256: String,
    consumer: String,
    #[serde(default)]
    team: Option<String>,
    /// Globs; absent = every model.
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    expires_at: Option<String>,
}

/// One configured key, ready to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Key {
    pub hash: [u8; 32],
    pub consumer: String,
    pub team: Option<String>,
    /// The allowed-models fact (globs joined with `,`); `None` = every model.
    pub allowed_models: Option<String>,
    /// Expiry in ms since the epoch, and the timestamp as configured (for the error message).
    pub expires: Option<(i64, String)>,
}

/// Longest consumer or team id accepted.
const MAX_ID_LEN: usize = 128;

/// Is `id` usable as a consumer or team id? It becomes a request header value, a shared-data
/// key part and a metric label, so: 1 to 128 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Why an id is refused, for config errors.
pub(crate) fn check_id(id: &str) -> Result<(), String> {
    if is_valid_id(id) {
        Ok(())
    } else if id.is_empty() {
        Err("must not be empty".to_string())
    } else if id.len() > MAX_ID_LEN {
        Err(format!(
            "must be at most {MAX_ID_LEN} characters, got {}",
            id.len()
        ))
    } else {
        Err(format!(
            "{id:?} may only contain letters, digits, '.', '_' and '-' \
             (it becomes a header value and a metric label)"
        ))
    }
}

impl AuthConfig {
    pub(super) fn compile(self) -> Result<Vec<Key>, ConfigError> {
        if self.keys.is_empty() {
            return Err(ConfigError::new(
                "keys",
                "at least one key is required (an empty list would refuse every request)",
            ));
        }
        let mut keys: Vec<Key> = Vec::with_capacity(self.keys.len());
        for (i, key) in self.keys.into_iter().enumerate() {
            let at = |field: &str| format!("keys[{i}].{field}");
            let hash = parse_hash(&key.sha256).map_err(|r| ConfigError::new(at("sha256"), r))?;
            if let Some(first) = keys.iter().position(|k| k.hash == hash) {
                return Err(ConfigError::new(
                    at("sha256"),
                    format!("the same key hash as keys[{first}]; each key may appear only once"),
                ));
            }
            check_id(&key.consumer).map_err(|r| ConfigError::new(at("consumer"), r))?;
            if let Some(team) = &key.team {
                check_id(team).map_err(|r| ConfigError::new(at("team"), r))?;
            }
            let allowed_models = match key.models {
                None => None,
                Some(models) => {
                    if models.is_empty() {
                        return Err(ConfigError::new(
                            at("models"),
                            "an empty list would allow no model; leave `models` out to allow all",
                        ));
                    }
                    for (j, pattern) in models.iter().enumerate() {
                        check_glob(pattern)
                            .map_err(|r| ConfigError::new(at(&format!("models[{j}]")), r))?;
                    }
                    Some(models.join(","))
                }
            };
            let expires = match key.expires_at {
                None => None,
                Some(text) => {
                    let ms = parse_rfc3339_ms(&text)
                        .map_err(|r| ConfigError::new(at("expires_at"), r))?;
                    Some((ms, text))
                }
            };
            keys.push(Key {
                hash,
                consumer: key.consumer,
                team: key.team,
                allowed_models,
                expires,
            });
        }
        Ok(keys)
    }
}

fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!(
            "expected 64 hexadecimal characters (the SHA-256 of the key), got {}{}",
            text.chars().count(),
            if bytes.len() == 64 {
                " including non-hexadecimal ones"
            } else {
                ""
            }
        ));
    }
    let mut hash = [0u8; 32];
    for (out, pair) in hash.iter_mut().zip(bytes.chunks_exact(2)) {
        *out = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
    }
    Ok(hash)
}

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// A model glob must survive the trip through a comma-separated header value.
fn check_glob(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        Err("must not be empty".to_string())
    } else if pattern.contains(',') {
        Err(format!(
            "{pattern:?} contains ',', which separates globs in the allowed-models header"
        ))
    } else if pattern.trim() != pattern {
        Err(format!("{pattern:?} has leading or trailing whitespace"))
    } else if pattern.chars().any(char::is_control) {
        Err(format!("{pattern:?} contains a control character"))
    } else {
        Ok(())
    }
}
