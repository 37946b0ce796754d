"""Envoy refuses a bad filter config with a log line naming the field; every shipped YAML validates."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

import harness

SHIPPED_YAML = sorted(
    p for d in ("envoy", "examples") for p in (harness.ROOT / d).rglob("*.yaml")
    # Kubernetes manifests and ECDS discovery files (envoy/ecds/) are not Envoy bootstrap files
    if "kind:" not in p.read_text() and "TypedExtensionConfig" not in p.read_text()
)


@pytest.mark.parametrize("path", SHIPPED_YAML, ids=lambda p: str(p.relative_to(harness.ROOT)))
def test_shipped_yaml_validates(path):
    result = harness.validate(path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Validation does not read ECDS files: test_hot_reload runs those configurations.
    discovered = "config_discovery" in path.read_text()
    for name in ("llmgw.auth", "llmgw.router", "llmgw.ratelimit"):
        if name in path.read_text() and not discovered:
            assert f"{name}: configuration accepted" in result.stdout + result.stderr


def test_shipped_yaml_found():
    assert harness.GATEWAY_YAML in SHIPPED_YAML


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _config(filter_configs: dict) -> dict:
    return harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=1,
        filter_configs=filter_configs,
    )


BAD_CONFIGS = [
    (
        "auth unknown field",
        {"llmgw.auth": {"keys": [{"sha256": "a" * 64, "consumer": "x", "tema": "y"}]}},
        "keys[0].tema",
    ),
    (
        "auth malformed hash",
        {"llmgw.auth": {"keys": [{"sha256": "abc123", "consumer": "x"}]}},
        "keys[0].sha256",
    ),
    (
        "router weight 0 everywhere",
        {"llmgw.router": {"models": [{"name": "m", "targets": [
            {"provider": "openai", "model": "a", "weight": 0},
            {"provider": "anthropic", "model": "b", "weight": 0}]}]}},
        "models[0].targets",
    ),
    (
        "ratelimit zero limit",
        {"llmgw.ratelimit": {"consumers": {"x": {"requests_per_minute": 0}}}},
        "consumers.x.requests_per_minute",
    ),
    (
        # Envoy 1.40 reads it as a serialized GrpcService with no target and aborts on the first
        # rate limit call; refused up front instead.
        "ratelimit rls cluster Envoy parses as a GrpcService",
        {"llmgw.ratelimit": {"global": {"cluster": "hh"}}},
        "global.cluster",
    ),
]


@pytest.mark.parametrize("name,filter_configs,field", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_filter_config_is_refused(tmp_path, name, filter_configs, field):
    result = harness.validate(_write(tmp_path, _config(filter_configs)))
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"envoy accepted a bad config ({name})"
    refusals = [line for line in output.splitlines() if "configuration refused" in line]
    assert refusals, output[-3000:]
    assert field in refusals[0], refusals[0]


def test_unset_provider_key_is_refused(tmp_path):
    env = harness.provider_env(set())
    del env["ANTHROPIC_API_KEY"]
    result = harness.validate(_write(tmp_path, _config({})), env=env)
    output = result.stdout + result.stderr
    refusals = [line for line in output.splitlines() if "configuration refused" in line]
    assert result.returncode != 0 or refusals, "envoy accepted a provider whose key is unset"
    assert refusals, output[-3000:]
    assert "providers[1].key_env" in refusals[0] and "ANTHROPIC_API_KEY" in refusals[0]


def test_filter_configs_are_json_strings_not_structs():
    """DESIGN: a Struct reaches the filter as binary protobuf; every config must be a StringValue."""
    config = yaml.safe_load(harness.GATEWAY_YAML.read_text())
    found = 0
    for node in harness._walk(copy.deepcopy(config)):
        if isinstance(node, dict) and "configuration" in node and "vm_config" in node:
            found += 1
            assert node["configuration"]["@type"] == "type.googleapis.com/google.protobuf.StringValue"
    assert found >= 4


HEADER_MUTATION = harness.ACCOUNT_HEADER_REMOVAL


def _upstream_chains(config: dict) -> list[list[str]]:
    """The upstream filter chains (filter names in order) that hold translate."""
    return [[f["name"] for f in node["http_filters"]] for node in harness._walk(config)
            if any(f.get("name") == "llmgw.translate" for f in node.get("http_filters", []))]


ENVOY_TRANSLATE_YAML = sorted(p for p in (harness.ROOT / "envoy").rglob("*.yaml")
                              if "name: llmgw.translate" in p.read_text())


@pytest.mark.parametrize("path", ENVOY_TRANSLATE_YAML,
                         ids=lambda p: str(p.relative_to(harness.ROOT)))
def test_envoy_removes_the_account_headers_wherever_translate_runs(path):
    """Every shipped config with translate has Envoy remove the account headers no translator
    reads, right after translate (first on the answer's way back), with gateway.yaml's list
    (which translate::envoy_removal_tests checks against core's). The Istio and Envoy Gateway
    manifests carry gateway.yaml's clusters (test_manifests.py)."""
    def removal(config: dict) -> list[dict]:
        (found,) = {json.dumps(n["typed_config"], sort_keys=True) for n in harness._walk(config)
                    if n.get("name") == HEADER_MUTATION}
        return json.loads(found)
    shipped = yaml.safe_load(harness.GATEWAY_YAML.read_text())
    config = yaml.safe_load(path.read_text())
    assert removal(config) == removal(shipped)
    chains = _upstream_chains(config)
    assert chains
    for chain in chains:
        assert chain == ["llmgw.translate", HEADER_MUTATION, "envoy.filters.http.upstream_codec"]


def test_the_generated_variants_keep_envoys_account_header_removal_where_it_pays():
    """The one-module configuration the tests and the bench run keeps it; the native one leaves
    it out (native translate's removals are direct calls: it does not pay there), so the native
    suites run translate's own removal through a real Envoy; a mixed chain with wasm translate
    keeps it."""
    clusters = len(_upstream_chains(yaml.safe_load(harness.GATEWAY_YAML.read_text())))
    assert clusters == 8  # the seven providers and the fallback chain
    codec = "envoy.filters.http.upstream_codec"
    expected = [
        (harness.combine_downstream(_config({})), [HEADER_MUTATION]),
        (harness.native_filters(_config({}), only={"llmgw.ratelimit"}), [HEADER_MUTATION]),
        (harness.native_filters(_config({})), []),
    ]
    for config, removal in expected:
        chains = _upstream_chains(config)
        assert len(chains) == clusters
        for chain in chains:
            assert chain == ["llmgw.translate", *removal, codec]


def test_the_one_module_variant_validates(tmp_path):
    result = harness.validate(_write(tmp_path, harness.combine_downstream(_config({}))))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "llmgw.gateway: configuration accepted" in output


@pytest.mark.parametrize("name,filter_configs,field", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_the_one_module_refuses_a_bad_section_by_its_path(tmp_path, name, filter_configs, field):
    section = next(iter(filter_configs)).removeprefix("llmgw.")
    config = harness.combine_downstream(_config(filter_configs))
    result = harness.validate(_write(tmp_path, config))
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"envoy accepted a bad config ({name})"
    refusals = [line for line in output.splitlines() if "configuration refused" in line]
    assert refusals, output[-3000:]
    assert f"{section}.{field}" in refusals[0], refusals[0]


def test_the_native_variant_validates(tmp_path):
    """gateway.yaml with every llmgw filter from build/native/libllmgw.so (upstream translate
    included) passes `envoy --mode validate`, which loads the module and each configuration."""
    result = harness.validate(_write(tmp_path, harness.native_filters(_config({}))))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Dynamic module ABI version v0.2.0 matched" in output
    for name in ("llmgw.auth", "llmgw.router", "llmgw.ratelimit", "llmgw.translate"):
        assert f"{name}: configuration accepted" in output


@pytest.mark.parametrize("name,filter_configs,field", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_the_native_module_refuses_a_bad_config_by_its_path(tmp_path, name, filter_configs, field):
    result = harness.validate(_write(tmp_path, harness.native_filters(_config(filter_configs))))
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"envoy accepted a bad config ({name})"
    refusals = [line for line in output.splitlines() if "configuration refused" in line]
    assert refusals, output[-3000:]
    assert field in refusals[0], refusals[0]


def test_the_native_module_refuses_an_unknown_filter_name(tmp_path):
    config = harness.native_filters(_config({}))
    for node in harness._walk(config):
        if node.get("filter_name") == "llmgw.auth":
            node["filter_name"] = "llmgw.authz"
    result = harness.validate(_write(tmp_path, config))
    output = result.stdout + result.stderr
    assert result.returncode != 0, "envoy accepted an unknown filter_name"
    assert 'unknown filter_name "llmgw.authz"' in output, output[-3000:]


def _exports(module: bytes) -> set[str]:
    """The names a module exports (and, as `custom:<name>`, its custom sections)."""
    import sys
    sys.path.insert(0, str(harness.ROOT / "tools"))
    import trim_exports

    names = set()
    for section_id, _, body, end in trim_exports.sections(module):
        if section_id == trim_exports.CUSTOM_SECTION:
            names.add("custom:" + trim_exports.custom_name(module, body)[0].decode())
        elif section_id == trim_exports.EXPORT_SECTION:
            count, at = trim_exports.read_uleb(module, body)
            for _ in range(count):
                length, at = trim_exports.read_uleb(module, at)
                names.add(module[at:at + length].decode())
                _, at = trim_exports.read_uleb(module, at + length + 1)
    return names


# What each module does without (`FilterRoot::UNUSED_CALLBACKS`): Envoy never calls into its VM
# for these. No module answers response trailers.
TRIMMED = {
    "auth": {"proxy_on_request_body", "proxy_on_request_trailers", "proxy_on_response_headers",
             "proxy_on_response_body", "proxy_on_log", "proxy_on_done"},
    "router": {"proxy_on_response_body", "proxy_on_log", "proxy_on_done"},
    "ratelimit": set(), "translate": set(), "translate-openai": set(), "gateway": set(),
}
CALLBACKS = {"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
             "proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers",
             "proxy_on_log", "proxy_on_done", "proxy_on_delete", "proxy_on_context_create"}


@pytest.mark.parametrize("module", sorted(TRIMMED))
def test_modules_export_only_the_callbacks_their_filter_uses(module):
    exports = _exports((harness.ROOT / "build" / "wasm" / f"{module}.wasm").read_bytes())
    expected = CALLBACKS - TRIMMED[module] - {"proxy_on_response_trailers"}
    assert exports & CALLBACKS == expected
    assert not any(n.startswith("custom:llmgw.") for n in exports), "the list is removed too"


# Issue #16: each module within 400 KB, so it loads fast in every Envoy worker; all but
# translate.wasm, which carries every provider family and client dialect (README, "Which
# translate module": translate-openai.wasm is the small one). gateway.wasm stays within it
# without ratelimit's admin role, which its admin listener takes from ratelimit.wasm.
SIZE_TARGET = 409_600
SIZED = ("auth", "router", "ratelimit", "gateway", "translate-openai")


@pytest.mark.parametrize("module", SIZED)
def test_modules_stay_within_400_kb(module):
    size = (harness.ROOT / "build" / "wasm" / f"{module}.wasm").stat().st_size
    assert size <= SIZE_TARGET, f"{module}.wasm: {size:,} bytes, over {SIZE_TARGET:,}"
