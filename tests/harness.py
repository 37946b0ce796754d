"""Start the mock provider and a real Envoy with the llmgw filters: for `make run` and the tests.

`envoy/gateway.yaml` is the one description of the gateway. This module starts it as is, with
three adjustments for a local run: the listener port, the admin port, and every provider whose
real key is absent from the environment pointed at the mock provider (plain HTTP, mock keys).
Tests may also replace a filter's JSON configuration.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GATEWAY_YAML = ROOT / "envoy" / "gateway.yaml"
RUN_DIR = ROOT / "build" / "run"
# libllmgw.so, the native build (`make build`); Envoy finds dynamic modules by name there.
NATIVE_DIR = ROOT / "build" / "native"
MOCK_BIN = ROOT / "target" / "release" / "llmgw-mock-provider"
VENV_BIN = ROOT / ".venv" / "bin"

# Provider name → (environment variable translate reads, key the mock provider accepts).
PROVIDER_KEYS = {
    "openai": ("OPENAI_API_KEY", "sk-mock-openai"),
    "anthropic": ("ANTHROPIC_API_KEY", "sk-mock-anthropic"),
    "gemini": ("GEMINI_API_KEY", "mock-gemini-key"),
    "vertex": ("VERTEX_ACCESS_TOKEN", "mock-vertex-token"),
    "azure": ("AZURE_OPENAI_API_KEY", "mock-azure-key"),
    "bedrock": ("AWS_ACCESS_KEY_ID", "AKIDMOCKBEDROCK"),
}

# The rest of the mock provider's AWS credentials (tests/mock-provider/src/sigv4_check.rs);
# set with the mock's access key id when Bedrock is not the real one.
AWS_MOCK_ENV = {
    "AWS_SECRET_ACCESS_KEY": "mock-aws-secret-access-key/EXAMPLE",
    "AWS_SESSION_TOKEN": "mock-aws-session-token",
}

# Keyless OpenAI-compatible providers (local servers) → the mock's path prefix that stands for
# them. They are always pointed at the mock provider in local runs and tests.
KEYLESS_PROVIDERS = {"local": "/local/v1"}

DEMO_KEY = "sk-llmgw-demo"
# gateway.yaml's admin listener (GET /llmgw/budgets) and the demo admin key its config hashes.
ADMIN_LISTENER = "llmgw-admin"
ADMIN_DEMO_KEY = "sk-llmgw-admin-demo"


def envoy_bin() -> str:
    """The Envoy to run: `$ENVOY_BIN` when set (`make test-envoy-versions` points it at each
    supported version's venv), else the venv's pinned one, else `envoy` on PATH."""
    chosen = os.environ.get("ENVOY_BIN")
    if chosen:
        return chosen
    local = VENV_BIN / "envoy"
    return str(local) if local.exists() else "envoy"


def envoy_version() -> str:
    """`1.40.0`: the version of the Envoy `envoy_bin()` runs."""
    out = subprocess.run([envoy_bin(), "--version"], capture_output=True, text=True, timeout=60)
    found = re.search(r"version: [0-9a-f]+/(\d+\.\d+\.\d+)/", out.stdout)
    if not found:
        raise RuntimeError(f"{envoy_bin()} --version: {out.stdout!r}")
    return found.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MockProvider:
    """The mock model provider (tests/mock-provider), on a free port."""

    def __init__(self, forbid: list[str] = ()):
        args = [str(MOCK_BIN), "--port", "0"]
        for secret in forbid:
            args += ["--forbid", secret]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"mock provider did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/_mock/requests") as resp:
            return json.load(resp)

    def clear(self) -> None:
        req = urllib.request.Request(f"{self.url}/_mock/requests", method="DELETE")
        urllib.request.urlopen(req).close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def gateway_config(
    *,
    port: int,
    admin_port: int,
    mock_port: int,
    real_providers: set[str] = frozenset(),
    filter_configs: dict[str, dict] | None = None,
    admin_listener_port: int | None = None,
) -> dict:
    """gateway.yaml adjusted for a local run (see the module doc). The admin listener gets
    `admin_listener_port` (a free port when not given) and keeps its own ratelimit config."""
    config = copy.deepcopy(yaml.safe_load(GATEWAY_YAML.read_text()))
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": port}
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    admin = admin_listener(config)
    admin["address"]["socket_address"]["port_value"] = admin_listener_port or free_port()
    for name, value in (filter_configs or {}).items():
        for node in _walk({k: v for k, v in config["static_resources"].items()
                           if k != "listeners"} | {"listener": listener}):
            if node.get("name") == name and "configuration" in node:
                node["configuration"]["value"] = json.dumps(value)
    _point_keyless_providers_at_mock(config)
    for cluster in config["static_resources"]["clusters"]:
        mocked = cluster["name"] in PROVIDER_KEYS or cluster["name"] in KEYLESS_PROVIDERS
        if cluster["name"] in real_providers or not mocked:
            continue
        cluster["type"] = "STATIC"
        cluster.pop("dns_lookup_family", None)
        cluster.pop("transport_socket", None)
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                endpoint["endpoint"]["address"]["socket_address"] = {
                    "address": "127.0.0.1",
                    "port_value": mock_port,
                }
    return config


def admin_listener(config: dict) -> dict:
    (found,) = [l for l in config["static_resources"]["listeners"] if l["name"] == ADMIN_LISTENER]
    return found


DOWNSTREAM = ("llmgw.auth", "llmgw.router", "llmgw.ratelimit")


def combine_downstream(config: dict) -> dict:
    """gateway.yaml with auth, router and ratelimit replaced by the one `gateway.wasm` module
    (README, "One module for the downstream three"): same configurations, one section each. The
    admin listener's ratelimit.wasm (admin role) takes the module's vm_id."""
    config = copy.deepcopy(config)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    found = {f["name"]: f for f in filters if f["name"] in DOWNSTREAM}
    assert set(found) == set(DOWNSTREAM), "gateway.yaml lost a downstream filter"
    sections = {
        name.removeprefix("llmgw."): json.loads(f["typed_config"]["config"]["configuration"]["value"])
        for name, f in found.items()
    }
    gateway = copy.deepcopy(found["llmgw.router"])  # keeps allow_on_headers_stop_iteration
    gateway["name"] = "llmgw.gateway"
    wasm = gateway["typed_config"]["config"]
    wasm["name"] = "llmgw.gateway"
    wasm["configuration"]["value"] = json.dumps(sections)
    wasm["vm_config"]["vm_id"] = "llmgw.gateway"
    wasm["vm_config"]["code"]["local"]["filename"] = "build/wasm/gateway.wasm"
    first = filters.index(found["llmgw.auth"])
    hcm["http_filters"] = [f for f in filters if f["name"] not in DOWNSTREAM]
    hcm["http_filters"].insert(first, gateway)
    # The admin listener keeps ratelimit.wasm in the admin role (gateway.wasm is built without
    # it: README, "Budgets"), with the module's vm_id: Envoy keys shared data by vm_id, so it
    # reads the counters the module writes, from a VM of its own (other code).
    admin_hcm = admin_listener(config)["filter_chains"][0]["filters"][0]["typed_config"]
    for f in admin_hcm["http_filters"]:
        if f["name"] == "llmgw.ratelimit":
            f["typed_config"]["config"]["vm_config"]["vm_id"] = wasm["vm_config"]["vm_id"]
    return config


# The native build's metric names in /stats/prometheus (README, "Native build"):
# envoy_dynamicmodulescustom_llmgw_* and, for translate (an upstream filter),
# envoy_cluster_<cluster>_dynamicmodulescustom_llmgw_*; examples/grafana/prometheus.yml renames
# them the same way.
NATIVE_METRIC = re.compile(r"envoy_(?:cluster_.+_)?dynamicmodulescustom_(llmgw_\w+)")


def metric_name(prometheus_name: str) -> str:
    """A /stats/prometheus series name as the wasm build names it (`llmgw_*`)."""
    native = NATIVE_METRIC.fullmatch(prometheus_name)
    return native[1] if native else prometheus_name


# gateway.yaml's upstream filter that removes the provider account's headers before translate.
ACCOUNT_HEADER_REMOVAL = "envoy.filters.http.header_mutation"

DYNAMIC_MODULE_FILTER = (
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"
)


def native_filters(config: dict, only: set[str] | None = None) -> dict:
    """The config with llmgw's wasm filters (or those named in `only`) replaced by the same
    filters from the native module `build/native/libllmgw.so` (README, "Native build"): same
    filter names, same JSON configurations, upstream translate included."""
    config = copy.deepcopy(config)  # keeps the YAML anchors' sharing: translate is one node
    for node in _walk(config):
        typed = node.get("typed_config")
        if not isinstance(typed, dict) or not typed.get("@type", "").endswith(".wasm.v3.Wasm"):
            continue
        wasm = typed["config"]
        if only is not None and wasm["name"] not in only:
            continue
        node["typed_config"] = {
            "@type": DYNAMIC_MODULE_FILTER,
            # Loaded once per process (`lib<name>.so` in ENVOY_DYNAMIC_MODULES_SEARCH_PATH) and
            # never unloaded: its process-wide state (rate-limit counters) outlives a config.
            "dynamic_module_config": {"name": "llmgw", "do_not_close": True},
            "filter_name": wasm["name"],
            "filter_config": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": wasm["configuration"]["value"],
            },
        }
    if only is None or "llmgw.translate" in only:
        # Envoy's removal of the account headers before translate (gateway.yaml) pays in wasm,
        # where each of translate's removals crosses into the VM, not natively, where they are
        # direct calls: native translate removes them itself (bench/analysis.md, "Issue 16,
        # account headers removed by Envoy").
        for node in _walk(config):
            chain = node.get("http_filters")
            if isinstance(chain, list) and any(f.get("name") == "llmgw.translate" for f in chain):
                chain[:] = [f for f in chain if f.get("name") != ACCOUNT_HEADER_REMOVAL]
    return config


def _point_keyless_providers_at_mock(config: dict) -> None:
    """The mock serves keyless providers under their own prefix: rewrite their base_path."""
    for node in _walk(config):
        if node.get("name") != "llmgw.translate" or "configuration" not in node:
            continue
        translate = json.loads(node["configuration"]["value"])
        for provider in translate.get("providers", []):
            if provider.get("name") in KEYLESS_PROVIDERS:
                provider["base_path"] = KEYLESS_PROVIDERS[provider["name"]]
        node["configuration"]["value"] = json.dumps(translate)


def provider_env(real_providers: set[str]) -> dict[str, str]:
    """Envoy's environment: real keys where given, the mock's keys elsewhere."""
    env = dict(os.environ)
    for provider, (var, mock_key) in PROVIDER_KEYS.items():
        if provider not in real_providers:
            env[var] = mock_key
    if "bedrock" not in real_providers:
        env.update(AWS_MOCK_ENV)
    # Where Envoy looks for the native module (a wasm-only config never reads it).
    env.setdefault("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", str(NATIVE_DIR))
    return env


class Envoy:
    """A real Envoy running a config dict; waits until its admin says it is ready."""

    def __init__(self, config: dict, env: dict[str, str], concurrency: int = 2, log_level="info",
                 ready_timeout: float = 60):
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        port = config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]
        self.port = port
        self.admin_port = config["admin"]["address"]["socket_address"]["port_value"]
        self.config_path = RUN_DIR / f"envoy-{port}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = RUN_DIR / f"envoy-{port}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [envoy_bin(), "-c", str(self.config_path), "--use-dynamic-base-id",
             "--concurrency", str(concurrency), "-l", log_level,
             # Access-log lines reach stdout within 0.2 s (Envoy's default is 10 s).
             "--file-flush-interval-msec", "200"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        # gateway.yaml's admin listener (GET /llmgw/budgets), when the config has it.
        admin = [l for l in config["static_resources"]["listeners"] if l["name"] == ADMIN_LISTENER]
        self.admin_listener = (
            f"http://127.0.0.1:{admin[0]['address']['socket_address']['port_value']}"
            if admin else None)
        try:
            self._wait_ready(ready_timeout)
        except BaseException:  # not ready, or stopped (Ctrl-C, SIGTERM) while starting
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.admin}/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy not ready after {timeout}s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def validate(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`envoy --mode validate`: loads every filter (on_configure runs) without serving."""
    return subprocess.run(
        [envoy_bin(), "--mode", "validate", "-c", str(path), "-l", "info"],
        cwd=ROOT, env=env or provider_env(set()), capture_output=True, text=True, timeout=120,
    )


def _exit_on_signal(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """`make run`: the mock provider and the gateway, until Ctrl-C or SIGTERM."""
    # A supervisor (systemd, docker stop, CI) stops with SIGTERM, whose default action would end
    # Python at once and leave the mock provider and Envoy running: turn it into the same clean
    # exit as Ctrl-C, so the `finally` below stops everything this started.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    port = int(os.environ.get("PORT", "10000"))
    admin_port = int(os.environ.get("ADMIN_PORT", "9901"))
    real = {p for p, (var, _) in PROVIDER_KEYS.items() if os.environ.get(var)}
    started = []  # everything to stop on the way out, in start order
    try:
        mock = MockProvider()
        started.append(mock)
        # The admin listener (GET /llmgw/budgets): gateway.yaml's 10001 beside the default port,
        # a free one beside a chosen PORT (tests), or ADMIN_LISTENER_PORT.
        admin_listener_port = int(os.environ.get(
            "ADMIN_LISTENER_PORT", 10001 if "PORT" not in os.environ else free_port()))
        config = gateway_config(port=port, admin_port=admin_port, mock_port=mock.port, real_providers=real,
                                admin_listener_port=admin_listener_port)
        if os.environ.get("RATELIMIT") == "global":  # ratelimit through llmgw-rls (rls/) + redis
            import rls
            started += rls.enable_global(config)
        if os.environ.get("COMBINED"):  # auth, router and ratelimit as one module
            config = combine_downstream(config)
        if os.environ.get("NATIVE"):  # the native build (libllmgw.so) instead of the .wasm
            config = native_filters(config)
        envoy = Envoy(config, provider_env(real))
        started.append(envoy)
        for provider in PROVIDER_KEYS:
            where = "the real API" if provider in real else f"the mock provider at {mock.url}"
            print(f"llmgw: provider {provider} → {where}")
        print(f"""
llmgw is serving an OpenAI-compatible API at {envoy.url}/v1 (Envoy admin: {envoy.admin})
  demo key: {DEMO_KEY}
  budgets:  curl {envoy.admin_listener}/llmgw/budgets -H 'authorization: Bearer {ADMIN_DEMO_KEY}'
  try:      curl {envoy.url}/v1/chat/completions -H 'authorization: Bearer {DEMO_KEY}' \\
              -H 'content-type: application/json' \\
              -d '{{"model":"fast","messages":[{{"role":"user","content":"Hello"}}]}}'
  Envoy log: {envoy.log_path}
Press Ctrl-C to stop.""", flush=True)
        while envoy.proc.poll() is None and mock.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # Envoy first (it stops sending to the others), then the helpers behind it.
        for process in reversed(started):
            process.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
