"""Model selection through a real Envoy: fallbacks across providers (Envoy's aggregate cluster and
retries, translate per try), sticky canary rollouts, the cheapest policy, health, /v1/models.

This module runs its own mock provider and Envoy (from envoy/gateway.yaml, with the router config
below), because a canary needs many consumers, hence many auth keys.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import time
from urllib.parse import urlparse

import openai
import pytest
import yaml

import harness
import rawhttp
from test_metrics import prometheus, prometheus_when, value

# Many consumers, so a rollout's split can be observed; each has its own key.
CONSUMERS = [f"c{i:03d}" for i in range(200)]
KEYS = {c: f"sk-routing-{c}-0123456789" for c in CONSUMERS}
KEYS["alice"] = "sk-routing-alice-0123456789"  # every model
KEYS["bob"] = "sk-routing-bob-0123456789"  # gpt-* and fast only
KEYS["limited"] = "sk-routing-limited-0123456789"  # 1 request per minute
KEYS["metered"] = "sk-routing-metered-0123456789"  # a token limit: stream usage is forced

CANARY_PERCENT = 25
COOLDOWN_S = 2
FAILURE_THRESHOLD = 3
# Cheapest: gpt-4o-mini is cheaper but its (test) window is small, and it cannot stream.
CHEAP_WINDOW = 2000
DEFAULT_OUTPUT = 100

ROUTER_CONFIG = {
    "models": [
        {"name": "gpt-4o-mini", "targets": [{"provider": "openai", "model": "gpt-4o-mini"}]},
        {"name": "claude-haiku-4-5",
         "targets": [{"provider": "anthropic", "model": "claude-haiku-4-5"}]},
        {"name": "sonnet-v1", "targets": [{"provider": "openai", "model": "sonnet-v1"}]},
        {"name": "sonnet-v2", "targets": [{"provider": "openai", "model": "sonnet-v2"}]},
        {"name": "resilient", "fallback": {"cluster": "llm-fallback"}, "targets": [
            {"provider": "openai", "model": "gpt-4o-mini"},
            {"provider": "anthropic", "model": "claude-haiku-4-5"}]},
        {"name": "economy", "policy": "cheapest", "targets": [
            {"provider": "openai", "model": "gpt-4o-mini", "context_window": CHEAP_WINDOW,
             "price": {"input": 0.15, "output": 0.6}, "capabilities": ["tools", "json_schema"]},
            {"provider": "anthropic", "model": "claude-haiku-4-5", "context_window": 200000,
             "price": {"input": 1.0, "output": 5.0}}]},
        {"name": "flaky", "targets": [{"provider": "openai", "model": "flaky-model"}]},
        # Two deployments in order; the first answers 429 with a Retry-After when told to.
        {"name": "patient", "policy": "ordered", "targets": [
            {"provider": "openai", "model": "patient-openai"},
            {"provider": "anthropic", "model": "patient-anthropic"}]},
        {"name": "popular", "targets": [{"provider": "openai", "model": "popular-model"}]},
        {"name": "resilient-down", "fallback": {"cluster": "llm-fallback-down"}, "targets": [
            {"provider": "openai", "model": "gpt-4o-mini", "cluster": "openai-down"},
            {"provider": "anthropic", "model": "claude-haiku-4-5"}]},
        {"name": "resilient-slow", "fallback": {"cluster": "llm-fallback-slow"}, "targets": [
            {"provider": "openai", "model": "gpt-4o-mini"},
            {"provider": "anthropic", "model": "claude-haiku-4-5"}]},
        {"name": "quickest", "policy": "fastest", "targets": [
            {"provider": "openai", "model": "quick-openai"},
            {"provider": "anthropic", "model": "quick-anthropic"}]},
        # The other order, through a second aggregate cluster the fixture adds.
        {"name": "resilient-reverse", "fallback": {"cluster": "llm-fallback-reverse"}, "targets": [
            {"provider": "anthropic", "model": "claude-haiku-4-5"},
            {"provider": "openai", "model": "gpt-4o-mini"}]},
    ],
    "aliases": {
        "fast": "gpt-4o-mini",
        "sonnet": {"version": "sonnet-v1",
                   "rollout": {"version": "sonnet-v2", "percent": CANARY_PERCENT}},
    },
    "health": {"failure_threshold": FAILURE_THRESHOLD, "cooldown_seconds": COOLDOWN_S},
    "expose": {"model": True, "provider": True},
    "default_output_tokens": DEFAULT_OUTPUT,
}


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


AUTH_CONFIG = {"keys": [
    {"sha256": sha(key), "consumer": consumer,
     **({"models": ["gpt-*", "fast"]} if consumer == "bob" else {})}
    for consumer, key in KEYS.items()
]}
RATELIMIT_CONFIG = {"default": {"requests_per_minute": 1000000},
                    "consumers": {"limited": {"requests_per_minute": 1},
                                  "metered": {"total_tokens_per_minute": 100000000}}}


def add_chain(config: dict, name: str, members: list[str], per_try_timeout: str | None = None
              ) -> None:
    """A copy of gateway.yaml's `llm-fallback` cluster and route with other members."""
    clusters = config["static_resources"]["clusters"]
    aggregate = copy.deepcopy(next(c for c in clusters if c["name"] == "llm-fallback"))
    aggregate["name"] = name
    aggregate["cluster_type"]["typed_config"]["clusters"] = members
    clusters.append(aggregate)
    routes = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    route = copy.deepcopy(next(r for r in routes if r["route"].get("cluster") == "llm-fallback"))
    route["match"]["headers"][0]["string_match"] = {"exact": name}
    route["route"]["cluster"] = name
    if per_try_timeout:
        route["route"]["retry_policy"]["per_try_timeout"] = per_try_timeout
    routes.insert(0, route)


