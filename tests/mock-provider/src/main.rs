//! llmgw-mock-provider: a strict, deterministic stand-in for the OpenAI Chat Completions and
//! Anthropic Messages APIs, used by the end-to-end tests, `make run` and the benchmarks.
//!
//! `llmgw-mock-provider --port N [--openai-key K] [--anthropic-key K] [--forbid SECRET]... [--verbose]`
//!
//! Prints `listening on 127.0.0.1:<port>` once it accepts connections.
//! See `tests/mock-provider/README.md` for the endpoints and the test controls.

// Handlers return `Result<Response, Response>` so `?` can short-circuit with an error reply;
// boxing those would only add noise in a test tool.
#![allow(clippy::result_large_err)]

mod account;
mod anthropic;
mod azure;
mod bedrock;
mod bedrock_tools;
mod body;
mod cache;
mod embeddings;
mod features;
mod gemini;
mod gemini_embed;
mod openai;
mod responses;
mod sigv4_check;
mod text;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::body::MockBody;

const LOG_CAPACITY: usize = 100;

pub struct State {
    /// The OpenAI keys accepted now: `--openai-key` at start, replaced by `PUT /_mock/keys/openai`
    /// (a rotation: the new key added, the old one revoked), as OpenAI's key list changes.
    openai_keys: std::sync::RwLock<Vec<String>>,
    pub anthropic_key: String,
    pub gemini_key: String,
    pub vertex_token: String,
    pub azure_key: String,
    pub forbid: Vec<String>,
    pub verbose: bool,
    counter: AtomicU64,
    log: Mutex<VecDeque<Value>>,
}

impl State {
    /// Whether OpenAI would take this key now.
    pub fn openai_key_ok(&self, key: &str) -> bool {
        let keys = self.openai_keys.read().unwrap_or_else(|e| e.into_inner());
        keys.iter().any(|k| k == key)
    }

    pub fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

struct Args {
    port: u16,
    openai_key: String,
    anthropic_key: String,
    gemini_key: String,
    vertex_token: String,
    azure_key: String,
    forbid: Vec<String>,
    verbose: bool,
}

const USAGE: &str = "usage: llmgw-mock-provider --port N [--openai-key K] [--anthropic-key K] [--gemini-key K] [--vertex-token T] [--azure-key K] [--forbid SECRET]... [--verbose]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        port: 0,
        openai_key: "sk-mock-openai".into(),
        anthropic_key: "sk-mock-anthropic".into(),
        gemini_key: "mock-gemini-key".into(),
        vertex_token: "mock-vertex-token".into(),
        azure_key: "mock-azure-key".into(),
        forbid: Vec::new(),
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |n: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{n} needs a value\n{USAGE}"))
        };
        match name.as_str() {
            "--port" => {
                a.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}\n{USAGE}"))?
            }
            "--openai-key" => a.openai_key = value("--openai-key")?,
            "--anthropic-key" => a.anthropic_key = value("--anthropic-key")?,
            "--gemini-key" => a.gemini_key = value("--gemini-key")?,
            "--vertex-token" => a.vertex_token = value("--vertex-token")?,
            "--azure-key" => a.azure_key = value("--azure-key")?,
            "--forbid" => {
                let s = value("--forbid")?;
                if !s.is_empty() {
                    a.forbid.push(s);
                }
            }
            "--verbose" | "-v" => a.verbose = true,
            "--help" | "-h" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "llmgw-mock-provider: cannot bind 127.0.0.1:{}: {e}",
                args.port
            );
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
    let state = Arc::new(State {
        openai_keys: std::sync::RwLock::new(vec![args.openai_key]),
        anthropic_key: args.anthropic_key,
        gemini_key: args.gemini_key,
        vertex_token: args.vertex_token,
        azure_key: args.azure_key,
        forbid: args.forbid,
        verbose: args.verbose,
        counter: AtomicU64::new(0),
        log: Mutex::new(VecDeque::with_capacity(LOG_CAPACITY)),
    });
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on 127.0.0.1:{port}");
        let _ = out.flush();
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                if state.verbose {
                    eprintln!("accept: {e}");
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), req));
            // auto: HTTP/1.1 and h2c (prior knowledge) on the same port.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!("cannot read request body: {e}")}),
            ))
        }
    };
    let path = parts.uri.path();
    if state.verbose {
        eprintln!("{} {} ({} bytes)", parts.method, parts.uri, bytes.len());
    }
    let resp = match (&parts.method, path) {
        (&Method::GET, "/_mock/health") => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/_mock/requests") => {
            let log = lock_log(&state);
            let arr: Vec<&Value> = log.iter().collect();
            json_response(StatusCode::OK, &json!(arr))
        }
        (&Method::PUT, "/_mock/keys/openai") => set_openai_keys(&state, &bytes),
        (&Method::DELETE, "/_mock/requests") => {
            let mut log = lock_log(&state);
            let n = log.len();
            log.clear();
            json_response(StatusCode::OK, &json!({"cleared": n}))
        }
        _ => {
            record(&state, &parts, &bytes);
            let api = if path == "/v1/messages" {
                "anthropic"
            } else {
                "openai"
            };
            let delay = text::headers_delay_ms(api, &bytes);
            if delay > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            }
            if let Some(garbage) = text::garbage(api, &bytes) {
                return Ok(garbage_response(garbage));
            }
            let mut resp = match (&parts.method, path) {
                (&Method::POST, "/v1/chat/completions") => {
                    openai::handle(&state, &parts.headers, &bytes)
                }
                (&Method::POST, "/v1/messages") => {
                    anthropic::handle(&state, &parts.headers, &bytes)
                }
                (&Method::POST, "/v1/responses") => {
                    responses::handle(&state, &parts.headers, &bytes, false)
                }
                (&Method::POST, "/openai/v1/responses") => {
                    responses::handle(&state, &parts.headers, &bytes, true)
                }
                (&Method::POST, "/v1/messages/count_tokens") => {
                    anthropic::count_tokens(&state, &parts.headers, &bytes)
                }
                (&Method::POST, "/local/v1/chat/completions") => {
                    openai::handle_local(&state, &parts.headers, &bytes)
                }
                (&Method::POST, p) if gemini::target(p).is_some() => match gemini::target(p) {
                    Some(t) => {
                        gemini::handle(&state, &parts.headers, parts.uri.query(), &t, &bytes)
                    }
                    None => gemini::error(404, "not found"),
                },
                (&Method::POST, p) if azure::route(p).is_some() => match azure::route(p) {
                    Some(route) => {
                        azure::handle(&state, &parts.headers, parts.uri.query(), route, &bytes)
                    }
                    None => json_response(StatusCode::NOT_FOUND, &json!({})),
                },
                (&Method::POST, "/v1/embeddings") => {
                    embeddings::handle(&state, &parts.headers, &bytes)
                }
                (&Method::POST, p) if p.starts_with("/model/") => {
                    bedrock::handle(&state, &parts, &bytes)
                }
                (_, "/v1/chat/completions") => openai::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid_request_error",
                    &format!("Invalid method for URL ({} {path})", parts.method),
                    None,
                    None,
                ),
                (_, "/v1/messages") => anthropic::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid_request_error",
                    &format!("Method Not Allowed: {}", parts.method),
                ),
                _ => json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"error": {
                        "message": format!("Unknown request URL: {} {path}", parts.method),
                        "type": "invalid_request_error", "param": null, "code": "unknown_url"
                    }}),
                ),
            };
            account::add(path, state.next_id(), &mut resp);
            resp
        }
    };
    Ok(resp)
}

