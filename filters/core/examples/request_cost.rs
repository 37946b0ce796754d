//! What each filter's own logic costs per request, natively, without Envoy or V8:
//! `cargo run --release -p llmgw-core --features testing --example request_cost`.
//!
//! Runs the same request the benchmark sends (bench/run.py) through each filter on the fake
//! host, many times, and prints microseconds per request. The fake host's own bookkeeping is
//! measured alone and subtracted. Compare with BENCHMARKS.md's Envoy CPU per request: what is
//! not here is the price of the wasm VM, its host calls and Envoy's work for them.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::Instant;

use llmgw_core::auth::{hash_key, AuthRoot};
use llmgw_core::filter::{FilterRoot, HttpFilter};
use llmgw_core::gateway::GatewayRoot;
use llmgw_core::headers;
use llmgw_core::ratelimit::RateLimitRoot;
use llmgw_core::router::RouterRoot;
use llmgw_core::testing::FakeHost;
use llmgw_core::translate::TranslateRoot;

const KEY: &str = "sk-llmgw-bench-0123456789abcdef";
const BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to the benchmark, in a few words please."}]}"#;
const OPENAI_ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello, benchmark!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":4,"total_tokens":18}}"#;
const ANTHROPIC_ANSWER: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"Hello, benchmark!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":14,"output_tokens":4}}"#;
const N: u32 = 20_000;

fn no_env(_: &str) -> Option<String> {
    None
}

fn env(name: &str) -> Option<String> {
    Some(format!("bench-{name}"))
}

fn auth_config() -> String {
    format!(
        r#"{{"keys":[{{"sha256":"{}","consumer":"bench","team":"bench"}}]}}"#,
        hash_key(KEY)
    )
}
const ROUTER: &str = r#"{"models":[{"name":"gpt-4o-mini","targets":[{"provider":"openai","model":"gpt-4o-mini","price":{"input":0.15,"output":0.6}}]},{"name":"claude-haiku-4-5","targets":[{"provider":"anthropic","model":"claude-haiku-4-5"}]}]}"#;
const RATELIMIT: &str = r#"{"default":{"requests_per_minute":1000000000}}"#;
const TRANSLATE: &str = r#"{"providers":[{"name":"openai","schema":"openai","key_env":"OPENAI_API_KEY"},{"name":"anthropic","schema":"anthropic","key_env":"ANTHROPIC_API_KEY"}]}"#;

/// The request as the client sends it.
fn client_request() -> FakeHost {
    FakeHost::new()
        .with_now_ms(1_700_000_000_000)
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/chat/completions")
        .with_request_header(":authority", "127.0.0.1:10000")
        .with_request_header("content-type", "application/json")
        .with_request_header("content-length", &BODY.len().to_string())
        .with_request_header("authorization", &format!("Bearer {KEY}"))
        .with_request_header("user-agent", "oha/1.16.0")
        .with_request_body(BODY)
}

/// The request as router hands it on (what ratelimit and translate see).
fn routed_request(provider: &str, model: &str) -> FakeHost {
    client_request()
        .with_request_header(headers::CONSUMER, "bench")
        .with_request_header(headers::TEAM, "bench")
        .with_request_header(headers::REQUESTED_MODEL, "gpt-4o-mini")
        .with_request_header(headers::PROVIDER, provider)
        .with_request_header(headers::UPSTREAM_MODEL, model)
        .with_request_header(headers::CLUSTER, provider)
        .with_request_header(headers::STREAM, "false")
        .with_request_header(headers::INPUT_TOKENS_ESTIMATE, "30")
}

/// One request through `filter`: request headers, body, response headers and body, done.
fn run(filter: &mut dyn HttpFilter, host: &mut FakeHost, answer: &str) {
    filter.on_request_headers(host, false);
    let size = host.request_body.len();
    filter.on_request_body(host, size, true);
    host.response_headers = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
        ("content-length".into(), answer.len().to_string()),
    ];
    host.response_body = answer.as_bytes().to_vec();
    filter.on_response_headers(host, false);
    filter.on_response_body(host, answer.len(), true);
    filter.on_stream_done(host);
}