def add_unreachable_openai(config: dict) -> None:
    """`openai-down`: the openai cluster, pointed at a port nobody listens on."""
    clusters = config["static_resources"]["clusters"]
    down = copy.deepcopy(next(c for c in clusters if c["name"] == "openai"))
    down["name"] = "openai-down"
    down["load_assignment"]["cluster_name"] = "openai-down"
    for group in down["load_assignment"]["endpoints"]:
        for endpoint in group["lb_endpoints"]:
            endpoint["endpoint"]["address"]["socket_address"] = {
                "address": "127.0.0.1", "port_value": harness.free_port()}
    clusters.append(down)


@pytest.fixture(scope="module")
def mock():
    provider = harness.MockProvider(forbid=list(KEYS.values()))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def gateway(mock):
    config = harness.gateway_config(
        port=harness.free_port(),
        admin_port=harness.free_port(),
        mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH_CONFIG, "llmgw.router": ROUTER_CONFIG,
                        "llmgw.ratelimit": RATELIMIT_CONFIG},
    )
    add_chain(config, "llm-fallback-reverse", ["anthropic", "openai"])
    add_unreachable_openai(config)
    add_chain(config, "llm-fallback-down", ["openai-down", "anthropic"])
    add_chain(config, "llm-fallback-slow", ["openai", "anthropic"], per_try_timeout="1s")
    envoy = harness.Envoy(config, harness.provider_env(set()))
    yield envoy
    envoy.stop()


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEYS["alice"], max_retries=0,
                         timeout=20)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def seen(mock) -> list[tuple[str, str]]:
    """(path, model) of every request the mock provider received since the last clear."""
    out = []
    for r in mock.requests():
        try:
            model = json.loads(r["body"]).get("model")
        except ValueError:
            model = None
        out.append((r["path"], model))
    return out


OPENAI_TRY = ("/v1/chat/completions", "gpt-4o-mini")
ANTHROPIC_TRY = ("/v1/messages", "claude-haiku-4-5")

# ---------------------------------------------------------------------------------------------
# Fallbacks: Envoy retries on the next member of the aggregate cluster; translate speaks the
# schema of the provider each try reaches, with the model x-llmgw-targets names for it.


