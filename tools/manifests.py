"""The Istio and Envoy Gateway manifests, generated from envoy/gateway.yaml (`make manifests`).

envoy/gateway.yaml is the tested gateway; the manifests carry its pieces into a mesh and must not
drift from it. Every Envoy fragment below is copied from it unchanged (filter configs, routes,
clusters, the connection manager's edge settings); only what a mesh must place differently
changes, and only here:

- where a module's code comes from: Istio's agent pulls `oci://` images (WasmPlugin `url`, and
  the `remote` code of an ECDS extension config), Envoy Gateway pulls the images of an
  EnvoyExtensionPolicy; translate, added by an EnvoyPatchPolicy, is fetched by Envoy itself
  over HTTP with its sha256 from `llmgw-modules` (README, "Loading the modules over HTTP");
- configurations that a CRD takes as an object (WasmPlugin `pluginConfig`, EnvoyExtensionPolicy
  `config`) are the parsed JSON of the filter's `configuration`, which the mesh turns back into
  the same JSON string;
- names the mesh owns (listener, route configuration, virtual host, its own filter names).

tests/e2e/test_manifests.py regenerates the files and compares, applies the manifests the way each
mesh does and compares the result with envoy/gateway.yaml, validates the CRDs against their
published schemas, and runs `envoy --mode validate` over the assembled configuration.

    python3 tools/manifests.py [--out DIR] [--sha256-from build/wasm]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "envoy" / "gateway.yaml"
OUT = ROOT / "examples"

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
HCM = "envoy.filters.network.http_connection_manager"
ROUTER = "envoy.filters.http.router"
ADMIN_LISTENER = "llmgw-admin"
# What a mesh owns in the connection manager; everything else of gateway.yaml's is carried over.
MESH_OWNED_HCM = ("stat_prefix", "route_config", "http_filters")

# Where the images are: `make oci` builds them, `tools/oci.py push` pushes them (README).
REGISTRY = "registry.example.com/llmgw"
VERSION = "0.1.0"
# The HTTP server translate is fetched from on Envoy Gateway (any server of build/wasm/).
MODULES_HOST = "llmgw-modules.llmgw.svc.cluster.local"
MODULES_CLUSTER = "llmgw-modules"
PLACEHOLDER_SHA256 = "0" * 64
# The Secret the provider keys come from (README, "Provider keys in Kubernetes").
KEYS_SECRET = "llmgw-provider-keys"

HOST = "llm.example.com"
ISTIO_NAMESPACE = "istio-system"
ISTIO_SELECTOR = {"istio": "ingressgateway"}
# Istio names a gateway's virtual host `<host>:<port>`.
ISTIO_VHOST = f"{HOST}:80"
EG_NAMESPACE = "llmgw"
EG_NAME = "llmgw"
# Envoy Gateway's xDS names (its default scheme; README says how to read them off a cluster):
# listener and route configuration `<namespace>/<gateway>/<listener>`, virtual host
# `<route config>/<host with _ for .>`, route `httproute/<ns>/<name>/rule/<i>/match/<j>/<host>`,
# and an EnvoyExtensionPolicy's Wasm filters `envoy.filters.http.wasm/envoyextensionpolicy/<ns>/<name>/wasm/<i>`.
EG_LISTENER = f"{EG_NAMESPACE}/{EG_NAME}/http"
EG_VHOST = f"{EG_LISTENER}/{HOST.replace('.', '_')}"
EG_DOWNSTREAM = ("llmgw.auth", "llmgw.router", "llmgw.ratelimit")


def eg_route_name(rule: int) -> str:
    return f"httproute/{EG_NAMESPACE}/{EG_NAME}/rule/{rule}/match/0/{HOST.replace('.', '_')}"


def eg_wasm_filter_name(index: int) -> str:
    return f"envoy.filters.http.wasm/envoyextensionpolicy/{EG_NAMESPACE}/{EG_NAME}/wasm/{index}"


# ---- reading envoy/gateway.yaml -------------------------------------------------------------

class Gateway:
    """The pieces of envoy/gateway.yaml a mesh needs (YAML aliases resolved into copies)."""

    def __init__(self, bootstrap: dict):
        self.bootstrap = bootstrap
        # The public listener only: the admin listener (GET /llmgw/budgets, local mode's read
        # path) stays out of the meshes, whose replicas each count locally; there budgets go
        # global and llmgw-rls's GET /budgets is the read path (README, "Budgets").
        (listener,) = [l for l in bootstrap["static_resources"]["listeners"]
                       if l["name"] != ADMIN_LISTENER]
        (chain,) = listener["filter_chains"]
        (hcm,) = [f for f in chain["filters"] if f["name"] == HCM]
        self.hcm = hcm["typed_config"]
        (self.vhost,) = self.hcm["route_config"]["virtual_hosts"]
        self.routes = self.vhost["routes"]
        self.clusters = bootstrap["static_resources"]["clusters"]

    def http_filter(self, name: str) -> dict:
        (found,) = [f for f in self.hcm["http_filters"] if f["name"] == name]
        return found

    def hcm_settings(self) -> dict:
        """The connection manager's own settings (the edge, access log, local replies)."""
        return {k: v for k, v in self.hcm.items() if k not in MESH_OWNED_HCM and k != "@type"}

    def translate(self) -> dict:
        """translate's upstream filter entry (the same on every provider cluster)."""
        found = {json.dumps(f, sort_keys=True) for c in self.clusters for f in upstream_filters(c)
                 if f["name"] == "llmgw.translate"}
        (one,) = found
        return json.loads(one)

    def plugin_config(self, name: str) -> dict:
        """A downstream filter's JSON configuration, parsed."""
        return json.loads(self.http_filter(name)["typed_config"]["config"]["configuration"]["value"])


