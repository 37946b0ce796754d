"""The Istio and Envoy Gateway manifests (examples/istio, examples/envoy-gateway) say the same as
the tested envoy/gateway.yaml.

- They are what `make manifests` generates from envoy/gateway.yaml now.
- Applied the way each mesh applies them (below: Istio's EnvoyFilter patch operations and its
  WasmPlugin and ECDS handling; Envoy Gateway's JSONPatch with JSONPath and its Wasm filters),
  read back independently of the generator, they give envoy/gateway.yaml's listener settings,
  filters, routes and clusters: equal as parsed data, each filter's JSON configuration compared
  parsed. Only what the mesh owns differs (names, where a module's code comes from, Envoy
  Gateway's per-route enabling of its Wasm filters).
- That assembled configuration passes `envoy --mode validate` (every filter's on_configure runs).
- Every manifest validates against its CRD's published OpenAPI schema (tests/e2e/crds/, from
  tools/crd_schemas.py), with unknown fields refused as `kubectl apply` (strict field validation)
  refuses them.
No Kubernetes cluster runs here: what Istio's and Envoy Gateway's controllers do with the
manifests is modelled from their documentation and source (README, "Istio", "Envoy Gateway").
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import harness

sys.path.insert(0, str(harness.ROOT / "tools"))
import manifests  # noqa: E402

EXAMPLES = harness.ROOT / "examples"
CRDS = Path(__file__).resolve().parent / "crds"
WASM_TYPE = manifests.WASM_TYPE
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"


def documents(*names: str) -> list[dict]:
    docs = []
    for name in names:
        docs += [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
    return docs


ISTIO_FILES = ("istio/wasmplugins.yaml", "istio/envoyfilters.yaml", "istio/gateway.yaml")
EG_FILES = ("envoy-gateway/gateway.yaml", "envoy-gateway/httproute.yaml",
            "envoy-gateway/extension-policy.yaml", "envoy-gateway/patch-policy.yaml")


def gateway_yaml() -> dict:
    return json.loads(json.dumps(yaml.safe_load(harness.GATEWAY_YAML.read_text())))


def local_code(module: str) -> dict:
    return {"local": {"filename": f"build/wasm/{module}.wasm"}}


def module_of(uri: str) -> str:
    """`router` for oci://registry/llmgw/router:0.1.0 or http://host/router.wasm."""
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    return last.split(":")[0].removesuffix(".wasm")


def with_local_code(node):
    """Every remote module (a mesh fetches it) as the local file the tested gateway loads."""
    for found in harness._walk(node):
        code = found.get("code")
        if isinstance(code, dict) and "remote" in code:
            found["code"] = local_code(module_of(code["remote"]["http_uri"]["uri"]))
    return node


def parsed_configurations(node):
    """Filter configurations compared as parsed JSON: a mesh re-serializes an object config."""
    node = copy.deepcopy(node)
    for found in harness._walk(node):
        conf = found.get("configuration")
        if isinstance(conf, dict) and conf.get("@type") == STRING_VALUE and isinstance(conf["value"], str):
            conf["value"] = json.loads(conf["value"])
    return node


def proto_merge(into: dict, value: dict) -> None:
    """Protobuf merge (Istio's MERGE): fields set, messages merged, repeated fields appended."""
    for key, v in value.items():
        if isinstance(v, dict) and isinstance(into.get(key), dict):
            proto_merge(into[key], v)
        elif isinstance(v, list) and isinstance(into.get(key), list):
            into[key] += copy.deepcopy(v)
        else:
            into[key] = copy.deepcopy(v)


# ---- Istio ----------------------------------------------------------------------------------

