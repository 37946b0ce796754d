"""What one proxy-wasm host call costs in this Envoy: `.venv/bin/python bench/hostcalls.py`.

Envoy runs one filter, bench/hostcall-probe, which makes one kind of host call N times in each
request's header callback, at a fixed 1000 requests/s (oha, as in bench/run.py). Envoy's CPU per
request, less that of the same probe making no call, divided by N, is the price of one call:
the crossing out of the VM, Envoy's work behind it and, for a call that returns data, the
allocation call back into the VM. Rows are interleaved over several runs; the median is kept.
`buffer_body` is priced per request (router's pause until the whole body is buffered, and one
read of it), not per call.

    .venv/bin/python bench/hostcalls.py                 # every call, 3 runs
    .venv/bin/python bench/hostcalls.py --calls get_headers,set_header --runs 2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402
import variants  # noqa: E402
from variants import harness  # noqa: E402

PROBE_DIR = bench.ROOT / "bench" / "hostcall-probe"
PROBE_WASM = bench.BENCH_DIR / "hostcall-probe.wasm"
# (call, what it stands for in llmgw's Host trait)
CALLS = [
    ("get_headers", "request_headers(): every request header (get_map)"),
    ("get_headers_raw", "the header map as one buffer, not split into String pairs"),
    ("get_header", "request_header(name): one header"),
    ("get_header_absent", "request_header(name) of a header the request lacks (no data back)"),
    ("set_header", "set_request_header"),
    ("remove_header", "remove_request_header (absent header)"),
    ("set_headers", "get_map + set_map: every header replaced in one call"),
    ("set_property", "set_property: filter state (the access log's fields)"),
    ("get_property", "property: filter state"),
    ("get_attribute", "property: an Envoy attribute (request.path)"),
    ("increment_metric", "increment_metric (id cached)"),
    ("define_metric", "define_metric (what the id cache saves)"),
    ("get_shared", "shared_data"),
    ("set_shared", "shared_data + set_shared_data with CAS"),
    ("time", "now_ms"),
]


def ensure_probe() -> str:
    target_dir = bench.BENCH_DIR / "probe-target"
    res = subprocess.run(
        ["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1",
         "--manifest-path", str(PROBE_DIR / "Cargo.toml"), "--target-dir", str(target_dir)],
    )
    if res.returncode != 0:
        sys.exit("hostcalls: building bench/hostcall-probe failed")
    bench.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target_dir / "wasm32-wasip1" / "release" / "llmgw_bench_hostcall_probe.wasm",
                    PROBE_WASM)
    return str(PROBE_WASM)


def probe_server(probe: str, upstream_port: int, plan: str) -> harness.Envoy:
    """Envoy with the probe alone, in auth's place, configured with `plan` (`call:N`)."""
    base = variants.base_config(
        port=harness.free_port(), admin_port=harness.free_port(), upstream_port=upstream_port,
        auth_config=bench.AUTH_CONFIG, ratelimit_config=bench.RATELIMIT_CONFIG,
    )
    config = variants.variant(base, {"llmgw.auth"}, noop_wasm=probe)
    for node in harness._walk(config):
        if node.get("name") == "llmgw.auth" and "typed_config" in node:
            node["typed_config"]["config"]["configuration"]["value"] = plan
    return harness.Envoy(config, harness.provider_env(set()), concurrency=2, log_level="warn")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", help="comma-separated calls (default: all)")
    ap.add_argument("--times", type=int, default=50, help="calls per request (default 50)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per figure")
    opts = ap.parse_args()
    known = dict(CALLS) | {"buffer_body": "pause until the body is whole, read it (per request)"}
    calls = opts.calls.split(",") if opts.calls else [c for c, _ in CALLS] + ["buffer_body"]
    if unknown := [c for c in calls if c not in known]:
        sys.exit(f"hostcalls: unknown calls {unknown}; known: {', '.join(known)}")
    probe = ensure_probe()
    oha_exe = bench.ensure_oha()
    mock, fast = bench.start_replay_upstreams("hostcalls")
    row = bench.Row("probe", "probe", "probe", bench.OPENAI_MODEL, False)
    plans = {"none": "none:0"} | {
        c: f"{c}:{1 if c == 'buffer_body' else opts.times}" for c in calls
    }
    cpu: dict[str, list[float]] = {k: [] for k in plans}
    try:
        for run in range(1, opts.runs + 1):
            for key, plan in plans.items():
                envoy = probe_server(probe, fast.port, plan)
                server = bench.Server("probe", "probe", "envoy")
                server.url, server.pid = envoy.url, envoy.proc.pid
                server.headers = {"authorization": f"Bearer {bench.BENCH_KEY}"}
                try:
                    if err := bench.check_row(server, row):
                        sys.exit(f"hostcalls: {plan}: {err}")
                    bench.oha(oha_exe, server, row, duration=2, concurrency=16, rate=1000)
                    res = bench.oha(oha_exe, server, row, duration=opts.duration,
                                    concurrency=16, rate=1000)
                    cpu[key].append(res["cpu_us"])
                    bench.log(f"run {run}: {plan:<22} {res['cpu_us']:7.1f} µs CPU/request")
                finally:
                    envoy.stop()
    finally:
        fast.stop()
        mock.stop()
    floor = statistics.median(cpu["none"])
    print(f"\nEnvoy CPU per request with the probe making no call: {floor:.0f} µs "
          f"(median of {opts.runs}); 1000 req/s, 2 workers\n")
    print("| host call | llmgw `Host` method | µs per call | ± (runs' spread) | runs (µs CPU/request) |")
    print("|---|---|---|---|---|")
    for call in calls:
        n = 1 if call == "buffer_body" else opts.times
        each = (statistics.median(cpu[call]) - floor) / n
        spread = (max(cpu[call]) - min(cpu[call])) / 2 / n
        runs = ", ".join(f"{x:.0f}" for x in cpu[call])
        print(f"| `{call}` | {known[call]} | {each:.2f} | {spread:.2f} | {runs} |")


if __name__ == "__main__":
    main()