def upstream_filters(cluster: dict) -> list:
    options = cluster.get("typed_extension_protocol_options", {})
    http = options.get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {})
    return http.get("http_filters", [])


def load(path: Path = SOURCE) -> Gateway:
    # json round trip: YAML aliases (`*translate`) become independent copies.
    return Gateway(json.loads(json.dumps(yaml.safe_load(path.read_text()))))


def module_name(wasm_filter: dict) -> str:
    """`auth` for a filter whose code is build/wasm/auth.wasm."""
    filename = wasm_filter["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"]
    return Path(filename).stem


def with_code(wasm_filter: dict, code: dict) -> dict:
    changed = copy.deepcopy(wasm_filter)
    changed["typed_config"]["config"]["vm_config"]["code"] = code
    return changed


def oci_url(module: str) -> str:
    return f"oci://{REGISTRY}/{module}:{VERSION}"


def istio_code(module: str) -> dict:
    # Istio's agent pulls an ECDS Wasm config's remote code (oci:// or https://) and hands Envoy
    # a local file, as it does for WasmPlugins; Envoy never sees this URL.
    return {"remote": {"http_uri": {"uri": oci_url(module), "timeout": "30s"}}}


def http_code(module: str, sha256: dict[str, str]) -> dict:
    return {"remote": {
        "http_uri": {"uri": f"http://{MODULES_HOST}/{module}.wasm", "cluster": MODULES_CLUSTER,
                     "timeout": "30s"},
        "sha256": sha256.get(module, PLACEHOLDER_SHA256),
        "retry_policy": {"num_retries": 3},
    }}


