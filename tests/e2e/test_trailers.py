"""Requests whose body ends with trailers (HTTP/2 HEADERS after the DATA frames): Envoy then never
hands the filters a body with `end_of_stream`, so router and translate must take the trailers as
the end of the body, through the whole chain on Envoy's HTTP/2 listener (`codec_type` AUTO)."""

from __future__ import annotations

import json

import pytest

import h2client
from conftest import KEYS


def chat(model: str, text: str) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}]}).encode()


HEADERS = {"authorization": f"Bearer {KEYS['alice']}", "content-type": "application/json"}
TRAILERS = {"x-checksum": "abc123"}


@pytest.mark.parametrize("model,provider", [("gpt-4o-mini", "openai"),
                                            ("claude-haiku-4-5", "anthropic")])
@pytest.mark.parametrize("chunk", [0, 16])
def test_a_chat_request_ended_by_trailers_is_routed_and_translated(gateway, mock, model,
                                                                  provider, chunk):
    mock.clear()
    resp = h2client.post(f"{gateway.url}/v1/chat/completions", chat(model, "with trailers"),
                         HEADERS, TRAILERS, chunk=chunk)
    assert resp.status == 200, resp.body
    answer = resp.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == (
        f"Hello from mock {provider}! You said: with trailers")
    assert len(mock.requests()) == 1


def test_an_embeddings_request_ended_by_trailers_is_routed(gateway):
    body = json.dumps({"model": "text-embedding-3-small", "input": ["a", "b"]}).encode()
    resp = h2client.post(f"{gateway.url}/v1/embeddings", body, HEADERS, TRAILERS)
    assert resp.status == 200, resp.body
    assert [d["index"] for d in resp.json()["data"]] == [0, 1]


def test_bad_input_ended_by_trailers_gets_routers_error(gateway):
    resp = h2client.post(f"{gateway.url}/v1/chat/completions", b'{"model": 7}', HEADERS, TRAILERS)
    assert resp.status == 400, resp.body
    assert resp.json()["error"]["code"] == "invalid_type"
    resp = h2client.post(f"{gateway.url}/v1/chat/completions", b"", HEADERS, TRAILERS)
    assert resp.status == 400, resp.body
    assert resp.json()["error"]["type"] == "invalid_request_error"


def test_the_same_request_without_trailers_still_works_over_http2(gateway):
    resp = h2client.post(f"{gateway.url}/v1/chat/completions", chat("gpt-4o-mini", "plain"),
                         HEADERS)
    assert resp.status == 200, resp.body
    assert resp.json()["choices"][0]["message"]["content"].endswith("You said: plain")