/// Microseconds per request of `once`, which gets a fresh host from `host` every time, and
/// the host calls one request made.
fn time(mut host: impl FnMut() -> FakeHost, mut once: impl FnMut(&mut FakeHost)) -> (f64, u32) {
    let mut first = host();
    once(&mut first);
    for _ in 0..N / 10 {
        once(&mut host());
    }
    let start = Instant::now();
    for _ in 0..N {
        let mut h = host();
        once(&mut h);
        black_box(&h);
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(N);
    (us, first.host_calls.get())
}

fn refused(filter: &str) -> impl Fn(llmgw_core::config::ConfigError) -> String + '_ {
    move |err| format!("{filter} config refused: {}: {}", err.path, err.reason)
}

fn main() -> Result<(), String> {
    let auth = AuthRoot::configure(auth_config().as_bytes(), &no_env).map_err(refused("auth"))?;
    let router = RouterRoot::configure(ROUTER.as_bytes(), &no_env).map_err(refused("router"))?;
    let ratelimit =
        RateLimitRoot::configure(RATELIMIT.as_bytes(), &no_env).map_err(refused("ratelimit"))?;
    let translate =
        TranslateRoot::configure(TRANSLATE.as_bytes(), &env).map_err(refused("translate"))?;
    let gateway_json = format!(
        r#"{{"auth":{},"router":{ROUTER},"ratelimit":{RATELIMIT}}}"#,
        auth_config()
    );
    let gateway =
        GatewayRoot::configure(gateway_json.as_bytes(), &no_env).map_err(refused("gateway"))?;

    // The fake host's own cost: building the request and the callbacks' bookkeeping.
    let (base, _) = time(client_request, |h| {
        run(
            &mut llmgw_core::gateway::Chain::new(Vec::new()),
            h,
            OPENAI_ANSWER,
        )
    });
    let (routed_base, _) = time(
        || routed_request("openai", "gpt-4o-mini"),
        |h| {
            run(
                &mut llmgw_core::gateway::Chain::new(Vec::new()),
                h,
                OPENAI_ANSWER,
            )
        },
    );
    // ratelimit's counters live in shared data: keep them from one request to the next.
    let shared = RefCell::new(FakeHost::new().shared);
    let rows = [
        (
            "auth",
            time(client_request, |h| {
                run(&mut auth.new_filter(), h, OPENAI_ANSWER)
            }),
            base,
        ),
        (
            "router",
            time(client_request, |h| {
                run(&mut router.new_filter(), h, OPENAI_ANSWER)
            }),
            base,
        ),
        (
            "ratelimit",
            time(
                || FakeHost {
                    shared: shared.take(),
                    ..routed_request("openai", "gpt-4o-mini")
                },
                |h| {
                    run(&mut ratelimit.new_filter(), h, OPENAI_ANSWER);
                    shared.replace(std::mem::take(&mut h.shared));
                },
            ),
            routed_base,
        ),
        (
            "translate → OpenAI (passthrough)",
            time(
                || routed_request("openai", "gpt-4o-mini"),
                |h| run(&mut translate.new_filter(), h, OPENAI_ANSWER),
            ),
            routed_base,
        ),
        (
            "translate → Anthropic",
            time(
                || routed_request("anthropic", "claude-haiku-4-5"),
                |h| run(&mut translate.new_filter(), h, ANTHROPIC_ANSWER),
            ),
            routed_base,
        ),
        (
            "auth + router + ratelimit (gateway module)",
            time(client_request, |h| {
                run(&mut gateway.new_filter(), h, OPENAI_ANSWER)
            }),
            base,
        ),
    ];
    println!("native µs per request ({N} requests each; the fake host's own cost subtracted)");
    println!("  {:<45} {:>7} {:>11}", "filter", "µs", "host calls");
    for (name, (us, calls), fake_host_cost) in rows {
        println!("  {name:<45} {:>7.2} {calls:>11}", us - fake_host_cost);
    }
    Ok(())
}
