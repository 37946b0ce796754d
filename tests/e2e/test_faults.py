"""Faults around the gateway and what the client sees (README, "Failure behaviour"): a provider
that resets mid-stream, stalls before or during an answer, or sends garbage; the rate limit
service down or slow; Redis down behind it. The timeouts are envoy/gateway.yaml's, scaled down
in the same order (per try < stream idle < route) so the tests take seconds, not minutes."""

from __future__ import annotations

import http.client
import json
import time

import pytest

import harness
import rawhttp
import rls
from conftest import AUTH_CONFIG, KEYS, RATELIMIT_CONFIG
from test_ratelimit import chat_body, global_config, post, start_gateway, stat

AUTH = {"authorization": f"Bearer {KEYS['alice']}"}
FAMILIES = ["gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash", "claude-3-haiku-bedrock"]
PER_TRY_S, IDLE_S, ROUTE_S = 1, 2, 4  # shipped: 120 s, 300 s, 600 s


@pytest.fixture(scope="module")
def gw(mock):
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH_CONFIG, "llmgw.ratelimit": RATELIMIT_CONFIG},
    )
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["stream_idle_timeout"] == "300s"
    hcm["stream_idle_timeout"] = f"{IDLE_S}s"
    for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
        assert route["route"]["timeout"] == "600s"
        route["route"]["timeout"] = f"{ROUTE_S}s"
        if "retry_policy" in route["route"]:
            route["route"]["retry_policy"]["per_try_timeout"] = f"{PER_TRY_S}s"
    envoy = harness.Envoy(config, harness.provider_env(set()))
    yield envoy
    envoy.stop()


