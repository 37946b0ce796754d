"""Envoy CPU per streamed answer, by stream length: `.venv/bin/python bench/stream_cost.py`.

One Envoy worker (`--concurrency 1`), the shipped chain on the mock provider (OpenAI backend),
one stream at a time of N `chat.completion.chunk` events of ~190 bytes each
(`[mock:words=N]`). Envoy's CPU time (utime + stime from /proc/<pid>/stat) is read before and
after each stream; each N runs `--runs` times per chain and the minimum is kept (the machine is
shared: the minimum is the run least disturbed). Two chains: the full one, and the same without
ratelimit, so the table shows what ratelimit's usage watcher adds per stream; a third column is
the chain without translate, where ratelimit reads the stream itself. A client that does
not ask for usage makes ratelimit force it (token limits are set), the costlier case; `--usage`
asks for it instead.

    .venv/bin/python bench/stream_cost.py                      # N = 1k, 5k, 20k, 50k; 2 runs
    .venv/bin/python bench/stream_cost.py --events 1000,50000 --runs 3

Not part of `make test`: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import variants  # noqa: E402
from variants import harness  # noqa: E402

KEY = "sk-bench-stream-0123456789"
AUTH = {"keys": [{"sha256": __import__("hashlib").sha256(KEY.encode()).hexdigest(),
                  "consumer": "bench"}]}
# Token limits make ratelimit watch every answer for its usage.
RATELIMIT = {"default": {"requests_per_minute": 1000000, "total_tokens_per_minute": 10**12}}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def stream(url: str, events: int, usage: bool) -> tuple[int, int]:
    """One streamed chat completion; returns (bytes received, data events received)."""
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": f"[mock:words={events}]"}]}
    if usage:
        body["stream_options"] = {"include_usage": True}
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    conn.request("POST", "/v1/chat/completions", json.dumps(body),
                 {"authorization": f"Bearer {KEY}", "content-type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"status {resp.status}: {resp.read()[:300]!r}")
    size = count = 0
    tail = b""
    while chunk := resp.read(1 << 16):
        size += len(chunk)
        count += (tail + chunk).count(b"data: ") - tail.count(b"data: ")
        tail = chunk[-8:]
    conn.close()
    return size, count


def measure(keep: set[str], ns: list[int], runs: int, usage: bool, mock) -> dict[int, tuple]:
    base = variants.base_config(port=harness.free_port(), admin_port=harness.free_port(),
                                upstream_port=mock.port, auth_config=AUTH,
                                ratelimit_config=RATELIMIT)
    config = variants.variant(base, keep)
    envoy = harness.Envoy(config, harness.provider_env(set()), concurrency=1, log_level="warn")
    try:
        stream(envoy.url, 10, usage)  # warm up: VMs, connections
        out = {}
        for n in ns:
            samples = []
            for _ in range(runs):
                before = cpu_seconds(envoy.proc.pid)
                size, count = stream(envoy.url, n, usage)
                samples.append(cpu_seconds(envoy.proc.pid) - before)
            out[n] = (min(samples), size, count)
        return out
    finally:
        envoy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", default="1000,5000,20000,50000")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--usage", action="store_true", help="the client asks for usage")
    args = parser.parse_args()
    ns = [int(n) for n in args.events.split(",")]
    mock = harness.MockProvider()
    try:
        full = measure(set(variants.FILTERS), ns, args.runs, args.usage, mock)
        without = measure(set(variants.FILTERS) - {"llmgw.ratelimit"}, ns, args.runs,
                          args.usage, mock)
        alone = measure(set(variants.FILTERS) - {"llmgw.translate"}, ns, args.runs,
                        args.usage, mock)
    finally:
        mock.stop()
    who = "asks for usage" if args.usage else "does not ask for usage (ratelimit forces it)"
    print(f"Envoy CPU per stream, one worker, min of {args.runs} runs; the client {who}")
    print(f"{'events':>8} {'bytes':>11} {'full chain':>12} {'no ratelimit':>13} {'ratio':>7}"
          f" {'no translate':>13}")
    for n in ns:
        cpu, size, _ = full[n]
        bare = without[n][0]
        ratio = cpu / bare if bare > 0 else float("inf")
        print(f"{n:>8} {size:>11} {cpu * 1000:>10.0f}ms {bare * 1000:>11.0f}ms {ratio:>6.2f}x"
              f" {alone[n][0] * 1000:>11.0f}ms")
    print("(CPU time is counted in clock ticks of 10 ms: rows under ~100 ms are coarse.)")


if __name__ == "__main__":
    main()