@pytest.mark.parametrize("status", [429, 500, 503])
def test_failing_openai_target_falls_back_to_anthropic(client, mock, status):
    mock.clear()
    raw = client.chat.completions.with_raw_response.create(
        model="resilient", messages=user(f"Hello [mock:openai_status={status}]"), max_tokens=50)
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("Hello from mock anthropic!")
    assert completion.model == "claude-haiku-4-5"
    assert completion.usage.total_tokens > 0
    assert seen(mock) == [OPENAI_TRY, ANTHROPIC_TRY]
    # The response names the step of the chain that answered (expose: model, provider).
    assert raw.headers["x-llmgw-model"] == "claude-haiku-4-5"
    assert raw.headers["x-llmgw-provider"] == "anthropic"


def test_tokens_of_the_fallback_try_are_counted_for_the_consumer(gateway, client):
    """The retry's translate still knows the consumer (auth's header is gone by then)."""
    labels = dict(provider="anthropic", model="claude-haiku-4-5", consumer="alice")
    before = prometheus(gateway)
    completion = client.chat.completions.create(
        model="resilient", messages=user("Count me [mock:openai_status=429]"))
    name = "llmgw_tokens_total"
    counted = (("input", completion.usage.prompt_tokens), ("output", completion.usage.completion_tokens))

    def grown(series, token_type):
        return value(series, name, token_type=token_type, **labels) - value(
            before, name, token_type=token_type, **labels)

    after = prometheus_when(gateway, lambda s: all(grown(s, t) >= n for t, n in counted))
    for token_type, tokens in counted:
        assert grown(after, token_type) == tokens, token_type