def stream(gw, model: str, text: str) -> tuple[int, bytes, bool]:
    """(status, what arrived, whether the response ended cleanly)."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": text}]}
    conn.request("POST", "/v1/chat/completions", json.dumps(body),
                 {**AUTH, "content-type": "application/json"})
    resp = conn.getresponse()
    data, clean = b"", True
    try:
        while chunk := resp.read1(65536):
            data += chunk
    except http.client.IncompleteRead:
        clean = False
    finally:
        conn.close()
    return resp.status, data, clean


def chat(gw, model: str, text: str) -> rawhttp.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return rawhttp.post(f"{gw.url}/v1/chat/completions", body, AUTH)


def error_of(resp: rawhttp.Response) -> dict:
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    return resp.json()["error"]


@pytest.mark.parametrize("model", FAMILIES)
def test_a_provider_reset_mid_stream_cuts_the_clients_stream(gw, model):
    status, data, clean = stream(gw, model, "[mock:cut_after=2] tell me more")
    assert status == 200
    assert b'"content":"Hello"' in data  # what came before the reset arrived
    assert not clean and b"[DONE]" not in data  # and the client can tell it was cut


@pytest.mark.parametrize("model", FAMILIES)
def test_a_provider_stalling_mid_stream_longer_than_the_idle_timeout_is_cut(gw, model):
    started = time.monotonic()
    status, data, clean = stream(gw, model, f"[mock:delay_ms={IDLE_S * 1000 + 1500}] hi there")
    assert status == 200 and data.startswith(b"data: ")
    assert not clean and b"[DONE]" not in data
    assert time.monotonic() - started < ROUTE_S + 2


@pytest.mark.parametrize("model", FAMILIES)
def test_pauses_shorter_than_the_idle_timeout_are_fine(gw, model):
    # Few frames: the route timeout bounds the whole answer.
    status, data, clean = stream(gw, model, f"[mock:delay_ms={IDLE_S * 1000 // 4}] [mock:words=2] hi")
    assert status == 200 and clean and data.rstrip().endswith(b"data: [DONE]")


@pytest.mark.parametrize("streamed", [False, True])
def test_a_provider_silent_before_answering_is_a_504_in_openai_format(gw, streamed):
    text = f"[mock:headers_delay_ms={(IDLE_S + 2) * 1000}] anyone?"
    started = time.monotonic()
    if streamed:
        status, data, _ = stream(gw, "gpt-4o-mini", text)
        resp = rawhttp.Response(status, {"content-type": "application/json"}, data)
    else:
        resp = chat(gw, "gpt-4o-mini", text)
    assert resp.status == 504, resp.body
    assert error_of(resp)["code"] == "provider_timeout"
    assert IDLE_S - 0.5 < time.monotonic() - started < IDLE_S + 1.5


def test_a_silent_provider_in_a_fallback_chain_falls_back_after_the_per_try_timeout(gw):
    started = time.monotonic()
    resp = chat(gw, "resilient", f"[mock:openai_headers_delay_ms={(IDLE_S + 2) * 1000}] hello")
    assert resp.status == 200, resp.body
    assert resp.json()["model"].startswith("claude")
    assert PER_TRY_S - 0.5 < time.monotonic() - started < IDLE_S


TRANSLATED = FAMILIES[1:]  # translate reads their answers; OpenAI-schema answers pass unread


@pytest.mark.parametrize("model", TRANSLATED)
@pytest.mark.parametrize("garbage", ["html", "json"])
def test_garbage_instead_of_a_translated_answer_is_a_502(gw, model, garbage):
    resp = chat(gw, model, f"[mock:garbage={garbage}] hi")
    assert resp.status == 502, (resp.status, resp.body[:300])
    assert error_of(resp)["code"] == "upstream_unreadable"


@pytest.mark.parametrize("model", TRANSLATED)
def test_garbage_in_a_translated_stream_never_reaches_the_client(gw, model):
    status, data, clean = stream(gw, model, "[mock:garbage=sse] hi")
    if status == 502:  # not even the stream's media type (Bedrock's is binary event-stream)
        assert json.loads(data)["error"]["code"] == "upstream_unreadable"
        return
    assert status == 200
    events = [line[6:] for line in data.decode(errors="replace").splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    for event in events:  # every event the client gets is JSON: a chunk or an error
        json.loads(event)
    assert b"binary" not in data


@pytest.mark.parametrize("garbage,content_type", [("html", "text/html"),
                                                  ("json", "application/json")])
def test_an_openai_schema_answer_passes_unread_garbage_included(gw, garbage, content_type):
    """Documented limit (README, "Failure behaviour"): OpenAI-schema answers pass through
    unread, so what such a provider sends with a 200 reaches the client as sent."""
    resp = chat(gw, "gpt-4o-mini", f"[mock:garbage={garbage}] hi")
    assert resp.status == 200
    assert resp.headers["content-type"] == content_type
    assert resp.body.startswith(b"<html>" if garbage == "html" else b'{"id": "chatcmpl-cut"')


# ---- the rate limit service and Redis (global mode) ----


@pytest.fixture
def redis():
    server = rls.Redis()
    yield server
    server.stop()


def both_modes(mock, service):
    return (start_gateway(mock, global_config("open"), [rls.cluster(service.port)]),
            start_gateway(mock, global_config("closed"), [rls.cluster(service.port)]))


def test_a_slow_rate_limit_service_costs_at_most_its_timeout(mock, redis):
    service = rls.Rls(redis.url, delay_ms=3000)  # the tests' timeout_ms is 500
    open_gw, closed_gw = both_modes(mock, service)
    try:
        key, body = KEYS["alice"], chat_body("hi", max_tokens=4)
        started = time.monotonic()
        resp = post(open_gw, key, body)
        assert resp.status == 200, resp.body
        assert "x-ratelimit-limit-requests" not in resp.headers  # not counted
        resp = post(closed_gw, key, body)
        assert resp.status == 503, resp.body
        assert error_of(resp)["code"] == "rate_limit_service_unavailable"
        assert time.monotonic() - started < 2.5  # two requests, 0.5 s each at most + the answer
        for g in (open_gw, closed_gw):
            assert stat(g, "llmgw_ratelimit_rls_failures_total") >= 1
    finally:
        open_gw.stop()
        closed_gw.stop()
        service.stop()


def test_redis_down_behind_the_service_fails_open_or_closed_as_configured(mock, redis):
    service = rls.Rls(redis.url)
    open_gw, closed_gw = both_modes(mock, service)
    try:
        key, body = KEYS["alice"], chat_body("hi", max_tokens=4)
        for g in (open_gw, closed_gw):
            assert post(g, key, body).status == 200
        redis.stop()
        started = time.monotonic()
        resp = post(open_gw, key, body)
        assert resp.status == 200, resp.body
        assert "x-ratelimit-limit-requests" not in resp.headers
        resp = post(closed_gw, key, body)
        assert resp.status == 503, resp.body
        assert error_of(resp)["code"] == "rate_limit_service_unavailable"
        assert time.monotonic() - started < 2.5
    finally:
        open_gw.stop()
        closed_gw.stop()
        service.stop()