def modules_cluster() -> dict:
    """The cluster Envoy fetches translate from (Envoy Gateway)."""
    return {
        "name": MODULES_CLUSTER,
        "type": "STRICT_DNS",
        "connect_timeout": "5s",
        "load_assignment": {"cluster_name": MODULES_CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": MODULES_HOST, "port_value": 80}}}}]}]},
    }


def env_keys(gateway: Gateway) -> list[str]:
    """The environment variables translate reads provider keys from."""
    vm = gateway.translate()["typed_config"]["config"]["vm_config"]
    return vm["environment_variables"]["host_env_keys"]


def ecds_reference(name: str) -> dict:
    """An HTTP filter whose config Istio serves by name over ADS (an EXTENSION_CONFIG patch)."""
    return {"name": name, "config_discovery": {"config_source": {"ads": {}}, "type_urls": [WASM_TYPE]}}


def with_translate(cluster: dict, translate: dict) -> dict:
    """The cluster with its llmgw.translate upstream filter replaced by `translate`."""
    cluster = copy.deepcopy(cluster)
    filters = upstream_filters(cluster)
    for i, f in enumerate(filters):
        if f["name"] == "llmgw.translate":
            filters[i] = translate
    return cluster


# ---- Istio -----------------------------------------------------------------------------------

def istio(gateway: Gateway) -> dict[str, list[dict]]:
    meta = lambda name: {"name": name, "namespace": ISTIO_NAMESPACE}  # noqa: E731
    gateway_match = {"context": "GATEWAY"}
    hcm_match = {"context": "GATEWAY", "listener": {"filterChain": {"filter": {"name": HCM}}}}
    before_router = {"context": "GATEWAY", "listener": {"filterChain": {"filter": {
        "name": HCM, "subFilter": {"name": ROUTER}}}}}

    auth = gateway.http_filter("llmgw.auth")["typed_config"]["config"]
    wasmplugins = [{
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": meta("llmgw-auth"),
        "spec": {
            "selector": {"matchLabels": ISTIO_SELECTOR},
            "url": oci_url("auth"),
            "imagePullPolicy": "IfNotPresent",
            # AUTHN is the first phase: auth runs before everything else of the gateway's.
            "phase": "AUTHN",
            "type": "HTTP",
            "failStrategy": auth["failure_policy"],
            "pluginConfig": gateway.plugin_config("llmgw.auth"),
        },
    }]

    # router and ratelimit: router needs `allow_on_headers_stop_iteration`, which WasmPlugin
    # cannot set, and ratelimit must run after router, while every WasmPlugin phase comes before
    # a filter inserted next to envoy.filters.http.router. Both are ECDS extension configs (the
    # mechanism WasmPlugin itself uses), inserted in order before the router.
    extension_configs = []
    inserted = []
    for name in ("llmgw.router", "llmgw.ratelimit"):
        entry = with_code(gateway.http_filter(name), istio_code(module_name(gateway.http_filter(name))))
        extension_configs.append({"applyTo": "EXTENSION_CONFIG", "patch": {
            "operation": "ADD", "value": entry}})
        inserted.append({"applyTo": "HTTP_FILTER", "match": before_router, "patch": {
            "operation": "INSERT_BEFORE", "value": ecds_reference(name)}})

    translate = gateway.translate()
    translate_config = with_code(translate, istio_code(module_name(translate)))
    clusters = [{"applyTo": "CLUSTER", "match": gateway_match, "patch": {
        "operation": "ADD", "value": with_translate(c, ecds_reference("llmgw.translate"))}}
        for c in gateway.clusters]

    # INSERT_FIRST puts each route ahead of the ones before it: insert in reverse order.
    routes = [{"applyTo": "HTTP_ROUTE",
               "match": {"context": "GATEWAY", "routeConfiguration": {"vhost": {"name": ISTIO_VHOST}}},
               "patch": {"operation": "INSERT_FIRST", "value": route}}
              for route in reversed(gateway.routes)]

    vhost_settings = {k: v for k, v in gateway.vhost.items() if k not in ("name", "domains", "routes")}
    router_settings = gateway.http_filter(ROUTER)["typed_config"]

    def envoyfilter(name: str, patches: list[dict]) -> dict:
        return {
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "EnvoyFilter",
            "metadata": meta(name),
            "spec": {"workloadSelector": {"labels": ISTIO_SELECTOR}, "configPatches": patches},
        }

    envoyfilters = [
        envoyfilter("llmgw-filters", extension_configs + inserted),
        envoyfilter("llmgw-providers", [{"applyTo": "EXTENSION_CONFIG", "patch": {
            "operation": "ADD", "value": translate_config}}] + clusters),
        envoyfilter("llmgw-routes", routes),
        envoyfilter("llmgw-edge", [
            {"applyTo": "NETWORK_FILTER", "match": hcm_match, "patch": {"operation": "MERGE", "value": {
                "typed_config": {"@type": gateway.hcm["@type"], **gateway.hcm_settings()}}}},
            {"applyTo": "HTTP_FILTER", "match": before_router,
             "patch": {"operation": "MERGE", "value": {"typed_config": router_settings}}},
            {"applyTo": "VIRTUAL_HOST",
             "match": {"context": "GATEWAY", "routeConfiguration": {"vhost": {"name": ISTIO_VHOST}}},
             "patch": {"operation": "MERGE", "value": vhost_settings}},
        ]),
    ]

    ingress = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": meta("llmgw"),
            "spec": {"selector": ISTIO_SELECTOR, "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [HOST]}]},
        },
        {
            # Only makes the virtual host exist: llmgw's routes (llmgw-routes) come first and
            # take every /v1/ request; anything else is a 404.
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": meta("llmgw"),
            "spec": {"hosts": [HOST], "gateways": [f"{ISTIO_NAMESPACE}/llmgw"], "http": [
                {"name": "not-llmgw", "directResponse": {"status": 404}}]},
        },
    ]
    return {"istio/wasmplugins.yaml": wasmplugins, "istio/envoyfilters.yaml": envoyfilters,
            "istio/gateway.yaml": ingress}


