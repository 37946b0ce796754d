"""Provider keys that rotate without a restart: each key is an Envoy SDS generic secret read from
a file Envoy watches, injected per try by Envoy's credential_injector into a reserved header that
translate takes the key from (`key_header`) and removes (README, "Provider keys that rotate").

`rotate` turns a gateway bootstrap (envoy/gateway.yaml) into that variant for the providers named:
- translate's provider gets `"key_header": "x-llmgw-key-<provider>"` instead of `key_env`;
- every cluster that can send a try to the provider (its own, and each aggregate cluster holding
  it) gets an `envoy.filters.http.credential_injector` before translate, whose generic credential
  is the SDS secret `llmgw-key-<provider>`;
- that secret comes from `<secrets_dir>/<provider>.yaml` (written here), whose `generic_secret`
  is the file `<keys_dir>/<ENV VAR>` (e.g. keys/OPENAI_API_KEY), watched through `keys_dir`:
  what a Kubernetes Secret volume holds (one file per key, swapped atomically by the kubelet),
  or what a token refresher writes.

`set` writes a new key the way Envoy needs: a complete file renamed into place, never empty.

    python3 tools/credentials.py rotate envoy/gateway.yaml out/ keys/ openai [anthropic ...]
    python3 tools/credentials.py set keys/OPENAI_API_KEY < new-key
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
INJECTOR_TYPE = "type.googleapis.com/envoy.extensions.filters.http.credential_injector.v3.CredentialInjector"
GENERIC_TYPE = "type.googleapis.com/envoy.extensions.http.injected_credentials.generic.v3.Generic"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
# A Bedrock provider's key file: `<access key id>:<secret access key>[:<session token>]`.
AWS_FILE = "AWS_CREDENTIALS"


def key_header(provider: str) -> str:
    return f"x-llmgw-key-{provider}"


def secret_name(provider: str) -> str:
    return f"llmgw-key-{provider}"


def secret_file(provider: str, key_file: Path, keys_dir: Path) -> dict:
    """The SDS file: one generic secret whose value is the key file, re-read when a file is
    moved into `keys_dir` (a rename, or the kubelet's `..data` symlink swap)."""
    return {"resources": [{
        "@type": SECRET_TYPE,
        "name": secret_name(provider),
        "generic_secret": {"secret": {"filename": str(key_file), "watched_directory": {"path": str(keys_dir)}}},
    }]}


def injector(provider: str, secret_path: Path) -> dict:
    """credential_injector putting the provider's secret in its key header on every try; a
    header a client sent under that name is overwritten, and without the secret the try fails."""
    return {
        "name": f"llmgw.key.{provider}",
        "typed_config": {
            "@type": INJECTOR_TYPE,
            "overwrite": True,
            "credential": {
                "name": "envoy.http.injected_credentials.generic",
                "typed_config": {
                    "@type": GENERIC_TYPE,
                    "header": key_header(provider),
                    "credential": {"name": secret_name(provider), "sds_config": {
                        "path_config_source": {"path": str(secret_path)}, "resource_api_version": "V3"}},
                },
            },
        },
    }


def _upstream_filters(cluster: dict) -> list | None:
    return cluster.get("typed_extension_protocol_options", {}).get(HTTP_OPTIONS, {}).get("http_filters")


def _cluster_provider(cluster: dict) -> str | None:
    for group in cluster.get("load_assignment", {}).get("endpoints", []):
        for endpoint in group.get("lb_endpoints", []):
            found = endpoint.get("metadata", {}).get("filter_metadata", {}).get("llmgw", {}).get("provider")
            if found:
                return found
    return None


def rotate(bootstrap: dict, secrets_dir: Path, keys_dir: Path, providers: list[str],
           shown_dir: Path | None = None) -> dict:
    """The bootstrap with `providers`' keys from watched files; writes their SDS files. Paths
    in the bootstrap are relative to `shown_dir` (Envoy's working directory) when given."""
    bootstrap = json.loads(json.dumps(bootstrap))  # YAML aliases become independent copies
    # Envoy refuses any SDS subscription, file-based ones included, without a node id/cluster.
    bootstrap.setdefault("node", {"id": "llmgw", "cluster": "llmgw"})
    secrets_dir.mkdir(parents=True, exist_ok=True)
    shown = (lambda p: Path(os.path.relpath(p, shown_dir))) if shown_dir else (lambda p: p)
    clusters = bootstrap["static_resources"]["clusters"]
    by_name = {c["name"]: c for c in clusters}
    env_var = {}
    for cluster in clusters:
        for f in _upstream_filters(cluster) or []:
            if f["name"] != "llmgw.translate":
                continue
            conf = f["typed_config"]["config"]["configuration"]
            translate = json.loads(conf["value"])
            for p in translate["providers"]:
                if p["name"] not in providers:
                    continue
                if p["schema"] == "bedrock":
                    # One file, `<key id>:<secret>[:<session token>]`: the three change together.
                    for field in ("access_key_env", "secret_key_env", "session_token_env"):
                        p.pop(field, None)
                    env_var[p["name"]] = AWS_FILE
                else:
                    env_var[p["name"]] = p.pop("key_env")
                p["key_header"] = key_header(p["name"])
            conf["value"] = json.dumps(translate, indent=1) + "\n"
    missing = set(providers) - set(env_var)
    if missing:
        raise SystemExit(f"no translate provider named {sorted(missing)}")
    for provider, var in env_var.items():
        path = secrets_dir / f"{provider}.yaml"
        path.write_text(yaml.safe_dump(secret_file(provider, shown(keys_dir / var), shown(keys_dir)),
                                       sort_keys=False))
    for cluster in clusters:
        filters = _upstream_filters(cluster)
        if filters is None:
            continue
        aggregate = cluster.get("cluster_type", {}).get("typed_config", {}).get("clusters", [])
        reached = {_cluster_provider(by_name[m]) for m in aggregate} | {_cluster_provider(cluster)}
        at = [i for i, f in enumerate(filters) if f["name"] == "llmgw.translate"][0]
        for provider in sorted(reached & set(env_var)):
            filters.insert(at, injector(provider, shown(secrets_dir / f"{provider}.yaml")))
            at += 1
    return bootstrap


def set_key(path: Path, key: str) -> None:
    """A new key, atomically: a complete temporary file in the same directory renamed over the
    old one (what Envoy's watch reacts to). An empty key is refused: Envoy would take it."""
    key = key.strip()
    if not key:
        raise SystemExit(f"{path}: refusing an empty key (the old one keeps serving)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        out.write(key)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def main() -> None:
    if len(sys.argv) >= 6 and sys.argv[1] == "rotate":
        source, out, keys = Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
        bootstrap = rotate(yaml.safe_load(source.read_text()), out, keys, sys.argv[5:], Path.cwd())
        (out / "gateway.yaml").write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        print(f"{out / 'gateway.yaml'}: keys of {', '.join(sys.argv[5:])} from {keys}/")
    elif len(sys.argv) == 3 and sys.argv[1] == "set":
        set_key(Path(sys.argv[2]), sys.stdin.read())
        print(f"{sys.argv[2]}: new key in place")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
