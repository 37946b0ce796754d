"""Prompt caching through the whole chain: a Chat part's `cache_control` (the LiteLLM /
OpenRouter convention) to Anthropic and as Bedrock `cachePoint`s, a Messages client's
breakpoints to Bedrock, and cache reads and writes counted in each API's usage and in the token
metrics. The mock caches as the real APIs do (a prefix up to the last breakpoint, at least 1024
tokens, written on first sight and read after; Bedrock refuses cache points for models without
prompt caching)."""

from __future__ import annotations

import json
import math
import uuid

import anthropic
import pytest

from conftest import KEYS
from test_metrics import prometheus, value

# A system prompt long enough to be cached (over 1024 tokens); each test makes its own, so the
# mock's cache starts cold for it.
def book() -> str:
    return f"Book {uuid.uuid4().hex}. " + " ".join(["It was a truth universally acknowledged."] * 200)


def chat_request(text: str) -> list[dict]:
    return [
        {"role": "system", "content": [
            {"type": "text", "text": "You analyze literary works."},
            {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Analyze the major themes."},
    ]


def sent(mock, path: str) -> dict:
    matching = [r for r in mock.requests() if r["path"].startswith(path)]
    assert matching, f"the mock saw no request to {path}"
    return json.loads(matching[-1]["body"])


@pytest.mark.parametrize("model,path", [
    ("claude-haiku-4-5", "/v1/messages"),
    ("claude-sonnet-4-bedrock", "/model/us.anthropic.claude-sonnet-4-20250514-v1"),
], ids=["anthropic", "bedrock"])
def test_chat_cache_control_writes_then_reads_the_cache(client, mock, model, path):
    messages = chat_request(book())
    mock.clear()
    first = client.chat.completions.create(model=model, messages=messages)
    details = first.usage.prompt_tokens_details
    assert details.cached_tokens == 0
    # The openai SDK has the field (`PromptTokensDetails.cache_write_tokens`).
    written = details.cache_write_tokens
    assert written > 1024
    second = client.chat.completions.create(model=model, messages=messages)
    assert second.usage.prompt_tokens_details.cached_tokens == written
    assert second.usage.prompt_tokens_details.cache_write_tokens is None
    # Both count the cached prefix in prompt_tokens, as OpenAI does.
    assert second.usage.prompt_tokens == first.usage.prompt_tokens
    body = sent(mock, path)
    if path == "/v1/messages":
        assert body["system"][1]["cache_control"] == {"type": "ephemeral"}
    else:
        assert body["system"][2] == {"cachePoint": {"type": "default"}}


def test_cache_control_is_dropped_where_the_backend_has_no_such_thing(client, mock):
    """Gemini (the mock refuses unknown part fields, as Gemini does) and a Bedrock model
    without prompt caching (the mock refuses a cache point there, as Bedrock does)."""
    for model, path in [("gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:"),
                        ("claude-3-haiku-bedrock", "/model/anthropic.claude-3-haiku")]:
        mock.clear()
        answer = client.chat.completions.create(model=model, messages=chat_request(book()))
        assert answer.choices[0].message.content
        assert "cache" not in json.dumps(sent(mock, path)).lower()


def test_messages_breakpoints_become_bedrock_cache_points(gateway, mock):
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=KEYS["alice"], max_retries=0,
                                 timeout=20)
    system = [{"type": "text", "text": "You analyze literary works."},
              {"type": "text", "text": book(), "cache_control": {"type": "ephemeral"}}]
    ask = [{"role": "user", "content": "Analyze the major themes."}]
    mock.clear()
    first = claude.messages.create(model="claude-sonnet-4-bedrock", max_tokens=200,
                                   system=system, messages=ask)
    assert first.usage.cache_creation_input_tokens > 1024
    assert not first.usage.cache_read_input_tokens
    with claude.messages.stream(model="claude-sonnet-4-bedrock", max_tokens=200,
                                system=system, messages=ask) as s:
        second = s.get_final_message()
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.input_tokens == first.usage.input_tokens
    body = sent(mock, "/model/us.anthropic.claude-sonnet-4-20250514-v1")
    assert body["system"][-1] == {"cachePoint": {"type": "default"}}


def test_cache_tokens_are_counted_in_the_token_metrics(gateway, client):
    before = prometheus(gateway)
    messages = chat_request(book())
    first = client.chat.completions.create(model="claude-haiku-4-5", messages=messages)
    client.chat.completions.create(model="claude-haiku-4-5", messages=messages)
    written = first.usage.prompt_tokens_details.cache_write_tokens
    after = prometheus(gateway)
    for token_type, tokens in [("cache_write", written), ("cache_read", written)]:
        grown = (value(after, "llmgw_tokens_total", model="claude-haiku-4-5", token_type=token_type)
                 - value(before, "llmgw_tokens_total", model="claude-haiku-4-5",
                         token_type=token_type))
        assert grown == tokens, token_type


def test_cache_tokens_are_priced_by_the_catalogue(gateway, client):
    """claude-sonnet-4-bedrock's catalogue price: input $3, output $15, cache reads $0.30 and
    writes $3.75 per million tokens (envoy/gateway.yaml)."""
    messages = chat_request(book())
    for _ in range(2):
        before = value(prometheus(gateway), "llmgw_cost_usd_nanos_total",
                       model="us.anthropic.claude-sonnet-4-20250514-v1:0")
        answer = client.chat.completions.create(model="claude-sonnet-4-bedrock", messages=messages)
        after = value(prometheus(gateway), "llmgw_cost_usd_nanos_total",
                      model="us.anthropic.claude-sonnet-4-20250514-v1:0")
        usage = answer.usage
        read = usage.prompt_tokens_details.cached_tokens
        write = usage.prompt_tokens_details.cache_write_tokens or 0
        assert read + write > 1024
        fresh = usage.prompt_tokens - read - write
        usd_per_million = fresh * 3.0 + read * 0.3 + write * 3.75 + usage.completion_tokens * 15.0
        expected = math.floor(usd_per_million * 1000 + 0.5)  # Rust's round: half away from 0
        assert after - before == expected