@pytest.mark.parametrize("status", [429, 503])
def test_stream_falls_back_before_its_first_byte(client, mock, status):
    mock.clear()
    stream = client.chat.completions.create(
        model="resilient", messages=user(f"Stream please [mock:openai_status={status}]"),
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello from mock anthropic!")
    assert "Stream please" in text
    assert {c.model for c in chunks} == {"claude-haiku-4-5"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] \
        == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert seen(mock) == [OPENAI_TRY, ANTHROPIC_TRY]


@pytest.mark.parametrize("stream", [False, True])
def test_reverse_chain_falls_back_from_anthropic_to_openai(client, mock, stream):
    """The retry sees the request as router handed it on, not as the first try rewrote it."""
    mock.clear()
    response = client.chat.completions.create(
        model="resilient-reverse", messages=user("Hi [mock:anthropic_status=529]"), stream=stream)
    if stream:
        chunks = list(response)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert {c.model for c in chunks} == {"gpt-4o-mini"}
    else:
        text = response.choices[0].message.content
        assert response.model == "gpt-4o-mini"
    assert text.startswith("Hello from mock openai!")
    assert seen(mock) == [ANTHROPIC_TRY, OPENAI_TRY]


def test_the_retry_reads_ratelimit_s_forced_usage_too(gateway, mock):
    """ratelimit must charge the stream's tokens, the client did not ask for usage: each try's
    translate asks its provider for it (ratelimit's fact, read again by the retry) and the
    usage chunk is hidden from the client again."""
    metered = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEYS["metered"],
                            max_retries=0, timeout=20)
    mock.clear()
    chunks = list(metered.chat.completions.create(
        model="resilient-reverse", messages=user("Stream [mock:anthropic_status=529]"),
        stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello from mock openai!")
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert seen(mock) == [ANTHROPIC_TRY, OPENAI_TRY]
    retry = json.loads(mock.requests()[-1]["body"])
    assert retry["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [False, True])
def test_unreachable_provider_falls_back_on_connection_failure(client, mock, stream):
    mock.clear()
    response = client.chat.completions.create(
        model="resilient-down", messages=user("Anyone there?"), stream=stream)
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in response if c.choices)
    else:
        text = response.choices[0].message.content
    assert text.startswith("Hello from mock anthropic!")
    assert seen(mock) == [ANTHROPIC_TRY]


def test_provider_silent_past_the_per_try_timeout_falls_back(client, mock):
    mock.clear()
    started = time.monotonic()
    completion = client.chat.completions.create(
        model="resilient-slow", messages=user("Hi [mock:openai_headers_delay_ms=4000]"))
    assert completion.choices[0].message.content.startswith("Hello from mock anthropic!")
    assert time.monotonic() - started < 3, "the slow provider was given up after 1 s"
    assert seen(mock) == [OPENAI_TRY, ANTHROPIC_TRY]


def test_healthy_first_target_answers_without_a_retry(client, mock):
    mock.clear()
    completion = client.chat.completions.create(model="resilient", messages=user("Hi"))
    assert completion.choices[0].message.content.startswith("Hello from mock openai!")
    assert seen(mock) == [OPENAI_TRY]


def test_stream_failing_after_its_first_byte_is_not_retried_and_says_so(client, mock):
    """Headers and some chunks reached the client, so Envoy cannot retry any more."""
    mock.clear()
    stream = client.chat.completions.create(
        model="resilient", messages=user("Tell me more [mock:openai_truncate_after=2]"),
        stream=True)
    received = []
    with pytest.raises(openai.APIError) as err:
        for chunk in stream:
            received.append(chunk)
    assert received, "the first chunks reached the client before the failure"
    assert "upstream stream ended before completion" in str(err.value)
    assert seen(mock) == [OPENAI_TRY], "no fallback once the stream started"


def test_stream_reset_after_its_first_byte_is_not_retried(client, mock):
    mock.clear()
    stream = client.chat.completions.create(
        model="resilient", messages=user("Tell me more [mock:openai_cut_after=2]"), stream=True)
    received = []
    # The provider's reset is passed on as a reset: the SDK's HTTP client raises.
    with pytest.raises(Exception) as err:
        for chunk in stream:
            received.append(chunk)
    assert not isinstance(err.value, AssertionError)
    assert received
    assert seen(mock) == [OPENAI_TRY]


def test_every_step_failing_gives_the_last_error_in_openai_format(client, mock):
    mock.clear()
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="resilient", messages=user("x [mock:status=429]"))
    assert err.value.status_code == 429
    assert seen(mock) == [OPENAI_TRY, ANTHROPIC_TRY]


def test_shipped_fallback_chains_match_their_aggregate_clusters():
    """router's chain order and Envoy's member order must agree (README, router config)."""
    config = yaml.safe_load(harness.GATEWAY_YAML.read_text())
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    router = next(node for node in harness._walk(config) if node.get("name") == "llmgw.router"
                  and "configuration" in node)
    router_config = json.loads(router["configuration"]["value"])
    provider_clusters = router_config.get("clusters", {})
    routes = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    chains = [m for m in router_config["models"] if "fallback" in m]
    assert chains, "gateway.yaml ships a fallback example"
    for model in chains:
        name = model["fallback"]["cluster"]
        aggregate = clusters[name]
        members = aggregate["cluster_type"]["typed_config"]["clusters"]
        expected = [provider_clusters.get(t["provider"], t["provider"]) for t in model["targets"]]
        assert members == expected, f"{model['name']}: {members} != {expected}"
        filters = aggregate["typed_extension_protocol_options"][
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
        assert filters[0]["name"] == "llmgw.translate"
        route = next(r for r in routes if r["route"].get("cluster") == name)
        assert route["match"]["headers"][0]["string_match"] == {"exact": name}
        policy = route["route"]["retry_policy"]
        assert "retriable-status-codes" in policy["retry_on"] and 429 in policy[
            "retriable_status_codes"]
        assert policy["num_retries"] == len(members) - 1
        assert policy["retry_priority"]["name"] == "envoy.retry_priorities.previous_priorities"


# ---------------------------------------------------------------------------------------------
# Versions: an alias pinned to a version, a rollout sticky per consumer


class KeepAlive:
    """One HTTP/1.1 connection for many requests (1,000 requests in a few seconds)."""

    def __init__(self, url: str):
        parsed = urlparse(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=20)

    def chat(self, key: str, body: dict) -> tuple[int, dict]:
        self.conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                          headers={"authorization": f"Bearer {key}",
                                   "content-type": "application/json"})
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read())

    def close(self):
        self.conn.close()


