"""Answers larger than Envoy's default 1 MiB buffer, through the shipped chain: translate holds a
translated answer whole before it rewrites it, so without envoy/gateway.yaml's
`per_request_buffer_limit_bytes` (16 MiB) Envoy answered a bare `500 Internal Server Error`.
The mock writes `[mock:words=N]` words (tests/mock-provider/README.md)."""

from __future__ import annotations

import hashlib

import pytest

import harness
import rawhttp

KEY = "sk-test-large-0123456789"
AUTH = {"keys": [{"sha256": hashlib.sha256(KEY.encode()).hexdigest(), "consumer": "large"}]}
RATELIMIT = {"default": {"requests_per_minute": 1000}}
THREE_MIB = 3 << 20


@pytest.fixture(scope="module")
def gateway():
    mock = harness.MockProvider()
    config = harness.gateway_config(port=harness.free_port(), admin_port=harness.free_port(),
                                    mock_port=mock.port,
                                    filter_configs={"llmgw.auth": AUTH,
                                                    "llmgw.ratelimit": RATELIMIT})
    envoy = harness.Envoy(config, harness.provider_env(set()))
    yield envoy
    envoy.stop()
    mock.stop()


def post(gateway, path: str, body: dict) -> rawhttp.Response:
    return rawhttp.post(f"{gateway.url}{path}", body, {"authorization": f"Bearer {KEY}"})


# ~6.5 bytes a word: 500,000 words are a ~3.2 MB answer.
@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gemini-2.5-flash", "gpt-4o-mini"])
def test_a_3_mib_answer_is_translated_whole(gateway, model):
    resp = post(gateway, "/v1/chat/completions",
                {"model": model, "max_tokens": 600_000,
                 "messages": [{"role": "user", "content": "[mock:words=500000]"}]})
    assert resp.status == 200, resp.body[:300]
    assert len(resp.body) > THREE_MIB
    answer = resp.json()
    assert answer["object"] == "chat.completion"
    content = answer["choices"][0]["message"]["content"]
    assert len(content.split(" ")) == 500_000
    assert answer["usage"]["completion_tokens"] == 500_000


def test_a_batch_of_embeddings_over_3_mib_is_translated_whole(gateway):
    # Gemini's batchEmbedContents: 100 inputs (its maximum) of 3072 dimensions each.
    resp = post(gateway, "/v1/embeddings",
                {"model": "gemini-embedding-001", "input": [f"text {i}" for i in range(100)]})
    assert resp.status == 200, resp.body[:300]
    assert len(resp.body) > THREE_MIB
    data = resp.json()["data"]
    assert [d["index"] for d in data] == list(range(100))
    assert {len(d["embedding"]) for d in data} == {3072}


def test_a_request_over_the_limit_is_refused_in_openai_format(gateway):
    resp = post(gateway, "/v1/chat/completions",
                {"model": "gpt-4o-mini",
                 "messages": [{"role": "user", "content": "x" * (17 << 20)}]})
    assert resp.status == 413, resp.body[:300]
    assert resp.json()["error"]["code"] == "request_too_large"
