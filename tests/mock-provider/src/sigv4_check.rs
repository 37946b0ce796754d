//! Verifies AWS Signature Version 4 on a request as AWS does: it rebuilds the canonical
//! request from what actually arrived (raw path, `host` header, body bytes) and recomputes the
//! signature with the mock's secret. The canonical request is built here, independently of the
//! gateway's signer, so a path, header or body that changed after signing, or a wrong
//! canonicalisation in the gateway, fails. Only the HMAC primitives (checked against AWS's
//! published test vectors in llmgw-core) are shared.

use hyper::header::HeaderMap;
use llmgw_core::aws::sigv4::{hex, hmac_sha256, sha256_hex, signing_key};

/// The mock's AWS credentials (temporary credentials: a session token is required).
pub const ACCESS_KEY_ID: &str = "AKIDMOCKBEDROCK";
pub const SECRET_ACCESS_KEY: &str = "mock-aws-secret-access-key/EXAMPLE";
pub const SESSION_TOKEN: &str = "mock-aws-session-token";
pub const REGION: &str = "us-east-1";
pub const SERVICE: &str = "bedrock";

/// Why a request is refused: AWS's error name and message.
pub struct Refusal {
    pub error_type: &'static str,
    pub message: String,
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

fn mismatch(detail: &str) -> Refusal {
    Refusal {
        error_type: "InvalidSignatureException",
        message: format!("{MISMATCH} ({detail})"),
    }
}

/// Percent-encode every byte but the unreserved ones and `/`: the raw path (already encoded
/// once on the wire) is encoded a second time, as SigV4 does for every service but S3.
fn encode_path(path: &str) -> String {
    let mut out = String::new();
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `now` in Unix seconds → is `amz_date` (`YYYYMMDDTHHMMSSZ`) within 5 minutes of it?
fn fresh(amz_date: &str, now: u64) -> bool {
    let digits = |a: usize, b: usize| amz_date.get(a..b).and_then(|s| s.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = (
        digits(0, 4),
        digits(4, 6),
        digits(6, 8),
        digits(9, 11),
        digits(11, 13),
        digits(13, 15),
    ) else {
        return false;
    };
    // days_from_civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let then = days * 86_400 + h * 3600 + mi * 60 + s;
    (then - now as i64).abs() <= 300
}

pub fn verify(
    method: &str,
    raw_path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    now: u64,
) -> Result<(), Refusal> {
    let Some(authz) = header(headers, "authorization") else {
        return Err(mismatch("missing Authorization header"));
    };
    let Some(rest) = authz.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(mismatch("Authorization is not AWS4-HMAC-SHA256"));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(mismatch(
            "Authorization lacks Credential, SignedHeaders or Signature",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(mismatch("malformed Credential"));
    };
    if *key_id != ACCESS_KEY_ID {
        return Err(Refusal {
            error_type: "UnrecognizedClientException",
            message: "The security token included in the request is invalid.".into(),
        });
    }
    let Some(amz_date) = header(headers, "x-amz-date") else {
        return Err(mismatch("missing x-amz-date"));
    };
    if !fresh(amz_date, now) {
        return Err(mismatch(
            "Signature expired: x-amz-date is more than 5 minutes away",
        ));
    }
    if !amz_date.starts_with(date) || *region != REGION || *service != SERVICE {
        return Err(mismatch(
            "credential scope does not match date, region or service",
        ));
    }
    match header(headers, "x-amz-security-token") {
        None => {
            return Err(mismatch(
                "missing x-amz-security-token for temporary credentials",
            ))
        }
        Some(token) if token != SESSION_TOKEN => {
            return Err(Refusal {
                error_type: "UnrecognizedClientException",
                message: "The security token included in the request is invalid.".into(),
            })
        }
        Some(_) => {}
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    for required in ["host", "x-amz-date", "x-amz-security-token"] {
        if !names.contains(&required) {
            return Err(mismatch(&format!("{required} is not signed")));
        }
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    if sorted != names {
        return Err(mismatch("SignedHeaders is not sorted"));
    }
    let payload = sha256_hex(body);
    if let Some(claimed) = header(headers, "x-amz-content-sha256") {
        if claimed != payload {
            return Err(mismatch("x-amz-content-sha256 does not match the body"));
        }
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<&str> = headers
            .get_all(*name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(mismatch(&format!("signed header {name} is missing")));
        }
        let value = values
            .iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(",");
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let mut query_pairs: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    query_pairs.sort_unstable();
    let canonical = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload}",
        encode_path(raw_path),
        query_pairs.join("&"),
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(SECRET_ACCESS_KEY, date, region, service);
    let expected = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    if expected != signature {
        return Err(mismatch("signature mismatch"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_twice_and_dates_checked() {
        assert_eq!(
            encode_path("/model/a.b-v1%3A0/converse"),
            "/model/a.b-v1%253A0/converse"
        );
        assert!(fresh("20150830T123600Z", 1_440_938_160));
        assert!(!fresh("20150830T123600Z", 1_440_938_160 + 301));
        assert!(!fresh("garbage", 0));
    }
}
