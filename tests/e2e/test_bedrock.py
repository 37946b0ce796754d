"""Amazon Bedrock through the whole chain: the OpenAI SDK → real Envoy → SigV4-signed Converse,
ConverseStream (binary event stream, tool calls included) and InvokeModel embeddings at the
mock, which verifies every signature with the mock's AWS secret; and OpenAI embeddings."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import openai
import pytest

import harness
from conftest import KEYS

MODEL = "claude-3-haiku-bedrock"
UPSTREAM = "anthropic.claude-3-haiku-20240307-v1:0"
CONVERSE = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"


def bedrock_requests(mock, suffix: str) -> list[dict]:
    return [r for r in mock.requests() if r["path"].startswith("/model/") and r["path"].endswith(suffix)]


def test_non_stream_is_signed_and_translated(client, mock):
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello to Bedrock"},
        ],
        max_tokens=100,
        temperature=0.5,
    )
    assert completion.object == "chat.completion"
    assert completion.model == UPSTREAM
    choice = completion.choices[0]
    assert choice.message.content.startswith("Hello from mock bedrock!")
    assert "Say hello to Bedrock" in choice.message.content
    assert choice.finish_reason == "stop"
    assert completion.id.startswith("chatcmpl-")
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    seen = bedrock_requests(mock, "/converse")[-1]
    assert seen["path"] == CONVERSE
    headers = seen["headers"]
    assert headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDMOCKBEDROCK/"
    )
    assert "/us-east-1/bedrock/aws4_request" in headers["authorization"]
    assert headers["host"] == "bedrock-runtime.us-east-1.amazonaws.com"
    assert headers["x-amz-security-token"] == "mock-aws-session-token"
    assert "mock-aws-secret" not in str(seen)
    assert KEYS["alice"] not in str(seen)
    assert not any(name.startswith("x-llmgw-") for name in headers)
    assert '"inferenceConfig"' in seen["body"] and '"maxTokens":100' in seen["body"]


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream(client, mock, include_usage):
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Stream me a greeting"}],
        stream=True,
        **kwargs,
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = list(raw.parse())
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello from mock bedrock!") and "Stream me a greeting" in text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        assert len(usage_chunks) == 1 and usage_chunks[0].choices == []
        assert usage_chunks[0].usage.total_tokens == (
            usage_chunks[0].usage.prompt_tokens + usage_chunks[0].usage.completion_tokens
        )
    else:
        assert usage_chunks == []
    assert bedrock_requests(mock, "/converse-stream")[-1]["path"] == CONVERSE + "-stream"


def test_stream_is_not_buffered(client):
    delay_s, words = 0.25, 6
    start = time.monotonic()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"[mock:delay_ms={int(delay_s * 1000)}] [mock:words={words}] go"}],
        stream=True,
    )
    arrivals = [time.monotonic() - start for c in stream if c.choices and c.choices[0].delta.content]
    assert len(arrivals) >= words
    assert arrivals[-1] >= delay_s * (words - 1), arrivals
    assert arrivals[0] < arrivals[-1] - 2 * delay_s, f"stream was buffered: {arrivals}"


@pytest.mark.parametrize(
    "status,exc,code",
    [
        (429, openai.RateLimitError, "ThrottlingException"),
        (400, openai.BadRequestError, "ValidationException"),
        (503, openai.InternalServerError, "ServiceUnavailableException"),
    ],
)
def test_errors_keep_status_and_name_the_aws_error(client, status, exc, code):
    with pytest.raises(exc) as err:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"[mock:status={status}] hi"}]
        )
    assert err.value.status_code == status
    assert err.value.code == code
    assert err.value.message


def test_image_goes_as_bytes(client, mock):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        ]}],
    )
    assert "What is in this image?" in completion.choices[0].message.content
    seen = bedrock_requests(mock, "/converse")[-1]
    assert '{"image":{"format":"png","source":{"bytes":"' + png + '"}}}' in seen["body"]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}],
        )
    assert err.value.param == "messages[0].content[0].image_url.url"


def test_client_errors_are_refused_before_bedrock(client, mock):
    mock.clear()
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "get weather", "parameters": {}}}],
        )
    assert err.value.param == "tools[0].function.name"
    with pytest.raises(openai.BadRequestError) as err:
        # Structured output is a forced tool on Bedrock: it leaves no room for the client's.
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], response_format={"type": "json_object"},
            tools=[SONG],
        )
    assert err.value.param == "response_format"
    assert bedrock_requests(mock, "") == []


# ---------------------------------------------------------------------------------------------
# Tools (the round trips, streamed and not, are in test_providers.py with every backend)

SONG = {
    "type": "function",
    "function": {
        "name": "top_song",
        "description": "Get the most popular song played on a radio station.",
        "parameters": {"type": "object", "properties": {"sign": {"type": "string"}}, "required": ["sign"]},
    },
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_tool_choice_required_forces_a_call(client, mock, stream):
    kwargs = dict(model=MODEL, messages=[{"role": "user", "content": "Top song on WZPZ?"}],
                  tools=[SONG], tool_choice="required")
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
        deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        assert {d.index for d in deltas} == {0}
        assert deltas[0].id and deltas[0].function.name == "top_song"
        arguments = "".join(d.function.arguments or "" for d in deltas)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish == ["tool_calls"]
    else:
        completion = client.chat.completions.create(**kwargs)
        call = completion.choices[0].message.tool_calls[0]
        assert call.function.name == "top_song" and call.id
        arguments = call.function.arguments
        assert completion.choices[0].finish_reason == "tool_calls"
    assert json.loads(arguments) == {"sign": "mock sign"}
    sent = json.loads(bedrock_requests(mock, "/converse-stream" if stream else "/converse")[-1]["body"])
    assert sent["toolConfig"]["toolChoice"] == {"any": {}}
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"] == ["sign"]


STATION = {
    "type": "json_schema",
    "json_schema": {
        "name": "station",
        "schema": {"type": "object", "properties": {"sign": {"type": "string"}, "mhz": {"type": "number"}},
                   "required": ["sign", "mhz"]},
    },
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_json_schema_is_a_forced_tool_answered_as_content(client, mock, stream):
    # The answers themselves are checked on every backend in test_providers.py; here what
    # Converse gets, and that the tool never reaches the client.
    mock.clear()
    kwargs = dict(model=MODEL, messages=[{"role": "user", "content": "A radio station?"}],
                  response_format=STATION)
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
        assert not [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        completion = client.chat.completions.create(**kwargs)
        assert not completion.choices[0].message.tool_calls
        content = completion.choices[0].message.content
        finish = [completion.choices[0].finish_reason]
    assert finish == ["stop"]
    station = json.loads(content)
    assert isinstance(station["sign"], str) and isinstance(station["mhz"], (int, float))
    sent = json.loads(bedrock_requests(mock, "/converse-stream" if stream else "/converse")[-1]["body"])
    assert sent["toolConfig"]["toolChoice"] == {"tool": {"name": "station"}}
    [tool] = sent["toolConfig"]["tools"]
    assert tool["toolSpec"]["name"] == "station"
    assert tool["toolSpec"]["inputSchema"]["json"] == STATION["json_schema"]["schema"]


def test_tool_choice_none_sends_no_tools(client, mock):
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "[mock:tool=top_song] hi"}],
        tools=[SONG], tool_choice="none",
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.tool_calls is None
    sent = json.loads(bedrock_requests(mock, "/converse")[-1]["body"])
    assert "toolConfig" not in sent


def test_tool_results_merge_into_one_user_turn(client, mock):
    calls = [{"id": f"tooluse_{sign}", "type": "function",
              "function": {"name": "top_song", "arguments": json.dumps({"sign": sign})}}
             for sign in ("WZPZ", "WKRP")]
    answer = client.chat.completions.create(
        model=MODEL,
        tools=[SONG],
        messages=[
            {"role": "user", "content": "Top songs on WZPZ and WKRP?"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "tooluse_WZPZ", "content": "Elemental Hotel"},
            {"role": "tool", "tool_call_id": "tooluse_WKRP", "content": "Venus"},
        ],
    )
    assert answer.choices[0].message.content == "The tool said: Elemental Hotel Venus"
    sent = json.loads(bedrock_requests(mock, "/converse")[-1]["body"])
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["toolResult"]["toolUseId"] for b in sent["messages"][2]["content"]] == ["tooluse_WZPZ", "tooluse_WKRP"]
    assert sent["messages"][1]["content"][0]["toolUse"]["input"] == {"sign": "WZPZ"}


@pytest.mark.parametrize(
    "control,message,text_before",
    [
        # An exception frame after the content: everything before it arrived.
        ("[mock:bedrock_exception=throttlingException]", "mock throttlingException", "lorem ipsum dolor sit amet"),
        # A frame whose CRC fails: nothing of it (or after it) reaches the client.
        ("[mock:corrupt_crc=2]", "event stream is corrupt", "lorem ipsum"),
        ("[mock:truncate_after=2]", "before completion", "lorem ipsum"),
    ],
)
def test_broken_streams_end_with_an_error_event(client, control, message, text_before):
    text = ""
    with pytest.raises(openai.APIError) as err:
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"{control} [mock:words=5] go"}], stream=True
        )
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert message in err.value.message
    assert text == text_before


def test_a_wrong_secret_is_refused_by_the_signature_check(mock):
    """The mock really verifies SigV4: the same chain signing with a wrong secret gets 403, which
    the client sees as the gateway's 502 `upstream_auth_failed` (test_provider_account.py)."""
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
    )
    env = harness.provider_env(set())
    env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    envoy = harness.Envoy(config, env, concurrency=1)
    try:
        client = openai.OpenAI(base_url=f"{envoy.url}/v1", api_key=harness.DEMO_KEY, max_retries=0, timeout=20)
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert err.value.status_code == 502
        assert err.value.code == "upstream_auth_failed"
        assert "refused our credentials (HTTP 403)" in envoy.log()
        assert "not-the-secret" not in str(err.value.body)
    finally:
        envoy.stop()


