"""Token-aware rate limiting end to end: real Envoys (2 workers each) with the built .wasm.

Local mode counts in one Envoy's shared data; global mode counts through the rate limit service
llmgw-rls (rls/), backed by a redis-server each fixture starts, so two Envoys share a limit.
Windows here are hours, so a test never straddles a window boundary by bad luck.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

import harness
import rawhttp
import rls
from conftest import AUTH_CONFIG, sha

KEYS = {
    "tok": "sk-rl-tok-0123456789",
    "stream": "sk-rl-stream-0123456789",
    "stream2": "sk-rl-stream2-0123456789",
    "cut": "sk-rl-cut-0123456789",
    "conc": "sk-rl-conc-0123456789",
    "glob": "sk-rl-glob-0123456789",
    "team1": "sk-rl-team1-0123456789",
    "team2": "sk-rl-team2-0123456789",
    "settle": "sk-rl-settle-0123456789",
    "settle2": "sk-rl-settle2-0123456789",
}
AUTH = {
    "keys": AUTH_CONFIG["keys"]
    + [{"sha256": sha(k), "consumer": c, **({"team": "t"} if c.startswith("team") else {})}
       for c, k in KEYS.items()]
}
TOK_INPUT_PER_HOUR = 3000
CONC_LIMIT = 300
LOCAL_CONFIG = {
    "default": {"requests_per_hour": 100000},
    "consumers": {
        "tok": {"requests_per_hour": 20, "input_tokens_per_hour": TOK_INPUT_PER_HOUR},
        "stream": {"total_tokens_per_hour": 100000},
        "stream2": {"total_tokens_per_hour": 100000},
        "cut": {"total_tokens_per_hour": 100000},
        "conc": {"requests_per_hour": CONC_LIMIT},
    },
    "limits": [{"name": "team-t", "by": ["team"], "output_tokens_per_hour": 100}],
    "default_max_output_tokens": 64,
}


def chat_body(content: str, **extra) -> bytes:
    return json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}
    ).encode()


def post(gw, key: str, body: bytes) -> rawhttp.Response:
    return rawhttp.post(f"{gw.url}/v1/chat/completions", body, {"authorization": f"Bearer {key}"})


def estimate(body: bytes, max_tokens: int) -> tuple[int, int]:
    """What ratelimit admits against: (input, output) tokens."""
    return math.ceil(len(body) / 4), max_tokens


def stat(gw, name: str) -> int:
    with urllib.request.urlopen(f"{gw.admin}/stats?filter={name}") as resp:
        for line in resp.read().decode().splitlines():
            key, _, value = line.partition(": ")
            if key.endswith(name):
                return int(value)
    return 0


def native_part(ratelimit: dict, combined: bool) -> set[str]:
    """Which filters a NATIVE=1 run takes from the native build. Global mode keeps ratelimit (or
    the one module holding it) on wasm: the native module cannot charge usage after the answer
    (README, "Native build"), so these tests run a mixed chain, native auth, router and translate
    around the wasm ratelimit, as such a deployment would."""
    everything = {"llmgw.auth", "llmgw.router", "llmgw.ratelimit", "llmgw.translate", "llmgw.gateway"}
    if "global" not in ratelimit:
        return everything
    return {"llmgw.translate"} if combined else everything - {"llmgw.ratelimit"}


def start_gateway(mock, ratelimit: dict, extra_clusters: list[dict] = (), combined=False) -> harness.Envoy:
    config = harness.gateway_config(
        port=harness.free_port(),
        admin_port=harness.free_port(),
        mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH, "llmgw.ratelimit": ratelimit},
    )
    config["static_resources"]["clusters"].extend(extra_clusters)
    if combined:  # auth, router and ratelimit as the one gateway.wasm module
        config = harness.combine_downstream(config)
    if os.environ.get("NATIVE"):  # the llmgw filters from the native build
        config = harness.native_filters(config, only=native_part(ratelimit, combined))
    return harness.Envoy(config, harness.provider_env(set()))


@pytest.fixture(scope="module")
def local(mock):
    envoy = start_gateway(mock, LOCAL_CONFIG)
    yield envoy
    envoy.stop()


# ---- local mode ----


def refused_count(gw, limit: str) -> int:
    """`llmgw_ratelimit_refused_total{limit=…}` from Envoy's Prometheus endpoint."""
    with urllib.request.urlopen(f"{gw.admin}/stats/prometheus") as resp:
        for line in resp.read().decode().splitlines():
            name = harness.metric_name(line.partition("{")[0])
            if name == "llmgw_ratelimit_refused_total" and f'limit="{limit}"' in line:
                return int(float(line.rsplit(" ", 1)[1]))
    return 0


