//! Command line flags, each with an environment variable (the flag wins); `rls/README.md`
//! documents them.

use std::net::SocketAddr;
use std::time::Duration;

pub const USAGE: &str = "\
usage: llmgw-rls [options]   (each option also from its environment variable)
  --grpc ADDR              LLMGW_RLS_GRPC              gRPC rate limit service   [127.0.0.1:8081]
  --http ADDR              LLMGW_RLS_HTTP              /healthz /readyz /metrics [127.0.0.1:8080]
  --redis URL              LLMGW_RLS_REDIS             one Redis server  [redis://127.0.0.1:6379]
  --sentinel URL,URL...    LLMGW_RLS_SENTINEL          Redis Sentinels (redis://host:26379)
  --sentinel-master NAME   LLMGW_RLS_SENTINEL_MASTER   the master they watch (with --sentinel)
  --redis-timeout-ms N     LLMGW_RLS_REDIS_TIMEOUT_MS  connect and command timeout [500]
  --shutdown-grace-s N     LLMGW_RLS_SHUTDOWN_GRACE_S  on SIGTERM, time for calls in flight [10]
  --delay-ms N             LLMGW_RLS_DELAY_MS          fault injection: answer every call N ms late [0]
  --admin-key-sha256 HEX   LLMGW_RLS_ADMIN_KEY_SHA256  SHA-256 of the key GET /budgets requires [off]";

#[derive(Debug, PartialEq)]
pub enum Redis {
    Direct(String),
    Sentinel {
        sentinels: Vec<String>,
        master: String,
    },
}

#[derive(Debug)]
pub struct Config {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub redis: Redis,
    pub redis_timeout: Duration,
    pub shutdown_grace: Duration,
    /// A fault switch for tests of a slow service (llmgw's `global.timeout_ms`).
    pub delay: Duration,
    /// `GET /budgets` answers only a bearer key with this SHA-256 (lower-case hex); `None`:
    /// the endpoint is off.
    pub admin_key_sha256: Option<String>,
}

const OPTIONS: [(&str, &str); 9] = [
    ("--grpc", "LLMGW_RLS_GRPC"),
    ("--http", "LLMGW_RLS_HTTP"),
    ("--redis", "LLMGW_RLS_REDIS"),
    ("--sentinel", "LLMGW_RLS_SENTINEL"),
    ("--sentinel-master", "LLMGW_RLS_SENTINEL_MASTER"),
    ("--redis-timeout-ms", "LLMGW_RLS_REDIS_TIMEOUT_MS"),
    ("--shutdown-grace-s", "LLMGW_RLS_SHUTDOWN_GRACE_S"),
    ("--delay-ms", "LLMGW_RLS_DELAY_MS"),
    ("--admin-key-sha256", "LLMGW_RLS_ADMIN_KEY_SHA256"),
];

impl Config {
    /// `args` without the program name; `env` looks a variable up.
    pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut given: Vec<(&str, String)> = Vec::new();
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let (name, _) = OPTIONS
                .iter()
                .find(|(name, _)| name == flag)
                .ok_or_else(|| format!("unknown option {flag}"))?;
            let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
            given.push((name, value.clone()));
        }
        let get = |flag: &str| -> Option<String> {
            given
                .iter()
                .rev()
                .find(|(name, _)| *name == flag)
                .map(|(_, v)| v.clone())
                .or_else(|| {
                    OPTIONS
                        .iter()
                        .find(|(name, _)| *name == flag)
                        .and_then(|(_, var)| env(var))
                        .filter(|v| !v.is_empty())
                })
        };
        let addr = |flag: &str, default: &str| -> Result<SocketAddr, String> {
            let value = get(flag).unwrap_or_else(|| default.to_string());
            value
                .parse()
                .map_err(|_| format!("{flag}: {value:?} is not an address like 127.0.0.1:8081"))
        };
        let number = |flag: &str, default: u64| -> Result<u64, String> {
            get(flag).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| format!("{flag}: {v:?} is not a whole number"))
            })
        };
        let redis = match (get("--sentinel"), get("--sentinel-master")) {
            (Some(list), Some(master)) => {
                if get("--redis").is_some() {
                    return Err("--redis and --sentinel exclude each other".into());
                }
                Redis::Sentinel {
                    sentinels: list.split(',').map(|s| s.trim().to_string()).collect(),
                    master,
                }
            }
            (None, None) => Redis::Direct(
                get("--redis").unwrap_or_else(|| "redis://127.0.0.1:6379".to_string()),
            ),
            _ => return Err("--sentinel and --sentinel-master go together".into()),
        };
        let redis_timeout_ms = number("--redis-timeout-ms", 500)?;
        if redis_timeout_ms == 0 {
            return Err("--redis-timeout-ms: must be at least 1".into());
        }
        let admin_key_sha256 = get("--admin-key-sha256").map(|h| h.to_ascii_lowercase());
        if let Some(hash) = &admin_key_sha256 {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("--admin-key-sha256: 64 hex digits (make key prints one)".into());
            }
        }
        Ok(Self {
            admin_key_sha256,
            grpc: addr("--grpc", "127.0.0.1:8081")?,
            http: addr("--http", "127.0.0.1:8080")?,
            redis,
            redis_timeout: Duration::from_millis(redis_timeout_ms),
            shutdown_grace: Duration::from_secs(number("--shutdown-grace-s", 10)?),
            delay: Duration::from_millis(number("--delay-ms", 0)?),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_flags_and_environment() {
        let c = Config::parse(&[], |_| None).unwrap();
        assert_eq!(c.grpc.to_string(), "127.0.0.1:8081");
        assert_eq!(c.redis, Redis::Direct("redis://127.0.0.1:6379".into()));
        assert_eq!(c.redis_timeout, Duration::from_millis(500));
        let env = |v: &str| (v == "LLMGW_RLS_GRPC").then(|| "0.0.0.0:9000".to_string());
        let c = Config::parse(&args("--http 127.0.0.1:0"), env).unwrap();
        assert_eq!(c.grpc.to_string(), "0.0.0.0:9000");
        assert_eq!(c.http.to_string(), "127.0.0.1:0");
        let c = Config::parse(&args("--grpc 127.0.0.1:1"), env).unwrap();
        assert_eq!(c.grpc.to_string(), "127.0.0.1:1", "the flag wins");
    }

    #[test]
    fn sentinel() {
        let c = Config::parse(
            &args("--sentinel redis://a:26379,redis://b:26379 --sentinel-master m"),
            |_| None,
        )
        .unwrap();
        assert_eq!(
            c.redis,
            Redis::Sentinel {
                sentinels: vec!["redis://a:26379".into(), "redis://b:26379".into()],
                master: "m".into()
            }
        );
    }

    #[test]
    fn refusals_say_why() {
        let err = |s: &str| Config::parse(&args(s), |_| None).unwrap_err();
        assert_eq!(err("--port 1"), "unknown option --port");
        assert_eq!(err("--grpc"), "--grpc needs a value");
        assert!(err("--grpc localhost").contains("not an address"));
        assert!(err("--redis-timeout-ms x").contains("not a whole number"));
        assert_eq!(
            err("--redis-timeout-ms 0"),
            "--redis-timeout-ms: must be at least 1"
        );
        assert!(err("--admin-key-sha256 abc").contains("64 hex digits"));
        assert_eq!(
            err("--sentinel redis://a:1"),
            "--sentinel and --sentinel-master go together"
        );
        assert_eq!(
            err("--sentinel redis://a:1 --sentinel-master m --redis redis://b"),
            "--redis and --sentinel exclude each other"
        );
    }
}
