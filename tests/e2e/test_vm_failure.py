"""A wasm VM that fails is replaced (`failure_policy: FAIL_RELOAD` in envoy/gateway.yaml) rather
than failing every later request of its worker. The failure is real: auth built with the
`crash-test` feature (build/test/auth-crash.wasm, never shipped) traps its VM on a request
carrying `llmgw-test-crash`, as a bug in a filter would."""

from __future__ import annotations

import subprocess
import time

import pytest

import harness
import rawhttp
from conftest import AUTH_CONFIG, KEYS, RATELIMIT_CONFIG

AUTH = {"authorization": f"Bearer {KEYS['alice']}"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "still there?"}]}


@pytest.fixture(scope="module")
def crashable(mock):
    subprocess.run(["make", "-s", "build/test/auth-crash.wasm"], cwd=harness.ROOT, check=True)
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH_CONFIG, "llmgw.ratelimit": RATELIMIT_CONFIG},
    )
    for node in harness._walk(config):
        if node.get("name") == "llmgw.auth" and "vm_config" in node:
            node["vm_config"]["code"]["local"]["filename"] = "build/test/auth-crash.wasm"
    # One worker: every request meets the VM that failed.
    envoy = harness.Envoy(config, harness.provider_env(set()), concurrency=1)
    yield envoy
    envoy.stop()


def chat(gateway, **headers) -> rawhttp.Response:
    return rawhttp.post(f"{gateway.url}/v1/chat/completions", CHAT, {**AUTH, **headers})


def test_a_failed_vm_is_reloaded_and_later_requests_succeed(crashable):
    assert chat(crashable).status == 200
    crashed = chat(crashable, **{"llmgw-test-crash": "1"})
    assert crashed.status >= 500, crashed.body
    assert "llmgw.auth" in crashable.log() and "crash-test" in crashable.log()
    # Envoy replaces the VM after its reload back-off (1 s by default); meanwhile it refuses.
    deadline, statuses = time.monotonic() + 15, []
    while time.monotonic() < deadline:
        statuses.append(chat(crashable).status)
        if statuses[-1] == 200:
            break
        time.sleep(0.2)
    assert statuses[-1] == 200, f"the failed VM was not replaced: {statuses}"
    assert [chat(crashable).status for _ in range(20)] == [200] * 20
    # And again: a second failure is survived as well.
    assert chat(crashable, **{"llmgw-test-crash": "1"}).status >= 500
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and chat(crashable).status != 200:
        time.sleep(0.2)
    assert chat(crashable).status == 200