# ---- Envoy Gateway ---------------------------------------------------------------------------

def envoy_gateway(gateway: Gateway, sha256: dict[str, str]) -> dict[str, list[dict]]:
    meta = lambda name: {"name": name, "namespace": EG_NAMESPACE}  # noqa: E731
    gateway_ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": EG_NAME}

    infrastructure = [
        {
            # The proxy's environment: provider keys from a Secret, never inline.
            "apiVersion": "gateway.envoyproxy.io/v1alpha1",
            "kind": "EnvoyProxy",
            "metadata": meta(EG_NAME),
            "spec": {"provider": {"type": "Kubernetes", "kubernetes": {"envoyDeployment": {
                "container": {"env": [
                    {"name": key, "valueFrom": {"secretKeyRef": {
                        "name": KEYS_SECRET, "key": key, "optional": True}}}
                    for key in env_keys(gateway)]}}}}},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": meta(EG_NAME),
            "spec": {
                "gatewayClassName": "eg",
                "infrastructure": {"parametersRef": {
                    "group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": EG_NAME}},
                "listeners": [{"name": "http", "protocol": "HTTP", "port": 80, "hostname": HOST}],
            },
        },
    ]

    # The routes: an HTTPRoute makes them (and lets the EnvoyExtensionPolicy attach); the
    # EnvoyPatchPolicy then gives each gateway.yaml's match and action (cluster_header, the
    # fallback chain's retry policy), which HTTPRoute cannot express. The backend is only what
    # the HTTPRoute needs to be accepted: router picks the cluster of every request.
    backend = {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "Backend",
        "metadata": meta("llmgw-unused"),
        "spec": {"endpoints": [{"fqdn": {"hostname": "api.openai.com", "port": 443}}]},
    }
    rules = []
    for route in gateway.routes:
        match = {"path": {"type": "PathPrefix", "value": route["match"]["prefix"].rstrip("/")}}
        headers = [{"type": "Exact", "name": h["name"], "value": h["string_match"]["exact"]}
                   for h in route["match"].get("headers", [])]
        if headers:
            match["headers"] = headers
        rules.append({"matches": [match], "backendRefs": [
            {"group": "gateway.envoyproxy.io", "kind": "Backend", "name": "llmgw-unused"}]})
    httproute = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": meta(EG_NAME),
        "spec": {"parentRefs": [{"name": EG_NAME}], "hostnames": [HOST], "rules": rules},
    }

    wasm = []
    for name in EG_DOWNSTREAM:
        config = gateway.http_filter(name)["typed_config"]["config"]
        wasm.append({
            "name": name,
            "code": {"type": "Image", "image": {"url": f"{REGISTRY}/{module_name(gateway.http_filter(name))}:{VERSION}"}},
            "config": gateway.plugin_config(name),
            "failOpen": config.get("failure_policy") == "FAIL_OPEN",
        })
    extension_policy = {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyExtensionPolicy",
        "metadata": meta(EG_NAME),
        "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                 "name": EG_NAME}], "wasm": wasm},
    }

    listener_type = "type.googleapis.com/envoy.config.listener.v3.Listener"
    route_type = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    cluster_type = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    hcm_path = "/default_filter_chain/filters/0/typed_config"
    patches = []
    for key, value in gateway.hcm_settings().items():
        patches.append({"type": listener_type, "name": EG_LISTENER,
                        "operation": {"op": "add", "path": f"{hcm_path}/{key}", "value": value}})
    # What EnvoyExtensionPolicy's Wasm cannot say, set on the filters it made.
    for index, name in enumerate(EG_DOWNSTREAM):
        config = gateway.http_filter(name)["typed_config"]["config"]
        selected = f"$..http_filters[?(@.name=='{eg_wasm_filter_name(index)}')]"
        # The VM id too: ratelimit's counters and router's health live in shared data, which
        # belongs to the vm_id (Envoy Gateway would name it after the policy).
        fields = {f: config[f] for f in ("failure_policy", "allow_on_headers_stop_iteration") if f in config}
        fields["vm_config/vm_id"] = config["vm_config"]["vm_id"]
        for field, value in fields.items():
            patches.append({"type": listener_type, "name": EG_LISTENER, "operation": {
                "op": "add", "jsonPath": selected, "path": f"/typed_config/config/{field}",
                "value": value}})
    for field, value in gateway.http_filter(ROUTER)["typed_config"].items():
        if field != "@type":
            patches.append({"type": listener_type, "name": EG_LISTENER, "operation": {
                "op": "add", "jsonPath": f"$..http_filters[?(@.name=='{ROUTER}')]",
                "path": f"/typed_config/{field}", "value": value}})
    for field, value in gateway.vhost.items():
        if field not in ("name", "domains", "routes"):
            patches.append({"type": route_type, "name": EG_LISTENER, "operation": {
                "op": "add", "jsonPath": f"$.virtual_hosts[?(@.name=='{EG_VHOST}')]",
                "path": f"/{field}", "value": value}})
    for rule, route in enumerate(gateway.routes):
        for field, value in route.items():
            patches.append({"type": route_type, "name": EG_LISTENER, "operation": {
                "op": "add", "jsonPath": f"$..routes[?(@.name=='{eg_route_name(rule)}')]",
                "path": f"/{field}", "value": value}})
    translate = gateway.translate()
    translate_remote = with_code(translate, http_code(module_name(translate), sha256))
    for cluster in [*(with_translate(c, translate_remote) for c in gateway.clusters), modules_cluster()]:
        patches.append({"type": cluster_type, "name": cluster["name"],
                        "operation": {"op": "add", "path": "", "value": cluster}})
    patch_policy = {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyPatchPolicy",
        "metadata": meta(EG_NAME),
        "spec": {"targetRef": gateway_ref, "type": "JSONPatch", "jsonPatches": patches},
    }
    return {
        "envoy-gateway/gateway.yaml": infrastructure,
        "envoy-gateway/httproute.yaml": [backend, httproute],
        "envoy-gateway/extension-policy.yaml": [extension_policy],
        "envoy-gateway/patch-policy.yaml": [patch_policy],
    }