def test_canary_split_over_1000_requests_is_sticky_per_consumer(gateway, mock):
    rounds = 5
    versions: dict[str, set[str]] = {c: set() for c in CONSUMERS}
    conn = KeepAlive(gateway.url)
    try:
        for _ in range(rounds):
            for consumer in CONSUMERS:
                status, body = conn.chat(KEYS[consumer],
                                         {"model": "sonnet", "messages": user("hi")})
                assert status == 200, body
                versions[consumer].add(body["model"])
    finally:
        conn.close()
    flipped = {c: v for c, v in versions.items() if len(v) != 1}
    assert not flipped, f"consumers that changed version: {flipped}"
    canaries = sum(1 for v in versions.values() if v == {"sonnet-v2"})
    assert all(v <= {"sonnet-v1", "sonnet-v2"} for v in versions.values())
    share = canaries / len(CONSUMERS)
    assert abs(share - CANARY_PERCENT / 100) <= 0.08, f"{canaries} of {len(CONSUMERS)} canaries"


def test_client_may_name_an_exact_version(client):
    for version in ("sonnet-v1", "sonnet-v2"):
        completion = client.chat.completions.create(model=version, messages=user("hi"))
        assert completion.model == version


# ---------------------------------------------------------------------------------------------
# Cheapest: the cheaper target until the request no longer fits it


def test_cheapest_picks_the_cheap_target_until_its_window_is_too_small(client, mock):
    def served(content: str, **kwargs) -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="economy", messages=user(content), **kwargs)
        raw.parse()
        return raw.headers["x-llmgw-model"]

    assert served("short question") == "gpt-4o-mini"
    # Input ~ body bytes / 4: 6,000 bytes ~ 1,500 tokens + 100 default output fit in 2,000.
    assert served("x" * 6000) == "gpt-4o-mini"
    # 8,000 bytes ~ 2,000+ tokens: too much for the small window.
    assert served("x" * 8000) == "claude-haiku-4-5"
    # The requested output counts too.
    assert served("short question", max_tokens=CHEAP_WINDOW) == "claude-haiku-4-5"


def test_cheapest_respects_capabilities(client):
    """The cheap target does not declare `streaming`, so a stream goes to the other one."""
    stream = client.chat.completions.create(model="economy", messages=user("hi"), stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("Hello from mock anthropic!")


def test_no_target_fits_is_400_saying_why(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="economy", messages=user("hi"), max_tokens=300000)
    assert err.value.status_code == 400
    assert err.value.code == "no_deployment_can_serve"
    assert "context window of 200000 tokens" in err.value.message


def test_fastest_sends_traffic_to_the_quicker_provider(client):
    """Latency to response headers is measured per target (shared data) and drives the choice."""
    def served() -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="quickest", messages=user("hi [mock:openai_headers_delay_ms=300]"))
        raw.parse()
        return raw.headers["x-llmgw-provider"]

    warm_up = [served() for _ in range(4)]  # each target is measured once it is tried
    assert "openai" in warm_up, warm_up
    later = [served() for _ in range(20)]
    # One request in 20 explores by weight; the rest go to the faster target.
    assert later.count("anthropic") >= 16, later


# ---------------------------------------------------------------------------------------------
# Health: consecutive provider failures take a target out for a cool-down


def test_single_deployment_that_failed_recovers_as_soon_as_the_provider_does(gateway, mock):
    """Panic mode: a model's only deployment cooling down is 0% healthy, under the default
    `panic_threshold_percent` (50), so router keeps sending it traffic instead of a 503."""
    def call(text: str):
        return rawhttp.post(f"{gateway.url}/v1/chat/completions",
                            {"model": "flaky", "messages": user(text)},
                            {"authorization": f"Bearer {KEYS['alice']}"})

    panics = "llmgw_router_panic_total"
    before = value(prometheus(gateway), panics, model="flaky") or 0
    mock.clear()
    statuses = [call("fail [mock:status=500]").status for _ in range(5)]
    assert statuses == [500] * 5, "every failure reached the provider, none was router's 503"
    resp = call("hello")  # the provider has recovered: no waiting for a cool-down
    assert resp.status == 200, resp.body
    assert resp.json()["choices"][0]["message"]["content"].startswith("Hello from mock openai!")
    assert len(mock.requests()) == 6
    # Tries 4 and 5 (after the threshold of 3) and the recovered one went out in panic mode.
    after = prometheus_when(gateway, lambda s: value(s, panics, model="flaky") >= before + 3)
    assert value(after, panics, model="flaky") == before + 3
    assert "llmgw.router: panic mode for model flaky" in gateway.log()


