"""`make bench`'s headline: the proxy on a core of its own, everything else on another.

On a 2-core machine a load tool that shares the proxy's cores takes CPU from every row alike and
squeezes every ratio toward 1 (DESIGN.md, "Benchmark notes": the same chain measured 50% of plain
Envoy with oha on shared cores, 26% pinned). Users run the proxy on cores of its own, so this is
the figure to read:

- Envoy runs with `--concurrency 1`, all its threads pinned to core 0 (`taskset -a -p -c 0`);
- this script, and so everything it starts (oha with one thread, nginx, the mock provider, the
  TTFT client), runs on core 1 (`os.sched_setaffinity`; children inherit it);
- per row: saturation throughput (oha `-c 16`), latency at a fixed 1000 req/s (p50, p99, with
  latency correction), Envoy's CPU time per request, time to first token of a stream (wasm and
  native chains); rows interleaved, `--runs` times; each ratio and added latency is taken
  within a run (this VM's speed drifts between runs by more than the differences measured) and
  reported as the median over the runs with their range;
- then Envoy's VmRSS after the same load with one worker and with two (plain, wasm, one-module
  and native chains), once: the difference is what each worker costs;
- and the size of each module in build/wasm/ against the 400 KB target.

    .venv/bin/python bench/pinned.py             # what `make bench` runs first
    .venv/bin/python bench/pinned.py --quick     # 1 run of 3 s: a smoke test

It prints a table and writes it into BENCHMARKS.md between the `<!-- pinned -->` markers (the
rest of the file is bench/run.py's), and the raw figures to build/bench/pinned.json.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

PROXY_CORE = 0
OTHER_CORE = 1
RATE = 1000


def pin_tree(pid: int, core: int) -> None:
    """Every thread of `pid` and of its children onto `core`."""
    todo = [pid]
    while todo:
        p = todo.pop()
        subprocess.run(["taskset", "-a", "-p", "-c", str(core), str(p)],
                       capture_output=True, check=True)
        children = Path(f"/proc/{p}/task/{p}/children")
        if children.exists():
            todo += [int(c) for c in children.read_text().split()]


def plan() -> tuple[list[bench.Server], list[bench.Row]]:
    A, R, L, T = {"llmgw.auth"}, {"llmgw.router"}, {"llmgw.ratelimit"}, {"llmgw.translate"}
    chain = A | R | L | T
    servers = [
        bench.Server("plain", "plain Envoy", "envoy", set()),
        bench.Server("full", "full chain (4 wasm filters)", "envoy", chain),
        bench.Server("full-one", "full chain, auth+router+ratelimit as one module", "envoy",
                     chain, combined=True),
        bench.Server("full-native", "full chain, native build (libllmgw.so)", "envoy", chain,
                     native=True),
        bench.Server("plain-s", "plain Envoy (streams)", "envoy", set(), upstream="mock"),
        bench.Server("full-s", "full chain (streams)", "envoy", chain, upstream="mock"),
        bench.Server("full-native-s", "full chain, native build (streams)", "envoy", chain,
                     upstream="mock", native=True),
    ]
    rows = [
        bench.Row("plain", "plain Envoy", "plain", bench.OPENAI_MODEL, False),
        bench.Row("full", "**full chain → OpenAI**", "full", bench.OPENAI_MODEL, False),
        bench.Row("full-anthropic", "full chain → Anthropic (translated)", "full",
                  bench.ANTHROPIC_MODEL, False),
        bench.Row("full-one", "full chain → OpenAI, one downstream module", "full-one",
                  bench.OPENAI_MODEL, False),
        bench.Row("full-native", "**full chain → OpenAI, native build**", "full-native",
                  bench.OPENAI_MODEL, False),
        bench.Row("plain-s", "plain Envoy, stream", "plain-s", bench.OPENAI_MODEL, True, False),
        bench.Row("full-s", "full chain → OpenAI, stream", "full-s", bench.OPENAI_MODEL, True,
                  False),
        bench.Row("full-native-s", "full chain → OpenAI, native build, stream", "full-native-s",
                  bench.OPENAI_MODEL, True, False),
    ]
    return servers, rows


def measure(opts: argparse.Namespace, oha: str, upstreams: dict) -> tuple[dict, list]:
    servers, rows = plan()
    results: dict[str, dict[str, list[float]]] = {r.key: {} for r in rows}
    for run in range(1, opts.runs + 1):
        for server in servers:
            bench.log(f"run {run}/{opts.runs}: {server.label}")
            server.concurrency = 1
            server.start(upstreams)
            try:
                pin_tree(server.pid, PROXY_CORE)
                for row in [r for r in rows if r.server == server.key]:
                    why = bench.check_row(server, row)
                    if why:
                        sys.exit(f"pinned: {row.label} does not answer: {why}")
                    res = results[row.key]
                    if row.stream:
                        t = bench.ttft(server, row, opts.ttft_n)
                        res.setdefault("ttft_us", []).append(t["ttft_p50_us"])
                        bench.log(f"  {row.label}: TTFT p50 {t['ttft_p50_us']:.0f} µs")
                        continue
                    bench.oha(oha, server, row, duration=opts.warmup, concurrency=16)
                    sat = bench.oha(oha, server, row, duration=opts.duration, concurrency=16)
                    res.setdefault("rps", []).append(sat["rps"])
                    res.setdefault("cpu_us", []).append(sat["cpu_us"])
                    msg = f"  {row.label}: {sat['rps']:.0f} req/s, {sat['cpu_us']:.0f} µs CPU/req"
                    # A row that cannot do 1.1 × the rate would only measure its own queue.
                    if sat["rps"] >= RATE * 1.1:
                        fixed = bench.oha(oha, server, row, duration=opts.duration,
                                          concurrency=16, rate=RATE)
                        res.setdefault("p50_us", []).append(fixed["p50_us"])
                        res.setdefault("p99_us", []).append(fixed["p99_us"])
                        msg += f"; @{RATE}/s p50 {fixed['p50_us']:.0f} µs p99 {fixed['p99_us']:.0f} µs"
                    else:
                        res.setdefault("p50_us", []).append(None)
                        res.setdefault("p99_us", []).append(None)
                    bench.log(msg)
            finally:
                server.stop()
    medians = {k: {m: statistics.median(known) for m, v in r.items()
                   if (known := [x for x in v if x is not None])}
               for k, r in results.items()}
    # Each run's figures too: a ratio or an added latency is read within one run (rows
    # interleaved), whose plain row saw the same machine state.
    for key, r in results.items():
        medians[key]["runs"] = r
    return medians, rows


def paired(figures: dict, key: str, base: str, metric: str, how) -> list[float]:
    """`how(row, plain)` for each run that measured `metric` on both rows."""
    a = figures[key]["runs"].get(metric, [])
    b = figures[base]["runs"].get(metric, [])
    return [how(x, y) for x, y in zip(a, b) if x is not None and y is not None]


def as_pct(value: float) -> str:
    return f"{value:.0%}"


def as_added_us(value: float) -> str:
    return f"{value:+,.0f} µs"


def spread(values: list[float], fmt) -> str:
    """The median of per-run values and their range, e.g. `80% (69–84%)`."""
    if not values:
        return "—"
    mid = fmt(statistics.median(values))
    if min(values) == max(values):
        return mid
    return f"{mid} ({fmt(min(values))} to {fmt(max(values))})"


MEMORY_SERVERS = ("plain", "full", "full-one", "full-native")


def memory(opts: argparse.Namespace, oha: str, upstreams: dict) -> dict[str, dict[int, int]]:
    """Envoy's VmRSS (KiB) with 1 and with 2 workers, after the same load (the row's request
    at saturation for the warm-up time, then 1000 req/s for the run time), per server: what a
    chain adds with one worker includes the main thread's copy of each wasm filter (one VM per
    worker plus one on the main thread), and the difference between 2 workers and 1 is what
    each further worker adds."""
    servers, rows = plan()
    rss: dict[str, dict[int, int]] = {}
    for key in MEMORY_SERVERS:
        server = next(s for s in servers if s.key == key)
        row = next(r for r in rows if r.server == key)
        for workers in (1, 2):
            bench.log(f"memory: {server.label}, {workers} worker(s)")
            server.concurrency = workers
            server.start(upstreams)
            try:
                pin_tree(server.pid, PROXY_CORE)
                bench.oha(oha, server, row, duration=opts.warmup, concurrency=16)
                bench.oha(oha, server, row, duration=opts.duration, concurrency=16, rate=RATE)
                rss.setdefault(key, {})[workers] = server.rss_kib()
            finally:
                server.stop()
    return rss


def mb(kib: float) -> float:
    """KiB as MB (10^6 bytes, the unit of issue 16's memory target)."""
    return kib * 1024 / 1e6


def per_worker(kib: dict[int, int]) -> int:
    """What a second worker added to Envoy's RSS."""
    return kib[2] - kib[1]


def table(figures: dict, rows: list, rss: dict, opts: argparse.Namespace) -> str:
    plain = figures["plain"]
    pct, us, ratio, diff = as_pct, as_added_us, operator.truediv, operator.sub
    out = [
        f"## Headline: the proxy on a core of its own (bench/pinned.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Envoy `--concurrency 1` pinned to core {PROXY_CORE}; oha (one thread, 16 connections), "
        f"nginx (fixed answers) and the mock provider (streams) on core {OTHER_CORE}. "
        f"{opts.runs} run(s) × {opts.duration:g} s after {opts.warmup:g} s, rows interleaved. "
        "req/s, CPU and latency are medians over the runs; a ratio or an added latency is taken "
        "within each run (against that run's plain Envoy) and given as the median of the runs "
        f"with their range. Latency at a fixed {RATE} req/s with oha's latency correction; TTFT "
        f"over {opts.ttft_n} sequential streams. Load average at the end: "
        f"{os.getloadavg()[0]:.2f}.",
        "",
        "| row | req/s | ÷ plain | Envoy CPU µs/req (added) | p50 / p99 @1000/s | added p50 | added p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in [r for r in rows if not r.stream]:
        f = figures[row.key]
        if "p50_us" in f:
            latency = (f"| {f['p50_us']:,.0f} / {f['p99_us']:,.0f} µs "
                       f"| {spread(paired(figures, row.key, 'plain', 'p50_us', diff), us)} "
                       f"| {spread(paired(figures, row.key, 'plain', 'p99_us', diff), us)} |")
        else:
            latency = f"| saturated below {RATE * 1.1:,.0f} req/s | — | — |"
        out.append(
            f"| {row.label} | {f['rps']:,.0f} "
            f"| {spread(paired(figures, row.key, 'plain', 'rps', ratio), pct)} "
            f"| {f['cpu_us']:,.0f} (+{f['cpu_us'] - plain['cpu_us']:,.0f}) {latency}")
    out += ["", "| stream row | TTFT p50 | added |", "|---|---|---|"]
    for row in [r for r in rows if r.stream]:
        f = figures[row.key]
        out.append(f"| {row.label} | {f['ttft_us']:,.0f} µs "
                   f"| {spread(paired(figures, row.key, 'plain-s', 'ttft_us', diff), us)} |")
    servers = {s.key: s for s in plan()[0]}
    out += ["", "Envoy's VmRSS after the same load (" + f"{opts.warmup:g} s at saturation, "
            f"{opts.duration:g} s at {RATE} req/s) with one worker and with two; what each "
            "further worker adds is the difference:", "",
            "| Envoy | RSS, 1 worker | added vs plain | RSS, 2 workers | each further worker adds "
            "| added per worker vs plain |", "|---|---|---|---|---|---|"]
    plain_rss = rss["plain"]
    for key, kib in rss.items():
        out.append(
            f"| {servers[key].label} | {mb(kib[1]):,.1f} MB | {mb(kib[1] - plain_rss[1]):+,.1f} MB "
            f"| {mb(kib[2]):,.1f} MB | {mb(kib[2] - kib[1]):+,.1f} MB "
            f"| {mb(per_worker(kib) - per_worker(plain_rss)):+,.1f} MB |")

    def target(key: str, base: str, metric: str, how, fmt, ok) -> str:
        values = paired(figures, key, base, metric, how)
        if not values:
            return "**not measured**"
        met = ok(statistics.median(values))
        every = all(ok(v) for v in values)
        verdict = ("met in every run" if every else "met by the median, not in every run"
                   ) if met else "not met"
        return f"**{spread(values, fmt)}, {verdict}**"

    out += [
        "",
        "Issue 16's wasm targets: full chain ≥ 50% of plain Envoy's req/s: "
        + target("full", "plain", "rps", ratio, pct, lambda v: v >= 0.5)
        + "; added time to first token ≤ 500 µs: "
        + target("full-s", "plain-s", "ttft_us", diff, us, lambda v: v <= 500) + ".",
        "",
        "Issue 16's native targets: native full chain ≥ 80% of plain Envoy's req/s: "
        + target("full-native", "plain", "rps", ratio, pct, lambda v: v >= 0.8)
        + f"; added p50 at {RATE} req/s ≤ 50 µs: "
        + target("full-native", "plain", "p50_us", diff, us, lambda v: v <= 50)
        + "; added time to first token ≤ 200 µs: "
        + target("full-native-s", "plain-s", "ttft_us", diff, us, lambda v: v <= 200) + ".",
    ]
    added = {k: mb(per_worker(rss[k]) - per_worker(rss["plain"])) for k in MEMORY_SERVERS[1:]}
    once = {k: mb(rss[k][1] - rss["plain"][1]) - added[k] for k in MEMORY_SERVERS[1:]}
    out += [
        "",
        f"Envoy RSS added by the filters ≤ 20 MB per worker: each further worker adds, wasm chain "
        f"{added['full']:+,.1f} MB, one downstream module {added['full-one']:+,.1f} MB, native "
        f"{added['full-native']:+,.1f} MB: **wasm {'met' if added['full'] <= 20 else 'not met'}, "
        f"native {'met' if added['full-native'] <= 20 else 'not met'}**; on top of a one-off "
        f"{once['full']:+,.1f} MB for the wasm chain ({once['full-one']:+,.1f} MB as one "
        f"downstream module: V8 and the modules, whatever the workers) and "
        f"{once['full-native']:+,.1f} MB for the native one.",
    ]
    limit = bench.TARGETS["wasm_kib"] * 1024
    sizes = bench.wasm_sizes()
    over = [f"{name}.wasm ({size:,} bytes)" for name, size in sizes if size > limit]
    out += [
        "",
        f"Every .wasm ≤ 400 KB ({limit:,} bytes), as `make build` made them: "
        + ", ".join(f"{name} {size:,}" for name, size in sizes)
        + (f": **not met by {', '.join(over)}**." if over else ": **met**."),
    ]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    ap.add_argument("--runs", type=int)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--out", default=str(bench.ROOT / "BENCHMARKS.md"))
    opts = ap.parse_args()
    opts.runs = opts.runs or (1 if opts.quick else 3)
    opts.duration = opts.duration or (3 if opts.quick else 10)
    opts.warmup = 1 if opts.quick else 2
    opts.ttft_n = 30 if opts.quick else 100
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("pinned: needs at least two cores")
    os.sched_setaffinity(0, {OTHER_CORE})
    oha = bench.ensure_oha()
    nginx, why = bench.ensure_nginx()
    if not nginx:
        sys.exit(f"pinned: nginx is needed as the upstream ({why})")
    upstreams = {"mock": bench.start_mock()}
    try:
        upstreams["fast"] = bench.start_nginx(nginx, bench.capture_answers(upstreams["mock"]))
        figures, rows = measure(opts, oha, upstreams)
        rss = memory(opts, oha, upstreams)
    finally:
        for u in upstreams.values():
            u.stop()
    text = table(figures, rows, rss, opts)
    print(text)
    out = Path(opts.out)
    bench.write_report(out, out.read_text() if out.exists() else "# llmgw benchmarks\n", text)
    bench.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    (bench.BENCH_DIR / "pinned.json").write_text(
        json.dumps({**figures, "rss_kib": rss}, indent=1))
    bench.log(f"wrote the pinned block of {opts.out} and build/bench/pinned.json")


if __name__ == "__main__":
    main()
