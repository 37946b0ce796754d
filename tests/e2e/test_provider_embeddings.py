"""Embeddings on the Gemini API, Vertex AI and Azure OpenAI, and Azure's errors, through the
real Envoy with the OpenAI SDK (the mock provider checks each API's requests like the real one).
"""

from __future__ import annotations

import json
import math

import openai
import pytest

VERTEX_PREDICT = (
    "/v1/projects/my-gcp-project/locations/us-central1/publishers/google/models/text-embedding-005:predict"
)
AZURE_EMBEDDINGS = "/openai/deployments/text-embedding-3-small-prod/embeddings"


def last_request(mock, path: str) -> dict:
    return [r for r in mock.requests() if r["path"] == path][-1]


def estimate(texts: list[str]) -> int:
    """llmgw's token estimate where Gemini reports none: UTF-8 bytes / 4, rounded up, per input."""
    return sum(math.ceil(len(t.encode()) / 4) for t in texts)


# The SDK asks for base64 by default; llmgw encodes the vectors as OpenAI does.
@pytest.mark.parametrize("encoding", ["default", "float"])
def test_gemini_embeddings_one_and_several(client, mock, encoding):
    kwargs = {} if encoding == "default" else {"encoding_format": "float"}
    one = client.embeddings.create(model="gemini-embedding-001", input="hello world", dimensions=16, **kwargs)
    assert one.object == "list" and one.model == "gemini-embedding-001"
    assert [d.index for d in one.data] == [0] and len(one.data[0].embedding) == 16
    assert one.usage.prompt_tokens == estimate(["hello world"]) == one.usage.total_tokens
    seen = last_request(mock, "/v1beta/models/gemini-embedding-001:embedContent")
    assert seen["headers"]["x-goog-api-key"] == "mock-gemini-key"
    assert "authorization" not in seen["headers"]
    assert json.loads(seen["body"]) == {"content": {"parts": [{"text": "hello world"}]}, "outputDimensionality": 16}

    texts = ["hello world", "déjà vu", "hello world"]
    many = client.embeddings.create(model="gemini-embedding-001", input=texts, dimensions=16, **kwargs)
    assert [d.index for d in many.data] == [0, 1, 2]
    assert many.data[0].embedding == many.data[2].embedding == one.data[0].embedding
    assert many.data[1].embedding != many.data[0].embedding
    assert many.usage.prompt_tokens == estimate(texts)
    batch = json.loads(last_request(mock, "/v1beta/models/gemini-embedding-001:batchEmbedContents")["body"])
    assert [r["model"] for r in batch["requests"]] == ["models/gemini-embedding-001"] * 3


def test_vertex_embeddings_use_predict_and_report_tokens(client, mock):
    result = client.embeddings.create(
        model="vertex-text-embedding-005", input=["one two three", "four"], dimensions=8, encoding_format="float"
    )
    assert result.model == "text-embedding-005"
    assert [len(d.embedding) for d in result.data] == [8, 8]
    # Vertex reports token counts per input (the mock: one per word).
    assert result.usage.prompt_tokens == 4
    seen = last_request(mock, VERTEX_PREDICT)
    assert seen["headers"]["authorization"] == "Bearer mock-vertex-token"
    assert json.loads(seen["body"]) == {
        "instances": [{"content": "one two three"}, {"content": "four"}],
        "parameters": {"outputDimensionality": 8},
    }


def test_azure_embeddings_use_the_deployment(client, mock):
    result = client.embeddings.create(model="azure-text-embedding-3-small", input=["a b", "c"], dimensions=12)
    assert [len(d.embedding) for d in result.data] == [12, 12]
    assert result.usage.prompt_tokens == 3
    seen = last_request(mock, AZURE_EMBEDDINGS)
    assert seen["query"] == "api-version=2024-10-21"
    assert seen["headers"]["api-key"] == "mock-azure-key"
    assert "authorization" not in seen["headers"]
    assert json.loads(seen["body"])["model"] == "text-embedding-3-small"


@pytest.mark.parametrize("model", ["gemini-embedding-001", "vertex-text-embedding-005"])
def test_google_embeddings_refuse_what_they_cannot_honour(client, mock, model):
    mock.clear()
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model=model, input=[[1, 2, 3]])
    assert err.value.param == "input"
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model=model, input="x", extra_body={"input_type": "query"})
    assert err.value.param == "input_type"
    assert mock.requests() == [], "refused before reaching the provider"


def test_google_embedding_errors_keep_their_status(client):
    with pytest.raises(openai.RateLimitError) as err:
        client.embeddings.create(model="gemini-embedding-001", input="x [mock:status=429]")
    assert err.value.code == "resource_exhausted"


@pytest.mark.parametrize("stream", [False, True])
def test_azure_429_is_an_openai_error_with_retry_after(client, stream):
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(
            model="azure-gpt-4o-mini", messages=[{"role": "user", "content": "hi [mock:status=429]"}], stream=stream
        )
    assert err.value.status_code == 429
    assert err.value.response.headers["retry-after"] == "7"
    assert err.value.code == "rate_limit_exceeded"
    assert err.value.type == "rate_limit_error"
    assert "exceeded token rate limit" in err.value.message
    # A success in between keeps router's health count for azure at zero.
    client.chat.completions.create(model="azure-gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_azure_content_filter_is_an_openai_400(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="azure-gpt-4o-mini", messages=[{"role": "user", "content": "hi [mock:status=400]"}]
        )
    body = err.value.body
    assert body["code"] == "content_filter" and body["type"] == "invalid_request_error"
    assert body["param"] == "prompt"
    assert "ResponsibleAIPolicyViolation" in body["message"]
    assert "innererror" not in body


def test_azure_embedding_errors_are_openai_errors(client):
    with pytest.raises(openai.RateLimitError) as err:
        client.embeddings.create(model="azure-text-embedding-3-small", input="x [mock:status=429]")
    assert err.value.response.headers["retry-after"] == "7"
    assert err.value.code == "rate_limit_exceeded"
