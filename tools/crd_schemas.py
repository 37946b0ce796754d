"""The OpenAPI schemas of the CRDs llmgw's manifests use, taken from the projects' published CRDs,
for tests/e2e/test_manifests.py (no Kubernetes API server here to validate against).

Reads each CRD file from a local clone of its repository (`git show <commit>:<path>`), keeps the
`openAPIV3Schema` of the served version, drops the `description`s (prose, most of the size), and
writes tests/e2e/crds/<group>_<kind>_<version>.json with its source recorded in `x-llmgw-source`.

    python3 tools/crd_schemas.py ISTIO_API_GIT ENVOY_GATEWAY_GIT GATEWAY_API_GIT
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "tests" / "e2e" / "crds"

# (repository, path in it, [(kind, version)])
SOURCES = [
    ("istio/api", "kubernetes/customresourcedefinitions.gen.yaml",
     [("WasmPlugin", "v1alpha1"), ("EnvoyFilter", "v1alpha3"), ("Gateway", "v1"), ("VirtualService", "v1")]),
    ("envoyproxy/gateway", "charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_envoyproxies.yaml",
     [("EnvoyProxy", "v1alpha1")]),
    ("envoyproxy/gateway", "charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_backends.yaml",
     [("Backend", "v1alpha1")]),
    ("envoyproxy/gateway", "charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_envoyextensionpolicies.yaml",
     [("EnvoyExtensionPolicy", "v1alpha1")]),
    ("envoyproxy/gateway", "charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_envoypatchpolicies.yaml",
     [("EnvoyPatchPolicy", "v1alpha1")]),
    ("kubernetes-sigs/gateway-api", "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
     [("Gateway", "v1")]),
    ("kubernetes-sigs/gateway-api", "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
     [("HTTPRoute", "v1")]),
]


def without_descriptions(node):
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


def main() -> None:
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    gits = dict(zip(["istio/api", "envoyproxy/gateway", "kubernetes-sigs/gateway-api"], sys.argv[1:]))
    OUT.mkdir(parents=True, exist_ok=True)
    for repo, path, wanted in SOURCES:
        commit = subprocess.check_output(["git", "-C", gits[repo], "rev-parse", "HEAD"], text=True).strip()
        text = subprocess.check_output(["git", "-C", gits[repo], "show", f"{commit}:{path}"], text=True)
        for crd in yaml.safe_load_all(text):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            kind = crd["spec"]["names"]["kind"]
            group = crd["spec"]["group"]
            for version in crd["spec"]["versions"]:
                if (kind, version["name"]) not in wanted:
                    continue
                schema = without_descriptions(version["schema"]["openAPIV3Schema"])
                schema["x-llmgw-source"] = f"https://github.com/{repo}/blob/{commit}/{path}"
                out = OUT / f"{group}_{kind}_{version['name']}.json"
                out.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n")
                print(f"{out.name}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
