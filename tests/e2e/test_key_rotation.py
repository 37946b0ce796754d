"""Provider keys that rotate without a restart (tools/credentials.py, README "Provider keys that
rotate"): OpenAI's key and Bedrock's AWS credentials are SDS generic secrets read from key files
Envoy watches, laid out as a Kubernetes Secret volume (the kubelet swaps a `..data` symlink);
credential_injector puts each in its `x-llmgw-key-<provider>` header on every try, and translate
sends OpenAI's as the bearer key and signs Bedrock's requests with the AWS credentials.

The mock provider accepts only the keys it is told (`PUT /_mock/keys/openai`), as OpenAI does: a
rotation adds the new key at the provider, swaps the file, and revokes the old key once the
gateway sends the new one. A steady client sends requests (directly to OpenAI and through the
fallback chain, whose aggregate cluster injects the key too) through all of it; the test prints
the time from the swap to the first request the provider sees with the new key, and the failed
requests.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import harness
from test_hot_reload import Client, SteadyLoad

sys.path.insert(0, str(harness.ROOT / "tools"))
import credentials  # noqa: E402

DEMO = "sk-llmgw-demo"  # envoy/gateway.yaml's demo client key
OLD = "sk-rotate-old-0123456789"
NEW = "sk-rotate-new-9876543210"
EFFECT_DEADLINE_S = 2.0


class SecretVolume:
    """A directory laid out as the kubelet lays out a Secret volume: `<key>` → `..data/<key>`,
    `..data` → a timestamped directory; an update writes a new directory and renames a new
    `..data` symlink over the old one (the atomic swap Envoy's watched_directory sees)."""

    def __init__(self, path: Path):
        self.path, self.version = path, 0
        path.mkdir(parents=True)

    def write(self, files: dict[str, str]) -> None:
        """A new version of the volume holding `files` (a key left out: a version without it)."""
        self.version += 1
        data = self.path / f"..2026_12_03_{self.version:04d}"
        data.mkdir()
        for name, value in files.items():
            (data / name).write_text(value)
        tmp = self.path / "..data_tmp"
        tmp.symlink_to(data.name)
        os.rename(tmp, self.path / "..data")
        for name in files:
            if not (self.path / name).is_symlink():
                (self.path / name).symlink_to(f"..data/{name}")


def keys(openai: str) -> dict[str, str]:
    """The Secret's files: OpenAI's key, and Bedrock's credentials as one value (the mock's)."""
    aws = ":".join([harness.PROVIDER_KEYS["bedrock"][1], harness.AWS_MOCK_ENV["AWS_SECRET_ACCESS_KEY"],
                    harness.AWS_MOCK_ENV["AWS_SESSION_TOKEN"]])
    return {"OPENAI_API_KEY": openai, credentials.AWS_FILE: aws}


def accept(mock: harness.MockProvider, *keys: str) -> None:
    req = urllib.request.Request(f"{mock.url}/_mock/keys/openai", method="PUT",
                                 data=json.dumps({"keys": list(keys)}).encode())
    urllib.request.urlopen(req).close()


def keys_seen(mock: harness.MockProvider) -> set[str]:
    return {r["headers"].get("authorization", "").removeprefix("Bearer ")
            for r in mock.requests() if r["path"] == "/v1/chat/completions"}


def load_on(port: int) -> SteadyLoad:
    """A client sending chat requests back to back, to OpenAI directly (`gpt-4o-mini`) and
    through the fallback chain (`resilient`: OpenAI first), counting every non-200."""
    return SteadyLoad(port, lambda client, n: client.status(DEMO, ("gpt-4o-mini", "resilient")[n % 2]))


@pytest.fixture(scope="module")
def rotating(tmp_path_factory):
    mock = harness.MockProvider()
    try:
        accept(mock, OLD)
        tmp = tmp_path_factory.mktemp("keys")
        volume = SecretVolume(tmp / "keys")
        volume.write(keys(OLD))
        config = harness.gateway_config(
            port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
            # The steady client sends far more than the demo key's 600 a minute.
            filter_configs={"llmgw.ratelimit": {"default": {"requests_per_minute": 1000000}}})
        config = credentials.rotate(config, tmp / "secrets", volume.path, ["openai", "bedrock"])
        env = harness.provider_env(set())
        for var in ("OPENAI_API_KEY", "AWS_ACCESS_KEY_ID", *harness.AWS_MOCK_ENV):
            del env[var]  # not needed any more: the keys are the volume's
        envoy = harness.Envoy(config, env)
        try:
            yield mock, volume, envoy
        finally:
            envoy.stop()
    finally:
        mock.stop()


def test_the_key_comes_from_the_file_not_the_environment(rotating):
    mock, volume, envoy = rotating
    mock.clear()
    # Bedrock signs with the credentials from the volume (the mock checks the signature).
    for model in ("gpt-4o-mini", "resilient", "claude-3-haiku-bedrock"):
        assert Client(envoy.port).status(DEMO, model) == 200, model
    assert keys_seen(mock) == {OLD}
    # The key header stops at translate.
    for request in mock.requests():
        assert not [h for h in request["headers"] if h.startswith("x-llmgw-")], request["headers"]


def test_a_rotated_key_takes_effect_under_load_with_no_failed_request(rotating):
    mock, volume, envoy = rotating
    load = load_on(envoy.port)
    try:
        time.sleep(0.5)
        accept(mock, OLD, NEW)  # the provider knows the new key before the gateway sends it
        mock.clear()
        swapped = time.monotonic()
        volume.write(keys(NEW))
        while NEW not in keys_seen(mock):
            took = time.monotonic() - swapped
            assert took < 10, f"the provider saw no request with the new key after {took:.1f}s"
            time.sleep(0.01)
        took = time.monotonic() - swapped
        accept(mock, NEW)  # the old key revoked: any request still carrying it would fail
        time.sleep(1.0)
        mock.clear()
        time.sleep(0.5)
    finally:
        load.stop()
    print(f"\nkey rotated (Secret volume swap): the provider saw the new key after "
          f"{took * 1000:.0f} ms; steady client: {len(load.failed)} failed of {load.sent}")
    assert load.failed == []
    assert load.sent > 20
    assert keys_seen(mock) == {NEW}
    assert took < EFFECT_DEADLINE_S
    assert OLD not in envoy.log() and NEW not in envoy.log()


def test_a_volume_without_the_key_leaves_the_last_key_serving(rotating):
    mock, volume, envoy = rotating
    before = Client(envoy.port).status(DEMO)
    assert before == 200
    current = keys_seen(mock) or {NEW}
    load = load_on(envoy.port)
    try:
        volume.write({credentials.AWS_FILE: keys(NEW)[credentials.AWS_FILE]})
        deadline = time.monotonic() + 5
        while "Failed to reload" not in envoy.log():
            assert time.monotonic() < deadline, "Envoy logged no refused reload"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        load.stop()
    print(f"\nkey file gone: Envoy kept the last key; steady client: {len(load.failed)} failed of {load.sent}")
    assert load.failed == []
    assert keys_seen(mock) <= current
    volume.write(keys(NEW))  # back, for any later test


def test_set_refuses_an_empty_key(tmp_path):
    path = tmp_path / "OPENAI_API_KEY"
    credentials.set_key(path, "sk-first\n")
    assert path.read_text() == "sk-first"
    with pytest.raises(SystemExit, match="refusing an empty key"):
        credentials.set_key(path, " \n")
    assert path.read_text() == "sk-first"
