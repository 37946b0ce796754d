"""Envoy configurations the benchmark compares, all derived from the shipped envoy/gateway.yaml.

`tests/harness.py`'s `gateway_config` gives the whole chain pointed at a local upstream; every
other variant is that same listener, route and clusters with llmgw filters taken out, so the only
difference between two rows is the filters:

- plain:      no wasm at all (the ceiling);
- one filter: only that llmgw filter (translate stays an upstream filter on the cluster);
- full:       the chain exactly as shipped (auth → router → ratelimit → [translate]).

A variant without router routes to a fixed cluster instead of `cluster_header`. A variant
without translate cannot hand the provider its key nor remove `x-llmgw-cluster` (the mock
provider refuses both), so its route does that natively instead: it sets the mock's key and
removes `x-llmgw-cluster`. Plain Envoy gets the same route, so that native work is in the
ceiling too and the rows still differ only by wasm.
"""

from __future__ import annotations

import contextlib
import copy
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import harness  # noqa: E402

FILTERS = ("llmgw.auth", "llmgw.router", "llmgw.ratelimit", "llmgw.translate")
FACTS_RS = ROOT / "filters" / "core" / "src" / "facts.rs"


@contextlib.contextmanager
def gateway_yaml(path: Path | None):
    """Inside, every config is derived from the gateway.yaml at `path` (e.g. an earlier commit's,
    `git show main:envoy/gateway.yaml`) instead of the shipped one: a before/after of a config
    change in one run (bench/instructions.py, bench/stream_instructions.py `--baseline-config`)."""
    shipped = harness.GATEWAY_YAML
    if path is not None:
        harness.GATEWAY_YAML = Path(path)
    try:
        yield
    finally:
        harness.GATEWAY_YAML = shipped


def llmgw_headers() -> list[str]:
    """Every `x-llmgw-*` header of the contract, read from its one definition in core."""
    names = re.findall(r'pub const \w+: &str = "(x-llmgw-[a-z0-9-]+)";', FACTS_RS.read_text())
    if not names:
        raise RuntimeError(f"no x-llmgw-* header constants found in {FACTS_RS}")
    return names


def _hcm(config: dict) -> dict:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def _route(config: dict) -> dict:
    """The route every request takes without router: the catch-all one (`cluster_header`), not
    the fallback chain's, which only matches the header router sets."""
    routes = _hcm(config)["route_config"]["virtual_hosts"][0]["routes"]
    for route in routes:
        if "cluster_header" in route["route"]:
            return route["route"]
    raise KeyError("no route with cluster_header in envoy/gateway.yaml")


def _cluster(config: dict, name: str) -> dict:
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] == name:
            return cluster
    raise KeyError(name)


def variant(
    base: dict,
    keep: set[str],
    *,
    cluster: str = "openai",
    provider_key: str = "sk-mock-openai",
    noop_wasm: str | None = None,
) -> dict:
    """`base` (harness.gateway_config output) with only the llmgw filters in `keep`.

    `cluster` is the fixed route target when router is not kept; `provider_key` is what the
    route sends as `authorization` when translate is not kept. With `noop_wasm`, the kept
    filters stay in their places but load that module (a filter that does nothing) instead:
    the cost of the wasm machinery alone.
    """
    unknown = keep - set(FILTERS)
    if unknown:
        raise ValueError(f"unknown filters {unknown}")
    config = copy.deepcopy(base)
    if keep == set(FILTERS) and noop_wasm is None:
        return config
    if "llmgw.ratelimit" not in keep or noop_wasm is not None:
        # gateway.yaml's admin listener runs ratelimit.wasm (GET /llmgw/budgets): a variant
        # without the real ratelimit drops it too, so that plain Envoy loads no wasm at all
        # (with it, plain Envoy's RSS carried V8 and one module: bench/pinned.py's memory rows).
        listeners = config["static_resources"]["listeners"]
        listeners[:] = [l for l in listeners if l["name"] != harness.ADMIN_LISTENER]
    if noop_wasm is not None:
        for node in harness._walk(config):
            if node.get("name") in keep and "typed_config" in node:
                wasm = node["typed_config"]["config"]
                wasm["configuration"]["value"] = "{}"
                wasm["vm_config"]["code"] = {"local": {"filename": noop_wasm}}
                wasm["vm_config"]["vm_id"] = "bench.noop." + node["name"]
        # Nothing routes or translates: behave as the variants without router and translate.
        effective = set()
    else:
        effective = keep
    hcm = _hcm(config)
    hcm["http_filters"] = [
        f for f in hcm["http_filters"] if f["name"] not in FILTERS or f["name"] in keep
    ]
    for c in config["static_resources"]["clusters"]:
        options = c.get("typed_extension_protocol_options", {}).get(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        )
        if not options or "http_filters" not in options:
            continue
        if "llmgw.translate" in keep:
            continue
        # Without translate the upstream codec would be the only upstream filter: drop the
        # chain so the cluster is exactly a plain Envoy cluster.
        del options["http_filters"]
    route = _route(config)
    if "llmgw.router" not in effective:
        route.pop("cluster_header", None)
        route["cluster"] = cluster
    if "llmgw.translate" not in effective:
        # The route configuration stands in for translate: it removes x-llmgw-cluster
        # and sets the provider's key over the client's (Envoy applies both in its router
        # filter, after the downstream filters ran).
        route_config = hcm["route_config"]
        route_config["request_headers_to_remove"] = llmgw_headers()
        route_config["request_headers_to_add"] = [
            {
                "header": {"key": "authorization", "value": f"Bearer {provider_key}"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ]
    return config


def base_config(
    *, port: int, admin_port: int, upstream_port: int, auth_config: dict, ratelimit_config: dict
) -> dict:
    """The shipped chain, pointed at the benchmark's upstream, with the bench client's key."""
    return harness.gateway_config(
        port=port,
        admin_port=admin_port,
        mock_port=upstream_port,
        filter_configs={"llmgw.auth": auth_config, "llmgw.ratelimit": ratelimit_config},
    )
