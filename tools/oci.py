"""`make oci`: each built module as a Wasm OCI image, without Docker, reproducibly.

Two variants per module, both in one OCI image layout per module (build/oci/<module>/), told
apart by their `org.opencontainers.image.ref.name`:

- `<version>`: the *oci* variant of the Wasm image specification
  (https://github.com/solo-io/wasm/blob/master/spec/spec.md): config media type
  `application/vnd.module.wasm.config.v1+json` (the runtime config) and two layers, the runtime
  config and the module itself (`application/vnd.module.wasm.content.layer.v1+wasm`, raw bytes).
  Istio's and Envoy Gateway's fetchers (`extractOCIArtifactImage` in istio/istio
  pkg/wasm/imagefetcher.go, copied by envoyproxy/gateway internal/wasm) want exactly two layers
  and pick the one with the wasm media type.
- `<version>-compat`: the *compat* variant
  (https://github.com/solo-io/wasm/blob/master/spec/spec-compat.md): a plain OCI image whose one
  `application/vnd.oci.image.layer.v1.tar+gzip` layer holds `plugin.wasm`, annotated
  `module.wasm.image/variant: compat`; any registry and tool that handles container images
  handles it.

Same .wasm in, same digests out: no timestamps anywhere (tar mtime 0, gzip header mtime 0 and no
file name), tar entries with fixed owner and mode, JSON with sorted keys and no spaces. (gzip's
bytes come from zlib: another zlib version may compress differently, so the compat digests are
stable per toolchain; the oci variant has no compression at all.)

`push` sends a layout's images to a registry with the registry HTTP API
(https://github.com/opencontainers/distribution-spec/blob/main/spec.md): monolithic blob uploads,
then the manifest. `python3 tools/oci.py push build/oci/auth http://127.0.0.1:5000/llmgw/auth`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["auth", "router", "ratelimit", "translate", "translate-openai", "gateway"]

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
WASM_CONFIG_TYPE = "application/vnd.module.wasm.config.v1+json"
WASM_LAYER_TYPE = "application/vnd.module.wasm.content.layer.v1+wasm"
IMAGE_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
TAR_GZIP_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
TITLE = "org.opencontainers.image.title"
COMPAT_ANNOTATION = "module.wasm.image/variant"


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, annotations: dict | None = None) -> dict:
    desc = {"mediaType": media_type, "digest": digest(data), "size": len(data)}
    if annotations:
        desc["annotations"] = annotations
    return desc


def version() -> str:
    for line in (ROOT / "Cargo.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise SystemExit("no workspace version in Cargo.toml")


def runtime_config() -> bytes:
    """The spec's Envoy runtime config. No `root_ids`: llmgw's modules serve whatever root id
    the filter config names (none, in envoy/gateway.yaml)."""
    return canonical_json({"type": "envoy_proxy", "abiVersions": ["proxy_abi_version_0_2_1"],
                           "config": {}})


def plugin_tar_gz(wasm: bytes) -> bytes:
    """A tar.gz holding only `plugin.wasm`, byte-for-byte the same for the same module."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size = len(wasm)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(wasm))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(tar_bytes.getvalue())
    return out.getvalue()


def oci_variant(wasm: bytes, module: str) -> tuple[bytes, dict[str, bytes]]:
    """(manifest, blobs by digest) of the oci variant."""
    config = runtime_config()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(WASM_CONFIG_TYPE, config),
        "layers": [
            descriptor(WASM_CONFIG_TYPE, config, {TITLE: "runtime-config.json"}),
            descriptor(WASM_LAYER_TYPE, wasm, {TITLE: "plugin.wasm"}),
        ],
        "annotations": {"org.opencontainers.image.title": f"llmgw-{module}"},
    }
    return canonical_json(manifest), {digest(config): config, digest(wasm): wasm}