def istio_skeleton(gateway: dict) -> dict:
    """What the ingress gateway has before llmgw's manifests: its listener, connection manager,
    the virtual host of the Gateway/VirtualService, Envoy's router. (Istio's own filters, such
    as its stats, are left out: llmgw's manifests do not depend on them.)"""
    listener = gateway["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return {
        "name": listener["name"], "address": listener["address"],
        "filter_chains": [{"filters": [{"name": manifests.HCM, "typed_config": {
            "@type": hcm["@type"], "stat_prefix": hcm["stat_prefix"],
            "route_config": {"name": hcm["route_config"]["name"], "virtual_hosts": [{
                "name": manifests.ISTIO_VHOST, "domains": [manifests.HOST], "routes": []}]},
            "http_filters": [{"name": manifests.ROUTER, "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
        }}]}],
    }


def wasmplugin_filter(plugin: dict) -> dict:
    """The Wasm filter Istio makes of a WasmPlugin: pluginConfig as a JSON string."""
    spec = plugin["spec"]
    name = "llmgw." + plugin["metadata"]["name"].removeprefix("llmgw-")
    return {"name": name, "typed_config": {"@type": WASM_TYPE, "config": {
        "name": name,
        "failure_policy": spec["failStrategy"],
        "configuration": {"@type": STRING_VALUE, "value": json.dumps(spec["pluginConfig"])},
        "vm_config": {"vm_id": name, "runtime": "envoy.wasm.runtime.v8",
                      "code": local_code(module_of(spec["url"]))},
    }}}


def apply_istio(docs: list[dict], gateway: dict) -> dict:
    listener = istio_skeleton(gateway)
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    (vhost,) = hcm["route_config"]["virtual_hosts"]
    clusters: list[dict] = []
    extension_configs: dict[str, dict] = {}

    def index_of(name: str) -> int:
        (i,) = [i for i, f in enumerate(filters) if f["name"] == name]
        return i

    for doc in docs:
        if doc["kind"] == "WasmPlugin":
            assert doc["spec"]["phase"] == "AUTHN"  # the first phase: before every other filter
            filters.insert(0, wasmplugin_filter(doc))
    for doc in docs:
        if doc["kind"] != "EnvoyFilter":
            continue
        for patch in doc["spec"]["configPatches"]:
            target, op, value = patch["applyTo"], patch["patch"]["operation"], patch["patch"]["value"]
            match = patch.get("match", {})
            if (target, op) == ("EXTENSION_CONFIG", "ADD"):
                extension_configs[value["name"]] = value
            elif (target, op) == ("HTTP_FILTER", "INSERT_BEFORE"):
                sub = match["listener"]["filterChain"]["filter"]["subFilter"]["name"]
                filters.insert(index_of(sub), value)
            elif (target, op) == ("HTTP_FILTER", "MERGE"):
                sub = match["listener"]["filterChain"]["filter"]["subFilter"]["name"]
                proto_merge(filters[index_of(sub)], value)
            elif (target, op) == ("NETWORK_FILTER", "MERGE"):
                assert match["listener"]["filterChain"]["filter"]["name"] == manifests.HCM
                proto_merge(hcm, value["typed_config"])
            elif (target, op) == ("VIRTUAL_HOST", "MERGE"):
                assert match["routeConfiguration"]["vhost"]["name"] == vhost["name"]
                proto_merge(vhost, value)
            elif (target, op) == ("HTTP_ROUTE", "INSERT_FIRST"):
                assert match["routeConfiguration"]["vhost"]["name"] == vhost["name"]
                vhost["routes"].insert(0, value)
            elif (target, op) == ("CLUSTER", "ADD"):
                clusters.append(value)
            else:
                raise AssertionError(f"a patch this model does not know: {target} {op}")
    # ECDS: Istio serves each extension config by name; every reference must find its config.
    for node in harness._walk([listener, clusters]):
        for key in ("http_filters",):
            for i, f in enumerate(node.get(key, [])):
                if "config_discovery" in f:
                    assert f["config_discovery"]["type_urls"] == [WASM_TYPE]
                    node[key][i] = {"name": f["name"],
                                    "typed_config": copy.deepcopy(extension_configs[f["name"]]["typed_config"])}
    return with_local_code({"listeners": [listener], "clusters": clusters})


def expected_static_resources(gateway: dict, vhost_name: str, domains: list[str]) -> dict:
    """envoy/gateway.yaml's static resources, with the names a mesh owns."""
    expected = copy.deepcopy(gateway["static_resources"])
    # The admin listener is not for the meshes (tools/manifests.py, README "Budgets").
    expected["listeners"] = [l for l in expected["listeners"] if l["name"] != manifests.ADMIN_LISTENER]
    vhost = expected["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]
    vhost["name"], vhost["domains"] = vhost_name, domains
    return expected


def test_istio_manifests_applied_give_gateway_yaml():
    gateway = gateway_yaml()
    assembled = apply_istio(documents(*ISTIO_FILES), gateway)
    expected = expected_static_resources(gateway, manifests.ISTIO_VHOST, [manifests.HOST])
    assert parsed_configurations(assembled) == parsed_configurations(expected)


# ---- Envoy Gateway --------------------------------------------------------------------------

def jsonpath_select(document: dict, expression: str) -> list:
    """The JSONPath forms the EnvoyPatchPolicy uses: `$.<list>[?(@.name=='…')]` and
    `$..<list>[?(@.name=='…')]` (any depth), as Envoy Gateway's ojg JSONPath reads them."""
    m = re.fullmatch(r"\$(\.\.?)(\w+)\[\?\(@\.name=='([^']+)'\)\]", expression)
    assert m, f"a JSONPath this model does not know: {expression}"
    deep, key, name = m.group(1) == "..", m.group(2), m.group(3)
    lists = [n[key] for n in harness._walk(document) if isinstance(n.get(key), list)] if deep \
        else [document.get(key, [])]
    return [item for items in lists for item in items if item.get("name") == name]


def json_patch_add(node: dict, path: str, value) -> None:
    """RFC 6902 `add` of an object member, creating missing parents as Envoy Gateway does
    (EnsurePathExistsOnAdd); list indices as pointer segments."""
    parts = [p for p in path.split("/") if p]
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[parts[-1]] = copy.deepcopy(value)


def eg_wasm_filter(index: int, wasm: dict) -> dict:
    """The Wasm filter Envoy Gateway makes of an EnvoyExtensionPolicy entry (internal/xds/
    translator/wasm.go): disabled on the listener, enabled on the policy's routes; its config
    name is the entry's name, its VM id the policy's, its config the JSON of `config`."""
    assert wasm["code"]["type"] == "Image"
    return {"name": manifests.eg_wasm_filter_name(index), "disabled": True, "typed_config": {
        "@type": WASM_TYPE, "config": {
            "name": wasm["name"],
            "configuration": {"@type": STRING_VALUE, "value": json.dumps(wasm["config"])},
            "vm_config": {"vm_id": manifests.eg_wasm_filter_name(index).split("/", 1)[1],
                          "runtime": "envoy.wasm.runtime.v8",
                          "code": local_code(module_of(wasm["code"]["image"]["url"]))},
            **({"fail_open": True} if wasm.get("failOpen") else {}),
        }}}


def apply_envoy_gateway(docs: list[dict], gateway: dict) -> dict:
    listener_src = gateway["static_resources"]["listeners"][0]
    hcm_src = listener_src["filter_chains"][0]["filters"][0]["typed_config"]
    (policy,) = [d for d in docs if d["kind"] == "EnvoyExtensionPolicy"]
    (route,) = [d for d in docs if d["kind"] == "HTTPRoute"]
    (patch_policy,) = [d for d in docs if d["kind"] == "EnvoyPatchPolicy"]
    assert policy["spec"]["targetRefs"][0]["name"] == route["metadata"]["name"]
    listener = {"name": manifests.EG_LISTENER, "address": listener_src["address"],
                "default_filter_chain": {"filters": [{"name": manifests.HCM, "typed_config": {
                    "@type": hcm_src["@type"], "stat_prefix": hcm_src["stat_prefix"],
                    "http_filters": [eg_wasm_filter(i, w) for i, w in enumerate(policy["spec"]["wasm"])]
                    + [{"name": manifests.ROUTER, "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                }}]}}
    # HTTPRoute's rules as Envoy Gateway makes them (path_separated_prefix for a PathPrefix);
    # the patch policy replaces their match and action with gateway.yaml's.
    routes = []
    for i, rule in enumerate(route["spec"]["rules"]):
        (match,) = rule["matches"]
        routes.append({"name": manifests.eg_route_name(i),
                       "match": {"path_separated_prefix": match["path"]["value"],
                                 **({"headers": [{"name": h["name"], "string_match": {"exact": h["value"]}}
                                                 for h in match["headers"]]} if "headers" in match else {})},
                       "route": {"cluster": f"httproute/{manifests.EG_NAMESPACE}/{manifests.EG_NAME}/rule/{i}"}})
    route_config = {"name": manifests.EG_LISTENER, "virtual_hosts": [{
        "name": manifests.EG_VHOST, "domains": route["spec"]["hostnames"], "routes": routes}]}
    resources = {"type.googleapis.com/envoy.config.listener.v3.Listener": {listener["name"]: listener},
                 "type.googleapis.com/envoy.config.route.v3.RouteConfiguration": {route_config["name"]: route_config},
                 "type.googleapis.com/envoy.config.cluster.v3.Cluster": {}}
    for patch in patch_policy["spec"]["jsonPatches"]:
        op = patch["operation"]
        assert op["op"] == "add", f"a JSONPatch op this model does not know: {op['op']}"
        if op.get("path") == "" and "jsonPath" not in op:
            assert op["value"]["name"] == patch["name"]
            resources[patch["type"]][patch["name"]] = copy.deepcopy(op["value"])
            continue
        document = resources[patch["type"]][patch["name"]]
        targets = jsonpath_select(document, op["jsonPath"]) if "jsonPath" in op else [document]
        assert targets, f"{op.get('jsonPath')} selects nothing"
        for target in targets:
            json_patch_add(target, op["path"], op["value"])

    # Back to gateway.yaml's shape: the route config inline, Envoy Gateway's own names and
    # per-route enabling left out.
    hcm = listener["default_filter_chain"]["filters"][0]["typed_config"]
    for f in hcm["http_filters"]:
        f.pop("disabled", None)
        if f["typed_config"]["@type"] == WASM_TYPE:
            f["name"] = f["typed_config"]["config"]["name"]
    for r in route_config["virtual_hosts"][0]["routes"]:
        r.pop("name")
    hcm["route_config"] = {"name": hcm_src["route_config"]["name"],
                           "virtual_hosts": route_config["virtual_hosts"]}
    clusters = resources["type.googleapis.com/envoy.config.cluster.v3.Cluster"]
    modules = clusters.pop(manifests.MODULES_CLUSTER)
    assert modules["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"]["address"] == manifests.MODULES_HOST
    for found in harness._walk(list(clusters.values())):
        remote = found.get("remote")
        if isinstance(remote, dict) and "http_uri" in remote:
            assert remote["http_uri"]["cluster"] == manifests.MODULES_CLUSTER
    return with_local_code({
        "listeners": [{"name": listener_src["name"], "address": listener["address"],
                       "filter_chains": [listener["default_filter_chain"]]}],
        "clusters": list(clusters.values()),
    })


def test_envoy_gateway_manifests_applied_give_gateway_yaml():
    gateway = gateway_yaml()
    assembled = apply_envoy_gateway(documents(*EG_FILES), gateway)
    expected = expected_static_resources(gateway, manifests.EG_VHOST, [manifests.HOST])
    assert parsed_configurations(assembled) == parsed_configurations(expected)


# ---- generated, valid ------------------------------------------------------------------------

def test_the_checked_in_manifests_are_generated_from_gateway_yaml():
    generated = manifests.generate(manifests.load())
    assert sorted(generated) == sorted(ISTIO_FILES + EG_FILES)
    for name, text in generated.items():
        assert (EXAMPLES / name).read_text() == text, f"examples/{name} is stale: run `make manifests`"


def test_a_changed_gateway_yaml_changes_the_manifests(tmp_path):
    """The drift check can fail: a route timeout edited in gateway.yaml shows in both meshes."""
    text = harness.GATEWAY_YAML.read_text().replace("timeout: 600s", "timeout: 601s")
    (tmp_path / "gateway.yaml").write_text(text)
    changed = manifests.generate(manifests.load(tmp_path / "gateway.yaml"))
    for name in ("istio/envoyfilters.yaml", "envoy-gateway/patch-policy.yaml"):
        assert "601s" in changed[name] and changed[name] != (EXAMPLES / name).read_text()


def test_sha256_from_built_modules_replaces_the_placeholder():
    digests = manifests.module_digests(harness.ROOT / "build" / "wasm")
    text = manifests.generate(manifests.load(), digests)["envoy-gateway/patch-policy.yaml"]
    assert manifests.PLACEHOLDER_SHA256 not in text and digests["translate"] in text


@pytest.mark.parametrize("mesh", ["istio", "envoy-gateway"])
def test_the_assembled_configuration_passes_envoy_validate(mesh, tmp_path):
    gateway = gateway_yaml()
    apply = apply_istio if mesh == "istio" else apply_envoy_gateway
    files = ISTIO_FILES if mesh == "istio" else EG_FILES
    bootstrap = {k: v for k, v in gateway.items() if k != "static_resources"}
    bootstrap["static_resources"] = apply(documents(*files), gateway)
    path = tmp_path / f"{mesh}.yaml"
    path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
    result = harness.validate(path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def closed(schema):
    """A CRD schema as `kubectl apply` enforces it (strict field validation): an object with
    `properties` takes no other field unless it preserves unknown fields."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


def schema_for(doc: dict) -> dict:
    group, version = doc["apiVersion"].split("/")
    path = CRDS / f"{group}_{doc['kind']}_{version}.json"
    assert path.exists(), f"no schema for {doc['apiVersion']} {doc['kind']}"
    schema = json.loads(path.read_text())
    # apiVersion, kind and metadata (ObjectMeta) are Kubernetes', whatever the CRD lists.
    schema["properties"].update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                 "metadata": {"type": "object"}})
    return closed(schema)


@pytest.mark.parametrize("name", ISTIO_FILES + EG_FILES)
def test_every_manifest_validates_against_its_crd_schema(name):
    for doc in documents(name):
        errors = sorted(jsonschema.Draft7Validator(schema_for(doc)).iter_errors(doc), key=str)
        assert not errors, f"{name} {doc['kind']}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])


def test_the_schema_check_refuses_a_misspelled_field():
    (plugin,) = documents("istio/wasmplugins.yaml")
    plugin["spec"]["pluginConfg"] = plugin["spec"].pop("pluginConfig")
    assert list(jsonschema.Draft7Validator(schema_for(plugin)).iter_errors(plugin))


def test_no_provider_key_is_inline():
    """Keys reach the proxy from a Secret (Envoy Gateway: the container env), never a manifest."""
    text = "".join((EXAMPLES / name).read_text() for name in ISTIO_FILES + EG_FILES)
    for var, mock_key in harness.PROVIDER_KEYS.values():
        assert mock_key not in text
    (proxy,) = [d for d in documents(*EG_FILES) if d["kind"] == "EnvoyProxy"]
    env = proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["env"]
    assert env and all(set(e) == {"name", "valueFrom"} and "secretKeyRef" in e["valueFrom"] for e in env)
