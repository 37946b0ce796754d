"""Anthropic Messages clients on every other backend: the official `anthropic` SDK through the
whole chain to the mock's OpenAI, Azure, Gemini, Vertex, Bedrock and keyless OpenAI-compatible
backends, each checked by the mock as strictly as the real API."""

from __future__ import annotations

import json

import anthropic
import pytest

import rawhttp
from conftest import KEYS

# (model the client asks for, path the provider is called on)
BACKENDS = [
    ("gpt-4o-mini", "/v1/chat/completions"),
    ("azure-gpt-4o-mini", "/openai/deployments/gpt-4o-mini-prod/chat/completions"),
    ("gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:"),
    ("vertex-gemini-2.5-flash", "/v1/projects/my-gcp-project/locations/us-central1/"),
    ("claude-3-haiku-bedrock", "/model/anthropic.claude-3-haiku-20240307-v1"),
    ("llama3.2", "/local/v1/chat/completions"),
]
IDS = [model for model, _ in BACKENDS]

TOOLS = [{
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]},
    "cache_control": {"type": "ephemeral"},
}]


@pytest.fixture
def claude(gateway):
    return anthropic.Anthropic(base_url=gateway.url, api_key=KEYS["alice"], max_retries=0,
                               timeout=20)


def seen(mock, path: str) -> dict:
    matching = [r for r in mock.requests() if r["path"].startswith(path)]
    assert matching, f"the mock saw no request to {path}"
    return matching[-1]


@pytest.mark.parametrize("model,path", BACKENDS, ids=IDS)
def test_create(claude, mock, model, path):
    mock.clear()
    message = claude.messages.create(
        model=model, max_tokens=300,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Say hello to llmgw"}],
    )
    assert message.type == "message" and message.role == "assistant"
    (block,) = message.content
    assert block.type == "text" and block.text.startswith("Hello from mock ")
    assert "Say hello to llmgw" in block.text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    request = seen(mock, path)
    assert "cache_control" not in request["body"]


@pytest.mark.parametrize("model,path", BACKENDS, ids=IDS)
def test_stream(claude, model, path):
    kinds = []
    with claude.messages.stream(model=model, max_tokens=300,
                                messages=[{"role": "user", "content": "Stream me a greeting"}]) as s:
        for event in s:
            kinds.append(event.type)
        final = s.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "text" in kinds and "message_delta" in kinds
    assert final.content[0].text.startswith("Hello from mock ")
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("model,path", BACKENDS, ids=IDS)
def test_tool_round_trip(claude, mock, model, path, stream):
    ask = [{"role": "user", "content": "Weather in Paris? [mock:tool=get_weather]"}]
    if stream:
        with claude.messages.stream(model=model, max_tokens=300, tools=TOOLS, messages=ask) as s:
            first = s.get_final_message()
    else:
        first = claude.messages.create(model=model, max_tokens=300, tools=TOOLS, messages=ask)
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if b.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert isinstance(calls[0].input["city"], str)
    turns = ask + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": calls[0].id, "content": "18 C and sunny"}]},
    ]
    second = claude.messages.create(model=model, max_tokens=300, tools=TOOLS, messages=turns)
    assert second.stop_reason == "end_turn"
    assert "18 C and sunny" in second.content[0].text


@pytest.mark.parametrize("model,path", BACKENDS[:3], ids=IDS[:3])
def test_provider_errors_are_anthropic_errors(claude, model, path):
    for status, error in [(429, anthropic.RateLimitError), (400, anthropic.BadRequestError)]:
        with pytest.raises(error) as err:
            claude.messages.create(model=model, max_tokens=5, messages=[
                {"role": "user", "content": f"Hi [mock:status={status}]"}])
        assert err.value.body["type"] == "error"
        assert err.value.status_code == status