def refused_count_reaching(gw, limit: str, want: int, timeout: float = 3.0) -> int:
    """`refused_count` once it reaches `want`, or at the timeout: the native build hands counters
    to Envoy every 10 ms (README, "Native build"), so a read right after the answer may be early."""
    deadline = time.monotonic() + timeout
    while (count := refused_count(gw, limit)) < want and time.monotonic() < deadline:
        time.sleep(0.02)
    return count


def test_token_limit_is_hit_by_a_few_large_requests_before_the_request_limit(local):
    refused_before = refused_count(local, "consumers.tok.input_tokens_per_hour")
    body = chat_body("lorem " * 1000, max_tokens=5)
    est_in, _ = estimate(body, 5)
    assert est_in > TOK_INPUT_PER_HOUR / 3, "the body must be large for this test"
    statuses, usages, remaining = [], [], []
    for _ in range(6):
        resp = post(local, KEYS["tok"], body)
        statuses.append(resp.status)
        if resp.status == 200:
            usages.append(resp.json()["usage"]["prompt_tokens"])
            remaining.append(int(resp.headers["x-ratelimit-remaining-tokens"]))
        else:
            refused = resp
            break
    # Refused long before the 20 requests the request limit allows.
    assert statuses[-1] == 429 and len(statuses) <= 4, statuses
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["type"] == "rate_limit_error"
    assert "consumers.tok.input_tokens_per_hour" in error["message"]
    assert refused.headers["x-ratelimit-limit-tokens"] == str(TOK_INPUT_PER_HOUR)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit-requests"] == "20"
    limit = "consumers.tok.input_tokens_per_hour"
    assert refused_count_reaching(local, limit, refused_before + 1) == refused_before + 1
    # Reconciled: each admission saw the earlier answers' real prompt tokens, not their estimates.
    for i, left in enumerate(remaining):
        assert left == TOK_INPUT_PER_HOUR - sum(usages[:i]) - est_in, (i, remaining, usages)
    # The refused request consumed nothing: requests left = 20 - admitted.
    small = post(local, KEYS["tok"], chat_body("hi", max_tokens=1))
    assert small.status == 200
    assert small.headers["x-ratelimit-remaining-requests"] == str(20 - len(usages) - 1)


@pytest.mark.parametrize("model,consumer", [("gpt-4o-mini", "stream"), ("claude-haiku-4-5", "stream2")])
def test_stream_usage_is_reconciled_and_the_forced_usage_chunk_hidden(local, mock, model, consumer):
    client = openai.OpenAI(base_url=f"{local.url}/v1", api_key=KEYS[consumer], max_retries=0)
    messages = [{"role": "user", "content": "Tell me a short story"}]
    max_tokens = 50
    # The client asks for usage: it sees it.
    chunks = list(client.chat.completions.create(
        model=model, messages=messages, stream=True, max_tokens=max_tokens,
        stream_options={"include_usage": True}))
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1
    total = usage[0].total_tokens
    assert total < max_tokens + usage[0].prompt_tokens, "the estimate must differ from the usage"
    # It does not: llmgw asks the provider anyway and hides the usage chunk.
    mock.clear()
    chunks = list(client.chat.completions.create(
        model=model, messages=messages, stream=True, max_tokens=max_tokens))
    assert chunks and all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks), "a usage-only chunk reached the client"
    if model.startswith("gpt"):
        sent = json.loads(mock.requests()[-1]["body"])
        assert sent["stream_options"] == {"include_usage": True}
    # Both streams were charged their real usage: the next admission shows it.
    body = chat_body("next", max_tokens=7)
    est_in, est_out = estimate(body, 7)
    resp = post(local, KEYS[consumer], body)
    assert resp.status == 200
    assert int(resp.headers["x-ratelimit-remaining-tokens"]) == 100000 - 2 * total - est_in - est_out
    assert resp.headers["x-ratelimit-limit-tokens"] == "100000"


