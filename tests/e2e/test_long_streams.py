"""A long streamed answer through the whole chain (one Envoy worker, token limits on, so
ratelimit charges the stream's usage): memory stays flat. The cost per event is a benchmark's
business (bench/stream_cost.py prints it); this checks memory, and that the stream arrives
whole: a watcher whose cost grows with what it has seen does not finish within the timeout."""

from __future__ import annotations

import hashlib
import http.client
import json
from pathlib import Path

import pytest

import harness

KEY = "sk-test-long-0123456789"
AUTH = {"keys": [{"sha256": hashlib.sha256(KEY.encode()).hexdigest(), "consumer": "long"}]}
RATELIMIT = {"default": {"requests_per_minute": 1000, "total_tokens_per_minute": 10**12}}
# The mock's OpenAI chunks are ~265 bytes: 190,000 of them are ~50 MB.
EVENTS = 190_000
MAX_RSS_GROWTH = 10 << 20


@pytest.fixture(scope="module")
def long_gateway():
    mock = harness.MockProvider()
    config = harness.gateway_config(port=harness.free_port(), admin_port=harness.free_port(),
                                    mock_port=mock.port,
                                    filter_configs={"llmgw.auth": AUTH,
                                                    "llmgw.ratelimit": RATELIMIT})
    envoy = harness.Envoy(config, harness.provider_env(set()), concurrency=1)
    yield envoy
    envoy.stop()
    mock.stop()


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def stream(gateway, words: int, usage: bool) -> tuple[int, int, bytes]:
    """(bytes, content events, last bytes) of one streamed answer of `words` events."""
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": f"[mock:words={words}]"}]}
    if usage:
        body["stream_options"] = {"include_usage": True}
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
    conn.request("POST", "/v1/chat/completions", json.dumps(body),
                 {"authorization": f"Bearer {KEY}", "content-type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()[:500]
    size = events = 0
    carry = b""
    while chunk := resp.read(1 << 16):
        size += len(chunk)
        data = carry + chunk
        events += data.count(b'"delta":{"content":"') - carry.count(b'"delta":{"content":"')
        carry = data[-64:]
    conn.close()
    return size, events, carry


@pytest.mark.parametrize("usage", [False, True], ids=["usage-forced", "usage-asked"])
def test_a_50_mb_stream_passes_whole_with_flat_envoy_memory(long_gateway, usage):
    stream(long_gateway, 20_000, usage)  # warm up: the VMs' memory grows to its working size
    before = rss(long_gateway.proc.pid)
    size, events, tail = stream(long_gateway, EVENTS, usage)
    growth = rss(long_gateway.proc.pid) - before
    assert size > 50_000_000
    assert events == EVENTS + 1  # the role chunk's "" and one per word
    assert tail.endswith(b"data: [DONE]\n\n")
    assert growth < MAX_RSS_GROWTH, f"Envoy RSS grew by {growth / 2**20:.1f} MiB"
