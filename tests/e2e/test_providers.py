"""Every backend through the real Envoy with the OpenAI SDK: text, streams, tool call round
trips, images and structured output against OpenAI, Anthropic, Gemini, Vertex AI and Azure
OpenAI, and tool calls on Amazon Bedrock too (the mock provider speaks each API and checks
requests like the real one)."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlparse

import openai
import pytest

from conftest import KEYS

BACKENDS = [
    # (model the client asks for, name the mock replies with)
    ("gpt-4o-mini", "openai"),
    ("claude-haiku-4-5", "anthropic"),
    ("gemini-2.5-flash", "gemini"),
    ("vertex-gemini-2.5-flash", "gemini"),
    ("azure-gpt-4o-mini", "azure"),
]
MODELS = [m for m, _ in BACKENDS]
# Tools and structured output also work on Bedrock (Converse `toolConfig`; `response_format` is a
# forced tool there), which takes no image links.
TOOL_MODELS = MODELS + ["claude-3-haiku-bedrock"]
JSON_MODELS = MODELS + ["claude-3-haiku-bedrock"]

# A 1×1 PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}


def requests_to(mock, fragment: str) -> list[dict]:
    return [r for r in mock.requests() if fragment in r["path"]]


@pytest.mark.parametrize("model,name", BACKENDS)
def test_text_non_stream(client, model, name):
    completion = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hi to llmgw"},
        ],
        max_tokens=50,
    )
    message = completion.choices[0].message
    assert message.content.startswith(f"Hello from mock {name}!"), message.content
    assert "Say hi to llmgw" in message.content
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.parametrize("model,name", BACKENDS)
def test_text_stream_with_usage(client, model, name):
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Stream a greeting"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(f"Hello from mock {name}!"), text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    usage = chunks[-1].usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_each_provider_gets_its_path_and_key_header(client, mock):
    for model in MODELS:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    gemini = requests_to(mock, "/v1beta/models/gemini-2.5-flash:generateContent")[-1]
    assert gemini["headers"]["x-goog-api-key"] == "mock-gemini-key"
    assert "authorization" not in gemini["headers"]
    vertex = requests_to(
        mock,
        "/v1/projects/my-gcp-project/locations/us-central1/publishers/google/models/"
        "gemini-2.5-flash:generateContent",
    )[-1]
    assert vertex["headers"]["authorization"] == "Bearer mock-vertex-token"
    assert "x-goog-api-key" not in vertex["headers"]
    azure = requests_to(mock, "/openai/deployments/gpt-4o-mini-prod/chat/completions")[-1]
    assert azure["query"] == "api-version=2024-10-21"
    assert azure["headers"]["api-key"] == "mock-azure-key"
    assert "authorization" not in azure["headers"]
    body = json.loads(gemini["body"])
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_gemini_stream_uses_sse_method(client, mock):
    list(client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}], stream=True))
    seen = requests_to(mock, "/v1beta/models/gemini-2.5-flash:streamGenerateContent")[-1]
    assert seen["query"] == "alt=sse"


def collect_tool_calls(chunks) -> dict[int, dict]:
    """Reassemble streamed tool calls by their index, as the OpenAI SDK helpers do."""
    calls: dict[int, dict] = {}
    for chunk in chunks:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            if delta.id:
                assert call["id"] in (None, delta.id), "a call's id changed mid-stream"
                call["id"] = delta.id
            if delta.function and delta.function.name:
                call["name"] += delta.function.name
            if delta.function and delta.function.arguments:
                call["arguments"] += delta.function.arguments
    return calls


def ask_for_tools(client, model, stream, tools_requested="get_weather"):
    messages = [{"role": "user", "content": f"[mock:tool={tools_requested}] What's up in Paris?"}]
    kwargs = dict(model=model, messages=messages, tools=[WEATHER, TIME], tool_choice="auto")
    if not stream:
        completion = client.chat.completions.create(**kwargs)
        choice = completion.choices[0]
        calls = [
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
            for c in choice.message.tool_calls or []
        ]
        return messages, calls, choice.finish_reason
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    calls = [v for _, v in sorted(collect_tool_calls(chunks).items())]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return messages, calls, finishes[-1] if finishes else None


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("model", TOOL_MODELS)
def test_tool_call_round_trip(client, model, stream):
    messages, calls, finish = ask_for_tools(client, model, stream)
    assert finish == "tool_calls"
    assert [c["name"] for c in calls] == ["get_weather"]
    args = json.loads(calls[0]["arguments"])
    assert isinstance(args["city"], str) and args["unit"] in ("celsius", "fahrenheit")
    assert calls[0]["id"]

    messages = messages + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temperature": 22}'},
    ]
    answer = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER, TIME])
    assert answer.choices[0].finish_reason == "stop"
    assert "The tool said" in answer.choices[0].message.content
    assert "22" in answer.choices[0].message.content


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("model", TOOL_MODELS)
def test_parallel_tool_calls_keep_their_order_ids_and_indexes(client, model, stream):
    _, calls, finish = ask_for_tools(client, model, stream, "get_weather,get_time")
    assert finish == "tool_calls"
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert len({c["id"] for c in calls}) == 2
    for call in calls:
        json.loads(call["arguments"])


@pytest.mark.parametrize("model", MODELS)
def test_image_input_as_data_url(client, model, mock):
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]}],
    )
    assert "What is in this image?" in completion.choices[0].message.content
    assert PNG in mock.requests()[-1]["body"], "the image did not reach the provider"


def test_gemini_refuses_image_urls_it_would_have_to_fetch(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}],
        )
    body = err.value.response.json()["error"]
    assert body["param"] == "messages[0].content[0].image_url.url"
    assert "data:" in body["message"]


def test_anthropic_takes_image_urls(client, mock):
    client.chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}],
    )
    body = json.loads(requests_to(mock, "/v1/messages")[-1]["body"])
    assert body["messages"][0]["content"][1]["source"] == {
        "type": "url", "url": "https://example.com/cat.png"}


PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                           "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["name", "age", "tags"],
            "additionalProperties": False,
        },
    },
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("model", JSON_MODELS)
def test_json_schema_output(client, model, stream):
    kwargs = dict(model=model, messages=[{"role": "user", "content": "Invent a person"}],
                  response_format=PERSON)
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finishes == ["stop"]
    else:
        completion = client.chat.completions.create(**kwargs)
        content = completion.choices[0].message.content
        assert completion.choices[0].finish_reason == "stop"
        assert not completion.choices[0].message.tool_calls
    person = json.loads(content)
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    assert isinstance(person["tags"], list)


@pytest.mark.parametrize("model", JSON_MODELS)
def test_json_object_output(client, model):
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Answer in JSON"}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(completion.choices[0].message.content), dict)


def test_gemini_maps_json_schema_to_response_schema(client, mock):
    client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "x"}],
        response_format=PERSON, seed=7, temperature=0.2, stop=["END"],
    )
    config = json.loads(requests_to(mock, ":generateContent")[-1]["body"])["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "additionalProperties" not in config["responseSchema"]
    assert config["responseSchema"]["required"] == ["name", "age", "tags"]
    assert (config["seed"], config["temperature"], config["stopSequences"]) == (7, 0.2, ["END"])


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "vertex-gemini-2.5-flash"])
def test_gemini_refuses_what_it_cannot_honour(client, model):
    for kwargs, param in [({"n": 2}, "n"), ({"logprobs": True}, "logprobs"),
                          ({"parallel_tool_calls": False, "tools": [WEATHER]}, "parallel_tool_calls")]:
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], **kwargs)
        assert err.value.response.json()["error"]["param"] == param


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "azure-gpt-4o-mini"])
def test_provider_429_keeps_status_and_retry_after(client, model):
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "[mock:status=429] hi"}])
    assert err.value.response.headers.get("retry-after") == "7"
    body = err.value.response.json()["error"]
    assert body["type"] in ("rate_limit_error", "requests", "429")
    assert body["message"]


def test_gemini_error_becomes_openai_error(client):
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "[mock:status=500] hi"}])
    body = err.value.response.json()["error"]
    assert (body["type"], body["code"]) == ("api_error", "internal")


def test_gemini_stream_truncated_ends_with_an_error_event(client):
    received = []
    with pytest.raises(openai.APIError) as err:
        for chunk in client.chat.completions.create(
            model="gemini-2.5-flash", stream=True,
            messages=[{"role": "user", "content": "[mock:truncate_after=2] [mock:words=20] go"}],
        ):
            received.append(chunk)
    assert received
    assert "before completion" in err.value.message


def test_keyless_openai_compatible_server(client, mock):
    completion = client.chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "hi"}],
        store=True, service_tier="auto",  # dropped by config: this server rejects them
    )
    assert completion.choices[0].message.content.startswith("Hello from mock local!")
    seen = requests_to(mock, "/local/v1/chat/completions")[-1]
    assert "authorization" not in seen["headers"]
    body = json.loads(seen["body"])
    assert "store" not in body and "service_tier" not in body
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "hi"}], logprobs=True)
    assert err.value.response.json()["error"]["param"] == "logprobs"


# What the client gets of an OpenAI answer's headers (tests/mock-provider/src/account.rs sends
# them as a recorded api.openai.com answer has them). Every name, in order, the same from single
# writes and from one replacement of the map (checked on Envoy 1.40): the provider's
# `content-type` (and the mock's `cache-control` on a stream), its headers that are not the
# account's, Envoy's framing and the provider's `date`, translate's `x-provider-request-id`,
# ratelimit's `x-ratelimit-*`, Envoy's `server` and the gateway's `x-request-id`.
_PASSED = ["access-control-expose-headers", "strict-transport-security", "x-content-type-options",
           "alt-svc"]
_GATEWAY = ["x-provider-request-id", "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", "server",
            "x-request-id"]
EXPECTED_NAMES = {
    False: ["content-type", *_PASSED, "content-length", "date", *_GATEWAY],
    True: ["content-type", "cache-control", *_PASSED, "date", *_GATEWAY, "transfer-encoding"],
}
OPENAI_PASSED_ON = [
    ("access-control-expose-headers", "X-Request-ID"),
    ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
    ("x-content-type-options", "nosniff"),
    ("alt-svc", 'h3=":443"; ma=86400'),
]


@pytest.mark.parametrize("stream", [False, True])
def test_an_openai_answer_reaches_the_client_with_exactly_its_headers(gateway, stream):
    """An OpenAI answer's account headers (14 names, `set-cookie` sent twice) are removed (by
    Envoy's header_mutation upstream filter where gateway.yaml has it, translate removing the
    rest: the request id, which it renames to `x-provider-request-id`); Envoy hands the client
    every other header of the provider's, `:status` included, in its order. Pinned name by name, so a change in how translate writes the map (one
    `proxy_set_header_map_pairs` replacement was measured and gave the same list on Envoy 1.40:
    bench/analysis.md) must keep what the client sees."""
    url = urlparse(gateway.url)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}],
            "stream": stream}
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                     headers={"content-type": "application/json",
                              "authorization": f"Bearer {KEYS['alice']}"})
        resp = conn.getresponse()
        headers = [(name.lower(), value) for name, value in resp.getheaders()]
        resp.read()
    finally:
        conn.close()
    assert resp.status == 200, headers
    names = [name for name, _ in headers]
    passed_on = [(n, v) for n, v in headers if n in dict(OPENAI_PASSED_ON)]
    assert passed_on == OPENAI_PASSED_ON, headers
    content_type = "text/event-stream" if stream else "application/json"
    assert dict(headers)["content-type"] == content_type, headers
    assert dict(headers)["x-provider-request-id"].startswith("req_mock"), headers
    # Exactly these names, in this order: the provider's, then translate's, ratelimit's and
    # Envoy's own; no account header, nothing twice.
    assert names == EXPECTED_NAMES[stream], names
