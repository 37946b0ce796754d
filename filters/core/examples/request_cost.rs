//! What each filter's own logic costs per request, natively, without Envoy or V8:
//! `cargo run --release -p llmgw-core --features testing --example request_cost`.
//!
//! Runs the same request the benchmark sends (bench/run.py; `testing::scenario`) through each
//! filter on the fake host, many times, and prints microseconds per request and the host calls
//! of one warm request. The fake host's own bookkeeping is measured alone and subtracted.
//! Compare with BENCHMARKS.md's Envoy CPU per request: what is not here is the price of the
//! wasm VM, its host calls (bench/hostcalls.py prices each kind) and Envoy's work for them.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::Instant;

use llmgw_core::filter::FilterRoot;
use llmgw_core::gateway::Chain;
use llmgw_core::testing::scenario::{
    client_request, routed_request, run, Roots, ANTHROPIC_ANSWER, OPENAI_ANSWER,
};
use llmgw_core::testing::FakeHost;

const N: u32 = 20_000;

/// Microseconds per request of `once`, which gets a fresh host from `host` every time, and
/// the host calls of one warm request (metric ids cached, as after a worker's first request).
fn time(mut host: impl FnMut() -> FakeHost, mut once: impl FnMut(&mut FakeHost)) -> (f64, u32) {
    for _ in 0..N / 10 {
        once(&mut host());
    }
    let mut warm = host();
    once(&mut warm);
    let start = Instant::now();
    for _ in 0..N {
        let mut h = host();
        once(&mut h);
        black_box(&h);
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(N);
    (us, warm.host_calls.get())
}

fn main() -> Result<(), String> {
    let roots = Roots::new()?;
    // The fake host's own cost: building the request and the callbacks' bookkeeping.
    let nothing = |h: &mut FakeHost| run(&mut Chain::new(Vec::new()), h, OPENAI_ANSWER);
    let (base, _) = time(client_request, nothing);
    let (routed_base, _) = time(|| routed_request("openai", "gpt-4o-mini"), nothing);
    // ratelimit's counters live in shared data: keep them from one request to the next.
    let shared = RefCell::new(FakeHost::new().shared);
    let with_shared = |h: FakeHost| FakeHost {
        shared: shared.take(),
        ..h
    };
    let keep_shared = |h: &mut FakeHost| {
        shared.replace(std::mem::take(&mut h.shared));
    };
    let rows = [
        (
            "auth",
            time(client_request, |h| {
                run(&mut roots.auth.new_filter(), h, OPENAI_ANSWER)
            }),
            base,
        ),
        (
            "router",
            time(client_request, |h| {
                run(&mut roots.router.new_filter(), h, OPENAI_ANSWER)
            }),
            base,
        ),
        (
            "ratelimit",
            time(
                || with_shared(routed_request("openai", "gpt-4o-mini")),
                |h| {
                    run(&mut roots.ratelimit.new_filter(), h, OPENAI_ANSWER);
                    keep_shared(h);
                },
            ),
            routed_base,
        ),
        (
            "translate → OpenAI (passthrough)",
            time(
                || routed_request("openai", "gpt-4o-mini"),
                |h| run(&mut roots.translate.new_filter(), h, OPENAI_ANSWER),
            ),
            routed_base,
        ),
        (
            "translate → Anthropic",
            time(
                || routed_request("anthropic", "claude-haiku-4-5"),
                |h| run(&mut roots.translate.new_filter(), h, ANTHROPIC_ANSWER),
            ),
            routed_base,
        ),
        (
            "auth + router + ratelimit (gateway module)",
            time(
                || with_shared(client_request()),
                |h| {
                    run(&mut roots.gateway.new_filter(), h, OPENAI_ANSWER);
                    keep_shared(h);
                },
            ),
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
