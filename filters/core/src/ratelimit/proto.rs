//! The few protobuf messages of Envoy's rate limit service, encoded and decoded by hand.
//!
//! `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`
//! (<https://www.envoyproxy.io/docs/envoy/latest/api-v3/service/ratelimit/v3/rls.proto>):
//! a [`RateLimitRequest`] out, a [`RateLimitResponse`] in. A protobuf runtime (prost) would
//! double the filter's size for four messages, so this module writes them with the two wire
//! types they use (varint and length-delimited) and skips every field it does not know.

/// `envoy.type.v3.RateLimitUnit` (also `RateLimitResponse.RateLimit.Unit`: same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Second = 1,
    Minute = 2,
    Hour = 3,
    Day = 4,
    Month = 5,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// `entries`: key and value pairs.
    pub entries: Vec<(String, String)>,
    /// `limit`: the override `requests_per_unit` per `unit`.
    pub limit: Option<(u32, Unit)>,
    /// `hits_addend` (a `google.protobuf.UInt64Value`): the cost, e.g. tokens.
    pub hits_addend: Option<u64>,
    /// `is_negative_hits`: give `hits_addend` back instead of spending it (a budget's refund).
    pub negative: bool,
}

/// `envoy.service.ratelimit.v3.RateLimitRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitRequest {
    pub domain: String,
    pub descriptors: Vec<Descriptor>,
    /// Request-wide `hits_addend`; 0 means 1 to the service.
    pub hits_addend: u32,
}

/// `RateLimitResponse.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unknown,
    Ok,
    OverLimit,
}

impl Code {
    fn from_number(n: u64) -> Self {
        match n {
            1 => Code::Ok,
            2 => Code::OverLimit,
            _ => Code::Unknown,
        }
    }
}

