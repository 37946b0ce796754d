"""Instructions per phase of a streamed answer, counted by valgrind:
`.venv/bin/python bench/stream_instructions.py`.

bench/instructions.py counts whole non-streamed requests. Time to first token is about one
streamed request, phase by phase: what Envoy and the filters do before the request leaves for
the provider, when the response headers and the first event arrive, and on every later event.
So here Envoy runs under callgrind (one worker, as in instructions.py) and the mock provider is
told to pause between phases (`[mock:headers_delay_ms=H]`: before its response headers;
`[mock:delay_ms=D]`: between events). Envoy is idle during those pauses, and the client makes
callgrind dump (and zero) its counters at each: after the request left, after the first event
reached the client, after each later event, after the end. Each window then holds one phase:

- request: the request callbacks of every filter, the upstream connection, the request sent;
- headers + 1st event: the response headers and the first `data:` event, which the mock sends
  together (one read in Envoy): the part of time to first token after the provider answered;
- event i: one more `chat.completion.chunk` (or `[DONE]`) event;
- end: the stream's end, the access log, the filters' `on_log` / stream-done work.

The mock answers `[mock:words=3]`: a role event, 3 content events, a finish event, `[DONE]`
(6 events; a usage event more when ratelimit forces it, `--token-limits`). An idle window could
also hold one of Envoy's timers: the stats flush (every 5 s, ~300 k instructions with the wasm
chain's metrics, and in step with streams this long) is turned off (`stats_flush_on_admin`),
and of `--requests` streams the one with the smallest total is shown: the run no other timer
fell into. (Not each window's minimum: on a busy machine a phase can outlast its pause and
split across two windows, and the minimum of each would then count neither half whole.)
Plain Envoy's row is the floor the others are compared with; the per-event windows still
move by ~±5 k between runs (Envoy's idle work), the native hooks' counts do not. The native rows also split each
window by hook: callgrind's inclusive cost of each `envoy_dynamic_module_on_http_filter_*`
function of libllmgw.so (the native filters' code, the host calls into Envoy included).

    .venv/bin/python bench/stream_instructions.py                      # plain, wasm, native
    .venv/bin/python bench/stream_instructions.py --rows full,full-native --requests 5
    .venv/bin/python bench/stream_instructions.py --token-limits       # ratelimit watches
    .venv/bin/python bench/stream_instructions.py --baseline /tmp/before  # before/after

`--baseline DIR` measures each llmgw row again with DIR/wasm/*.wasm and DIR/native/libllmgw.so
(a previous build): a before/after in one run. `--baseline-config FILE` does the same with the
modules as built and the gateway.yaml at FILE (e.g. main's, for a config change).

Rows: plain, full (4 wasm filters), full-no-ratelimit, full-no-translate, and the same with
`-native` (libllmgw.so); a filter's part is the chain's count minus the chain without it.
Not part of `make test`: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import re
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import instructions  # noqa: E402
import run as bench  # noqa: E402
import variants  # noqa: E402
from variants import harness  # noqa: E402

A, R, L, T = {"llmgw.auth"}, {"llmgw.router"}, {"llmgw.ratelimit"}, {"llmgw.translate"}
CHAINS = {
    "plain": set(),
    "full": A | R | L | T,
    "full-no-ratelimit": A | R | T,
    "full-no-translate": A | R | L,
}
DEFAULT_ROWS = "plain,full,full-no-ratelimit,full-no-translate,full-native," \
    "full-no-ratelimit-native,full-no-translate-native"
HEADERS_DELAY_MS = 1500  # under valgrind Envoy is ~50x slower: the pauses must outlast a phase
EVENT_DELAY_MS = 1500
WORDS = 3
# A token limit makes ratelimit watch every answer: it forces the stream's usage and
# translate hides the usage event again.
TOKEN_LIMITS = {"default": {"requests_per_minute": 1_000_000_000,
                            "total_tokens_per_minute": 10**12}}
NATIVE_PATH = "ENVOY_DYNAMIC_MODULES_SEARCH_PATH"
KEEP: Path | None = None  # --keep DIR: the dumps stay there, for callgrind_annotate
HOOK = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+\*?\s*\S*:(envoy_dynamic_module_on_http_filter_\w+)")


def no_stats_flush() -> None:
    """Envoy flushes its stats only when the admin asks: no flush timer in the windows."""
    start = harness.Envoy.__init__

    def init(self, config, env, *args, **kwargs):
        start(self, {**config, "stats_flush_on_admin": True}, env, *args, **kwargs)

    harness.Envoy.__init__ = init


def dump(pid: int) -> Path:
    """Dump (and zero) the counters of Envoy `pid`; returns the file callgrind wrote."""
    before = set(glob.glob(f"{instructions.OUT_DIR}/cg.{pid}.out.*"))
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    for _ in range(100):
        new = set(glob.glob(f"{instructions.OUT_DIR}/cg.{pid}.out.*")) - before
        for path in new:
            text = Path(path).read_text(errors="replace")
            if "\ntotals:" in text or "\nsummary:" in text:
                return Path(path)
        time.sleep(0.1)
    raise RuntimeError(f"no callgrind dump from Envoy (pid {pid})")


def window(path: Path, hooks: bool) -> dict[str, int]:
    """The window's total instructions, and (native) each hook's inclusive count."""
    text = path.read_text(errors="replace")
    total = next(int(line.split()[1]) for line in text.splitlines()
                 if line.startswith(("summary:", "totals:")))
    out = {"total": total}
    if hooks:
        annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                                    str(path)], capture_output=True, text=True, check=True)
        for line in annotated.stdout.splitlines():
            if m := HOOK.match(line):
                name = m.group(2).removeprefix("envoy_dynamic_module_on_http_filter_")
                out[name] = out.get(name, 0) + int(m.group(1).replace(",", ""))
    if KEEP:
        path.rename(KEEP / f"{len(list(KEEP.iterdir())):03d}.{path.name}")
    else:
        path.unlink()
    return out


def one_stream(server: bench.Server, payload: bytes, hooks: bool) -> list[tuple[str, dict]]:
    """One streamed request, dumped phase by phase; returns (phase, counts) in order."""
    pid = server.envoy.proc.pid
    dump(pid).unlink()  # whatever came before this request
    conn = http.client.HTTPConnection("127.0.0.1", server.envoy.port, timeout=120)
    headers = {**server.headers, "content-type": "application/json",
               "accept": "text/event-stream"}
    conn.request("POST", server.path, body=payload, headers=headers)
    time.sleep(HEADERS_DELAY_MS / 2000)
    phases = [("request", window(dump(pid), hooks))]
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    events = 0
    while line := resp.readline():
        if not line.startswith(b"data:"):
            continue
        events += 1
        name = "headers + 1st event" if events == 1 else f"event {events}"
        phases.append((name, window(dump(pid), hooks)))
    resp.read()
    conn.close()
    time.sleep(0.5)
    phases.append(("end", window(dump(pid), hooks)))
    return phases


def measure(key: str, upstreams: dict, requests: int, ratelimit: dict,
            baseline: Path | None, config: Path | None = None) -> list[tuple[str, dict]]:
    native = key.endswith("-native")
    chain = CHAINS[key.removesuffix("-native")]
    server = bench.Server(key, key, "envoy", chain, upstream="mock", native=native)
    bench.RATELIMIT_CONFIG = ratelimit
    search_path = os.environ.get(NATIVE_PATH)
    if baseline:
        server.wasm_dir = str(baseline / "wasm")
        os.environ[NATIVE_PATH] = str(baseline / "native")
    try:
        with variants.gateway_yaml(config):
            server.start(upstreams)
    finally:
        if search_path is None:
            os.environ.pop(NATIVE_PATH, None)
        else:
            os.environ[NATIVE_PATH] = search_path
    try:
        prompt = f"{bench.PROMPT} [mock:words={WORDS}]"
        warm = bench.body(bench.OPENAI_MODEL, True, prompt)
        send = instructions.sender(server.envoy.port, server.path, server.headers, warm)
        send(instructions.WARM_UP)
        subprocess.run(["callgrind_control", "--instr=on", str(server.envoy.proc.pid)],
                       check=True, capture_output=True)
        timed = bench.body(bench.OPENAI_MODEL, True,
                           f"{prompt}[mock:headers_delay_ms={HEADERS_DELAY_MS}]"
                           f"[mock:delay_ms={EVENT_DELAY_MS}]")
        runs = [one_stream(server, timed, native) for _ in range(requests)]
    finally:
        server.stop()
    return min(runs, key=lambda run: sum(counts["total"] for _, counts in run))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=DEFAULT_ROWS)
    ap.add_argument("--requests", type=int, default=5, help="streams per row (the least disturbed is shown)")
    ap.add_argument("--baseline", help="also measure each llmgw row with the build in this dir")
    ap.add_argument("--baseline-config",
                    help="also measure each llmgw row with this gateway.yaml (the modules as built)")
    ap.add_argument("--token-limits", action="store_true",
                    help="a token limit: ratelimit forces and charges the stream's usage")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--keep", help="keep each window's callgrind dump in this directory")
    opts = ap.parse_args()
    keys = opts.rows.split(",")
    runs = [(k, None, None) for k in keys]
    if opts.baseline:
        runs += [(k, Path(opts.baseline).resolve(), None) for k in keys if k != "plain"]
    if opts.baseline_config:
        runs += [(k, None, Path(opts.baseline_config).resolve()) for k in keys if k != "plain"]
    if opts.keep:
        global KEEP
        KEEP = Path(opts.keep)
        KEEP.mkdir(parents=True, exist_ok=True)
    if unknown := [k for k in keys if k.removesuffix("-native") not in CHAINS]:
        sys.exit(f"stream_instructions: unknown rows {unknown}")
    instructions.envoy_under_callgrind(instructions.ensure_valgrind())
    no_stats_flush()
    ratelimit = TOKEN_LIMITS if opts.token_limits else bench.RATELIMIT_CONFIG
    mock = bench.start_mock()
    results = {}
    try:
        for key, baseline, config in runs:
            label = key + (" (baseline)" if baseline else "") + (
                " (baseline config)" if config else "")
            results[label] = measure(key, {"mock": mock}, opts.requests, ratelimit, baseline,
                                     config)
            bench.log(f"{label}: " + ", ".join(f"{n} {c['total'] / 1000:,.1f} k"
                                                for n, c in results[label]))
    finally:
        mock.stop()
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=1))
    phases = [n for n, _ in results[keys[0]]]
    plain = dict(results.get("plain", []))
    print("\n| row | " + " | ".join(phases) + " |")
    print("|---|" + "---|" * len(phases))
    for key in results:
        counts = dict(results[key])
        cells = []
        for n in phases:
            value = counts.get(n, {}).get("total")
            if value is None:
                cells.append("—")
                continue
            added = (f" ({(value - plain[n]['total']) / 1000:+,.1f})"
                     if n in plain and key != "plain" else "")
            cells.append(f"{value / 1000:,.1f}{added}")
        print(f"| {key} | " + " | ".join(cells) + " |")
    hooks = [(k, dict(v)) for k, v in results.items() if "-native" in k]
    if hooks:
        print("\nNative hooks, inclusive k instructions per phase:")
        for key, counts in hooks:
            for n in phases:
                split = {h: v for h, v in counts.get(n, {}).items() if h != "total"}
                if split:
                    print(f"  {key} / {n}: " + ", ".join(f"{h} {v / 1000:,.1f}"
                                                         for h, v in split.items()))


if __name__ == "__main__":
    main()
