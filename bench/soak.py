"""Soak test (not part of `make test`): the full chain under a steady mixed load for a long time.

`make soak` (SOAK_SECONDS, default 1200; SOAK_RATE, default 500 req/s) starts the mock provider
and the gateway as `make run` does (gateway.yaml, every filter, one Envoy with two workers),
then sends requests at a fixed rate over keep-alive HTTP/1.1 connections: half of them streamed,
spread over OpenAI, Anthropic, Gemini and a weighted split, so translation, routing, rate-limit
reserve/settle and the usage watcher all run, and over the three client APIs in turn (Chat
Completions, Anthropic Messages, OpenAI Responses), so both client adapters and the passthroughs
run too. Every answer is checked in its API's terms: status 200, then a Chat body with `choices`
or a stream ending in `data: [DONE]`; a Messages `message` or a stream with `message_stop`; a
`response` that is `completed` or a stream with `response.completed`. Envoy's RSS (the process tree) is
sampled every 10 s; after a warm-up it must stay within 5% (max vs min).

It prints one line per 30 s and a summary: requests sent and failed (by reason), the achieved
rate, latency percentiles and the RSS samples. The exit code is 1 when any request failed or RSS
drifted more than 5%.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import h11

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
import harness  # noqa: E402
from run import proc_tree_rss_kib  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "1200"))
RATE = float(os.environ.get("SOAK_RATE", "500"))
WARM_UP = float(os.environ.get("SOAK_WARM_UP", "60"))
CONNECTIONS = int(os.environ.get("SOAK_CONNECTIONS", "128"))
RSS_TOLERANCE = 0.05

MODELS = ["gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash", "mixed"]
# High limits: the soak checks that the limiter's work (reserve, settle, counters) holds up
# over time, not that it refuses.
RATELIMIT = {"default": {"requests_per_minute": 1_000_000, "total_tokens_per_minute": 1_000_000_000}}


# Which client API request n speaks: each one in turn, streamed and not (n % 2).
DIALECTS = ["/v1/chat/completions", "/v1/messages", "/v1/responses"]


def path_of(n: int) -> str:
    return DIALECTS[(n // 2) % len(DIALECTS)]


def request_body(n: int) -> bytes:
    model, prompt = MODELS[n % len(MODELS)], f"Say hello, request {n}."
    path = path_of(n)
    if path == "/v1/responses":
        body = {"model": model, "input": prompt, "max_output_tokens": 64}
    else:
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 64}
    if n % 2:
        body["stream"] = True
    return json.dumps(body).encode()


class Connection:
    """One keep-alive HTTP/1.1 connection to the gateway, one request at a time."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None
        self.conn = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.conn = h11.Connection(h11.CLIENT)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.conn.our_state is not h11.IDLE:
            await self.close()
            await self.open()
        headers = [
            ("host", f"127.0.0.1:{self.port}"),
            ("authorization", f"Bearer {harness.DEMO_KEY}"),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
        ]
        self.writer.write(self.conn.send(h11.Request(method="POST", target=path, headers=headers)))
        self.writer.write(self.conn.send(h11.Data(data=body)))
        self.writer.write(self.conn.send(h11.EndOfMessage()))
        await self.writer.drain()
        status, chunks = 0, []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(65536)
                self.conn.receive_data(data)
                if not data and self.conn.their_state is not h11.DONE:
                    raise ConnectionError("connection closed mid-answer")
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return status, b"".join(chunks)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.writer = None


def check(n: int, status: int, body: bytes) -> str | None:
    """None when the answer is right in its client API's terms, else why not."""
    path = path_of(n)
    if status != 200:
        return f"{path}: status {status}"
    if n % 2:
        end = {"/v1/chat/completions": b"data: [DONE]", "/v1/messages": b"event: message_stop",
               "/v1/responses": b"event: response.completed"}[path]
        return None if end in body[-4096:] else f"{path}: stream without {end.decode()}"
    try:
        answer = json.loads(body)
    except ValueError:
        return f"{path}: answer not JSON"
    ok = {"/v1/chat/completions": lambda a: bool(a.get("choices")),
          "/v1/messages": lambda a: a.get("type") == "message" and bool(a.get("content")),
          "/v1/responses": lambda a: a.get("status") == "completed" and bool(a.get("output"))}[path]
    return None if ok(answer) else f"{path}: incomplete answer"