/// `RateLimitResponse.DescriptorStatus`, the fields llmgw reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorStatus {
    pub code: Code,
    /// `current_limit`: `requests_per_unit` and the unit's number.
    pub current_limit: Option<(u32, u64)>,
    pub limit_remaining: u32,
    /// `duration_until_reset`, whole seconds and nanoseconds, in milliseconds.
    pub duration_until_reset_ms: Option<u64>,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse`, the fields llmgw reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitResponse {
    pub overall_code: Code,
    pub statuses: Vec<DescriptorStatus>,
    /// `response_headers_to_add` named [`super::global::REMAINING_HEADER`], read as
    /// `<descriptor index>:<remaining>`: llmgw-rls's exact remaining of a budget whose amount
    /// does not fit `limit_remaining`'s 32 bits.
    pub exact_remaining: Vec<(usize, u64)>,
}

impl RateLimitResponse {
    /// Descriptor `i`'s remaining units: exact from llmgw-rls's header where it wrote one,
    /// else the status's 32-bit `limit_remaining`.
    pub fn remaining(&self, i: usize) -> Option<u64> {
        self.exact_remaining
            .iter()
            .find(|(index, _)| *index == i)
            .map(|(_, n)| *n)
            .or_else(|| self.statuses.get(i).map(|s| u64::from(s.limit_remaining)))
    }
}

/// `envoy.config.core.v3.HeaderValue` `{key, value}` as an exact remaining, when it is one.
fn decode_remaining(bytes: &[u8]) -> Result<Option<(usize, u64)>, DecodeError> {
    let mut r = Reader { bytes };
    let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
    while let Some((field, v)) = r.field()? {
        match (field, v) {
            (1, Value::Bytes(b)) => key = b,
            (2, Value::Bytes(b)) => value = b,
            _ => {}
        }
    }
    if key != super::global::REMAINING_HEADER.as_bytes() {
        return Ok(None);
    }
    let parsed = std::str::from_utf8(value).ok().and_then(|v| {
        let (index, n) = v.split_once(':')?;
        Some((index.parse().ok()?, n.parse().ok()?))
    });
    Ok(parsed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated protobuf message")]
    Truncated,
    #[error("varint longer than 10 bytes")]
    VarintTooLong,
    #[error("unsupported wire type {0}")]
    WireType(u8),
}

// ---- encoding ----

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

fn put_uint(out: &mut Vec<u8>, field: u32, value: u64) {
    // proto3: a default (0) scalar is not written.
    if value != 0 {
        put_key(out, field, 0);
        put_varint(out, value);
    }
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_message(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    write(&mut inner);
    put_bytes(out, field, &inner);
}

impl Descriptor {
    fn encode(&self, out: &mut Vec<u8>) {
        for (key, value) in &self.entries {
            put_message(out, 1, |e| {
                put_bytes(e, 1, key.as_bytes());
                put_bytes(e, 2, value.as_bytes());
            });
        }
        if let Some((per_unit, unit)) = self.limit {
            put_message(out, 2, |l| {
                put_uint(l, 1, u64::from(per_unit));
                put_uint(l, 2, unit as u64);
            });
        }
        if let Some(hits) = self.hits_addend {
            // A wrapper message: present even when 0, so "0 hits" differs from "unset".
            put_message(out, 3, |w| put_uint(w, 1, hits));
        }
        put_uint(out, 4, u64::from(self.negative));
    }
}

impl RateLimitRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, self.domain.as_bytes());
        for d in &self.descriptors {
            put_message(&mut out, 2, |m| d.encode(m));
        }
        put_uint(&mut out, 3, u64::from(self.hits_addend));
        out
    }
}

// ---- decoding ----

/// A cursor over one message's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self.bytes.split_first().ok_or(DecodeError::Truncated)?;
            self.bytes = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// The next field number and value; `None` at the end of the message.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, DecodeError> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match (key & 7) as u8 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            other => return Err(DecodeError::WireType(other)),
        };
        Ok(Some((key >> 3, value)))
    }
}

/// Would a protobuf parser read `bytes` as a message? Any message type: a parser keeps fields it
/// does not know, so only the wire format decides. Conservative: the contents of length-delimited
/// fields are not looked into, so this may say yes where a parser for one type would say no.
///
/// Envoy 1.40 first reads a gRPC call's cluster name as a serialized `GrpcService`; a name that
/// parses (`hh`: field 13, varint 104) is taken for a service with no target, and Envoy aborts
/// the whole process ("unset oneof"). [`super::global::GlobalConfig::validate`] refuses such
/// names.
pub fn is_wire_message(bytes: &[u8]) -> bool {
    let mut r = Reader { bytes };
    skip_fields(&mut r, None, 0).is_ok()
}

/// Skip fields to the end of the message (`group` `None`) or to the end-group tag of field
/// `group`, groups nested at most 100 deep (protobuf's own recursion limit).
fn skip_fields(r: &mut Reader<'_>, group: Option<u64>, depth: u32) -> Result<(), DecodeError> {
    while !r.bytes.is_empty() {
        let key = r.varint()?;
        let field = key >> 3;
        // Field 0 and numbers past 2^29 - 1 are not valid tags.
        if field == 0 || field >= 1 << 29 {
            return Err(DecodeError::Truncated);
        }
        match (key & 7) as u8 {
            0 => {
                r.varint()?;
            }
            1 => {
                r.take(8)?;
            }
            2 => {
                let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::Truncated)?;
                r.take(len)?;
            }
            3 if depth < 100 => skip_fields(r, Some(field), depth + 1)?,
            4 if group == Some(field) => return Ok(()),
            5 => {
                r.take(4)?;
            }
            other => return Err(DecodeError::WireType(other)),
        }
    }
    // The end of the bytes ends a message, not an open group.
    match group {
        None => Ok(()),
        Some(_) => Err(DecodeError::Truncated),
    }
}

pub fn decode_varint(bytes: &[u8]) -> Result<u64, DecodeError> {
    Reader { bytes }.varint()
}

fn decode_status(bytes: &[u8]) -> Result<DescriptorStatus, DecodeError> {
    let mut r = Reader { bytes };
    let mut status = DescriptorStatus {
        code: Code::Unknown,
        current_limit: None,
        limit_remaining: 0,
        duration_until_reset_ms: None,
    };
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (1, Value::Varint(n)) => status.code = Code::from_number(n),
            (2, Value::Bytes(b)) => {
                let mut l = Reader { bytes: b };
                let (mut per_unit, mut unit) = (0u32, 0u64);
                while let Some((f, v)) = l.field()? {
                    match (f, v) {
                        (1, Value::Varint(n)) => per_unit = u32::try_from(n).unwrap_or(u32::MAX),
                        (2, Value::Varint(n)) => unit = n,
                        _ => {}
                    }
                }
                status.current_limit = Some((per_unit, unit));
            }
            (3, Value::Varint(n)) => {
                status.limit_remaining = u32::try_from(n).unwrap_or(u32::MAX);
            }
            (4, Value::Bytes(b)) => {
                let mut d = Reader { bytes: b };
                let (mut secs, mut nanos) = (0u64, 0u64);
                while let Some((f, v)) = d.field()? {
                    match (f, v) {
                        (1, Value::Varint(n)) => secs = n,
                        (2, Value::Varint(n)) => nanos = n & 0xffff_ffff,
                        _ => {}
                    }
                }
                status.duration_until_reset_ms =
                    Some(secs.saturating_mul(1000).saturating_add(nanos / 1_000_000));
            }
            _ => {}
        }
    }
    Ok(status)
}

impl RateLimitResponse {
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes };
        let mut out = RateLimitResponse {
            overall_code: Code::Unknown,
            statuses: Vec::new(),
            exact_remaining: Vec::new(),
        };
        while let Some((field, value)) = r.field()? {
            match (field, value) {
                (1, Value::Varint(n)) => out.overall_code = Code::from_number(n),
                (2, Value::Bytes(b)) => out.statuses.push(decode_status(b)?),
                (3, Value::Bytes(b)) => out.exact_remaining.extend(decode_remaining(b)?),
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn varints_round_trip() {
        for (value, bytes) in [
            (0u64, vec![0x00]),
            (1, vec![0x01]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xac, 0x02]),
            (
                u64::MAX,
                vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out, bytes, "{value}");
            assert_eq!(decode_varint(&bytes).unwrap(), value);
        }
        assert_eq!(decode_varint(&[0x80]), Err(DecodeError::Truncated));
        assert_eq!(decode_varint(&[0xff; 11]), Err(DecodeError::VarintTooLong));
    }

    #[test]
    fn request_matches_protoc_bytes() {
        // Hand-assembled from rls.proto and ratelimit.proto (rls/ decodes the same
        // bytes with the generated prost types): domain "d", one descriptor {entries [{k:"c", v:"al"}], limit {3, MINUTE},
        // hits_addend {value: 300}}.
        let req = RateLimitRequest {
            domain: "d".into(),
            descriptors: vec![Descriptor {
                entries: vec![("c".into(), "al".into())],
                limit: Some((3, Unit::Minute)),
                hits_addend: Some(300),
                negative: false,
            }],
            hits_addend: 0,
        };
        let expected: Vec<u8> = vec![
            0x0a, 0x01, b'd', // domain
            0x12, 0x14, // descriptors, 20 bytes
            0x0a, 0x07, 0x0a, 0x01, b'c', 0x12, 0x02, b'a', b'l', // entry
            0x12, 0x04, 0x08, 0x03, 0x10, 0x02, // limit override
            0x1a, 0x03, 0x08, 0xac, 0x02, // hits_addend wrapper
        ];
        assert_eq!(req.encode(), expected);
        // A refund: is_negative_hits is field 4, a bool.
        let mut refund = req.clone();
        refund.descriptors[0].negative = true;
        let mut with_flag = expected.clone();
        with_flag[4] = 0x16;
        with_flag.extend([0x20, 0x01]);
        assert_eq!(refund.encode(), with_flag);
        // A request-wide hits_addend is field 3 of the request.
        let req = RateLimitRequest {
            domain: String::new(),
            descriptors: vec![],
            hits_addend: 5,
        };
        assert_eq!(req.encode(), vec![0x0a, 0x00, 0x18, 0x05]);
    }

    #[test]
    fn response_decodes_and_skips_unknown_fields() {
        let mut status = Vec::new();
        put_uint(&mut status, 1, 2); // OVER_LIMIT
        put_message(&mut status, 2, |l| {
            put_bytes(l, 3, b"name"); // RateLimit.name: skipped
            put_uint(l, 1, 10);
            put_uint(l, 2, 2);
        });
        put_uint(&mut status, 3, 0);
        put_message(&mut status, 4, |d| {
            put_uint(d, 1, 42);
            put_uint(d, 2, 500_000_000);
        });
        let mut ok = Vec::new();
        put_uint(&mut ok, 1, 1);
        put_uint(&mut ok, 3, 7);
        let mut msg = Vec::new();
        put_uint(&mut msg, 1, 2);
        put_bytes(&mut msg, 2, &ok);
        put_bytes(&mut msg, 2, &status);
        put_bytes(&mut msg, 5, b"raw body"); // skipped
        msg.extend_from_slice(&[0x3d, 1, 2, 3, 4]); // field 7, fixed32: skipped
        let resp = RateLimitResponse::decode(&msg).unwrap();
        assert_eq!(resp.overall_code, Code::OverLimit);
        assert_eq!(resp.statuses.len(), 2);
        assert_eq!(resp.statuses[0].code, Code::Ok);
        assert_eq!(resp.statuses[0].limit_remaining, 7);
        assert_eq!(resp.statuses[0].current_limit, None);
        assert_eq!(
            resp.statuses[1],
            DescriptorStatus {
                code: Code::OverLimit,
                current_limit: Some((10, 2)),
                limit_remaining: 0,
                duration_until_reset_ms: Some(42_500),
            }
        );
        assert_eq!(
            RateLimitResponse::decode(&[]).unwrap().overall_code,
            Code::Unknown
        );
    }

    #[test]
    fn exact_remaining_comes_from_llmgw_rls_s_header() {
        let header = |key: &[u8], value: &[u8]| {
            let mut h = Vec::new();
            put_bytes(&mut h, 1, key);
            put_bytes(&mut h, 2, value);
            h
        };
        let mut status = Vec::new();
        put_uint(&mut status, 1, 1);
        put_uint(&mut status, 3, u64::from(u32::MAX));
        let mut msg = Vec::new();
        put_uint(&mut msg, 1, 1);
        put_bytes(&mut msg, 2, &status);
        put_bytes(&mut msg, 2, &status);
        put_bytes(&mut msg, 3, &header(b"x-other", b"1:5"));
        put_bytes(
            &mut msg,
            3,
            &header(b"x-llmgw-rls-remaining", b"1:49999998765"),
        );
        put_bytes(&mut msg, 3, &header(b"x-llmgw-rls-remaining", b"nonsense"));
        let resp = RateLimitResponse::decode(&msg).unwrap();
        assert_eq!(resp.exact_remaining, [(1, 49_999_998_765)]);
        assert_eq!(resp.remaining(0), Some(u64::from(u32::MAX)));
        assert_eq!(resp.remaining(1), Some(49_999_998_765));
        assert_eq!(resp.remaining(2), None);
    }

    #[test]
    fn broken_responses_are_errors_not_panics() {
        assert_eq!(
            RateLimitResponse::decode(&[0x12, 0x05, 0x08]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            RateLimitResponse::decode(&[0x0b]),
            Err(DecodeError::WireType(3))
        );
        // Any byte string: an answer or an error, never a panic.
        let mut seed = 7u32;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = RateLimitResponse::decode(&bytes);
        }
    }

    #[test]
    fn names_a_protobuf_parser_would_read_as_a_message_are_told_apart() {
        // Varint, fixed64, fixed32 and group fields; an empty message.
        for yes in ["hh", "pp", "xx", "hhpp", "i12345678", "m1234", ""] {
            assert!(is_wire_message(yes.as_bytes()), "{yes:?}");
        }
        // A group and its end tag: field 1 start (0x0b), field 1 end (0x0c).
        assert!(is_wire_message(&[0x0b, 0x08, 0x01, 0x0c]));
        assert!(!is_wire_message(&[0x0b, 0x08, 0x01]), "an open group");
        assert!(!is_wire_message(&[0x0c]), "an end tag with no group");
        assert!(
            !is_wire_message(&[0x0b, 0x14]),
            "the end tag of another field"
        );
        let deep = [0x0b; 200];
        assert!(
            !is_wire_message(&deep),
            "deeper than protobuf's recursion limit"
        );
        // Cluster names as people write them.
        for no in [
            "rls",
            "llmgw-rls",
            "ratelimit",
            "rate_limit_service",
            "httpbin",
            "outbound|8081||ratelimit.default.svc.cluster.local",
            "prometheus",
        ] {
            assert!(!is_wire_message(no.as_bytes()), "{no:?}");
        }
    }
}
