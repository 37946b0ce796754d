"""The happy path: the official OpenAI SDK through the whole chain to each backend."""

from __future__ import annotations

import time

import pytest

from conftest import KEYS

BACKENDS = [
    # (model the client asks for, backend the mock speaks, model the provider is asked for)
    ("gpt-4o-mini", "openai", "gpt-4o-mini"),
    ("claude-haiku-4-5", "anthropic", "claude-haiku-4-5"),
    ("fast", "openai", "gpt-4o-mini"),
    ("smart", "anthropic", "claude-sonnet-4-5"),
]


def last_request(mock, path: str) -> dict:
    matching = [r for r in mock.requests() if r["path"] == path]
    assert matching, f"the mock provider saw no request to {path}"
    return matching[-1]


@pytest.mark.parametrize("model,backend,upstream_model", BACKENDS)
def test_non_stream(client, mock, model, backend, upstream_model):
    completion = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello to llmgw"},
        ],
        max_tokens=100,
    )
    assert completion.object == "chat.completion"
    assert completion.model == upstream_model
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content.startswith(f"Hello from mock {backend}!")
    assert "Say hello to llmgw" in choice.message.content
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    path = "/v1/chat/completions" if backend == "openai" else "/v1/messages"
    seen = last_request(mock, path)
    assert f'"{upstream_model}"' in seen["body"]


@pytest.mark.parametrize("model,backend,upstream_model", BACKENDS[:2])
@pytest.mark.parametrize("include_usage", [False, True])
def test_stream(client, model, backend, upstream_model, include_usage):
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Stream me a greeting"}],
        stream=True,
        **kwargs,
    )
    chunks = list(stream)
    assert chunks, "no chunk arrived"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1, "chunks of one completion share one id"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(f"Hello from mock {backend}!")
    assert "Stream me a greeting" in text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        assert len(usage_chunks) == 1 and usage_chunks[0].choices == []
        usage = usage_chunks[0].usage
        assert usage.completion_tokens > 0
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    else:
        assert usage_chunks == []


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku-4-5"])
def test_stream_is_not_buffered(client, model):
    """The first chunk reaches the client well before the provider sends the last one."""
    delay_s = 0.25
    words = 6
    start = time.monotonic()
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"[mock:delay_ms={int(delay_s * 1000)}] [mock:words={words}] go"}],
        stream=True,
    )
    arrivals = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - start)
    assert len(arrivals) >= words
    total = arrivals[-1]
    assert total >= delay_s * (words - 1), f"the mock did not pace the stream: {arrivals}"
    # Buffering would deliver everything at once, at the end.
    assert arrivals[0] < total - 2 * delay_s, f"stream was buffered: {arrivals}"


def test_client_key_never_reaches_provider_and_provider_key_never_reaches_client(client, mock):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    raw_anthropic = client.chat.completions.with_raw_response.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}]
    )
    for response in (raw, raw_anthropic):
        exposed = str(dict(response.headers)) + response.http_response.text
        assert "sk-mock-" not in exposed
        assert KEYS["alice"] not in exposed
    for seen in mock.requests():
        everything = str(seen)
        for key in KEYS.values():
            assert key not in everything
        assert not any(name.lower().startswith("x-llmgw-") for name in seen["headers"])
    openai_seen = last_request(mock, "/v1/chat/completions")
    assert openai_seen["headers"]["authorization"] == "Bearer sk-mock-openai"
    assert "x-api-key" not in openai_seen["headers"]
    anthropic_seen = last_request(mock, "/v1/messages")
    assert anthropic_seen["headers"]["x-api-key"] == "sk-mock-anthropic"
    assert "authorization" not in anthropic_seen["headers"]
    assert anthropic_seen["headers"]["anthropic-version"] == "2023-06-01"
