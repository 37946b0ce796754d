"""Fidelity with real provider traffic, through the real Envoy with the official OpenAI SDK:
shapes the providers really send (recorded in the fixtures README) must reach clients as valid
OpenAI answers — tool calls without arguments, Azure's content filter chunks — and images count
by their pixels in the input estimate, not by their base64 bytes."""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib

NO_ARGS = {
    "type": "function",
    "function": {
        "name": "list_cities",
        "description": "Every city the service knows",
        "parameters": {"type": "object", "properties": {}},
    },
}


def streamed_calls(chunks) -> dict[int, dict]:
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(call.index, {"name": "", "arguments": ""})
            if call.function.name:
                entry["name"] = call.function.name
            entry["arguments"] += call.function.arguments or ""
    return calls


def test_anthropic_call_without_arguments_streams_empty_object(client):
    # Anthropic streams a call of a tool without parameters as one `partial_json: ""` (the mock
    # does as the API does); the client must get `{}`, as OpenAI sends, which parses as JSON.
    stream = client.chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "Which cities? [mock:tool=list_cities]"}],
        tools=[NO_ARGS],
        stream=True,
    )
    calls = streamed_calls(list(stream))
    assert calls == {0: {"name": "list_cities", "arguments": "{}"}}
    assert json.loads(calls[0]["arguments"]) == {}


def test_anthropic_call_without_arguments_non_stream(client):
    completion = client.chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "Which cities? [mock:tool=list_cities]"}],
        tools=[NO_ARGS],
    )
    call = completion.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("list_cities", "{}")


def test_azure_content_filter_stream_reads_as_openai_chunks(client):
    # `[mock:content_filter=1]`: the mock's Azure endpoint streams as Azure's content filter
    # does — a first chunk with `choices: []`, blank id/model/object and the prompt's filter
    # results, and an asynchronous-filter annotation chunk without `delta` after the content.
    stream = client.chat.completions.create(
        model="azure-gpt-4o-mini",
        messages=[{"role": "user", "content": "Stream a greeting [mock:content_filter=1]"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    *answer, usage_chunk = chunks
    # What client code does with every chunk of an answer.
    text = "".join(c.choices[0].delta.content or "" for c in answer)
    assert text.startswith("Hello from mock azure!"), text
    assert {c.id for c in chunks} == {answer[0].id} and answer[0].id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model for c in chunks)
    # The prompt's filter results ride on the first chunk, where README says they are.
    first = answer[0].model_extra["prompt_filter_results"]
    assert first[0]["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    # The annotation chunk is kept, with its verdict, as a valid chunk.
    annotations = [c for c in answer if "content_filter_offsets" in c.choices[0].model_extra]
    assert len(annotations) == 1
    assert annotations[0].choices[0].delta.content is None
    assert usage_chunk.choices == [] and usage_chunk.usage.completion_tokens > 0


def png(width: int, height: int) -> bytes:
    """A real PNG of random pixels (incompressible: its size is its pixels, ~3 bytes each)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + os.urandom(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b""))


def test_a_large_image_counts_its_pixels_not_its_bytes(client, mock):
    # A 490×490 photo-like PNG: ~720 KB, ~960 KB of base64 (the most that fits Envoy's default
    # 1 MiB request buffer). At bytes / 4 it was ~240k input tokens, over both context windows of
    # `economy` (128k and 200k): router refused it. By its pixels it is ~1.3k tokens.
    image = png(490, 490)
    assert len(image) > 700_000
    data = base64.b64encode(image).decode()
    completion = client.chat.completions.create(
        model="economy",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
        ]}],
        max_tokens=20,
    )
    assert completion.choices[0].message.content.startswith("Hello from mock openai!")
    sent = mock.requests()[-1]
    assert sent["path"] == "/v1/chat/completions" and data in sent["body"]
