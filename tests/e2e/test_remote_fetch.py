"""Envoy fetches the modules over HTTP (`vm_config.code.remote` with `sha256`), the way Envoy
Gateway serves the images it pulled; a module whose bytes do not match the sha256 never runs."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import openai
import pytest
import yaml

import harness
from conftest import AUTH_CONFIG, KEYS

WASM_DIR = harness.ROOT / "build" / "wasm"
WASM_CLUSTER = "llmgw_wasm"


class WasmServer:
    """build/wasm over plain HTTP on a free loopback port, remembering what was fetched."""

    def __init__(self):
        self.fetched: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                server.fetched.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(WASM_DIR)))
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def wasm_server():
    server = WasmServer()
    yield server
    server.stop()


def fetch_remotely(config: dict, port: int, wrong_sha_for: str = "") -> dict:
    """Every `code.local` of the gateway becomes `code.remote` from the test's server, with the
    module's sha256 (a wrong one for `wrong_sha_for`), as envoy/remote-fetch.yaml shows."""
    for node in harness._walk(config):
        code = node.get("code")
        if not (isinstance(code, dict) and "local" in code):
            continue
        name = code.pop("local")["filename"].rsplit("/", 1)[1]
        sha = hashlib.sha256((WASM_DIR / name).read_bytes()).hexdigest()
        if name == wrong_sha_for:
            sha = hashlib.sha256(b"some other module").hexdigest()
        code["remote"] = {
            "http_uri": {"uri": f"http://127.0.0.1:{port}/{name}", "cluster": WASM_CLUSTER,
                         "timeout": "10s"},
            "sha256": sha,
            # One quick retry: a mismatch is not going to heal (Envoy's default backs off ~15 s).
            "retry_policy": {"num_retries": 1,
                             "retry_back_off": {"base_interval": "0.1s", "max_interval": "0.2s"}},
        }
    config["static_resources"]["clusters"].append({
        "name": WASM_CLUSTER, "type": "STATIC", "connect_timeout": "2s",
        "load_assignment": {"cluster_name": WASM_CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
    })
    return config


def start(mock, wasm_server, wrong_sha_for=""):
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH_CONFIG},
    )
    # The chain's modules only: the admin listener's second copy of ratelimit.wasm, created
    # while the first fetch runs, logs "Plugin llmgw.ratelimit failed to load" before it
    # fetches again (as translate's per-cluster copies do), which the checks below would count.
    config["static_resources"]["listeners"].remove(harness.admin_listener(config))
    # Fetching and compiling translate once per cluster is slow on a busy 2-core machine.
    return harness.Envoy(fetch_remotely(config, wasm_server.port, wrong_sha_for),
                         harness.provider_env(set()), ready_timeout=120)


def test_envoy_runs_the_gateway_from_modules_it_fetched(mock, wasm_server):
    wasm_server.fetched.clear()
    envoy = start(mock, wasm_server)
    try:
        assert {"/auth.wasm", "/router.wasm", "/ratelimit.wasm", "/translate.wasm"} <= set(
            wasm_server.fetched)
        client = openai.OpenAI(base_url=f"{envoy.url}/v1", api_key=KEYS["alice"], max_retries=0)
        # translate sits on every provider cluster, each with its own copy of the filter config:
        # each copy fetches the module (Envoy logs "failed to load (in progress)" for the copies
        # it creates while the first fetch runs, then fetches for them too).
        for model in ("gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash", "resilient"):
            answer = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Hello"}])
            assert answer.choices[0].message.content
        for module in ("auth", "router", "ratelimit"):
            assert f"Plugin llmgw.{module} failed to load" not in envoy.log()
    finally:
        envoy.stop()


def test_a_module_with_the_wrong_sha256_is_refused_and_its_filter_fails_closed(mock, wasm_server):
    """Envoy starts, logs that the plugin failed to load, and the filter (fail_open false, the
    default) answers 503 to every request: no request passes without auth."""
    mock.clear()
    envoy = start(mock, wasm_server, wrong_sha_for="auth.wasm")
    try:
        client = openai.OpenAI(base_url=f"{envoy.url}/v1", api_key=KEYS["alice"], max_retries=0)
        with pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "Hello"}])
        assert refused.value.status_code == 503
        assert mock.requests() == []
        log = envoy.log()
        assert "Plugin llmgw.auth failed to load" in log
        assert "Plugin llmgw.router failed to load" not in log
    finally:
        envoy.stop()


def test_the_shipped_example_runs_once_given_the_modules_sha256(mock, wasm_server):
    """envoy/remote-fetch.yaml as shipped, with its placeholder sha256 replaced, the test's
    server as `wasm_server` and the mock provider as Anthropic."""
    config = yaml.safe_load((harness.ROOT / "envoy" / "remote-fetch.yaml").read_text())
    config["static_resources"]["listeners"][0]["address"]["socket_address"] = {
        "address": "127.0.0.1", "port_value": harness.free_port()}
    config["admin"]["address"]["socket_address"]["port_value"] = harness.free_port()
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    endpoint = lambda c: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]  # noqa: E731
    endpoint(clusters["wasm_server"])["address"]["socket_address"]["port_value"] = wasm_server.port
    anthropic = clusters["anthropic"]
    anthropic["type"] = "STATIC"
    anthropic.pop("dns_lookup_family")
    anthropic.pop("transport_socket")
    endpoint(anthropic)["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": mock.port}
    (remote,) = [n["remote"] for n in harness._walk(config) if isinstance(n.get("remote"), dict)]
    assert remote["sha256"] == "0" * 64  # the placeholder the example tells users to replace
    remote["sha256"] = hashlib.sha256((WASM_DIR / "translate.wasm").read_bytes()).hexdigest()
    envoy = harness.Envoy(config, harness.provider_env(set()), ready_timeout=120)
    try:
        client = openai.OpenAI(base_url=f"{envoy.url}/v1", api_key="unused", max_retries=0)
        answer = client.chat.completions.create(
            model="claude-haiku-4-5", messages=[{"role": "user", "content": "Hello"}])
        assert answer.choices[0].message.content.startswith("Hello from mock anthropic!")
    finally:
        envoy.stop()
