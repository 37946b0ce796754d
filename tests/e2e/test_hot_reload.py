"""Configuration changes without a restart: the gateway's auth, router and ratelimit configs come
through ECDS from files Envoy watches (tools/ecds.py), changed while a client sends a steady
stream of requests. Each change prints its time to effect and the failed-request count."""

from __future__ import annotations

import copy
import http.client
import json
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

import harness
from conftest import sha

sys.path.insert(0, str(harness.ROOT / "tools"))
import ecds  # noqa: E402

STEADY = "sk-test-steady-0123456789"  # the steady client: must never fail
NEW = "sk-test-newkey-0123456789"  # added while the steady client runs
LEAVER = "sk-test-leaver-0123456789"  # revoked while the steady client runs
COUNTED = "sk-test-counted-0123456789"  # its limit is lowered below what it already used

AUTH = {"keys": [
    {"sha256": sha(STEADY), "consumer": "steady"},
    {"sha256": sha(LEAVER), "consumer": "leaver"},
    {"sha256": sha(COUNTED), "consumer": "counted"},
]}
RATELIMIT = {"default": {"requests_per_minute": 100000},
             # An hour window: a minute one could roll over mid-test and look like a reset.
             "consumers": {"counted": {"requests_per_hour": 1000}}}
ROUTER_MODEL = "hot-model"
EFFECT_DEADLINE_S = 2.0