def test_a_429_retry_after_cools_the_deployment_for_that_long(gateway, mock):
    """`patient`'s first deployment trips on 429s whose Retry-After (4 s) is longer than
    `cooldown_seconds` (2 s): it is skipped until the provider's time is up. Its second
    deployment is healthy (50% is not under the panic threshold), so no panic."""
    def call(text: str):
        resp = rawhttp.post(f"{gateway.url}/v1/chat/completions",
                            {"model": "patient", "messages": user(text)},
                            {"authorization": f"Bearer {KEYS['alice']}"})
        return resp.status, resp.headers.get("x-llmgw-model")

    wait = 4
    tripped_at = None
    for _ in range(FAILURE_THRESHOLD):
        assert call(f"[mock:openai_status=429] [mock:retry_after={wait}]") == (
            429, "patient-openai")
        tripped_at = time.monotonic()
    time.sleep(COOLDOWN_S + 0.5)  # past cooldown_seconds
    assert call("hello") == (200, "patient-anthropic"), "still cooling per Retry-After"
    time.sleep(max(0.0, tripped_at + wait + 0.3 - time.monotonic()))
    assert call("hello") == (200, "patient-openai")


def test_rate_limited_requests_do_not_count_against_the_target(gateway):
    """ratelimit's own 429s are local replies: router must not blame the provider for them."""
    def call(key: str):
        return rawhttp.post(f"{gateway.url}/v1/chat/completions",
                            {"model": "popular", "messages": user("hi")},
                            {"authorization": f"Bearer {key}"})

    statuses = [call(KEYS["limited"]).status for _ in range(FAILURE_THRESHOLD + 2)]
    assert statuses[0] == 200 and set(statuses[1:]) == {429}, statuses
    assert call(KEYS["alice"]).status == 200


# ---------------------------------------------------------------------------------------------
# /v1/models and /v1/embeddings


def test_models_lists_only_what_the_key_may_use(gateway):
    def ids(key: str) -> list[str]:
        c = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=20)
        page = c.models.list()
        assert all(m.object == "model" and m.owned_by == "llmgw" for m in page.data)
        return [m.id for m in page.data]

    assert ids(KEYS["bob"]) == ["gpt-4o-mini", "fast"]
    everything = ids(KEYS["alice"])
    assert everything[:2] == ["gpt-4o-mini", "claude-haiku-4-5"]
    assert {"sonnet", "sonnet-v1", "sonnet-v2", "resilient", "economy", "fast"} <= set(everything)
    with pytest.raises(openai.AuthenticationError):
        ids("sk-not-a-key")


def test_embeddings_are_routed_like_chat(gateway, mock):
    mock.clear()
    resp = rawhttp.post(f"{gateway.url}/v1/embeddings", {"model": "fast", "input": "hello"},
                        {"authorization": f"Bearer {KEYS['alice']}"})
    # Router resolved the model and sent the request to the openai cluster (whatever the
    # provider then answers); an unknown model is router's 404.
    assert [r["path"] for r in mock.requests()] == ["/v1/embeddings"]
    assert "Invalid URL (POST /v1/embeddings)" not in resp.body.decode()
    resp = rawhttp.post(f"{gateway.url}/v1/embeddings", {"model": "nope", "input": "hello"},
                        {"authorization": f"Bearer {KEYS['alice']}"})
    assert resp.status == 404
    assert resp.json()["error"]["code"] == "model_not_found"