/// A 200 that is not the API's answer (`[mock:garbage=...]`).
fn garbage_response(garbage: text::Garbage) -> Response<MockBody> {
    let (content_type, body): (&'static str, &'static [u8]) = match garbage {
        text::Garbage::Html => (
            "text/html",
            b"<html><head><title>502 Bad Gateway</title></head><body>upstream</body></html>",
        ),
        text::Garbage::Json => ("application/json", b"{\"id\": \"chatcmpl-cut\", \"choices\": ["),
        text::Garbage::Sse => (
            "text/event-stream",
            b"data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[]}\n\ndata: <%%binary\x01\x02>\n\ndata: [DONE]\n\n",
        ),
    };
    let mut r = Response::new(MockBody::full(body.to_vec()));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `{"keys": ["sk-…", …]}`: the OpenAI keys accepted from now on (at least one).
fn set_openai_keys(state: &State, body: &Bytes) -> Response<MockBody> {
    let keys: Option<Vec<String>> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| serde_json::from_value(v.get("keys")?.clone()).ok())
        .filter(|k: &Vec<String>| !k.is_empty() && k.iter().all(|k| !k.is_empty()));
    let Some(keys) = keys else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "expected {\"keys\": [non-empty strings, at least one]}"}),
        );
    };
    let n = keys.len();
    *state.openai_keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
    json_response(StatusCode::OK, &json!({"accepted": n}))
}

fn lock_log(state: &State) -> std::sync::MutexGuard<'_, VecDeque<Value>> {
    state.log.lock().unwrap_or_else(|e| e.into_inner())
}

fn record(state: &State, parts: &hyper::http::request::Parts, body: &Bytes) {
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(v));
            }
        }
    }
    let entry = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(body),
    });
    let mut log = lock_log(state);
    if log.len() >= LOG_CAPACITY {
        log.pop_front();
    }
    log.push_back(entry);
}

/// The gateway must never leak its internal headers or client secrets to a provider.
/// Returns the error message when it did.
pub fn leak_check(state: &State, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    for name in headers.keys() {
        if name.as_str().starts_with("x-llmgw-") {
            return Some(format!("gateway header leaked: {name}"));
        }
    }
    for secret in &state.forbid {
        let s = secret.as_bytes();
        let in_headers = headers.values().any(|v| contains(v.as_bytes(), s));
        if in_headers || contains(body, s) {
            return Some("forbidden secret reached the provider".to_string());
        }
    }
    None
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn json_response(status: StatusCode, v: &Value) -> Response<MockBody> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(MockBody::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn sse_response(body: MockBody) -> Response<MockBody> {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    r
}

pub fn set_header(r: &mut Response<MockBody>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

pub fn status_from(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Shows a key only as its first 3 and last 4 characters.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}