def test_cut_stream_is_charged_its_estimate(local):
    before = stat(local, "llmgw_ratelimit_usage_missing_total")
    client = openai.OpenAI(base_url=f"{local.url}/v1", api_key=KEYS["cut"], max_retries=0)
    body_text = "Tell me a long story [mock:cut_after=2] [mock:words=30]"
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(
                model="gpt-4o-mini", stream=True, max_tokens=40,
                messages=[{"role": "user", "content": body_text}]):
            pass
    # The cut stream's estimate: the SDK's body, which we cannot see, so read the counter back
    # through the next request: 100000 - cut estimate - this estimate.
    body = chat_body("after the cut", max_tokens=3)
    est_in, est_out = estimate(body, 3)
    resp = post(local, KEYS["cut"], body)
    assert resp.status == 200
    charged = 100000 - int(resp.headers["x-ratelimit-remaining-tokens"]) - est_in - est_out
    sdk_body = chat_body(body_text, max_tokens=40, stream=True)  # about what the SDK sent
    assert charged >= 40 + math.ceil(len(sdk_body) / 4) - 15, charged
    assert charged <= 40 + math.ceil(len(sdk_body) / 4) + 15, charged
    deadline = time.monotonic() + 5
    while stat(local, "llmgw_ratelimit_usage_missing_total") <= before:
        assert time.monotonic() < deadline, "usage_missing metric not incremented"
        time.sleep(0.1)


def test_team_limit_is_shared_and_a_refusal_spends_nothing_else(local):
    # limits.team-t: 100 output tokens per hour for the whole team t (team1 and team2).
    first = post(local, KEYS["team1"], chat_body("hi", max_tokens=60))
    assert first.status == 200
    used = first.json()["usage"]["completion_tokens"]
    second = post(local, KEYS["team2"], chat_body("hi", max_tokens=100 - used + 1))
    assert second.status == 429
    assert "limits.team-t.output_tokens_per_hour" in second.json()["error"]["message"]
    third = post(local, KEYS["team2"], chat_body("hi", max_tokens=100 - used))
    assert third.status == 200
    # team2's refused request did not count against its per-consumer request limit.
    assert third.headers["x-ratelimit-remaining-requests"] == str(100000 - 1)


def test_concurrent_clients_admit_no_more_than_the_limit(local):
    attempts = CONC_LIMIT * 2
    body = chat_body("hi", max_tokens=1)

    def one(_):
        return post(local, KEYS["conc"], body).status

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(one, range(attempts)))
    elapsed = time.monotonic() - start
    admitted = statuses.count(200)
    refused = statuses.count(429)
    print(f"\nconcurrency: 64 clients, {attempts} requests in {elapsed:.1f}s, limit {CONC_LIMIT}: "
          f"{admitted} admitted ({admitted / CONC_LIMIT:.2%} of the limit), {refused} refused")
    assert admitted + refused == attempts, statuses
    assert admitted <= CONC_LIMIT * 1.01
    assert admitted >= CONC_LIMIT * 0.99


# ---- global mode ----


def global_config(failure_mode: str) -> dict:
    return {
        "consumers": {"glob": {"requests_per_hour": 5, "total_tokens_per_hour": 100000}},
        "default": {"requests_per_hour": 100000},
        "global": {"cluster": rls.CLUSTER, "domain": "llmgw-test", "timeout_ms": 500,
                   "failure_mode": failure_mode},
    }


@pytest.fixture(scope="module")
def redis():
    server = rls.Redis()
    yield server
    server.stop()


