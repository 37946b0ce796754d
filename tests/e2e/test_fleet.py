"""Two Envoys, one fleet (examples/fleet): the front Envoy round-robins over two llmgw gateways
in global rate-limit mode through one llmgw-rls. A consumer's token limit is the fleet's, not
each gateway's, and a gateway that dies leaves the other serving.
"""

from __future__ import annotations

import importlib.util
import json
import math
import urllib.request

import pytest

import harness
import rawhttp
from conftest import AUTH_CONFIG, KEYS

spec = importlib.util.spec_from_file_location("fleet", harness.ROOT / "examples" / "fleet" / "fleet.py")
fleet_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fleet_module)

BODY = {"model": "gpt-4o-mini", "max_tokens": 4,
        "messages": [{"role": "user", "content": "lorem ipsum " * 50}]}
ESTIMATE = math.ceil(len(json.dumps(BODY).encode()) / 4)  # what ratelimit admits against
ADMITTED = 5
# Room for 5 requests' input tokens and half of a sixth, for the whole fleet.
INPUT_PER_HOUR = ADMITTED * ESTIMATE + ESTIMATE // 2
RATELIMIT = {
    "default": {"requests_per_hour": 100000},
    "consumers": {"carol": {"input_tokens_per_hour": INPUT_PER_HOUR}},
}


@pytest.fixture(scope="module")
def fleet(mock):
    ports = [harness.free_port() for _ in range(6)]
    f = fleet_module.Fleet(
        port=ports[0], admin_port=ports[1], gateway_ports=ports[2:4],
        gateway_admin_ports=ports[4:6], mock=mock, front_concurrency=1,
        filter_configs={"llmgw.auth": AUTH_CONFIG, "llmgw.ratelimit": RATELIMIT})
    yield f
    f.stop()


def chat(f, consumer: str) -> rawhttp.Response:
    return rawhttp.post(f"{f.url}/v1/chat/completions", BODY,
                        {"authorization": f"Bearer {KEYS[consumer]}"})


def rls_metrics(service) -> dict[str, float]:
    with urllib.request.urlopen(f"{service.http}/metrics") as r:
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in r.read().decode().splitlines() if line and not line.startswith("#")}


def served(gateway: harness.Envoy) -> int:
    """Requests the gateway's listener answered (Envoy's own counter)."""
    with urllib.request.urlopen(f"{gateway.admin}/stats?filter=downstream_rq_completed") as r:
        for line in r.read().decode().splitlines():
            name, _, value = line.partition(": ")
            if name == "http.llmgw.downstream_rq_completed":
                return int(value)
    raise AssertionError("no http.llmgw.downstream_rq_completed")


def test_a_token_limit_is_the_fleet_s_not_each_gateway_s(fleet):
    before = [served(g) for g in fleet.gateways]
    statuses, remaining = [], []
    for _ in range(ADMITTED + 1):
        resp = chat(fleet, "carol")
        statuses.append(resp.status)
        if resp.status == 200:
            remaining.append(int(resp.headers["x-ratelimit-remaining-tokens"]))
    per_gateway = [served(g) - b for g, b in zip(fleet.gateways, before)]
    print(f"\nfleet: {statuses} over gateways {per_gateway}; estimate {ESTIMATE} tokens, "
          f"limit {INPUT_PER_HOUR} input tokens per hour; remaining {remaining}")
    # Strict round robin: each gateway saw half the requests, so alone each would have
    # admitted all of its 3 (3 × estimate < the limit).
    assert per_gateway == [3, 3]
    assert 3 * ESTIMATE < INPUT_PER_HOUR
    assert statuses == [200] * ADMITTED + [429]
    # One counter for both: it goes down by the estimate whichever gateway served.
    assert remaining == [INPUT_PER_HOUR - (i + 1) * ESTIMATE for i in range(ADMITTED)]
    # And it is the service's: one call per request, from both gateways.
    calls = rls_metrics(fleet.rls)
    assert calls['llmgw_rls_requests_total{result="ok"}'] == ADMITTED
    assert calls['llmgw_rls_requests_total{result="over_limit"}'] == 1
    mean_ms = 1000 * calls["llmgw_rls_request_duration_seconds_sum"] / (ADMITTED + 1)
    print(f"llmgw-rls: {ADMITTED + 1} calls, {mean_ms:.2f} ms each on average")


def test_one_gateway_dies_and_the_other_serves(fleet):
    dead, alive = fleet.gateways
    before = served(alive)
    dead.proc.kill()  # SIGKILL: no goodbye to the front Envoy
    dead.proc.wait(timeout=10)
    statuses = [chat(fleet, "alice").status for _ in range(10)]
    print(f"\nfleet with one gateway stopped: {statuses.count(200)}/10 answered 200")
    assert statuses == [200] * 10
    assert served(alive) - before == 10
