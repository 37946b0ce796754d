"""Anthropic Messages in: the official `anthropic` SDK through the whole chain.

To the Anthropic backend the body passes byte for byte but for `model`; the mock checks every
request as the real API does (thinking signatures included), so a changed byte fails there.
"""

from __future__ import annotations

import json
import math

import anthropic
import pytest

import harness
import rawhttp
from conftest import AUTH_CONFIG, KEYS, sha

TOOLS = [{
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}]


@pytest.fixture
def claude(gateway):
    """The official Anthropic SDK pointed at the gateway, as alice (x-api-key). Retries off."""
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=KEYS["alice"], max_retries=0, timeout=20
    )


def requests_to(mock, path: str) -> list[dict]:
    return [r for r in mock.requests() if r["path"] == path]


def test_create_passes_through_to_anthropic(claude, mock):
    mock.clear()
    message = claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=200,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Say hello to llmgw"}],
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("Hello from mock anthropic!")
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    (seen,) = requests_to(mock, "/v1/messages")
    assert seen["headers"]["x-api-key"] == "sk-mock-anthropic"
    # The SDK's own version is kept (the configured 2023-06-01 is for clients that send none).
    assert seen["headers"]["anthropic-version"] == claude.default_headers["anthropic-version"]
    assert "authorization" not in seen["headers"]
    body = json.loads(seen["body"])
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_body_bytes_are_untouched_but_the_model(gateway, mock):
    """An alias (router picks another model name): only the `model` value changes."""
    mock.clear()
    raw = ('{"max_tokens": 50,\n "model":"claude-sonnet",  "messages": [{"role": "user", '
           '"content": [{"type": "text", "text": "Hi \\u00e9", "cache_control": '
           '{"type": "ephemeral"}}]}], "temperature": 0.50, "metadata": {"user_id": "u-1"}}')
    resp = rawhttp.post(f"{gateway.url}/v1/messages", raw, {
        "x-api-key": KEYS["alice"], "anthropic-version": "2023-06-01",
        "anthropic-beta": "prompt-caching-2024-07-31"})
    assert resp.status == 200, resp.body
    (seen,) = requests_to(mock, "/v1/messages")
    assert seen["body"] == raw.replace('"claude-sonnet"', '"claude-sonnet-4-5-20250929"')
    assert seen["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"


def test_stream_with_thinking(claude, mock):
    events = []
    with claude.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Stream me a greeting"}],
    ) as stream:
        for event in stream:
            events.append(event.type)
        final = stream.get_final_message()
    assert events[0] == "message_start"
    assert "thinking" in events and "signature" in events and "text" in events
    assert events[-1] == "message_stop"
    thinking, text = final.content
    assert thinking.type == "thinking" and thinking.signature.startswith("EqMock")
    assert text.text.startswith("Hello from mock anthropic!")
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_tool_round_trip_keeps_the_thinking_signature(claude, mock, stream):
    """A thinking block sent back with its signature: the mock verifies the signature, as
    Anthropic does, and refuses a tool result without the thinking that made the call."""
    thinking = {"type": "enabled", "budget_tokens": 1024}
    ask = [{"role": "user", "content": "Weather in Paris? [mock:tool=get_weather]"}]
    if stream:
        with claude.messages.stream(model="claude-haiku-4-5", max_tokens=2048,
                                    thinking=thinking, tools=TOOLS, messages=ask) as s:
            first = s.get_final_message()
    else:
        first = claude.messages.create(model="claude-haiku-4-5", max_tokens=2048,
                                       thinking=thinking, tools=TOOLS, messages=ask)
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    call = first.content[1]
    assert call.name == "get_weather" and isinstance(call.input["city"], str)
    turns = ask + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "18 C and sunny"}]},
    ]
    second = claude.messages.create(model="claude-haiku-4-5", max_tokens=2048,
                                    thinking=thinking, tools=TOOLS, messages=turns)
    assert second.content[-1].text == "The tool said: 18 C and sunny"
    assert second.stop_reason == "end_turn"
    # The same turn with the thinking block altered is refused by the provider, and the
    # client sees Anthropic's error as Anthropic sent it.
    turns[1]["content"][0]["thinking"] += " (edited)"
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=2048,
                               thinking=thinking, tools=TOOLS, messages=turns)
    assert "signature" in str(err.value)


def test_bearer_auth_works_too(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, auth_token=KEYS["alice"],
                                 max_retries=0, timeout=20)
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=20,
                                     messages=[{"role": "user", "content": "Hi"}])
    assert message.content[0].text.startswith("Hello from mock anthropic!")