def compat_variant(wasm: bytes, module: str) -> tuple[bytes, dict[str, bytes]]:
    """(manifest, blobs by digest) of the compat variant."""
    layer = plugin_tar_gz(wasm)
    tar_bytes = gzip.decompress(layer)
    config = canonical_json({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest(tar_bytes)]},
    })
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(IMAGE_CONFIG_TYPE, config),
        "layers": [descriptor(TAR_GZIP_TYPE, layer)],
        "annotations": {COMPAT_ANNOTATION: "compat",
                        "org.opencontainers.image.title": f"llmgw-{module}"},
    }
    return canonical_json(manifest), {digest(config): config, digest(layer): layer}


def write_layout(module: str, wasm: bytes, out: Path) -> dict[str, str]:
    """build/oci/<module>/: an OCI image layout with both variants; {ref name: manifest digest}."""
    tag = version()
    images = {tag: oci_variant(wasm, module), f"{tag}-compat": compat_variant(wasm, module)}
    shutil.rmtree(out, ignore_errors=True)  # no blob of an earlier build stays behind
    blob_dir = out / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": []}
    refs = {}
    for ref, (manifest, blobs) in images.items():
        for blob in [manifest, *blobs.values()]:
            (blob_dir / digest(blob).split(":")[1]).write_bytes(blob)
        index["manifests"].append(descriptor(MANIFEST_TYPE, manifest, {REF_NAME: ref}))
        refs[ref] = digest(manifest)
    (out / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    (out / "index.json").write_bytes(canonical_json(index))
    return refs


def read_layout(layout: Path) -> list[tuple[str, bytes, dict[str, bytes]]]:
    """[(ref name, manifest, blobs by digest)] of a layout written by write_layout."""
    index = json.loads((layout / "index.json").read_text())
    blob = lambda d: (layout / "blobs" / "sha256" / d.split(":")[1]).read_bytes()  # noqa: E731
    images = []
    for desc in index["manifests"]:
        manifest = blob(desc["digest"])
        parsed = json.loads(manifest)
        needed = [parsed["config"], *parsed["layers"]]
        images.append((desc["annotations"][REF_NAME], manifest,
                       {d["digest"]: blob(d["digest"]) for d in needed}))
    return images


def _request(method: str, url: str, data: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    return urllib.request.urlopen(req, timeout=60)


def push(layout: Path, repo_url: str) -> dict[str, str]:
    """Every image of `layout` to `repo_url` (http(s)://host/name), tagged with its ref name;
    returns {tag: digest the registry answered}."""
    parts = urllib.parse.urlsplit(repo_url)
    base, name = f"{parts.scheme}://{parts.netloc}", parts.path.strip("/")
    pushed = {}
    for tag, manifest, blobs in read_layout(layout):
        for blob_digest, data in blobs.items():
            try:
                _request("HEAD", f"{base}/v2/{name}/blobs/{blob_digest}").close()
                continue  # the registry has it already
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise
            with _request("POST", f"{base}/v2/{name}/blobs/uploads/", b"") as resp:
                location = urllib.parse.urljoin(base, resp.headers["Location"])
            sep = "&" if "?" in location else "?"
            put = f"{location}{sep}digest={urllib.parse.quote(blob_digest)}"
            _request("PUT", put, data, {"Content-Type": "application/octet-stream"}).close()
        with _request("PUT", f"{base}/v2/{name}/manifests/{tag}", manifest,
                      {"Content-Type": MANIFEST_TYPE}) as resp:
            pushed[tag] = resp.headers["Docker-Content-Digest"]
    return pushed


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "push":
        for tag, pushed in push(Path(sys.argv[2]), sys.argv[3]).items():
            print(f"{sys.argv[3]}:{tag} {pushed}")
        return
    out_root = ROOT / "build" / "oci"
    for module in MODULES:
        wasm = (ROOT / "build" / "wasm" / f"{module}.wasm").read_bytes()
        for ref, manifest_digest in write_layout(module, wasm, out_root / module).items():
            print(f"  build/oci/{module}:{ref}  {manifest_digest}  ({len(wasm)} bytes of wasm)")


if __name__ == "__main__":
    main()