def test_two_envoys_share_one_global_limit(mock, redis):
    """`b` loads the downstream three as one module: its gRPC call holds and resumes the chain."""
    service = rls.Rls(redis.url)
    a = start_gateway(mock, global_config("closed"), [rls.cluster(service.port)])
    try:
        b = start_gateway(mock, global_config("closed"), [rls.cluster(service.port)], combined=True)
        try:
            body = chat_body("hi", max_tokens=4)
            remaining, tokens_left = [], []
            for gw in [a, b, a, b, a]:
                resp = post(gw, KEYS["glob"], body)
                assert resp.status == 200, resp.body
                remaining.append(int(resp.headers["x-ratelimit-remaining-requests"]))
                tokens_left.append(int(resp.headers["x-ratelimit-remaining-tokens"]))
            assert remaining == [4, 3, 2, 1, 0]
            # Tokens are charged through the service too (estimate at admission).
            assert tokens_left == sorted(tokens_left, reverse=True) and len(set(tokens_left)) == 5
            for gw in [b, a]:
                resp = post(gw, KEYS["glob"], body)
                assert resp.status == 429
                error = resp.json()["error"]
                assert "consumers.glob.requests_per_hour" in error["message"]
                assert int(resp.headers["retry-after"]) >= 1
        finally:
            b.stop()
    finally:
        a.stop()
        service.stop()


def test_rls_down_fails_open_or_closed_as_configured(mock, redis):
    service = rls.Rls(redis.url)
    open_gw = start_gateway(mock, global_config("open"), [rls.cluster(service.port)])
    closed_gw = start_gateway(mock, global_config("closed"), [rls.cluster(service.port)])
    try:
        body = chat_body("hi", max_tokens=4)
        # Another consumer than the sharing test's, so the counts do not meet.
        key = "sk-test-alice-0123456789"
        for gw in (open_gw, closed_gw):
            resp = post(gw, key, body)
            assert resp.status == 200
            assert resp.headers["x-ratelimit-limit-requests"] == "100000"
        service.stop()
        resp = post(open_gw, key, body)
        assert resp.status == 200, resp.body
        assert "x-ratelimit-limit-requests" not in resp.headers  # nothing was counted
        resp = post(closed_gw, key, body)
        assert resp.status == 503, resp.body
        error = resp.json()["error"]
        assert error["code"] == "rate_limit_service_unavailable"
        for gw in (open_gw, closed_gw):
            assert stat(gw, "llmgw_ratelimit_rls_failures_total") >= 1
    finally:
        open_gw.stop()
        closed_gw.stop()
        service.stop()


SETTLE_LIMIT = 100000


@pytest.mark.parametrize("consumer,stream", [("settle", False), ("settle2", True)])
def test_usage_beyond_the_estimate_is_charged_through_the_service_after_the_answer(
        mock, redis, consumer, stream):
    """The answer uses more tokens than admission estimated (`default_max_output_tokens` 8, the
    mock writes 400 words): the after-response gRPC call that charges the difference must reach
    the rate limit service though the client's stream has ended. The next request's remaining
    tokens show it was counted."""
    service = rls.Rls(redis.url)
    config = {
        "default": {"requests_per_hour": 100000},
        "consumers": {consumer: {"output_tokens_per_hour": SETTLE_LIMIT}},
        "default_max_output_tokens": 8,
        "global": {"cluster": rls.CLUSTER, "domain": "llmgw-settle", "timeout_ms": 500,
                   "failure_mode": "closed"},
    }
    gw = start_gateway(mock, config, [rls.cluster(service.port)])
    try:
        extra = {"stream": True} if stream else {}
        resp = post(gw, KEYS[consumer], chat_body("[mock:words=400]", **extra))
        assert resp.status == 200, resp.body
        # Admission charged the estimate: 8 output tokens.
        assert int(resp.headers["x-ratelimit-remaining-tokens"]) == SETTLE_LIMIT - 8
        time.sleep(0.5)  # the settling call is fire-and-forget
        resp = post(gw, KEYS[consumer], chat_body("hi", max_tokens=5))
        assert resp.status == 200, resp.body
        # 400 words were spent (not 8), then this request's estimate of 5.
        assert int(resp.headers["x-ratelimit-remaining-tokens"]) == SETTLE_LIMIT - 400 - 5
    finally:
        gw.stop()
        service.stop()
