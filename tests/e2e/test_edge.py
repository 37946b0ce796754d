"""Safe defaults at the edge (envoy/gateway.yaml): a client cannot steer Envoy with `x-envoy-*`
request headers, nor pass itself off as another address with `x-forwarded-for`; Envoy's own
`x-envoy-*` headers reach neither the provider nor the client (README, "The edge")."""

from __future__ import annotations

import uuid

import pytest

import harness
import rawhttp
from conftest import AUTH_CONFIG, KEYS, RATELIMIT_CONFIG
from test_access_log import access_log_line

AUTH = {"authorization": f"Bearer {KEYS['alice']}"}


@pytest.fixture(scope="module")
def gateway(mock):
    """Its own Envoy: the failures these tests provoke must not mark the shared gateway's
    deployments unhealthy."""
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH_CONFIG, "llmgw.ratelimit": RATELIMIT_CONFIG},
    )
    envoy = harness.Envoy(config, harness.provider_env(set()))
    yield envoy
    envoy.stop()


def chat(text: str, model: str = "gpt-4o-mini") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def tries(mock, marker: str) -> list[dict]:
    return [r for r in mock.requests() if marker in r["body"]]


# With `x-forwarded-for` naming an internal address, an Envoy that trusts the header would take
# the request for an internal one and obey its `x-envoy-*` headers.
FORWARDED = [{}, {"x-forwarded-for": "10.0.0.1"}, {"x-forwarded-for": "127.0.0.1"}]


@pytest.mark.parametrize("forwarded", FORWARDED)
@pytest.mark.parametrize("model", ["gpt-4o-mini", "resilient"])  # plain route, fallback route
def test_a_clients_retry_headers_cause_no_retries(gateway, mock, model, forwarded):
    marker = uuid.uuid4().hex
    resp = rawhttp.post(
        f"{gateway.url}/v1/chat/completions",
        chat(f"[mock:status=503] {marker}", model),
        {**AUTH, **forwarded, "x-envoy-retry-on": "5xx,retriable-status-codes", "x-envoy-max-retries": "5",
         "x-envoy-retriable-status-codes": "503", "x-envoy-retry-grpc-on": "unavailable"},
    )
    assert resp.status == 503, resp.body
    # gpt-4o-mini has no retry policy: one try. resilient: its own, one per member (2).
    assert len(tries(mock, marker)) == (1 if model == "gpt-4o-mini" else 2)


@pytest.mark.parametrize("forwarded", FORWARDED)
@pytest.mark.parametrize("header", ["x-envoy-upstream-rq-timeout-ms",
                                    "x-envoy-upstream-rq-per-try-timeout-ms"])
def test_a_clients_timeout_headers_do_not_shorten_the_timeout(gateway, mock, header, forwarded):
    resp = rawhttp.post(
        f"{gateway.url}/v1/chat/completions",
        chat("[mock:headers_delay_ms=1200] slow but fine", "resilient"),
        {**AUTH, **forwarded, header: "100"},
    )
    assert resp.status == 200, resp.body
    assert "slow but fine" in resp.json()["choices"][0]["message"]["content"]


def test_envoy_headers_reach_neither_provider_nor_client(gateway, mock):
    marker = uuid.uuid4().hex
    resp = rawhttp.post(
        f"{gateway.url}/v1/chat/completions", chat(marker),
        {**AUTH, "x-envoy-force-trace": "true", "x-envoy-ip-tags": "internal",
         "x-envoy-upstream-alt-stat-name": "forged", "x-envoy-internal": "true"},
    )
    assert resp.status == 200, resp.body
    assert not [h for h in resp.headers if h.startswith("x-envoy-")], resp.headers
    (seen,) = tries(mock, marker)
    assert not [h for h in seen["headers"] if h.startswith("x-envoy-")], seen["headers"]


def test_a_forged_x_forwarded_for_is_not_the_clients_address(gateway, mock):
    marker, request_id = uuid.uuid4().hex, str(uuid.uuid4())
    resp = rawhttp.post(
        f"{gateway.url}/v1/chat/completions", chat(marker),
        {**AUTH, "x-forwarded-for": "203.0.113.7", "x-request-id": request_id},
    )
    assert resp.status == 200, resp.body
    line = access_log_line(gateway, request_id)
    assert line["client"] == "127.0.0.1", line
    # Providers do not learn our clients' addresses.
    (seen,) = tries(mock, marker)
    assert "203.0.113.7" not in str(seen["headers"]), seen["headers"]
