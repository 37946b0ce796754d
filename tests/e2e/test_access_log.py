"""The access log: one JSON line per request with llmgw's facts from filter state."""

from __future__ import annotations

import json
import time
import uuid

import openai
import pytest

from conftest import KEYS


def access_log_line(gateway, request_id: str, timeout: float = 5) -> dict:
    """The JSON access-log line Envoy wrote for `request_id` (stdout, in the Envoy log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in gateway.log().splitlines():
            if line.startswith("{") and request_id in line:
                return json.loads(line)
        time.sleep(0.05)
    raise AssertionError(f"no access-log line for {request_id}")


def tagged(client: openai.OpenAI) -> tuple[openai.OpenAI, str]:
    request_id = str(uuid.uuid4())
    return client.with_options(default_headers={"x-request-id": request_id}), request_id


def nanos(usd: str) -> int:
    whole, frac = usd.split(".")
    return int(whole) * 10**9 + int(frac.ljust(9, "0"))


@pytest.mark.parametrize(
    "model,provider,upstream_model,price",
    [("gpt-4o-mini", "openai", "gpt-4o-mini", (0.15, 0.6)),
     ("smart", "anthropic", "claude-sonnet-4-5", (3.0, 15.0))],
)
def test_a_completion_logs_who_what_tokens_and_cost(gateway, client, model, provider, upstream_model, price):
    tagged_client, request_id = tagged(client)
    raw = tagged_client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "log me, please"}]
    )
    reply = raw.parse()
    assert raw.headers["x-request-id"] == request_id
    line = access_log_line(gateway, request_id)
    assert line["status"] == 200
    assert (line["consumer"], line["team"]) == ("alice", "ml")
    assert line["requested_model"] == model
    assert (line["provider"], line["model"]) == (provider, upstream_model)
    assert int(line["input_tokens"]) == reply.usage.prompt_tokens
    assert int(line["output_tokens"]) == reply.usage.completion_tokens
    assert int(line["total_tokens"]) == reply.usage.total_tokens
    expected = round((reply.usage.prompt_tokens * price[0] + reply.usage.completion_tokens * price[1]) * 1000)
    assert nanos(line["cost_usd"]) == expected
    assert int(line["ttft_ms"]) >= 0
    assert "error" not in line
    # Facts only: no prompt, no completion, no key.
    text = json.dumps(line)
    assert "log me" not in text and reply.choices[0].message.content not in text
    assert KEYS["alice"] not in text


def test_a_stream_logs_its_usage_and_time_to_first_token(gateway, client):
    tagged_client, request_id = tagged(client)
    stream = tagged_client.chat.completions.create(
        model="claude-haiku-4-5", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "[mock:headers_delay_ms=30] stream and log"}],
    )
    usage = [c.usage for c in stream if c.usage][0]
    line = access_log_line(gateway, request_id)
    assert (line["provider"], line["model"]) == ("anthropic", "claude-haiku-4-5")
    assert int(line["input_tokens"]) == usage.prompt_tokens
    assert int(line["output_tokens"]) == usage.completion_tokens
    assert nanos(line["cost_usd"]) == round((usage.prompt_tokens * 1.0 + usage.completion_tokens * 5.0) * 1000)
    assert int(line["ttft_ms"]) >= 30


def test_a_fallback_logs_the_provider_that_answered(gateway, client):
    tagged_client, request_id = tagged(client)
    reply = tagged_client.chat.completions.create(
        model="resilient", messages=[{"role": "user", "content": "[mock:openai_status=429] fall back"}]
    )
    line = access_log_line(gateway, request_id)
    assert line["upstream_attempts"] == 2
    assert (line["provider"], line["model"]) == ("anthropic", "claude-haiku-4-5")
    assert int(line["total_tokens"]) == reply.usage.total_tokens
    # The failed first try logged `rate_limited`; the answering try blanked it.
    assert line.get("error", "") == "", "the failed first try's error is not the request's"


def test_provider_error_is_logged_by_class(gateway, client):
    tagged_client, request_id = tagged(client)
    with pytest.raises(openai.InternalServerError):
        tagged_client.chat.completions.create(
            model="claude-haiku-4-5", messages=[{"role": "user", "content": "[mock:status=500] boom"}]
        )
    line = access_log_line(gateway, request_id)
    assert line["status"] == 500
    assert line["error"] == "server_error"
    assert "total_tokens" not in line and "cost_usd" not in line


@pytest.mark.parametrize(
    "key,model,status,error",
    [("sk-wrong", "gpt-4o-mini", 401, "invalid_api_key"),
     (KEYS["alice"], "no-such-model", 404, "model_not_found")],
)
def test_local_refusals_are_logged_with_their_code(gateway, client_as, key, model, status, error):
    tagged_client, request_id = tagged(client_as(key))
    with pytest.raises(openai.APIStatusError) as refused:
        tagged_client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    assert refused.value.status_code == status
    line = access_log_line(gateway, request_id)
    assert line["status"] == status
    assert line["error"] == error
    assert "provider" not in line and "total_tokens" not in line
    assert key not in json.dumps(line)
