"""Facts the filters hand each other can never be set by a client (README, "The facts contract").

The filters pass consumer, team, model, provider, prices and estimates in Envoy filter state,
which no request can write; an `x-llmgw-*` request header is never read as one of them, even
where no auth filter strips it: translate alone in front of a provider (envoy/translate-only.yaml)
and router + ratelimit + translate without auth. translate still removes every `x-llmgw-*`
header before the provider.
"""

from __future__ import annotations

import copy
import json
import urllib.request

import pytest
import yaml

import harness
import rawhttp

# Every fact a client might try to speak for, with a value no config here holds.
FORGED = {
    "x-llmgw-consumer": "mallory",
    "x-llmgw-team": "forgers",
    "x-llmgw-allowed-models": "*",
    "x-llmgw-requested-model": "forged-requested",
    "x-llmgw-provider": "forged-provider",
    "x-llmgw-upstream-model": "forged-upstream",
    "x-llmgw-targets": "openai=forged-target,anthropic=forged-target",
    "x-llmgw-prices": "openai=999999/999999,anthropic=999999/999999",
    "x-llmgw-input-tokens-estimate": "0",
    "x-llmgw-max-output-tokens": "0",
    "x-llmgw-include-usage": "forced",
    "x-llmgw-stream": "true",
}
FORGED_WORDS = ("mallory", "forgers", "forged", "999999")


def stats(envoy) -> str:
    with urllib.request.urlopen(f"{envoy.admin}/stats") as resp:
        return resp.read().decode()


def forwarded(mock) -> list[dict]:
    """What the provider received: path, body's model and the x-llmgw-* headers, per request."""
    out = []
    for r in mock.requests():
        out.append({
            "path": r["path"],
            "model": json.loads(r["body"]).get("model"),
            "llmgw_headers": sorted(h for h in r["headers"] if h.lower().startswith("x-llmgw-")),
        })
    return out


# ---------------------------------------------------------------------------------------------
# translate alone (envoy/translate-only.yaml), pointed at the mock provider


def translate_only_config(port: int, admin_port: int, mock_port: int) -> dict:
    """envoy/translate-only.yaml with local ports and its cluster pointed at the mock."""
    config = yaml.safe_load((harness.ROOT / "envoy" / "translate-only.yaml").read_text())
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": port}
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    for cluster in config["static_resources"]["clusters"]:
        cluster["type"] = "STATIC"
        cluster.pop("dns_lookup_family", None)
        cluster.pop("transport_socket", None)
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                endpoint["endpoint"]["address"]["socket_address"] = {
                    "address": "127.0.0.1", "port_value": mock_port}
    return config


@pytest.fixture(scope="module")
def mock():
    provider = harness.MockProvider()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def translate_only(mock):
    config = translate_only_config(harness.free_port(), harness.free_port(), mock.port)
    envoy = harness.Envoy(config, harness.provider_env(set()))
    yield envoy
    envoy.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_translate_alone_takes_no_fact_from_a_client_header(translate_only, mock, stream):
    mock.clear()
    body = {"model": "claude-haiku-4-5", "max_tokens": 20, "stream": stream,
            "messages": [{"role": "user", "content": "Who am I?"}]}
    resp = rawhttp.post(f"{translate_only.url}/v1/chat/completions", body, FORGED)
    assert resp.status == 200, resp.body
    if stream:  # the mock's words come a chunk each
        assert resp.body.endswith(b"data: [DONE]\n\n"), resp.body
    else:
        assert resp.json()["choices"][0]["message"]["content"].startswith(
            "Hello from mock anthropic!")
    # The provider got the client's model (not a forged upstream model or target), and none of
    # the forged headers.
    assert forwarded(mock) == [
        {"path": "/v1/messages", "model": "claude-haiku-4-5", "llmgw_headers": []}]
    # No forged consumer, team or price became a metric label or a cost.
    text = stats(translate_only)
    assert "llmgw_tokens_total" in text, "translate counted no tokens at all"
    forged = [line for line in text.splitlines() if any(w in line for w in FORGED_WORDS)]
    assert forged == []
    assert "llmgw_cost_usd_nanos_total" not in text, "a cost without any catalogue price"


# ---------------------------------------------------------------------------------------------
# router + ratelimit + translate, no auth in front (ratelimit then counts everyone as anonymous)

ANONYMOUS_RPM = 2


@pytest.fixture(scope="module")
def no_auth(mock):
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.ratelimit": {"default": {"requests_per_minute": ANONYMOUS_RPM}}},
    )
    config = copy.deepcopy(config)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != "llmgw.auth"]
    envoy = harness.Envoy(config, harness.provider_env(set()))
    yield envoy
    envoy.stop()


def chat(envoy, headers: dict[str, str], model="gpt-4o-mini") -> rawhttp.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Hello"}]}
    return rawhttp.post(f"{envoy.url}/v1/chat/completions", body, headers)


def test_a_forged_header_does_not_change_what_router_chose(no_auth, mock):
    mock.clear()
    resp = chat(no_auth, FORGED)
    assert resp.status in (200, 429), resp.body
    if resp.status == 429:
        pytest.skip("the anonymous limit was spent by another test of this module")
    assert resp.json()["model"] == "gpt-4o-mini"
    assert forwarded(mock) == [
        {"path": "/v1/chat/completions", "model": "gpt-4o-mini", "llmgw_headers": []}]
    forged = [line for line in stats(no_auth).splitlines()
              if any(w in line for w in FORGED_WORDS)]
    assert forged == []


def test_a_forged_consumer_is_not_a_rate_limit_key(no_auth):
    """Without auth every client is `anonymous`; naming another consumer buys no new quota."""
    statuses = []
    for _ in range(ANONYMOUS_RPM + 1):
        resp = chat(no_auth, {})
        statuses.append(resp.status)
        if resp.status == 429:
            break
    if statuses[-1] != 429:
        pytest.skip(f"minute window rolled over mid-test: {statuses}")
    for consumer in ("mallory", "alice", "anonymous-2"):
        resp = chat(no_auth, {"x-llmgw-consumer": consumer, "x-llmgw-team": "forgers"})
        assert resp.status == 429, (consumer, resp.body)
        assert resp.headers["x-ratelimit-limit-requests"] == str(ANONYMOUS_RPM)
        assert "anonymous" in resp.json()["error"]["message"]
