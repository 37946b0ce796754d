//! A small Envoy rate limit service (`envoy.service.ratelimit.v3.RateLimitService`) for llmgw's
//! global mode: counters in Redis, so several Envoys (and several of these services) share one
//! limit.
//!
//! `llmgw-rls-server --port N [--redis redis://127.0.0.1:6379] [--delay-ms N]` prints
//! `listening on 127.0.0.1:PORT` once it serves (`--port 0`: any free port). `--delay-ms`: a
//! fault switch for tests, answer every call that late (a slow service).
//!
//! Limits come from the request itself, the way llmgw's ratelimit filter sends them: each
//! descriptor carries its limit in the standard `limit` override (`requests_per_unit`, `unit`)
//! and its cost in `hits_addend` (tokens for token limits). The descriptor's entries and unit
//! are the counter's key. So the service needs no configuration of its own: llmgw's JSON stays
//! the one place where limits are written. (envoyproxy/ratelimit and Limitador serve the same
//! requests with their own limit files.)
//!
//! Windows are fixed and aligned to the epoch, like llmgw's local mode. A request is checked
//! against every descriptor and counted only when all admit it, in one Lua script, so it is
//! atomic across descriptors, services and Envoys: a request refused by one limit consumes none
//! of the others.
//!
//! Why not Limitador: every Limitador release on crates.io (0.11 to 0.14) fails to build with
//! `default-features = false, features = ["redis_storage"]` (`storage/keys.rs` calls the `bin`
//! module, which only exists with `disk_storage`), and `disk_storage` compiles RocksDB from C++,
//! which is minutes on a CI machine. The protocol is the same; Limitador can replace this.

use std::time::{SystemTime, UNIX_EPOCH};

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::r#type::v3::RateLimitUnit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    rate_limit, Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::{
    RateLimitService, RateLimitServiceServer,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration;
use redis::aio::ConnectionManager;
use tonic::{Request, Response, Status};

const USAGE: &str =
    "usage: llmgw-rls-server --port N [--redis redis://127.0.0.1:6379] [--delay-ms N]";

/// Check every counter (KEYS), and add the hits to all of them only when none would pass its
/// max. ARGV, per key: hits, max, window end (Unix seconds). Returns the number of counters
/// over, then each counter's value.
const CHECK_AND_COUNT: &str = r"
local over = 0
local counts = {}
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  counts[i] = count
  if count + tonumber(ARGV[3 * i - 2]) > tonumber(ARGV[3 * i - 1]) then
    over = over + 1
  end
end
if over == 0 then
  for i = 1, #KEYS do
    counts[i] = redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
    redis.call('EXPIREAT', KEYS[i], tonumber(ARGV[3 * i]) + 1)
  end
end
local out = {over}
for i = 1, #KEYS do out[#out + 1] = counts[i] end
return out
";

struct Service {
    redis: ConnectionManager,
    script: redis::Script,
    /// `--delay-ms`: how long every call waits before it is served.
    delay: std::time::Duration,
}

/// One descriptor, understood.
struct Check {
    key: String,
    hits: u64,
    max: u32,
    unit: RateLimitUnit,
    window_end: u64,
}

fn unit_seconds(unit: RateLimitUnit) -> Option<u64> {
    match unit {
        RateLimitUnit::Second => Some(1),
        RateLimitUnit::Minute => Some(60),
        RateLimitUnit::Hour => Some(3600),
        RateLimitUnit::Day => Some(86_400),
        RateLimitUnit::Month => Some(30 * 86_400),
        RateLimitUnit::Year => Some(365 * 86_400),
        RateLimitUnit::Unknown => None,
    }
}

fn response_unit(unit: RateLimitUnit) -> rate_limit::Unit {
    match unit {
        RateLimitUnit::Second => rate_limit::Unit::Second,
        RateLimitUnit::Minute => rate_limit::Unit::Minute,
        RateLimitUnit::Hour => rate_limit::Unit::Hour,
        RateLimitUnit::Day => rate_limit::Unit::Day,
        RateLimitUnit::Month => rate_limit::Unit::Month,
        RateLimitUnit::Year => rate_limit::Unit::Year,
        RateLimitUnit::Unknown => rate_limit::Unit::Unknown,
    }
}

/// Escape `|`, `=` and `\` so entries cannot be forged into another counter's key.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('=', "\\=")
}

fn check_of(
    domain: &str,
    d: &RateLimitDescriptor,
    request_hits: u32,
    now: u64,
) -> Result<Check, Status> {
    let limit = d.limit.ok_or_else(|| {
        Status::invalid_argument(
            "every descriptor needs its `limit` override (requests_per_unit, unit)",
        )
    })?;
    let unit = RateLimitUnit::try_from(limit.unit).unwrap_or(RateLimitUnit::Unknown);
    let seconds = unit_seconds(unit)
        .ok_or_else(|| Status::invalid_argument("descriptor limit has no unit"))?;
    let window = now / seconds;
    let entries: Vec<String> = d
        .entries
        .iter()
        .map(|e| format!("{}={}", escape(&e.key), escape(&e.value)))
        .collect();
    let hits = d
        .hits_addend
        .map(|h| h.value)
        .unwrap_or(u64::from(request_hits.max(1)));
    Ok(Check {
        key: format!(
            "llmgw-rls|{}|{seconds}|{window}|{}",
            escape(domain),
            entries.join("|")
        ),
        hits,
        max: limit.requests_per_unit,
        unit,
        window_end: (window + 1) * seconds,
    })
}

