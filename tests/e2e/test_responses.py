"""OpenAI Responses in (`POST /v1/responses`) through the real Envoy with the official `openai`
SDK (`client.responses.create`, streamed and not, `client.responses.stream`, function call round
trips): passed through to OpenAI and Azure OpenAI, translated for Anthropic, Gemini (AI Studio and
Vertex AI) and Bedrock. The mock provider checks each API as strictly as the real one; its
`/v1/responses` refuses what OpenAI's refuses."""

from __future__ import annotations

import json

import openai
import pytest

# (model the client asks for, name in the mock's reply, the path the provider is asked on)
BACKENDS = [
    ("gpt-4o-mini", "openai", "/v1/responses"),
    ("azure-gpt-4o-mini", "azure", "/openai/v1/responses"),
    ("claude-haiku-4-5", "anthropic", "/v1/messages"),
    ("gemini-2.5-flash", "gemini", ":generateContent"),
    ("vertex-gemini-2.5-flash", "gemini", "/publishers/google/models/gemini-2.5-flash:"),
    ("claude-3-haiku-bedrock", "bedrock", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"),
]
MODELS = [m for m, _, _ in BACKENDS]
TRANSLATED = ["claude-haiku-4-5", "gemini-2.5-flash", "vertex-gemini-2.5-flash", "claude-3-haiku-bedrock"]

WEATHER = {
    "type": "function",
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
    "strict": True,
}
TIME = {
    "type": "function",
    "name": "get_time",
    "description": "The time now",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
}


def provider_requests(mock, fragment: str) -> list[dict]:
    return [r for r in mock.requests() if fragment in r["path"]]


def reply_name(model: str) -> str:
    return next(name for m, name, _ in BACKENDS if m == model)


@pytest.mark.parametrize("model", MODELS)
def test_text(client, mock, model):
    mock.clear()
    response = client.responses.create(
        model=model,
        instructions="Be brief.",
        input="Say hi to llmgw",
        max_output_tokens=50,
    )
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text.startswith(f"Hello from mock {reply_name(model)}!"), response
    assert "Say hi to llmgw" in response.output_text
    usage = response.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    path = next(p for m, _, p in BACKENDS if m == model)
    seen = provider_requests(mock, path)
    assert len(seen) == 1, mock.requests()


def test_openai_passthrough_changes_only_the_model(client, mock):
    mock.clear()
    # Built-in tools, `include` and `store` are OpenAI's to honour: they pass unchanged.
    body = dict(
        model="gpt-4o-mini",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        tools=[{"type": "web_search_preview"}, WEATHER],
        include=["reasoning.encrypted_content"],
        store=True,
        metadata={"k": "v"},
    )
    response = client.responses.create(**body)
    assert response.status == "completed"
    (seen,) = provider_requests(mock, "/v1/responses")
    assert seen["headers"]["authorization"] == "Bearer sk-mock-openai"
    sent = json.loads(seen["body"])
    assert sent == {**body, "model": "gpt-4o-mini"}


def test_azure_gets_its_v1_path_deployment_and_key(client, mock):
    mock.clear()
    client.responses.create(model="azure-gpt-4o-mini", input="hi")
    (seen,) = provider_requests(mock, "/openai/v1/responses")
    assert seen["headers"]["api-key"] == "mock-azure-key"
    assert "authorization" not in seen["headers"]
    # The deployment goes in the body (Azure's v1 API has no deployment in the path).
    assert json.loads(seen["body"])["model"] == "gpt-4o-mini-prod"


@pytest.mark.parametrize("model", MODELS)
def test_stream(client, model):
    events = list(client.responses.create(model=model, input="Stream a greeting", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"], kinds
    assert kinds[-1] == "response.completed", kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.startswith(f"Hello from mock {reply_name(model)}!"), text
    final = events[-1].response
    assert final.output_text == text
    assert final.usage.output_tokens > 0
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


@pytest.mark.parametrize("model", MODELS)
def test_stream_helper_accumulates(client, model):
    # The SDK's `responses.stream` checks the event order (items added before their deltas,
    # every item done before `response.completed`) while it rebuilds the response.
    with client.responses.stream(model=model, input="Stream a greeting") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text.startswith(f"Hello from mock {reply_name(model)}!")


def ask_for_tools(client, model, stream, wanted="get_weather"):
    input_items = [{"role": "user", "content": f"[mock:tool={wanted}] What's up in Paris?"}]
    kwargs = dict(model=model, input=input_items, tools=[WEATHER, TIME])
    if not stream:
        response = client.responses.create(**kwargs)
        return input_items, response
    with client.responses.stream(**kwargs) as events:
        deltas: dict[str, str] = {}
        for event in events:
            if event.type == "response.function_call_arguments.delta":
                deltas[event.item_id] = deltas.get(event.item_id, "") + event.delta
        response = events.get_final_response()
    for item in response.output:
        if item.type == "function_call":
            assert deltas.get(item.id) == item.arguments, (deltas, item)
    return input_items, response


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("model", MODELS)
def test_function_call_round_trip(client, model, stream):
    input_items, response = ask_for_tools(client, model, stream)
    calls = [item for item in response.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"], response.output
    args = json.loads(calls[0].arguments)
    assert isinstance(args["city"], str) and args["unit"] in ("celsius", "fahrenheit")
    assert calls[0].call_id

    # The next turn: the calls as the model made them, then their outputs (stateless).
    follow_up = input_items + [c.model_dump(exclude_none=True) for c in calls] + [
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temperature": 22}'}
    ]
    answer = client.responses.create(model=model, input=follow_up, tools=[WEATHER, TIME])
    assert answer.status == "completed"
    assert "The tool said" in answer.output_text and "22" in answer.output_text


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("model", MODELS)
def test_parallel_function_calls(client, model, stream):
    _, response = ask_for_tools(client, model, stream, "get_weather,get_time")
    calls = [item for item in response.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.call_id for c in calls}) == 2
    for call in calls:
        assert isinstance(json.loads(call.arguments), dict), call


@pytest.mark.parametrize("model", TRANSLATED)
def test_what_needs_server_state_or_builtin_tools_is_refused(client, mock, model):
    mock.clear()
    cases = [
        (dict(tools=[{"type": "web_search_preview"}]), "web_search_preview", "tools[0].type"),
        (dict(tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}]), "file_search", "tools[0].type"),
        (dict(previous_response_id="resp_123"), "llmgw keeps no responses", "previous_response_id"),
        (dict(store=True), "llmgw keeps no responses", "store"),
    ]
    for extra, words, param in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.responses.create(model=model, input="hi", **extra)
        assert err.value.status_code == 400
        assert words in err.value.message, err.value.message
        assert err.value.body["param"] == param
        assert err.value.body["type"] == "invalid_request_error"
    assert mock.requests() == [], "nothing refused reaches the provider"


def test_provider_errors_come_back_in_openai_format(client):
    for model in ["claude-haiku-4-5", "gemini-2.5-flash", "gpt-4o-mini"]:
        with pytest.raises(openai.RateLimitError) as err:
            client.responses.create(model=model, input="[mock:status=429] hi")
        assert err.value.status_code == 429
        assert err.value.body["message"]


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gemini-2.5-flash", "claude-3-haiku-bedrock"])
def test_stream_cut_by_the_provider_ends_in_response_failed(client, model):
    # The provider's stream ends after two pieces, without its final events.
    events = list(client.responses.create(model=model, input="[mock:truncate_after=2] hi there", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert kinds[-2:] == ["error", "response.failed"], kinds
    assert events[-1].response.status == "failed"
    assert "response.completed" not in kinds


def test_max_output_tokens_makes_an_incomplete_response(client):
    for model in ["claude-haiku-4-5", "gpt-4o-mini"]:
        response = client.responses.create(model=model, input="[mock:words=40] go", max_output_tokens=16)
        assert response.status == "incomplete", model
        assert response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"])
def test_usage_reaches_the_access_log(gateway, client, model, stream):
    # translate hands each try's usage on (`llmgw.usage`) in Chat terms, whatever the dialect.
    from test_access_log import access_log_line, tagged

    tagged_client, request_id = tagged(client)
    if stream:
        events = list(tagged_client.responses.create(model=model, input="count me", stream=True))
        usage = events[-1].response.usage
    else:
        usage = tagged_client.responses.create(model=model, input="count me").usage
    line = access_log_line(gateway, request_id)
    assert int(line["input_tokens"]) == usage.input_tokens
    assert int(line["output_tokens"]) == usage.output_tokens
    assert int(line["total_tokens"]) == usage.total_tokens
