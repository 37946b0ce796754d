"""`make check-config`: the load-time checks that need two filters' configurations at once, run
offline on a gateway bootstrap (envoy/gateway.yaml by default).

With auth, router and ratelimit as separate filters (the split deployment), each runs in its own
Wasm VM (one module per VM, its own `vm_id`) and is configured alone: ratelimit cannot see
router's catalogue when Envoy configures it, so a budget over a model with an unpriced target
is only refused per request (500 `budget_unpriced_model`). The one module (`gateway.wasm`)
holds both sections and refuses that config at load (README, "Budgets"). This tool gives the
split deployment the same refusal before it ships: it takes router's and ratelimit's JSON from
each listener of the bootstrap (inline, or from an ECDS `path_config_source` file), loads them
as the one module's sections in a minimal bootstrap, and runs `envoy --mode validate`, so the
check is the module's own `on_configure`, word for word, with the field path:

    python3 tools/check_config.py envoy/gateway.yaml     # exit 0: fine; 1: refused (printed)

ECDS files named relative to Envoy's working directory are read relative to the current one.

It needs `build/wasm/gateway.wasm` (`make build`) and an Envoy (`ENVOY_BIN`, the venv's, or
`envoy` on PATH).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_WASM = ROOT / "build" / "wasm" / "gateway.wasm"
SECTIONS = {"llmgw.router": "router", "llmgw.ratelimit": "ratelimit"}
HCM = "envoy.filters.network.http_connection_manager"


def envoy_bin() -> str:
    chosen = os.environ.get("ENVOY_BIN")
    if chosen:
        return chosen
    local = ROOT / ".venv" / "bin" / "envoy"
    return str(local) if local.exists() else "envoy"


def filter_json(http_filter: dict, base: Path) -> dict | None:
    """A wasm filter's JSON configuration, inline or from its ECDS discovery file."""
    typed = http_filter.get("typed_config")
    if typed is None:
        source = http_filter.get("config_discovery", {}).get("config_source", {})
        path = source.get("path_config_source", {}).get("path")
        if not path:
            return None  # served by a management server: not readable offline
        found = base / path  # relative to Envoy's working directory, as Envoy reads it
        response = yaml.safe_load(found.read_text())
        typed = response["resources"][0]["typed_config"]
    value = typed.get("config", {}).get("configuration", {}).get("value")
    return json.loads(value) if value else None


def chains(bootstrap: dict, base: Path) -> list[tuple[str, dict]]:
    """(listener name, {"router": ..., "ratelimit": ...}) for each filter chain that has both
    (an admin-role ratelimit has no budgets and is left out)."""
    found = []
    for listener in bootstrap.get("static_resources", {}).get("listeners", []):
        for chain in listener.get("filter_chains", []):
            for network_filter in chain.get("filters", []):
                if network_filter.get("name") != HCM:
                    continue
                sections = {}
                for http_filter in network_filter["typed_config"].get("http_filters", []):
                    section = SECTIONS.get(http_filter.get("name"))
                    config = filter_json(http_filter, base) if section else None
                    if config is not None and "admin" not in config:
                        sections[section] = config
                if set(sections) == set(SECTIONS.values()):
                    found.append((listener.get("name", "?"), sections))
    return found


def one_module_bootstrap(sections: dict) -> dict:
    """A bootstrap that only loads the one module with these sections."""
    wasm = {
        "name": "llmgw.gateway",
        "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                          "value": json.dumps(sections)},
        "vm_config": {"vm_id": "llmgw.check", "runtime": "envoy.wasm.runtime.v8",
                      "code": {"local": {"filename": str(GATEWAY_WASM)}}},
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "check",
        "route_config": {"virtual_hosts": [{"name": "check", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 404}}]}]},
        "http_filters": [
            {"name": "llmgw.gateway", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": wasm}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    return {"static_resources": {"listeners": [{
        "name": "check",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
        "filter_chains": [{"filters": [{"name": HCM, "typed_config": hcm}]}],
    }]}}


def check(path: Path) -> list[str]:
    """The refusals, one line each (`<listener>: <field path>: <reason>`); empty when fine."""
    bootstrap = yaml.safe_load(path.read_text())
    problems = []
    for listener, sections in chains(bootstrap, Path.cwd()):
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "check.yaml"
            config.write_text(json.dumps(one_module_bootstrap(sections)))
            result = subprocess.run(
                [envoy_bin(), "--mode", "validate", "-c", str(config), "-l", "info"],
                capture_output=True, text=True, timeout=120)
        output = result.stdout + result.stderr
        refused = [line.split("configuration refused: ", 1)[1]
                   for line in output.splitlines() if "configuration refused: " in line]
        if refused:
            problems += [f"{listener}: {line}" for line in refused]
        elif result.returncode != 0:
            problems.append(f"{listener}: envoy --mode validate failed:\n{output[-2000:]}")
    return problems


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "envoy" / "gateway.yaml")
    if not GATEWAY_WASM.exists():
        print(f"check-config: {GATEWAY_WASM} is missing: run `make build`", file=sys.stderr)
        return 2
    problems = check(path)
    for problem in problems:
        print(f"check-config: {path}: {problem}", file=sys.stderr)
    if not problems:
        print(f"check-config: {path}: router's catalogue prices every budgeted model")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
