"""`make oci`: the modules as Wasm OCI images, through a real registry and back into Envoy.

The registry is Debian's `docker-registry` (CNCF distribution 2.8), started here on a loopback
port with a throw-away config. Pushing and pulling use the registry HTTP API only
(tools/oci.py push; the pull below), the way Istio's and Envoy Gateway's fetchers talk to it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import openai
import pytest

import harness
from conftest import AUTH_CONFIG, KEYS

sys.path.insert(0, str(harness.ROOT / "tools"))
import oci  # noqa: E402

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
MODULES = ["auth", "router", "ratelimit", "translate"]
ACCEPT = "application/vnd.oci.image.manifest.v1+json"


def build_layouts(out: Path) -> dict[str, dict[str, str]]:
    """tools/oci.py's layouts of build/wasm/* under `out`: {module: {ref: digest}}."""
    return {
        module: oci.write_layout(module, (harness.ROOT / "build" / "wasm" / f"{module}.wasm").read_bytes(),
                                 out / module)
        for module in oci.MODULES
    }


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    if not Path(REGISTRY_BIN).exists():
        pytest.fail("docker-registry is missing: `make setup` installs Debian's docker-registry")
    root = tmp_path_factory.mktemp("registry")
    port = harness.free_port()
    config = root / "config.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }))
    log = open(root / "registry.log", "w")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v2/", timeout=1) as resp:
                assert resp.status == 200
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"docker-registry did not start: {(root / 'registry.log').read_text()}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def pull(registry: str, name: str, tag: str) -> tuple[str, dict, dict[str, bytes]]:
    """(manifest digest, manifest, blobs by digest) over the registry HTTP API, each blob
    checked against its digest."""
    req = urllib.request.Request(f"{registry}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT})
    with urllib.request.urlopen(req) as resp:
        raw = resp.read()
        assert resp.headers["Content-Type"] == ACCEPT
        assert resp.headers["Docker-Content-Digest"] == oci.digest(raw)
    manifest = json.loads(raw)
    blobs = {}
    for desc in [manifest["config"], *manifest["layers"]]:
        with urllib.request.urlopen(f"{registry}/v2/{name}/blobs/{desc['digest']}") as resp:
            data = resp.read()
        assert oci.digest(data) == desc["digest"] and len(data) == desc["size"]
        blobs[desc["digest"]] = data
    return oci.digest(raw), manifest, blobs


def wasm_of(manifest: dict, blobs: dict[str, bytes]) -> bytes:
    """The module in a pulled image, read the way Istio's and Envoy Gateway's fetchers read it
    (istio/istio pkg/wasm/imagefetcher.go): compat = last layer a tar.gz holding plugin.wasm;
    oci = exactly two layers, one of the Wasm layer media type, raw bytes."""
    layers = manifest["layers"]
    if layers[-1]["mediaType"] == oci.TAR_GZIP_TYPE:
        assert manifest["annotations"][oci.COMPAT_ANNOTATION] == "compat"
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blobs[layers[-1]["digest"]]))) as tar:
            return tar.extractfile("plugin.wasm").read()
    assert manifest["config"]["mediaType"] == oci.WASM_CONFIG_TYPE
    assert len(layers) == 2
    (wasm_layer,) = [d for d in layers if d["mediaType"] == oci.WASM_LAYER_TYPE]
    return blobs[wasm_layer["digest"]]


def test_two_builds_give_the_same_digests(tmp_path):
    first, second = build_layouts(tmp_path / "a"), build_layouts(tmp_path / "b")
    assert first == second
    for module in oci.MODULES:  # byte-identical layouts, not only equal manifest digests
        files = lambda root: {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}  # noqa: E731
        assert files(tmp_path / "a" / module) == files(tmp_path / "b" / module)


def test_images_round_trip_through_a_registry_and_load_in_envoy(registry, tmp_path, mock):
    built = build_layouts(tmp_path / "oci")
    pulled_dir = tmp_path / "pulled"
    pulled_dir.mkdir()
    pulled_files = {}
    for module, refs in built.items():
        pushed = oci.push(tmp_path / "oci" / module, f"{registry}/llmgw/{module}")
        assert pushed == refs, f"{module}: the registry computed other digests"
        wasm = (harness.ROOT / "build" / "wasm" / f"{module}.wasm").read_bytes()
        for tag, want in refs.items():
            got, manifest, blobs = pull(registry, f"llmgw/{module}", tag)
            assert got == want
            module_bytes = wasm_of(manifest, blobs)
            assert hashlib.sha256(module_bytes).digest() == hashlib.sha256(wasm).digest()
            path = pulled_dir / f"{module}-{tag}.wasm"
            path.write_bytes(module_bytes)
            pulled_files[(module, tag.endswith("-compat"))] = path

    # Envoy runs the gateway from the pulled files: the oci variant for the downstream filters,
    # the compat variant for translate, and a chat request goes through all four.
    files = {f"build/wasm/{m}.wasm": str(pulled_files[(m, m == "translate")]) for m in MODULES}
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH_CONFIG},
    )
    for node in harness._walk(config):
        local = node.get("local")
        if isinstance(local, dict) and local.get("filename") in files:
            local["filename"] = files[local["filename"]]
    used = {n["local"]["filename"] for n in harness._walk(config) if isinstance(n.get("local"), dict)}
    assert used == set(files.values())
    envoy = harness.Envoy(config, harness.provider_env(set()))
    try:
        client = openai.OpenAI(base_url=f"{envoy.url}/v1", api_key=KEYS["alice"], max_retries=0)
        answer = client.chat.completions.create(
            model="claude-haiku-4-5", messages=[{"role": "user", "content": "Hello"}])
        assert answer.choices[0].message.content
        assert answer.model == "claude-haiku-4-5"  # translated back from Anthropic's format
    finally:
        envoy.stop()