def test_local_refusals_are_anthropic_errors(gateway, claude):
    """auth, router and ratelimit answer a Messages client in Anthropic's format, so the SDK
    raises its own typed errors."""
    bad_key = anthropic.Anthropic(base_url=gateway.url, api_key="sk-nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as err:
        bad_key.messages.create(model="claude-haiku-4-5", max_tokens=5,
                                messages=[{"role": "user", "content": "Hi"}])
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "authentication_error"

    with pytest.raises(anthropic.NotFoundError) as err:
        claude.messages.create(model="no-such-model", max_tokens=5,
                               messages=[{"role": "user", "content": "Hi"}])
    assert err.value.body["error"]["type"] == "not_found_error"
    assert "no-such-model" in err.value.body["error"]["message"]

    resp = rawhttp.post(f"{gateway.url}/v1/messages", "{not json",
                        {"x-api-key": KEYS["alice"]})
    assert resp.status == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert resp.json()["type"] == "error"

    bob = anthropic.Anthropic(base_url=gateway.url, api_key=KEYS["bob"], max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as err:
        bob.messages.create(model="claude-haiku-4-5", max_tokens=5,
                            messages=[{"role": "user", "content": "Hi"}])
    assert err.value.body["error"]["type"] == "permission_error"


LIMITED_KEYS = {"msg-tok": "sk-msg-tok-0123456789", "msg-one": "sk-msg-one-0123456789"}


@pytest.fixture(scope="module")
def limited(mock):
    """A gateway of its own with token and request limits for Messages clients."""
    auth = {"keys": AUTH_CONFIG["keys"] + [{"sha256": sha(k), "consumer": c}
                                           for c, k in LIMITED_KEYS.items()]}
    ratelimit = {"default": {"requests_per_hour": 100000},
                 "consumers": {"msg-tok": {"total_tokens_per_hour": 100000},
                               "msg-one": {"requests_per_hour": 1}}}
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": auth, "llmgw.ratelimit": ratelimit})
    envoy = harness.Envoy(config, harness.provider_env(set()))
    yield envoy
    envoy.stop()


def test_rate_limited_messages_client_gets_anthropic_429(limited):
    one = anthropic.Anthropic(base_url=limited.url, api_key=LIMITED_KEYS["msg-one"],
                              max_retries=0)
    one.messages.create(model="claude-haiku-4-5", max_tokens=5,
                        messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(anthropic.RateLimitError) as err:
        one.messages.create(model="claude-haiku-4-5", max_tokens=5,
                            messages=[{"role": "user", "content": "Hi"}])
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "rate_limit_error"
    assert int(err.value.response.headers["retry-after"]) >= 1


def test_messages_are_charged_their_real_usage(limited):
    """ratelimit charges a Messages answer what translate read off it (streamed or not), not
    the estimate: the next admission shows the real counts."""
    key = LIMITED_KEYS["msg-tok"]
    claude = anthropic.Anthropic(base_url=limited.url, api_key=key, max_retries=0)
    ask = {"model": "claude-haiku-4-5", "max_tokens": 500,
           "messages": [{"role": "user", "content": "Tell me a short story"}]}
    first = claude.messages.create(**ask)
    with claude.messages.stream(**ask) as stream:
        second = stream.get_final_message()
    spent = sum(m.usage.input_tokens + m.usage.output_tokens for m in (first, second))
    assert spent < 500, "the estimates (max_tokens 500 each) must differ from the usage"
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 7,
                       "messages": [{"role": "user", "content": "next"}]})
    resp = rawhttp.post(f"{limited.url}/v1/chat/completions", body,
                        {"authorization": f"Bearer {key}"})
    assert resp.status == 200
    est = math.ceil(len(body) / 4) + 7
    assert int(resp.headers["x-ratelimit-remaining-tokens"]) == 100000 - spent - est


def test_provider_errors_reach_the_client_as_anthropic_sent_them(claude):
    with pytest.raises(anthropic.RateLimitError) as err:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=5,
                               messages=[{"role": "user", "content": "Hi [mock:status=429]"}])
    assert err.value.body["error"]["type"] == "rate_limit_error"


def test_count_tokens_passes_through_to_anthropic(claude, mock):
    mock.clear()
    counted = claude.messages.count_tokens(
        model="claude-haiku-4-5", system="You are terse.",
        messages=[{"role": "user", "content": "Hello, world"}])
    # The mock's own count: its tokenizer, as Anthropic answers with its own.
    assert counted.input_tokens == (3 + 3) + (4 + 3)
    (seen,) = requests_to(mock, "/v1/messages/count_tokens")
    assert seen["headers"]["x-api-key"] == "sk-mock-anthropic"


def test_count_tokens_elsewhere_is_an_estimate(claude, mock):
    mock.clear()
    counted = claude.messages.count_tokens(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello, world"}])
    assert counted.input_tokens == 6  # "Hello, world": 12 bytes / 4 + 3 for the message
    assert not mock.requests(), "an estimate never reaches the provider"


BETA_CONFIG_PROVIDERS = [
    {"name": "anthropic", "schema": "anthropic", "key_env": "ANTHROPIC_API_KEY",
     "anthropic_betas": ["prompt-caching-2024-07-31", "interleaved-thinking-2025-05-14"]},
]


def test_beta_flags_a_provider_does_not_accept_are_dropped(claude, mock):
    """The shared gateway lists no flags (all pass): a flag Anthropic does not know fails the
    whole request there, as the real API does. With `anthropic_betas`, only the listed flags
    leave and the same request succeeds."""
    flags = "prompt-caching-2024-07-31,brand-new-feature-2099-01-01"
    ask = {"model": "claude-haiku-4-5", "max_tokens": 20,
           "messages": [{"role": "user", "content": "Hi"}],
           "extra_headers": {"anthropic-beta": flags}}
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(**ask)
    assert "brand-new-feature-2099-01-01" in str(err.value)

    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH_CONFIG,
                        "llmgw.translate": {"providers": BETA_CONFIG_PROVIDERS}})
    envoy = harness.Envoy(config, harness.provider_env(set()))
    try:
        mock.clear()
        client = anthropic.Anthropic(base_url=envoy.url, api_key=KEYS["alice"], max_retries=0)
        message = client.messages.create(**ask)
        assert message.content[0].text.startswith("Hello from mock anthropic!")
        (seen,) = requests_to(mock, "/v1/messages")
        assert seen["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    finally:
        envoy.stop()