def test_mock_refuses_unsigned_requests(mock):
    req = urllib.request.Request(
        f"{mock.url}{CONVERSE}", data=b'{"messages":[]}', method="POST",
        headers={"content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 403
    assert err.value.headers["x-amzn-errortype"] == "InvalidSignatureException"


# ---------------------------------------------------------------------------------------------
# Embeddings


@pytest.mark.parametrize("encoding", ["default", "float"])
def test_openai_embeddings(client, mock, encoding):
    kwargs = {} if encoding == "default" else {"encoding_format": "float"}
    result = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"], dimensions=8, **kwargs)
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in result.data)
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens == 2
    seen = [r for r in mock.requests() if r["path"] == "/v1/embeddings"][-1]
    assert seen["headers"]["authorization"] == "Bearer sk-mock-openai"
    assert '"text-embedding-3-small"' in seen["body"]


@pytest.mark.parametrize("encoding", ["default", "float"])
def test_bedrock_titan_embeddings(client, mock, encoding):
    kwargs = {} if encoding == "default" else {"encoding_format": "float"}
    result = client.embeddings.create(model="titan-embed", input="The quick brown fox", dimensions=256, **kwargs)
    assert result.object == "list"
    assert result.model == "amazon.titan-embed-text-v2:0"
    assert len(result.data) == 1 and len(result.data[0].embedding) == 256
    assert all(-1.0 <= v <= 1.0 for v in result.data[0].embedding)
    assert result.usage.prompt_tokens == 4 == result.usage.total_tokens
    seen = bedrock_requests(mock, "/invoke")[-1]
    assert seen["path"] == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert seen["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 ")


def test_bedrock_cohere_embeddings_batch(client):
    one = client.embeddings.create(model="cohere-embed", input="alpha", encoding_format="float")
    both = client.embeddings.create(model="cohere-embed", input=["alpha", "beta"], encoding_format="float")
    assert len(both.data) == 2 and len(both.data[0].embedding) == 1024
    # Deterministic: the same text embeds the same way, alone or in a batch.
    assert both.data[0].embedding == one.data[0].embedding
    assert both.data[1].embedding != both.data[0].embedding
    assert both.usage.prompt_tokens == 2


def test_bedrock_embedding_refusals(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="titan-embed", input=["a", "b"])
    assert err.value.param == "input"
    with pytest.raises(openai.RateLimitError) as err:
        client.embeddings.create(model="titan-embed", input="[mock:status=429] x")
    assert err.value.code == "ThrottlingException"


def test_embeddings_for_a_chat_only_provider_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="claude-haiku-4-5", input="x")