#[tonic::async_trait]
impl RateLimitService for Service {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let req = request.into_inner();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let checks = req
            .descriptors
            .iter()
            .map(|d| check_of(&req.domain, d, req.hits_addend, now))
            .collect::<Result<Vec<_>, _>>()?;
        if checks.is_empty() {
            return Ok(Response::new(RateLimitResponse {
                overall_code: Code::Ok as i32,
                ..Default::default()
            }));
        }
        let mut invocation = self.script.prepare_invoke();
        for c in &checks {
            invocation
                .key(&c.key)
                .arg(c.hits)
                .arg(c.max)
                .arg(c.window_end);
        }
        let mut conn = self.redis.clone();
        let result: Vec<u64> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Status::unavailable(format!("redis: {e}")))?;
        let over = result.first().copied().unwrap_or(0) > 0;
        let statuses = checks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let count = result.get(i + 1).copied().unwrap_or(0);
                let this_over = over && count.saturating_add(c.hits) > u64::from(c.max);
                DescriptorStatus {
                    code: if this_over { Code::OverLimit } else { Code::Ok } as i32,
                    current_limit: Some(RateLimit {
                        name: String::new(),
                        requests_per_unit: c.max,
                        unit: response_unit(c.unit) as i32,
                    }),
                    limit_remaining: u32::try_from(u64::from(c.max).saturating_sub(count))
                        .unwrap_or(u32::MAX),
                    duration_until_reset: Some(Duration {
                        seconds: i64::try_from(c.window_end.saturating_sub(now).max(1))
                            .unwrap_or(i64::MAX),
                        nanos: 0,
                    }),
                    quota: None,
                }
            })
            .collect();
        Ok(Response::new(RateLimitResponse {
            overall_code: if over { Code::OverLimit } else { Code::Ok } as i32,
            statuses,
            ..Default::default()
        }))
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = arg(&args, "--port")
        .and_then(|p| p.parse().ok())
        .ok_or(USAGE)?;
    let url = arg(&args, "--redis").unwrap_or_else(|| "redis://127.0.0.1:6379".to_string());
    let client = redis::Client::open(url)?;
    let redis = ConnectionManager::new(client).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let delay_ms: u64 = match arg(&args, "--delay-ms") {
        Some(ms) => ms.parse().map_err(|_| USAGE)?,
        None => 0,
    };
    let service = Service {
        redis,
        script: redis::Script::new(CHECK_AND_COUNT),
        delay: std::time::Duration::from_millis(delay_ms),
    };
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(RateLimitServiceServer::new(service))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use llmgw_core::ratelimit::proto;
    use prost::Message;

    /// llmgw-core's hand-written encoder against the generated prost types.
    #[test]
    fn core_encoding_is_what_prost_decodes() {
        let ours = proto::RateLimitRequest {
            domain: "llmgw".into(),
            descriptors: vec![proto::Descriptor {
                entries: vec![
                    ("consumer".into(), "alice".into()),
                    ("kind".into(), "total_tokens".into()),
                ],
                limit: Some((1000, proto::Unit::Hour)),
                hits_addend: Some(4321),
            }],
            hits_addend: 0,
        };
        let decoded = RateLimitRequest::decode(ours.encode().as_slice()).unwrap();
        assert_eq!(decoded.domain, "llmgw");
        let d = &decoded.descriptors[0];
        assert_eq!(d.entries[0].key, "consumer");
        assert_eq!(d.entries[1].value, "total_tokens");
        let limit = d.limit.unwrap();
        assert_eq!(limit.requests_per_unit, 1000);
        assert_eq!(limit.unit, RateLimitUnit::Hour as i32);
        assert_eq!(d.hits_addend.unwrap().value, 4321);
    }

    /// And prost's encoding of a response against llmgw-core's decoder.
    #[test]
    fn prost_response_is_what_core_decodes() {
        let resp = RateLimitResponse {
            overall_code: Code::OverLimit as i32,
            statuses: vec![DescriptorStatus {
                code: Code::OverLimit as i32,
                current_limit: Some(RateLimit {
                    name: "n".into(),
                    requests_per_unit: 10,
                    unit: rate_limit::Unit::Minute as i32,
                }),
                limit_remaining: 0,
                duration_until_reset: Some(Duration {
                    seconds: 12,
                    nanos: 250_000_000,
                }),
                quota: None,
            }],
            raw_body: b"ignored".to_vec(),
            ..Default::default()
        };
        let ours = proto::RateLimitResponse::decode(&resp.encode_to_vec()).unwrap();
        assert_eq!(ours.overall_code, proto::Code::OverLimit);
        assert_eq!(ours.statuses[0].current_limit, Some((10, 2)));
        assert_eq!(ours.statuses[0].duration_until_reset_ms, Some(12_250));
    }

    #[test]
    fn keys_cannot_be_forged() {
        let d = |k: &str, v: &str| {
            RateLimitDescriptor {
            entries: vec![envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry {
                key: k.into(),
                value: v.into(),
            }],
            limit: Some(envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::RateLimitOverride {
                requests_per_unit: 5,
                unit: RateLimitUnit::Minute as i32,
            }),
            hits_addend: None,
            is_negative_hits: false,
        }
        };
        let a = check_of("d", &d("a", "b|c=d"), 0, 120).unwrap();
        let b = check_of("d", &d("a", "b"), 0, 120).unwrap();
        assert_ne!(a.key, b.key);
        assert_eq!(a.hits, 1);
        assert_eq!(a.window_end, 180);
    }
}
