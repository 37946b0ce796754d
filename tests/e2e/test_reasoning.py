"""Reasoning across providers, with the official SDKs through the whole chain: Chat
`reasoning_effort` to Claude (Anthropic and Bedrock) and Gemini as their thinking configs, the
reasoning back as `reasoning_content`; Messages `thinking` to OpenAI and Gemini as
`reasoning_effort`, the reasoning back as thinking blocks; Responses `reasoning.effort` to Claude
with a reasoning item back. The mock checks each provider's thinking fields as strictly as the
real API (budget floor and `max_tokens`, field names, what thinking does not combine with)."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from conftest import KEYS

# (model the client asks for, path the provider is called on)
CLAUDE = ("claude-haiku-4-5", "/v1/messages")
GEMINI = ("gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:")
BEDROCK = ("claude-3-haiku-bedrock", "/model/anthropic.claude-3-haiku-20240307-v1")
THINKERS = [CLAUDE, GEMINI, BEDROCK]
IDS = ["anthropic", "gemini", "bedrock"]


@pytest.fixture
def claude(gateway):
    return anthropic.Anthropic(base_url=gateway.url, api_key=KEYS["alice"], max_retries=0,
                               timeout=20)


def sent(mock, path: str) -> dict:
    matching = [r for r in mock.requests() if r["path"].startswith(path)]
    assert matching, f"the mock saw no request to {path}"
    return json.loads(matching[-1]["body"])


def thinking_config(body: dict, path: str) -> dict:
    """The thinking config the provider got, in its own words."""
    if path == CLAUDE[1]:
        return {"budget": body["thinking"]["budget_tokens"], "max": body["max_tokens"]}
    if path == GEMINI[1]:
        return {"budget": body["generationConfig"]["thinkingConfig"]["thinkingBudget"],
                "include": body["generationConfig"]["thinkingConfig"]["includeThoughts"]}
    return {"budget": body["additionalModelRequestFields"]["thinking"]["budget_tokens"],
            "max": body["inferenceConfig"]["maxTokens"]}


@pytest.mark.parametrize("model,path", THINKERS, ids=IDS)
def test_chat_reasoning_effort_becomes_a_thinking_budget(client, mock, model, path):
    mock.clear()
    answer = client.chat.completions.create(
        model=model, reasoning_effort="medium", max_completion_tokens=300,
        messages=[{"role": "user", "content": "Why is the sky blue?"}])
    message = answer.choices[0].message
    assert message.content.startswith("Hello from mock") or "sky" in message.content
    # The de-facto field (DeepSeek, vLLM): the openai SDK keeps it as an extra attribute.
    reasoning = message.model_extra.get("reasoning_content")
    assert reasoning and "Why is the sky blue?" in reasoning
    config = thinking_config(sent(mock, path), path)
    assert config["budget"] == 4096
    if "max" in config:
        # The client's limit stays the answer's: Anthropic counts thinking against max_tokens.
        assert config["max"] == 300 + 4096
    else:
        assert config["include"] is True
    if path == GEMINI[1]:
        assert answer.usage.completion_tokens_details.reasoning_tokens > 0


@pytest.mark.parametrize("model,path", THINKERS, ids=IDS)
def test_chat_stream_carries_reasoning_deltas(client, model, path):
    stream = client.chat.completions.create(
        model=model, reasoning_effort="low", stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Stream your thoughts"}])
    reasoning, text, order = [], [], []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        piece = (delta.model_extra or {}).get("reasoning_content")
        if piece:
            reasoning.append(piece)
            order.append("reasoning")
        if delta.content:
            text.append(delta.content)
            order.append("text")
    assert "Stream your thoughts" in "".join(reasoning)
    assert "".join(text)
    assert order.index("text") > order.index("reasoning"), "reasoning comes first"


@pytest.mark.parametrize("model,path", [CLAUDE, BEDROCK], ids=["anthropic", "bedrock"])
def test_what_claude_thinking_cannot_combine_with_is_refused(client, mock, model, path):
    mock.clear()
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=model, reasoning_effort="high", temperature=0.2,
            messages=[{"role": "user", "content": "Hi"}])
    assert err.value.body["param"] == "temperature"
    assert "reasoning_effort" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=model, reasoning_effort="high", response_format={"type": "json_object"},
            messages=[{"role": "user", "content": "Hi"}])
    assert err.value.body["param"] == "response_format"
    assert not [r for r in mock.requests() if r["path"].startswith(path)]


WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


@pytest.mark.parametrize("model,path", [CLAUDE, BEDROCK], ids=["anthropic", "bedrock"])
def test_a_chat_tool_loop_with_reasoning_completes(client, mock, model, path):
    """The turn answering the tool call goes without thinking: the provider (mock as the real
    API) refuses thinking there unless the calling turn starts with its signed thinking block,
    which Chat cannot carry back."""
    ask = [{"role": "user", "content": "Weather in Paris? [mock:tool=get_weather]"}]
    first = client.chat.completions.create(model=model, reasoning_effort="low", tools=WEATHER,
                                           messages=ask)
    call = first.choices[0].message.tool_calls[0]
    turns = ask + [first.choices[0].message.model_dump(exclude_none=True),
                   {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"}]
    mock.clear()
    second = client.chat.completions.create(model=model, reasoning_effort="low", tools=WEATHER,
                                            messages=turns)
    assert "18 C and sunny" in second.choices[0].message.content
    body = sent(mock, path)
    assert "thinking" not in body and "additionalModelRequestFields" not in body


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_messages_thinking_to_gemini_comes_back_as_thinking_blocks(claude, mock, stream):
    mock.clear()
    kwargs = dict(model="gemini-2.5-flash", max_tokens=2048,
                  thinking={"type": "enabled", "budget_tokens": 1024},
                  messages=[{"role": "user", "content": "Think about llamas"}])
    if stream:
        with claude.messages.stream(**kwargs) as s:
            kinds = [event.type for event in s]
            message = s.get_final_message()
        assert "thinking" in kinds, kinds
    else:
        message = claude.messages.create(**kwargs)
    thinking, text = message.content
    assert thinking.type == "thinking" and "Think about llamas" in thinking.thinking
    # Only Anthropic can sign thinking: a block from another backend carries no signature.
    assert thinking.signature == ""
    assert text.type == "text" and text.text
    config = sent(mock, GEMINI[1])["generationConfig"]["thinkingConfig"]
    assert config == {"thinkingBudget": 1024, "includeThoughts": True}
    # The block sent back in the next turn is dropped for this backend, as Anthropic ignores
    # earlier turns' thinking.
    again = claude.messages.create(
        model="gemini-2.5-flash", max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=kwargs["messages"] + [
            {"role": "assistant", "content": [b.model_dump() for b in message.content]},
            {"role": "user", "content": "And alpacas?"}])
    assert again.content[-1].type == "text"


def test_messages_thinking_to_openai_is_reasoning_effort(claude, mock):
    mock.clear()
    message = claude.messages.create(
        model="gpt-4o-mini", max_tokens=20000,
        thinking={"type": "enabled", "budget_tokens": 10000},
        messages=[{"role": "user", "content": "Hi"}])
    assert message.content[0].type == "text"
    assert sent(mock, "/v1/chat/completions")["reasoning_effort"] == "high"
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(model="gpt-4o-mini", max_tokens=1000,
                               thinking={"type": "enabled", "budget_tokens": 1000},
                               messages=[{"role": "user", "content": "Hi"}])
    assert "budget_tokens" in err.value.body["error"]["message"]


def test_responses_reasoning_effort_to_claude_returns_a_reasoning_item(client, mock):
    mock.clear()
    response = client.responses.create(model="claude-haiku-4-5", input="Ponder the moon",
                                       reasoning={"effort": "low"}, max_output_tokens=500)
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "message"], kinds
    assert "Ponder the moon" in response.output[0].content[0].text
    body = sent(mock, CLAUDE[1])
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] == 500 + 1024
