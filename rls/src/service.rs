//! The `envoy.service.ratelimit.v3.RateLimitService` gRPC service.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration;
use llmgw_core::ratelimit::global::REMAINING_HEADER;
use tonic::{Request, Response, Status};

use crate::limits::{check_of, response_unit, Check, CHECK_AND_COUNT};
use crate::metrics::{Metrics, Outcome};
use crate::store::Store;

pub struct Service {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    script: redis::Script,
    /// `--delay-ms`: how long every call waits before it is served.
    delay: std::time::Duration,
}

impl Service {
    pub fn new(store: Arc<Store>, metrics: Arc<Metrics>, delay: std::time::Duration) -> Self {
        Self {
            store,
            metrics,
            script: redis::Script::new(CHECK_AND_COUNT),
            delay,
        }
    }

    async fn answer(&self, req: RateLimitRequest) -> Result<RateLimitResponse, (Outcome, Status)> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let checks = req
            .descriptors
            .iter()
            .map(|d| check_of(&req.domain, d, req.hits_addend, now))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|status| (Outcome::Invalid, status))?;
        if checks.is_empty() {
            return Ok(RateLimitResponse {
                overall_code: Code::Ok as i32,
                ..Default::default()
            });
        }
        let counts = self.count(&checks).await.map_err(|e| {
            self.metrics.redis_error();
            (Outcome::Error, Status::unavailable(format!("redis: {e}")))
        })?;
        let over = counts.first().copied().unwrap_or(0) > 0;
        let statuses = checks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let count = counts.get(i + 1).copied().unwrap_or(0);
                let this_over = over && !c.refund && count.saturating_add(c.hits) > c.max;
                // The protocol's figures are 32-bit: saturated here, exact in a header below.
                DescriptorStatus {
                    code: if this_over { Code::OverLimit } else { Code::Ok } as i32,
                    current_limit: Some(RateLimit {
                        name: String::new(),
                        requests_per_unit: u32::try_from(c.max).unwrap_or(u32::MAX),
                        unit: response_unit(c.unit) as i32,
                    }),
                    limit_remaining: u32::try_from(c.max.saturating_sub(count)).unwrap_or(u32::MAX),
                    duration_until_reset: Some(Duration {
                        seconds: i64::try_from(c.window_end.saturating_sub(now).max(1))
                            .unwrap_or(i64::MAX),
                        nanos: 0,
                    }),
                    quota: None,
                }
            })
            .collect();
        let response_headers_to_add = checks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.exact)
            .map(|(i, c)| {
                let count = counts.get(i + 1).copied().unwrap_or(0);
                HeaderValue {
                    key: REMAINING_HEADER.to_string(),
                    value: format!("{i}:{}", c.max.saturating_sub(count)),
                    raw_value: Vec::new(),
                }
            })
            .collect();
        Ok(RateLimitResponse {
            overall_code: if over { Code::OverLimit } else { Code::Ok } as i32,
            statuses,
            response_headers_to_add,
            ..Default::default()
        })
    }

    /// Runs the script: the number of counters over, then each counter's value.
    async fn count(&self, checks: &[Check]) -> redis::RedisResult<Vec<u64>> {
        let mut invocation = self.script.prepare_invoke();
        for c in checks {
            invocation
                .key(&c.key)
                .arg(c.hits)
                .arg(c.max)
                .arg(c.window_end)
                .arg(u8::from(c.refund))
                .arg(u8::from(c.remember_limit));
        }
        let mut connection = self.store.connection().await?;
        let result = invocation.invoke_async(&mut connection).await;
        if let Err(e) = &result {
            self.store.after_error(e).await;
        }
        result
    }
}

#[tonic::async_trait]
impl RateLimitService for Service {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        let started = Instant::now();
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let answer = self.answer(request.into_inner()).await;
        let outcome = match &answer {
            Ok(r) if r.overall_code == Code::OverLimit as i32 => Outcome::OverLimit,
            Ok(_) => Outcome::Ok,
            Err((outcome, _)) => *outcome,
        };
        self.metrics
            .request(outcome, started.elapsed().as_secs_f64());
        answer.map(Response::new).map_err(|(_, status)| status)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use envoy_types::pb::envoy::r#type::v3::RateLimitUnit;
    use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit;
    use llmgw_core::ratelimit::proto;
    use prost::Message;

    use super::*;

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
                negative: true,
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
        assert!(d.is_negative_hits);
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
        let mut resp = resp;
        resp.response_headers_to_add.push(HeaderValue {
            key: REMAINING_HEADER.into(),
            value: "0:49999998765".into(),
            raw_value: Vec::new(),
        });
        let ours = proto::RateLimitResponse::decode(&resp.encode_to_vec()).unwrap();
        assert_eq!(ours.remaining(0), Some(49_999_998_765));
        assert_eq!(ours.overall_code, proto::Code::OverLimit);
        assert_eq!(ours.statuses[0].current_limit, Some((10, 2)));
        assert_eq!(ours.statuses[0].duration_until_reset_ms, Some(12_250));
    }
}