# ---- output ----------------------------------------------------------------------------------

HEADERS = {
    "istio/wasmplugins.yaml": "auth as a WasmPlugin on the ingress gateway (README, \"Istio\").",
    "istio/envoyfilters.yaml": "What a WasmPlugin cannot express: router and ratelimit (ECDS extension\n"
    "# configs), the provider clusters with translate as their upstream filter, the fallback\n"
    "# chain's aggregate cluster, llmgw's routes and the edge settings (README, \"Istio\").",
    "istio/gateway.yaml": "The ingress gateway's server and a VirtualService that gives it the virtual host\n"
    "# llmgw's routes go into (README, \"Istio\").",
    "envoy-gateway/gateway.yaml": "The Gateway and its proxy's settings: provider keys from the Secret\n"
    f"# `{KEYS_SECRET}` (README, \"Envoy Gateway\").",
    "envoy-gateway/httproute.yaml": "The HTTPRoute llmgw's routes start from (README, \"Envoy Gateway\").",
    "envoy-gateway/extension-policy.yaml": "auth, router and ratelimit as Wasm extensions of the route, in\n"
    "# this order (README, \"Envoy Gateway\").",
    "envoy-gateway/patch-policy.yaml": "What EnvoyExtensionPolicy and HTTPRoute cannot express: router's\n"
    "# allow_on_headers_stop_iteration, the routes' cluster_header and retry policy, the provider\n"
    "# clusters with translate as their upstream filter, the fallback chain's aggregate cluster and\n"
    "# the edge settings (README, \"Envoy Gateway\").",
}


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line strings (the filters' JSON) as `|` blocks, and no aliases."""

    def ignore_aliases(self, data):
        return True


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def render(name: str, docs: list[dict]) -> str:
    body = "---\n".join(yaml.dump(d, Dumper=_Dumper, sort_keys=False, width=100) for d in docs)
    return (f"# Generated by `make manifests` (tools/manifests.py) from envoy/gateway.yaml: do not edit.\n"
            f"# {HEADERS[name]}\n" + body)


def generate(gateway: Gateway, sha256: dict[str, str] | None = None) -> dict[str, str]:
    files = {**istio(gateway), **envoy_gateway(gateway, sha256 or {})}
    return {name: render(name, docs) for name, docs in files.items()}


def module_digests(directory: Path) -> dict[str, str]:
    return {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*.wasm"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--sha256-from", type=Path,
                        help="put the sha256 of these .wasm files in place of the placeholder")
    args = parser.parse_args()
    digests = module_digests(args.sha256_from) if args.sha256_from else None
    for name, text in generate(load(args.source), digests).items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)


if __name__ == "__main__":
    main()
