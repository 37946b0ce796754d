"""translate-openai.wasm, translate built with the OpenAI wire family only (README, "Which translate
module"), as the translate filter of the real Envoy: OpenAI-format providers are served, a try
routed to a provider of a family the module lacks gets translate's own 500 in OpenAI's format
(nothing reaches the provider), and Envoy refuses a configuration that names such a provider."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
import yaml

import harness

LEAN_WASM = "build/wasm/translate-openai.wasm"

# gateway.yaml's translate providers of the OpenAI wire family (openai, azure, the keyless local).
OPENAI_FAMILY = {"providers": [
    {"name": "openai", "schema": "openai", "key_env": "OPENAI_API_KEY"},
    {"name": "azure", "schema": "azure", "key_env": "AZURE_OPENAI_API_KEY",
     "deployments": {"gpt-4o-mini": "gpt-4o-mini-prod"}},
    {"name": "local", "schema": "openai", "auth": "none"},
]}

# Models gateway.yaml's router sends to a provider of another family → that provider's name.
ELSEWHERE = [
    ("claude-haiku-4-5", "anthropic"),
    ("gemini-2.5-flash", "gemini"),
    ("vertex-gemini-2.5-flash", "vertex"),
    ("claude-3-haiku-bedrock", "bedrock"),
]


def not_built(provider: str) -> str:
    return (f"llmgw translate: provider `{provider}`: `{provider}` is not in this build of "
            "translate (translate-openai.wasm); load translate.wasm")


def lean(config: dict) -> dict:
    """The config with translate-openai.wasm as every cluster's translate filter."""
    found = 0
    for node in harness._walk(config):
        if node.get("name") == "llmgw.translate" and "vm_config" in node:
            node["vm_config"]["code"]["local"]["filename"] = LEAN_WASM
            found += 1
    assert found, "gateway.yaml has no translate filter"
    return config


@pytest.fixture(scope="module")
def lean_gateway(mock):
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.translate": OPENAI_FAMILY},
    )
    envoy = harness.Envoy(lean(config), harness.provider_env(set()))
    yield envoy
    envoy.stop()


@pytest.fixture
def lean_client(lean_gateway):
    return openai.OpenAI(
        base_url=f"{lean_gateway.url}/v1", api_key=harness.DEMO_KEY, max_retries=0, timeout=20
    )


def test_the_openai_only_module_meets_the_size_target():
    """Issue #6: each .wasm ≤ 400 KB; translate.wasm with every family cannot, this one does."""
    size = (harness.ROOT / LEAN_WASM).stat().st_size
    assert size <= 400_000, f"{LEAN_WASM}: {size} bytes"


@pytest.mark.parametrize("model,name", [("gpt-4o-mini", "openai"), ("azure-gpt-4o-mini", "azure")])
def test_openai_format_providers_are_served(lean_client, model, name):
    completion = lean_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hi to llmgw"}], max_tokens=50,
    )
    assert completion.choices[0].message.content.startswith(f"Hello from mock {name}!")
    stream = lean_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Stream a greeting"}], stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith(f"Hello from mock {name}!"), text
    assert chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model,provider", ELSEWHERE)
def test_a_provider_of_a_missing_family_gets_a_500_naming_the_module(
    lean_client, mock, model, provider, stream
):
    mock.clear()
    with pytest.raises(openai.InternalServerError) as err:
        lean_client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=stream,
        )
    assert err.value.status_code == 500
    assert err.value.body == {
        "message": not_built(provider), "type": "api_error", "param": None,
        "code": "provider_not_in_build",
    }
    # Answered by translate: no untranslated body went to the provider.
    assert mock.requests() == []


def test_the_module_refuses_a_config_naming_a_missing_family(tmp_path):
    # gateway.yaml's own translate config: its providers[1] is `anthropic`.
    config = lean(harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=1,
    ))
    providers = json.loads(next(
        n["configuration"]["value"] for n in harness._walk(config)
        if n.get("name") == "llmgw.translate" and "configuration" in n
    ))["providers"]
    assert providers[1]["schema"] == "anthropic"
    path = Path(tmp_path) / "lean.yaml"
    path.write_text(yaml.safe_dump(config))
    result = harness.validate(path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, "envoy accepted a config translate-openai.wasm cannot serve"
    refusals = [line for line in output.splitlines() if "configuration refused" in line]
    assert refusals, output[-3000:]
    assert refusals[0].endswith(
        "llmgw.translate: configuration refused: providers[1].schema: `anthropic` is not in this "
        "build of translate (translate-openai.wasm); load translate.wasm"
    ), refusals[0]