class Client:
    """One keep-alive connection; `status(key, model)` is a chat request's status."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)

    def status(self, key: str, model: str = "fast") -> int:
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        try:
            self.conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
            resp = self.conn.getresponse()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            return 0  # a connection error counts as a failure


class SteadyLoad:
    """A client sending requests back to back, counting every non-200; `request(client, n)` sends
    the n-th and returns its status (default: a chat request as `steady`)."""

    def __init__(self, port: int, request=None):
        self.request = request or (lambda client, _n: client.status(STEADY))
        self.client = Client(port)
        self.sent = 0
        self.failed: list[int] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            status = self.request(self.client, self.sent)
            self.sent += 1
            if status != 200:
                self.failed.append(status)

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def hot(mock, tmp_path_factory):
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH, "llmgw.ratelimit": RATELIMIT},
    )
    bootstrap, files = ecds.split(config, tmp_path_factory.mktemp("ecds"))
    envoy = harness.Envoy(bootstrap, harness.provider_env(set()))
    load = SteadyLoad(envoy.port)
    yield envoy, files, load
    load.stop()
    envoy.stop()


def change(files, name: str, edit) -> None:
    config = ecds.configuration(files[name])
    edit(config)
    ecds.set_configuration(files[name], config)


def time_to_effect(probe, want: int, what: str, load: SteadyLoad) -> float:
    """Seconds from now until `probe()` returns `want`; prints them with the failure count."""
    started = time.monotonic()
    while True:
        status = probe()
        elapsed = time.monotonic() - started
        if status == want:
            break
        assert elapsed < 10, f"{what}: still {status} after {elapsed:.1f}s"
        time.sleep(0.01)
    print(f"\n{what}: in effect after {elapsed * 1000:.0f} ms; steady client: "
          f"{len(load.failed)} failed of {load.sent}")
    return elapsed


def test_the_shipped_ecds_variant_is_generated_from_gateway_yaml(tmp_path):
    bootstrap, files = ecds.split(yaml.safe_load(harness.GATEWAY_YAML.read_text()), tmp_path)
    shipped = harness.ROOT / "envoy" / "ecds"
    for path in files.values():
        assert (shipped / path.name).read_text() == path.read_text(), "run `make ecds-config`"
    text = ecds.generated_bootstrap(bootstrap, Path("envoy/gateway.yaml"))
    assert (shipped / "gateway-ecds.yaml").read_text() == text.replace(str(tmp_path), "envoy/ecds")


def test_configs_come_from_the_watched_files(hot):
    envoy, files, load = hot
    assert set(files) == {"llmgw.auth", "llmgw.router", "llmgw.ratelimit"}
    shown = envoy.config_path.read_text()
    assert "config_discovery" in shown and "path_config_source" in shown
    assert Client(envoy.port).status(STEADY) == 200


def test_a_key_added_works_within_2s_and_nothing_else_fails(hot):
    envoy, files, load = hot
    probe = Client(envoy.port)
    assert probe.status(NEW) == 401
    change(files, "llmgw.auth", lambda c: c["keys"].append({"sha256": sha(NEW), "consumer": "new"}))
    assert time_to_effect(lambda: probe.status(NEW), 200, "key added", load) < EFFECT_DEADLINE_S
    assert load.failed == []


def test_a_key_revoked_is_refused_within_2s(hot):
    envoy, files, load = hot
    probe = Client(envoy.port)
    assert probe.status(LEAVER) == 200
    change(files, "llmgw.auth",
           lambda c: c.update(keys=[k for k in c["keys"] if k["consumer"] != "leaver"]))
    assert time_to_effect(lambda: probe.status(LEAVER), 401, "key revoked", load) < EFFECT_DEADLINE_S
    assert load.failed == []


def test_a_model_added_is_served_within_2s(hot):
    envoy, files, load = hot
    probe = Client(envoy.port)
    assert probe.status(STEADY, ROUTER_MODEL) == 404

    def add_model(config):
        config["models"].append({"name": ROUTER_MODEL,
                                 "targets": [{"provider": "anthropic", "model": "claude-haiku-4-5"}]})
    change(files, "llmgw.router", add_model)
    took = time_to_effect(lambda: probe.status(STEADY, ROUTER_MODEL), 200, "model added", load)
    assert took < EFFECT_DEADLINE_S
    assert load.failed == []


def test_a_lowered_limit_applies_within_2s_to_counters_the_reload_kept(hot):
    """`counted` spends 6 requests under a limit of 1000 an hour; the limit drops to 8. If the
    reload kept the counter, 2 more pass and the 3rd is refused; a reset counter would let 8."""
    envoy, files, load = hot
    probe = Client(envoy.port)
    if 3600 - time.time() % 3600 < 30:  # windows are aligned to the clock's hours
        time.sleep(3600 - time.time() % 3600 + 1)
    for _ in range(6):
        assert probe.status(COUNTED) == 200
    change(files, "llmgw.ratelimit",
           lambda c: c["consumers"]["counted"].update(requests_per_hour=8))
    # In effect once a request the old limit would pass is refused: the 9th of the window.
    passed = 6
    started = time.monotonic()
    while True:
        status = probe.status(COUNTED)
        if status == 429:
            break
        assert status == 200
        passed += 1
        assert passed <= 1000
        time.sleep(0.05)
    took = time.monotonic() - started
    print(f"\nlimit lowered: in effect after {took * 1000:.0f} ms, refused after {passed} requests "
          f"in the window (8 allowed); steady client: {len(load.failed)} failed of {load.sent}")
    assert took < EFFECT_DEADLINE_S
    assert passed == 8, "the reload reset the counter" if passed > 8 else "counted too much"
    assert load.failed == []


def test_a_refused_config_leaves_the_running_one_serving(hot):
    envoy, files, load = hot
    before = copy.deepcopy(ecds.configuration(files["llmgw.auth"]))
    bad = copy.deepcopy(before)
    bad["keys"].append({"sha256": sha("x"), "consumer": "typo", "tema": "ml"})
    ecds.set_configuration(files["llmgw.auth"], bad)
    deadline = time.monotonic() + 10
    while "Filesystem config update rejected" not in envoy.log():
        assert time.monotonic() < deadline, "Envoy did not log the refusal"
        time.sleep(0.05)
    log = envoy.log()
    assert "llmgw.auth: configuration refused: keys[3].tema" in log
    probe = Client(envoy.port)
    assert probe.status(NEW) == 200  # the previous configuration still answers
    assert probe.status(STEADY) == 200
    print(f"\nrefused config: the last good one keeps serving; steady client: "
          f"{len(load.failed)} failed of {load.sent}")
    assert load.failed == []
