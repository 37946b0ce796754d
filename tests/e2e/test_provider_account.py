"""The provider account is the operator's: a provider refusing the gateway's key reaches the
client as a gateway error (502 `upstream_auth_failed`), never as the client's own
`invalid_api_key`; the provider's account headers (limits, organisation, project, request ids,
cookies) never reach the client; its request id does, as `x-provider-request-id`
(README, "Provider errors and headers")."""

from __future__ import annotations

import json

import pytest

import harness
import rawhttp
from conftest import AUTH_CONFIG, KEYS, RATELIMIT_CONFIG

AUTH = {"authorization": f"Bearer {KEYS['alice']}"}

# One model per provider family, chat and embeddings (envoy/gateway.yaml's router config).
CHAT = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "gemini": "gemini-2.5-flash",
    "vertex": "vertex-gemini-2.5-flash",
    "azure": "azure-gpt-4o-mini",
    "bedrock": "claude-3-haiku-bedrock",
}
EMBEDDINGS = {
    "openai": "text-embedding-3-small",
    "gemini": "gemini-embedding-001",
    "vertex": "vertex-text-embedding-005",
    "azure": "azure-text-embedding-3-small",
    "bedrock": "titan-embed",
}
CASES = ([(p, "chat", m) for p, m in CHAT.items()]
         + [(p, "stream", m) for p, m in CHAT.items()]
         + [(p, "embeddings", m) for p, m in EMBEDDINGS.items()])

# What the mock provider sends as the real APIs do (tests/mock-provider/src/account.rs).
ACCOUNT_PREFIXES = ("openai-", "anthropic-", "x-ms-", "apim-", "x-amzn-", "cf-")
ACCOUNT_EXACT = {"set-cookie", "request-id"}
# `x-ratelimit-*` the client sees are ratelimit's (the gateway's limits: 50000 and 100000 requests
# here); these are the mock provider's values.
PROVIDER_LIMITS = {"10000", "9999", "6ms", "30000000", "29999990", "99", "99990"}


def request(base: str, kind: str, model: str, text: str = "hello") -> rawhttp.Response:
    if kind == "embeddings":
        return rawhttp.post(f"{base}/v1/embeddings", {"model": model, "input": text}, AUTH)
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if kind == "stream":
        body["stream"] = True
    return rawhttp.post(f"{base}/v1/chat/completions", body, AUTH)


def own_gateway(mock, env: dict[str, str]) -> harness.Envoy:
    """An Envoy of its own: failures provoked here must not mark the shared gateway's
    deployments unhealthy."""
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH_CONFIG, "llmgw.ratelimit": RATELIMIT_CONFIG},
    )
    return harness.Envoy(config, env)


@pytest.fixture(scope="module")
def wrong_keys_gateway(mock):
    """The gateway with every provider credential wrong (the mock refuses each as its API does)."""
    env = harness.provider_env(set())
    for var, _ in harness.PROVIDER_KEYS.values():
        env[var] = "wrong-" + env[var]
    env["AWS_SECRET_ACCESS_KEY"] = "wrong-secret"
    envoy = own_gateway(mock, env)
    yield envoy
    envoy.stop()


@pytest.fixture(scope="module")
def failing_gateway(mock):
    envoy = own_gateway(mock, harness.provider_env(set()))
    yield envoy
    envoy.stop()


@pytest.mark.parametrize("provider,kind,model", CASES)
def test_a_refused_provider_key_is_a_gateway_error(wrong_keys_gateway, provider, kind, model):
    resp = request(wrong_keys_gateway.url, kind, model)
    assert resp.status == 502, (resp.status, resp.body)
    assert resp.headers["content-type"] == "application/json"
    error = resp.json()["error"]
    assert error["type"] == "api_error" and error["code"] == "upstream_auth_failed", error
    assert error["message"].startswith("upstream authentication failed"), error
    # Nothing of the provider's answer: not its error code, not its message, no key fragment.
    for word in ("invalid_api_key", "authentication_error", "API key", "wrong-", "x-api-key"):
        assert word not in resp.body.decode(), resp.body
    assert not account_headers(resp), resp.headers


def account_headers(resp: rawhttp.Response) -> list[str]:
    return [h for h, v in resp.headers.items()
            if h.startswith(ACCOUNT_PREFIXES) or h in ACCOUNT_EXACT
            or (h.startswith("x-ratelimit-") and v in PROVIDER_LIMITS)]


@pytest.mark.parametrize("provider,kind,model", CASES)
def test_provider_account_headers_do_not_reach_the_client(gateway, mock, provider, kind, model):
    resp = request(gateway.url, kind, model)
    assert resp.status == 200, resp.body
    assert not account_headers(resp), resp.headers
    # The provider's own request id, renamed; the gateway's stays in x-request-id.
    if provider in ("openai", "anthropic", "azure", "bedrock"):
        assert resp.headers["x-provider-request-id"], resp.headers
        assert resp.headers["x-provider-request-id"] != resp.headers["x-request-id"]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "azure"])
def test_a_provider_429_keeps_retry_after_and_drops_the_account(failing_gateway, provider):
    resp = request(failing_gateway.url, "chat", CHAT[provider], "[mock:status=429] slow down")
    assert resp.status == 429, resp.body
    assert resp.headers["retry-after"] == "7"
    assert not account_headers(resp), resp.headers
    assert json.loads(resp.body)["error"]["message"]