async def load(port: int, envoy_pid: int) -> dict:
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(Connection(port))
    failures: Counter[str] = Counter()
    latencies: list[float] = []
    rss: list[tuple[float, int]] = []
    sent = 0
    tasks: set[asyncio.Task] = set()

    async def one(n: int) -> None:
        # Latency counts from when the request was due, waiting for a free connection included,
        # so a gateway that falls behind shows in the percentiles (no coordinated omission).
        start = time.perf_counter()
        conn = await pool.get()
        try:
            status, body = await conn.post(path_of(n), request_body(n))
            reason = check(n, status, body)
        except (OSError, h11.ProtocolError, ConnectionError) as err:
            reason = f"{type(err).__name__}"
            await conn.close()
        latencies.append(time.perf_counter() - start)
        if reason:
            failures[reason] += 1
        pool.put_nowait(conn)

    start = time.monotonic()
    next_report = start + 30
    next_rss = start
    interval = 1.0 / RATE
    while (now := time.monotonic()) - start < SECONDS:
        due = int((now - start) / interval)
        while sent < due:
            task = asyncio.create_task(one(sent))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        if now >= next_rss:
            rss.append((now - start, proc_tree_rss_kib(envoy_pid)))
            next_rss += 10
        if now >= next_report:
            print(f"  {now - start:6.0f} s: {sent} sent, {sum(failures.values())} failed, "
                  f"RSS {rss[-1][1] / 1024:.1f} MiB", flush=True)
            next_report += 30
        await asyncio.sleep(min(interval, 0.002))
    await asyncio.gather(*tasks)
    while not pool.empty():
        await pool.get_nowait().close()
    return {
        "sent": sent, "failures": failures, "latencies": sorted(latencies),
        "rss": rss, "elapsed": time.monotonic() - start,
    }


def main() -> int:
    mock = harness.MockProvider()
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.ratelimit": RATELIMIT},
    )
    try:
        envoy = harness.Envoy(config, harness.provider_env(set()), log_level="warning")
    except Exception:
        mock.stop()
        raise
    print(f"soak: {SECONDS:.0f} s at {RATE:.0f} req/s, {CONNECTIONS} connections, "
          f"half streamed, models {', '.join(MODELS)}, APIs {', '.join(DIALECTS)}", flush=True)
    try:
        result = asyncio.run(load(envoy.port, envoy.proc.pid))
        panics = envoy.log().count("panicked")
    finally:
        envoy.stop()
        mock.stop()

    lat = result["latencies"]
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else 0  # noqa: E731
    after = [kib for t, kib in result["rss"] if t >= WARM_UP] or [kib for _, kib in result["rss"]]
    drift = (max(after) - min(after)) / min(after) if after else 0.0
    failed = sum(result["failures"].values())
    print(f"\nsoak summary ({result['elapsed']:.0f} s)")
    print(f"  requests sent {result['sent']}, answered {len(lat)}, "
          f"failed {failed}")
    for reason, count in result["failures"].most_common():
        print(f"    {count} × {reason}")
    print(f"  achieved rate {len(lat) / result['elapsed']:.0f} req/s; latency p50 {pct(50):.1f} ms, "
          f"p99 {pct(99):.1f} ms, max {pct(100):.1f} ms")
    print(f"  Envoy RSS after {WARM_UP:.0f} s warm-up: min {min(after) / 1024:.1f} MiB, "
          f"max {max(after) / 1024:.1f} MiB, drift {drift * 100:.1f}% (limit 5%)")
    print(f"  RSS samples (s: MiB): " + ", ".join(f"{t:.0f}: {kib / 1024:.1f}" for t, kib in result["rss"]))
    print(f"  VM panics in Envoy's log: {panics}")
    ok = failed == 0 and drift <= RSS_TOLERANCE and panics == 0
    print("  result: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