def test_unsupported_fields_are_refused_by_name(claude, mock):
    mock.clear()
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(model="gpt-4o-mini", max_tokens=2048, extra_body={"top_k": 5},
                               messages=[{"role": "user", "content": "Hi"}])
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert "`top_k`" in err.value.body["error"]["message"]
    assert not mock.requests(), "a refused request reached the provider"


def test_a_stream_that_ends_early_raises_in_the_sdk(claude):
    """The provider ends its stream cleanly before the last chunk: the client gets an Anthropic
    `error` event, which the SDK raises (not a message cut short)."""
    with pytest.raises(anthropic.APIStatusError) as err:
        with claude.messages.stream(model="gpt-4o-mini", max_tokens=300, messages=[
                {"role": "user", "content": "Tell me a long story [mock:truncate_after=2] [mock:words=30]"}]) as s:
            for _ in s:
                pass
    assert "ended before completion" in str(err.value)


CLAUDE_CODE_HEADERS = {
    # What Claude Code sends along (its beta flags and identity headers).
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
                      "fine-grained-tool-streaming-2025-05-14",
    "x-app": "cli",
    "user-agent": "claude-cli/2.0.0 (external, cli)",
}
CODE_TOOLS = [
    {"name": "Read", "description": "Reads a file from the local filesystem.",
     "input_schema": {"type": "object", "additionalProperties": False,
                      "properties": {"file_path": {"type": "string"}},
                      "required": ["file_path"], "$schema": "http://json-schema.org/draft-07/schema#"}},
    {"name": "Bash", "description": "Executes a given bash command.",
     "input_schema": {"type": "object", "additionalProperties": False,
                      "properties": {"command": {"type": "string"},
                                     "timeout": {"type": "number"}},
                      "required": ["command"], "$schema": "http://json-schema.org/draft-07/schema#"},
     "cache_control": {"type": "ephemeral"}},
]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gemini-2.5-flash"])
def test_a_claude_code_like_loop_completes(gateway, model):
    """A scripted agent loop as Claude Code runs it: streamed turns with tools, system blocks
    with cache_control, metadata, beta headers, a count_tokens call, tool results fed back,
    until the model answers without a tool call."""
    client = anthropic.Anthropic(base_url=gateway.url, api_key=KEYS["alice"], max_retries=0,
                                 timeout=20, default_headers=CLAUDE_CODE_HEADERS)
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": "You are an interactive CLI tool that helps users with "
                                 "software engineering tasks.", "cache_control": {"type": "ephemeral"}},
    ]
    script = [
        ("Read the README [mock:tool=Read]", "Read"),
        ("Now run the tests [mock:tool=Bash]", "Bash"),
        ("Summarize what you did", None),
    ]
    messages = []
    for prompt, tool in script:
        messages.append({"role": "user", "content": [{"type": "text", "text": prompt}]})
        counted = client.messages.count_tokens(model=model, system=system, tools=CODE_TOOLS,
                                               messages=messages)
        assert counted.input_tokens > 0
        while True:
            with client.messages.stream(model=model, max_tokens=4096, system=system,
                                        tools=CODE_TOOLS, extra_body={"temperature": 1},
                                        metadata={"user_id": "user_abc_account_def_session_1"},
                                        messages=messages) as stream:
                for _ in stream:
                    pass
                reply = stream.get_final_message()
            messages.append({"role": "assistant",
                             "content": [b.model_dump(exclude_none=True) for b in reply.content]})
            if reply.stop_reason != "tool_use":
                break
            calls = [b for b in reply.content if b.type == "tool_use"]
            assert [c.name for c in calls] == [tool]
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": c.id, "content": f"output of {c.name}"}
                for c in calls]})
        assert reply.stop_reason == "end_turn"
        text = "".join(b.text for b in reply.content if b.type == "text")
        if tool:
            assert f"output of {tool}" in text, text
        else:
            assert text.startswith("Hello from mock ") and "Summarize" in text
    assert len(messages) == 3 * 2 + 2 * 2
