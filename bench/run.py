"""`make bench`: llmgw against plain Envoy and two peer gateways, on one machine, in one run.

Every target proxies the same fast upstream (the release build of tests/mock-provider) and is
driven by the same load tool (oha) with the same request, so only the gateway differs:

- throughput at saturation: fixed concurrency (16 connections) for a fixed time after a warm-up;
- latency at a fixed rate (500 and 1000 requests/s): p50 and p99, with oha's latency correction;
- time to first token on streams: a small client records when the first SSE `data:` frame
  arrives, over N sequential requests;
- Envoy's memory (VmRSS after load, 2 workers) with and without the filters;
- the size of each .wasm.

Each figure is measured `--runs` times (servers restarted between runs, rows interleaved) and
reported as median and min (max for latencies is not kept: the median is the figure, the best
run shows what the machine can do). Ratios come first: absolute numbers move between machines.

    .venv/bin/python bench/run.py                # what `make bench` runs
    BENCH_QUICK=1 .venv/bin/python bench/run.py  # 1 run of 3 s: a smoke test
    .venv/bin/python bench/run.py --skip-peers   # without LiteLLM and Portkey

The results go to stdout and to BENCHMARKS.md (the analysis kept in bench/analysis.md is
appended to it).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import variants  # noqa: E402
from variants import harness  # noqa: E402

ROOT = variants.ROOT
BENCH_DIR = ROOT / "build" / "bench"
WASM_DIR = ROOT / "build" / "wasm"

# Pinned tools and peers (installed on first use; see README "Benchmarks").
OHA_VERSION = "1.16.0"
LITELLM_REQUIREMENT = "litellm[proxy]==1.108.0"
PORTKEY_PACKAGE = "@portkey-ai/gateway@1.15.2"
PEER_VENV = ROOT / ".venv-bench"
NPM_PREFIX = BENCH_DIR / "npm"

# The bench client's llmgw key: auth holds only its hash, like any consumer's.
BENCH_KEY = "sk-llmgw-bench-" + hashlib.sha256(b"llmgw bench client").hexdigest()[:24]
AUTH_CONFIG = {
    "keys": [
        {"sha256": hashlib.sha256(BENCH_KEY.encode()).hexdigest(), "consumer": "bench",
         "team": "bench"}
    ]
}
# A limit that is checked (shared-data counter updated on every request) but never reached.
RATELIMIT_CONFIG = {"default": {"requests_per_minute": 1_000_000_000}}

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"
PROMPT = "Say hello to the benchmark, in a few words please."
# TTFT streams: the mock waits this long between frames, so the first frame is clearly apart
# from the rest and a gateway that buffered the stream would show it.
TTFT_DELAY_MS = 2
TTFT_WORDS = 3  # a short answer keeps N sequential streams quick

TARGETS = {  # the figures the lead asked for
    "throughput_ratio": 0.70,  # full chain req/s ÷ plain Envoy req/s
    "added_p50_us": 100,  # at 1000 req/s
    "added_p99_us": 500,
    "wasm_kib": 400,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def body(model: str, stream: bool, prompt: str = PROMPT) -> bytes:
    req: dict = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        req["stream"] = True
    return json.dumps(req, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------
# Tools and peers: installed when missing; a peer that cannot be installed is skipped, loudly.


def run_quiet(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, **kw)


def ensure_oha() -> str:
    candidates = [shutil.which("oha"), str(Path.home() / ".cargo" / "bin" / "oha")]
    for c in candidates:
        if c and Path(c).exists():
            out = run_quiet([c, "--version"]).stdout
            if OHA_VERSION in out:
                return c
    log(f"installing oha {OHA_VERSION} (cargo install; several minutes once)")
    # oha does not build without a TLS backend. native-tls links the system OpenSSL (Debian:
    # libssl-dev, pkg-config) and compiles much faster than the default rustls/aws-lc.
    base = ["cargo", "install", "oha", "--version", OHA_VERSION, "--locked"]
    res = subprocess.run([*base, "--no-default-features", "--features", "native-tls"])
    if res.returncode != 0:
        log("oha with native-tls failed; trying its default features (rustls)")
        res = subprocess.run(base)
    if res.returncode != 0:
        sys.exit("bench: cargo install oha failed")
    return str(Path.home() / ".cargo" / "bin" / "oha")


NOOP_DIR = ROOT / "bench" / "noop-filter"
NOOP_WASM = BENCH_DIR / "noop.wasm"


def ensure_noop() -> str:
    """bench/noop-filter built for wasm32 (a filter that does nothing), for the floor rows."""
    target_dir = BENCH_DIR / "noop-target"
    res = subprocess.run(
        ["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1",
         "--manifest-path", str(NOOP_DIR / "Cargo.toml"), "--target-dir", str(target_dir)],
    )
    if res.returncode != 0:
        sys.exit("bench: building bench/noop-filter failed")
    shutil.copyfile(target_dir / "wasm32-wasip1" / "release" / "llmgw_bench_noop.wasm", NOOP_WASM)
    return str(NOOP_WASM)


def ensure_litellm() -> tuple[str | None, str]:
    """(path of the litellm CLI, '') or (None, why it is skipped)."""
    exe = PEER_VENV / "bin" / "litellm"
    marker = PEER_VENV / ".installed"
    if exe.exists() and marker.exists() and marker.read_text().strip() == LITELLM_REQUIREMENT:
        return str(exe), ""
    log(f"installing {LITELLM_REQUIREMENT} into {PEER_VENV.name}/ (once)")
    if not (PEER_VENV / "bin" / "pip").exists():
        res = run_quiet([sys.executable, "-m", "venv", str(PEER_VENV)])
        if res.returncode != 0:
            return None, f"python -m venv failed: {res.stderr.strip()[-300:]}"
    res = run_quiet([str(PEER_VENV / "bin" / "pip"), "install", "--quiet",
                     "--disable-pip-version-check", LITELLM_REQUIREMENT])
    if res.returncode != 0 or not exe.exists():
        return None, f"pip install {LITELLM_REQUIREMENT} failed: {res.stderr.strip()[-300:]}"
    marker.write_text(LITELLM_REQUIREMENT + "\n")
    return str(exe), ""


# Portkey's Node server mutates fetch response headers, which @hono/node-server releases after
# 1.14.2 make immutable: every *streamed* answer then fails with "TypeError: immutable"
# (Portkey-AI/gateway issues 1389 and 1550). Pin the last release that works.
PORTKEY_PINS = {"@portkey-ai/gateway": "1.15.2", "@hono/node-server": "1.14.2"}


def ensure_portkey() -> tuple[list[str] | None, str]:
    node = shutil.which("node")
    if not node:
        return None, "Node.js (node) is not installed"
    modules = NPM_PREFIX / "node_modules"
    start = modules / "@portkey-ai" / "gateway" / "build" / "start-server.js"

    def installed(name: str) -> str | None:
        pkg = modules / name / "package.json"
        return json.loads(pkg.read_text()).get("version") if pkg.exists() else None

    if not start.exists() or any(installed(n) != v for n, v in PORTKEY_PINS.items()):
        npm = shutil.which("npm")
        if not npm:
            return None, "npm is not installed"
        log(f"installing {PORTKEY_PACKAGE} into {NPM_PREFIX.relative_to(ROOT)}/ (once)")
        NPM_PREFIX.mkdir(parents=True, exist_ok=True)
        (NPM_PREFIX / "package.json").write_text(json.dumps(
            {"name": "llmgw-bench-peers", "private": True, "dependencies": PORTKEY_PINS,
             "overrides": {"@hono/node-server": PORTKEY_PINS["@hono/node-server"]}}, indent=1))
        res = run_quiet([npm, "install", "--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund"])
        if res.returncode != 0 or not start.exists():
            return None, f"npm install {PORTKEY_PACKAGE} failed: {res.stderr.strip()[-300:]}"
    return [node, str(start)], ""


# ---------------------------------------------------------------------------------------------
# Servers: each one process (tree) we can start, check, load and stop.


class Upstream:
    """A running upstream: `url`, `port`, `pid`, `stop()`."""

    def __init__(self, url: str, port: int, pid: int, stop) -> None:
        self.url, self.port, self.pid, self._stop = url, port, pid, stop

    def stop(self) -> None:
        self._stop()


def start_mock() -> Upstream:
    mock = harness.MockProvider()
    return Upstream(mock.url, mock.port, mock.proc.pid, mock.stop)


UPSTREAM_NOTE_NGINX = (
    "non-streamed rows: nginx (1 worker) replaying the mock provider's own answers byte for byte "
    "(`return 200 '<answer>'`) with its headers (OpenAI's recorded 27: `add_header`), so the "
    "upstream costs next to nothing; streamed rows and TTFT: "
    "the mock provider (`tests/mock-provider`, release build), which sends one chunk per SSE "
    "frame like a real provider.")


def ensure_nginx() -> tuple[str | None, str]:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if exe:
        return exe, ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing nginx-light (apt-get; once)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        res = run_quiet(["apt-get", "install", "-y", "-qq", "nginx-light"], env=env)
        if res.returncode != 0:
            run_quiet(["apt-get", "update", "-qq"], env=env)
            res = run_quiet(["apt-get", "install", "-y", "-qq", "nginx-light"], env=env)
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if res.returncode == 0 and Path(exe).exists():
            return exe, ""
        return None, f"apt-get install nginx-light failed: {res.stderr.strip()[-300:]}"
    return None, "nginx is not installed (apt-get install nginx-light)"


def _nginx_string(text: str) -> str:
    if "$" in text:
        raise ValueError("a fixed answer holding `$` cannot be served by nginx `return`")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# What nginx sets itself on every answer; the mock's own values of these are not replayed.
NGINX_OWN_HEADERS = {"server", "date", "content-type", "content-length", "connection",
                     "keep-alive", "transfer-encoding"}
# The providers' request ids (translate renames them to x-provider-request-id): one per answer,
# as a provider sends it, from nginx's own `$request_id`.
REQUEST_ID_HEADERS = {"x-request-id", "request-id"}


class Answer(NamedTuple):
    """A fixed answer for nginx: body, content type, and the provider's other headers."""
    body: str
    content_type: str
    headers: list[tuple[str, str]]


def capture_answers(mock: Upstream) -> dict[str, Answer]:
    """The mock's own answers to the bench requests (OpenAI, and Anthropic as translate sends
    it), for nginx to replay byte for byte, with their headers: the mock sends a real
    provider's (tests/mock-provider/src/account.rs), for OpenAI the 27 of a recorded
    api.openai.com chat completion (`scenario::OPENAI_HEADERS`: the response printed in the
    README of github.com/yasuota/FastlyAIAccelerator-OpenAI, 2025-03-01), 15 of them the
    account's. So the gateway rows pay for those headers as they do with real traffic (an
    upstream answering with nginx's few headers left translate's 15 removals out)."""
    def post(path: str, payload: dict, headers: dict) -> Answer:
        req = urllib.request.Request(
            mock.url + path, data=json.dumps(payload).encode(), method="POST",
            headers={"content-type": "application/json", **headers})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return Answer(resp.read().decode(), resp.headers.get("content-type", ""),
                          [(n.lower(), v) for n, v in resp.getheaders()
                           if n.lower() not in NGINX_OWN_HEADERS])
    messages = [{"role": "user", "content": PROMPT}]
    return {
        "/v1/chat/completions": post("/v1/chat/completions",
                                     {"model": OPENAI_MODEL, "messages": messages},
                                     {"authorization": "Bearer sk-mock-openai"}),
        "/v1/messages": post("/v1/messages",
                             {"model": ANTHROPIC_MODEL, "max_tokens": 4096, "messages": messages},
                             {"x-api-key": "sk-mock-anthropic", "anthropic-version": "2023-06-01"}),
    }


def _nginx_location(path: str, answer: Answer) -> str:
    """One `location` answering `path` with `answer`: its headers as `add_header` lines (in the
    mock's order, a name sent twice added twice), then the fixed body."""
    lines = [f"    location = {path} {{",
             f"      default_type {_nginx_string(answer.content_type or 'application/json')};"]
    for name, value in answer.headers:
        value = '"req_$request_id"' if name in REQUEST_ID_HEADERS else _nginx_string(value)
        lines.append(f"      add_header {name} {value};")
    lines.append(f"      return 200 {_nginx_string(answer.body)};")
    lines.append("    }")
    return "\n".join(lines)


def start_replay_upstreams(tool: str) -> tuple[Upstream, Upstream]:
    """The mock provider and nginx replaying its answers (the fast upstream), for the tools that
    measure one Envoy at a time (bench/hostcalls.py, bench/instructions.py); `tool` names the
    caller when nginx is missing."""
    nginx, why = ensure_nginx()
    if not nginx:
        sys.exit(f"{tool}: nginx is needed as the upstream ({why})")
    mock = start_mock()
    return mock, start_nginx(nginx, capture_answers(mock))


def start_nginx(exe: str, answers: dict[str, Answer]) -> Upstream:
    """nginx answering each path with a fixed answer, the provider's headers included: the
    upstream kept out of the measurement."""
    prefix = BENCH_DIR / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    port = harness.free_port()
    locations = "\n".join(_nginx_location(path, a) for path, a in answers.items())
    conf = prefix / "nginx.conf"
    conf.write_text(f"""worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_buffer_size 64k;
  server {{
    listen 127.0.0.1:{port};
{locations}
  }}
}}
""")
    proc = subprocess.Popen([exe, "-c", str(conf), "-p", str(prefix)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", 10, proc)
    return Upstream(url, port, proc.pid, lambda: stop_proc(proc))


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None,
              headers: dict | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
            last = e
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s ({last})")


def proc_tree_rss_kib(pid: int) -> int:
    """VmRSS of `pid` and its descendants, KiB."""
    total = 0
    todo = [pid]
    seen = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for child in Path(f"/proc/{p}/task/{p}/children").read_text().split():
                todo.append(int(child))
        except (OSError, ValueError):
            pass
    return total


def stop_proc(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(timeout=5)


@dataclass
class Row:
    """One line of the table: a server, a backend model, stream or not."""

    key: str
    label: str
    server: str
    model: str
    stream: bool
    fixed_rates: bool = True  # measure latency at fixed rates (non-stream rows)


@dataclass
class Server:
    key: str
    label: str
    kind: str  # envoy | upstream | litellm | portkey
    keep: set[str] = field(default_factory=set)
    cluster: str = "openai"
    noop_wasm: str | None = None
    wasm_dir: str | None = None  # load the llmgw modules from here instead of build/wasm
    peer_cmd: list[str] | None = None
    skip: str = ""  # why this server is not measured
    upstream: str = "fast"  # fast (nginx, or the mock without nginx) | mock (streams, TTFT)
    combined: bool = False  # auth, router and ratelimit as the one gateway.wasm module
    native: bool = False  # every llmgw filter from build/native/libllmgw.so
    concurrency: int = 2  # Envoy's workers (bench/pinned.py: 1, on a core of its own)

    # set while running
    proc: subprocess.Popen | None = None
    envoy: object = None
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    path: str = "/v1/chat/completions"
    pid: int = 0

    def start(self, upstreams: dict[str, Upstream]) -> None:
        upstream = upstreams[self.upstream]
        if self.kind == "upstream":
            self.url = upstream.url
            self.headers = {"authorization": "Bearer sk-mock-openai"}
            self.pid = upstream.pid
            return
        if self.kind == "envoy":
            base = variants.base_config(
                port=harness.free_port(), admin_port=harness.free_port(),
                upstream_port=upstream.port, auth_config=AUTH_CONFIG,
                ratelimit_config=RATELIMIT_CONFIG,
            )
            config = variants.variant(base, self.keep, cluster=self.cluster,
                                      noop_wasm=self.noop_wasm)
            if self.combined:
                config = harness.combine_downstream(config)
            if self.native:
                config = harness.native_filters(config)
            if self.wasm_dir:
                for node in harness._walk(config):
                    code = node.get("code")
                    code = code.get("local") if isinstance(code, dict) else None
                    if isinstance(code, dict) and code.get("filename", "").startswith("build/wasm/"):
                        code["filename"] = f"{self.wasm_dir}/{Path(code['filename']).name}"
            self.envoy = harness.Envoy(config, harness.provider_env(set()), concurrency=self.concurrency,
                                       log_level="warn")
            self.url = self.envoy.url
            self.pid = self.envoy.proc.pid
            # Every Envoy row gets the same client request: the bench key, as an OpenAI SDK
            # would send it. Variants without auth ignore it (their route sets the mock's key).
            self.headers = {"authorization": f"Bearer {BENCH_KEY}"}
            return
        port = harness.free_port()
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        logf = open(BENCH_DIR / f"{self.key}.log", "w")
        if self.kind == "litellm":
            cfg = {
                "model_list": [{
                    "model_name": OPENAI_MODEL,
                    "litellm_params": {"model": f"openai/{OPENAI_MODEL}",
                                       "api_base": f"{upstream.url}/v1",
                                       "api_key": "sk-mock-openai"},
                }],
                "general_settings": {"master_key": BENCH_KEY},
                "litellm_settings": {"telemetry": False},
            }
            cfg_path = BENCH_DIR / f"{self.key}.yaml"
            cfg_path.write_text(yaml.safe_dump(cfg))
            env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
            self.proc = subprocess.Popen(
                [*self.peer_cmd, "--config", str(cfg_path), "--host", "127.0.0.1",
                 "--port", str(port), "--num_workers", "2"],
                stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=BENCH_DIR,
                start_new_session=True,
            )
            self.url = f"http://127.0.0.1:{port}"
            self.headers = {"authorization": f"Bearer {BENCH_KEY}"}
            # Importing litellm alone takes a while on a busy machine.
            wait_http(f"{self.url}/health/liveliness", 600, self.proc)
        elif self.kind == "portkey":
            self.proc = subprocess.Popen(
                [*self.peer_cmd, f"--port={port}"], stdout=logf, stderr=subprocess.STDOUT,
                cwd=BENCH_DIR, start_new_session=True,
            )
            self.url = f"http://127.0.0.1:{port}"
            self.headers = {
                "authorization": "Bearer sk-mock-openai",
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": f"{upstream.url}/v1",
            }
            wait_http(f"{self.url}/", 60, self.proc)
        self.pid = self.proc.pid

    def rss_kib(self) -> int:
        return proc_tree_rss_kib(self.pid) if self.pid else 0

    def stop(self) -> None:
        if self.envoy is not None:
            self.envoy.stop()
            self.envoy = None
        if self.proc is not None:
            stop_proc(self.proc)
            self.proc = None
        self.pid = 0


def check_row(server: Server, row: Row) -> str:
    """'' when one request through the row answers 200 with the mock's reply, else why not."""
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    try:
        conn.request("POST", server.path, body=body(row.model, row.stream),
                     headers={"content-type": "application/json", **server.headers})
        resp = conn.getresponse()
        data = resp.read()
    except OSError as e:
        return f"request failed: {e}"
    finally:
        conn.close()
    expect = b"data: [DONE]" if row.stream else b"Hello from mock"
    if resp.status != 200 or expect not in data or b"Hello" not in data:
        return f"HTTP {resp.status}: {data[:300]!r} … {data[-100:]!r}"
    return ""


# ---------------------------------------------------------------------------------------------
# Load and measurement


@dataclass
class Opts:
    runs: int
    duration: float
    warmup: float
    concurrency: int
    rates: list[int]
    ttft_n: int


# oha's tokio runtime defaults to one worker thread per core. On 2 cores two oha threads compete
# with Envoy's 2 workers, and an idle work-stealing thread spins before it parks, so the slower
# the target, the more CPU oha steals from it: measured here, 4 no-op wasm filters kept 40–53% of
# plain Envoy with 2 oha threads, 61–82% with 1 thread and 79–88% with wrk (1 thread), which is
# what DESIGN.md's wrk figures (70–81%) showed. One thread, like wrk, keeps the load tool's share
# of the machine bounded and the same for every target; oha stays the tool (it also drives the
# fixed-rate runs, with latency correction, which wrk cannot).
OHA_THREADS = 1


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def oha(exe: str, server: Server, row: Row, *, duration: float, concurrency: int,
        rate: int | None = None) -> dict:
    args = [exe, "--no-tui", "--output-format", "json", "-z", f"{duration}s",
            "-c", str(concurrency), "--worker-threads", str(OHA_THREADS),
            "-m", "POST", "-T", "application/json",
            "-d", body(row.model, row.stream).decode()]
    for k, v in server.headers.items():
        args += ["-H", f"{k}: {v}"]
    if rate:
        args += ["-q", str(rate), "--latency-correction"]
    args.append(server.url + server.path)
    cpu0 = cpu_seconds(server.pid) if server.kind == "envoy" else None
    res = run_quiet(args, timeout=duration + 60)
    cpu1 = cpu_seconds(server.pid) if server.kind == "envoy" else None
    if res.returncode != 0:
        raise RuntimeError(f"oha failed: {res.stderr.strip()[-500:]}")
    out = json.loads(res.stdout)
    summary = out["summary"]
    codes = out.get("statusCodeDistribution", {})
    total = sum(codes.values())
    ok = codes.get("200", 0)
    pct = out.get("latencyPercentiles", {})
    errors = {k: v for k, v in out.get("errorDistribution", {}).items()
              if "deadline" not in k}  # requests cut by the end of the run are not errors
    elapsed = summary.get("total") or duration
    return {
        "rps": ok / elapsed,
        "p50_us": (pct.get("p50") or 0) * 1e6,
        "p99_us": (pct.get("p99") or 0) * 1e6,
        "ok": ok,
        "total": total,
        "errors": errors,
        # Envoy's own CPU time per answered request: robust to a busy machine (other jobs
        # stretch wall-clock latency and cut throughput, much less the work Envoy does).
        "cpu_us": (cpu1 - cpu0) / ok * 1e6 if cpu0 is not None and cpu1 is not None and ok else None,
    }


def ttft(server: Server, row: Row, n: int) -> dict:
    """Time to the first SSE `data:` frame and to the end, over n sequential requests."""
    prompt = f"{PROMPT} [mock:delay_ms={TTFT_DELAY_MS}][mock:words={TTFT_WORDS}]"
    payload = body(row.model, True, prompt)
    headers = {"content-type": "application/json", "accept": "text/event-stream",
               **server.headers}
    host = server.url.removeprefix("http://")
    conn = http.client.HTTPConnection(host, timeout=30)
    firsts, totals = [], []
    for i in range(n + 3):  # 3 unrecorded warm-up requests
        t0 = time.perf_counter()
        conn.request("POST", server.path, body=payload, headers=headers)
        resp = conn.getresponse()
        first = None
        while True:
            line = resp.readline()
            if not line:
                break
            if first is None and line.startswith(b"data:"):
                first = time.perf_counter()
                break
        rest = resp.read()
        end = time.perf_counter()
        if resp.status != 200 or first is None:
            raise RuntimeError(f"TTFT request answered {resp.status}: {rest[:200]!r}")
        if resp.getheader("connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(host, timeout=30)
        if i >= 3:
            firsts.append((first - t0) * 1e6)
            totals.append((end - t0) * 1e6)
    conn.close()
    firsts.sort()
    return {
        "ttft_p50_us": statistics.median(firsts),
        "ttft_p90_us": firsts[int(0.9 * (len(firsts) - 1))],
        "total_p50_us": statistics.median(totals),
    }


# ---------------------------------------------------------------------------------------------
# The plan


def plan(skip_peers: str, litellm: str | None, litellm_skip: str,
         portkey: list[str] | None, portkey_skip: str,
         noop: str, fast_label: str, opt_dir: str | None) -> tuple[list[Server], list[Row]]:
    """Servers (one process each) and the rows measured on them.

    Non-streamed rows use the fast upstream (nginx replaying the mock's answers); streamed rows
    use the mock itself, which sends one chunk per SSE frame like a provider (and can pause
    between frames for the TTFT client), so each gateway gets its own instance per upstream.
    """
    A = {"llmgw.auth"}
    R = {"llmgw.router"}
    L = {"llmgw.ratelimit"}
    T = {"llmgw.translate"}
    peer_skip_l = skip_peers or litellm_skip
    peer_skip_p = skip_peers or portkey_skip
    lite = [litellm] if litellm else None
    servers = [
        Server("upstream", f"{fast_label}, direct", "upstream"),
        Server("plain", "plain Envoy (no wasm)", "envoy", set()),
        Server("auth", "Envoy + auth", "envoy", A),
        Server("router", "Envoy + router", "envoy", R),
        Server("ratelimit", "Envoy + ratelimit", "envoy", L),
        Server("translate", "Envoy + translate", "envoy", T),
        Server("translate-anthropic", "Envoy + translate → Anthropic", "envoy", T,
               cluster="anthropic"),
        Server("full", "Envoy + full chain", "envoy", A | R | L | T),
        # Before/after in one run, same machine state: the chain with other modules (a build of
        # an earlier commit), `--baseline-wasm DIR`.
        Server("full-base", "Envoy + full chain (baseline modules)", "envoy", A | R | L | T,
               wasm_dir=opt_dir, skip="" if opt_dir else "no --baseline-wasm given"),
        Server("full-one", "Envoy + full chain, one downstream module", "envoy", A | R | L | T,
               combined=True),
        Server("full-native", "Envoy + full chain, native build", "envoy", A | R | L | T,
               native=True),
        Server("full-one-native", "Envoy + full chain, native build, one downstream filter",
               "envoy", A | R | L | T, combined=True, native=True),
        Server("noop1", "Envoy + 1 no-op wasm filter", "envoy", A, noop_wasm=noop),
        Server("noop4", "Envoy + 4 no-op wasm filters", "envoy", A | R | L | T, noop_wasm=noop),
        Server("litellm", "LiteLLM proxy", "litellm", peer_cmd=lite, skip=peer_skip_l),
        Server("portkey", "Portkey gateway", "portkey", peer_cmd=portkey, skip=peer_skip_p),
        # Streams, on the mock.
        Server("upstream-s", "mock provider, direct (streams)", "upstream", upstream="mock"),
        Server("plain-s", "plain Envoy (streams)", "envoy", set(), upstream="mock"),
        Server("translate-s", "Envoy + translate (streams)", "envoy", T, upstream="mock"),
        Server("translate-anthropic-s", "Envoy + translate → Anthropic (streams)", "envoy", T,
               cluster="anthropic", upstream="mock"),
        Server("full-s", "Envoy + full chain (streams)", "envoy", A | R | L | T, upstream="mock"),
        Server("litellm-s", "LiteLLM proxy (streams)", "litellm", peer_cmd=lite,
               skip=peer_skip_l, upstream="mock"),
        Server("portkey-s", "Portkey gateway (streams)", "portkey", peer_cmd=portkey,
               skip=peer_skip_p, upstream="mock"),
    ]
    rows = [
        Row("upstream", f"{fast_label}, direct", "upstream", OPENAI_MODEL, False),
        Row("plain", "plain Envoy", "plain", OPENAI_MODEL, False),
        Row("auth", "+ auth only", "auth", OPENAI_MODEL, False),
        Row("router", "+ router only", "router", OPENAI_MODEL, False),
        Row("ratelimit", "+ ratelimit only", "ratelimit", OPENAI_MODEL, False),
        Row("translate", "+ translate only (OpenAI)", "translate", OPENAI_MODEL, False),
        Row("translate-anthropic", "+ translate only (Anthropic)", "translate-anthropic",
            ANTHROPIC_MODEL, False),
        Row("full", "**full chain → OpenAI**", "full", OPENAI_MODEL, False),
        Row("full-anthropic", "**full chain → Anthropic**", "full", ANTHROPIC_MODEL, False),
        Row("full-base", "full chain → OpenAI, baseline modules", "full-base",
            OPENAI_MODEL, False),
        Row("full-base-anthropic", "full chain → Anthropic, baseline modules", "full-base",
            ANTHROPIC_MODEL, False),
        Row("full-one", "full chain → OpenAI, auth+router+ratelimit as one module", "full-one",
            OPENAI_MODEL, False),
        Row("full-one-anthropic", "full chain → Anthropic, auth+router+ratelimit as one module",
            "full-one", ANTHROPIC_MODEL, False),
        Row("full-native", "full chain → OpenAI, native build", "full-native", OPENAI_MODEL,
            False),
        Row("full-native-anthropic", "full chain → Anthropic, native build", "full-native",
            ANTHROPIC_MODEL, False),
        Row("full-one-native", "full chain → OpenAI, native build, auth+router+ratelimit as one "
            "filter", "full-one-native", OPENAI_MODEL, False),
        Row("noop1", "1 no-op wasm filter (floor)", "noop1", OPENAI_MODEL, False),
        Row("noop4", "4 no-op wasm filters (floor)", "noop4", OPENAI_MODEL, False),
        Row("litellm", "LiteLLM proxy", "litellm", OPENAI_MODEL, False),
        Row("portkey", "Portkey gateway", "portkey", OPENAI_MODEL, False),
        Row("upstream-s", "mock provider, direct", "upstream-s", OPENAI_MODEL, True, False),
        Row("plain-s", "plain Envoy", "plain-s", OPENAI_MODEL, True, False),
        Row("translate-s", "+ translate only (OpenAI)", "translate-s", OPENAI_MODEL, True, False),
        Row("translate-anthropic-s", "+ translate only (Anthropic)", "translate-anthropic-s",
            ANTHROPIC_MODEL, True, False),
        Row("full-s", "**full chain → OpenAI**", "full-s", OPENAI_MODEL, True, False),
        Row("full-anthropic-s", "**full chain → Anthropic**", "full-s", ANTHROPIC_MODEL, True,
            False),
        Row("litellm-s", "LiteLLM proxy", "litellm-s", OPENAI_MODEL, True, False),
        Row("portkey-s", "Portkey gateway", "portkey-s", OPENAI_MODEL, True, False),
    ]
    return servers, rows


def measure_all(opts: Opts, oha_exe: str, servers: list[Server], rows: list[Row],
                upstreams: dict[str, Upstream], after_run=None) -> tuple[dict, dict, dict]:
    """results[row][metric] = [one value per run]; rss[server] = [KiB per run]; skipped."""
    results: dict[str, dict[str, list[float]]] = {r.key: {} for r in rows}
    rss: dict[str, list[int]] = {}
    skipped: dict[str, str] = {s.key: s.skip for s in servers if s.skip}
    for run in range(1, opts.runs + 1):
        for server in servers:
            if server.key in skipped:
                continue
            log(f"run {run}/{opts.runs}: {server.label}")
            try:
                server.start(upstreams)
            except Exception as e:  # noqa: BLE001 - a server that does not start is skipped
                server.stop()
                where = (f"build/bench/{server.key}.log" if server.kind in ("litellm", "portkey")
                         else "build/run/envoy-<port>.log")
                skipped[server.key] = f"did not start: {str(e)[-300:]} (log: {where})"
                for r in rows:
                    if r.server == server.key:
                        skipped[r.key] = skipped[server.key]
                log(f"  SKIPPED {server.label}: {skipped[server.key]}")
                continue
            try:
                for row in [r for r in rows if r.server == server.key]:
                    if row.key in skipped:
                        continue
                    why = check_row(server, row)
                    if why:
                        if True:  # every row that does not answer is reported, not fatal
                            hint = ""
                            logf = BENCH_DIR / f"{server.key}.log"
                            if logf.exists():
                                errs = [ln.strip() for ln in logf.read_text(errors="replace").splitlines()
                                        if "Error" in ln]
                                if errs:
                                    hint = f"; its log says `{errs[-1][-160:]}`"
                            if "TypeError: immutable" in hint:
                                hint += (" (a known Portkey bug on Node.js streams: "
                                         "Portkey-AI/gateway issues 1389, 1550)")
                            skipped[row.key] = f"does not answer the bench request: {why[:200]}{hint}"
                            log(f"  SKIPPED {row.label}: {skipped[row.key]}")
                            continue
                    res = results[row.key]
                    # Peers import and compile lazily on their first requests: warm them longer.
                    warm = opts.warmup if server.kind == "envoy" else max(opts.warmup, 5)
                    oha(oha_exe, server, row, duration=warm, concurrency=opts.concurrency)
                    sat = oha(oha_exe, server, row, duration=opts.duration,
                              concurrency=opts.concurrency)
                    res.setdefault("rps", []).append(sat["rps"])
                    res.setdefault("sat_p50_us", []).append(sat["p50_us"])
                    res.setdefault("sat_p99_us", []).append(sat["p99_us"])
                    res.setdefault("non200", []).append(sat["total"] - sat["ok"])
                    msg = f"  {row.label}{' (stream)' if row.stream else ''}: {sat['rps']:.0f} req/s"
                    if sat["total"] != sat["ok"] or sat["errors"]:
                        msg += f" ({sat['total'] - sat['ok']} non-200, errors {sat['errors']})"
                    if row.fixed_rates:
                        for rate in opts.rates:
                            if sat["rps"] < rate * 1.1:
                                res.setdefault(f"saturated@{rate}", []).append(1)
                                continue
                            fixed = oha(oha_exe, server, row, duration=opts.duration,
                                        concurrency=opts.concurrency, rate=rate)
                            res.setdefault(f"p50@{rate}", []).append(fixed["p50_us"])
                            res.setdefault(f"p99@{rate}", []).append(fixed["p99_us"])
                            if fixed["cpu_us"] is not None:
                                res.setdefault(f"cpu@{rate}", []).append(fixed["cpu_us"])
                            msg += (f"; @{rate}/s p50 {fixed['p50_us']:.0f} µs"
                                    f" p99 {fixed['p99_us']:.0f} µs")
                    if row.stream:
                        t = ttft(server, row, opts.ttft_n)
                        for k, v in t.items():
                            res.setdefault(k, []).append(v)
                        msg += f"; TTFT p50 {t['ttft_p50_us']:.0f} µs"
                    log(msg)
                if server.kind != "upstream":
                    rss.setdefault(server.key, []).append(server.rss_kib())
            finally:
                server.stop()
        if after_run is not None:
            after_run(run, results, rss, skipped)
    return results, rss, skipped


# ---------------------------------------------------------------------------------------------
# Report


def med(xs: list[float] | None) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(x: float | None, unit: str = "", digits: int = 0) -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}{unit}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "—"
    return f"{a / b:.0%}" if a / b < 2 else f"{a / b:,.1f}×"


def wasm_sizes() -> list[tuple[str, int]]:
    return [(p.stem, p.stat().st_size) for p in sorted(WASM_DIR.glob("*.wasm"))]


def report(opts: Opts, rows: list[Row], servers: list[Server], results: dict, rss: dict,
           skipped: dict, oha_exe: str, upstream_note: str) -> str:
    def m(row: str, metric: str) -> float | None:
        return med(results.get(row, {}).get(metric))

    def lo(row: str, metric: str) -> float | None:
        xs = results.get(row, {}).get(metric)
        return min(xs) if xs else None

    def hi(row: str, metric: str) -> float | None:
        xs = results.get(row, {}).get(metric)
        return max(xs) if xs else None

    out: list[str] = []
    w = out.append
    top_rate = max(opts.rates) if opts.rates else None
    plain_rps = m("plain", "rps")
    full_rps = m("full", "rps")
    lite_rps = m("litellm", "rps")
    port_rps = m("portkey", "rps")
    ver = run_quiet([oha_exe, "--version"]).stdout.strip()
    envoy_ver = run_quiet([harness.envoy_bin(), "--version"]).stdout.strip().split("version:")[-1]
    w("# llmgw benchmarks\n")
    w(f"Generated by `make bench` (bench/run.py) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
      f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), load average "
      f"at the end {os.getloadavg()[0]:.2f}. {opts.runs} run(s) × {opts.duration:g} s per figure after "
      f"a {opts.warmup:g} s warm-up; {opts.concurrency} connections at saturation; median of the runs "
      f"(min–max in brackets where useful). Load tool: {ver} with {OHA_THREADS} worker thread (`--worker-threads {OHA_THREADS}`, see bench/run.py). Envoy {envoy_ver.split('/')[1] if '/' in envoy_ver else ''} "
      f"with `--concurrency 2`. Upstream: {upstream_note}\n")
    w("Everything (load tool, gateway, upstream) shares the same cores, so absolute figures say "
      "little across machines; the ratios are what to compare. Re-run on a quiet machine: figures "
      "taken while other jobs compile are noisy.\n")

    # Headline ratios
    w("## Headline\n")
    w("| ratio | value | target | met |")
    w("|---|---|---|---|")
    def row_line(name: str, val: float | None, target: str, ok: bool | None) -> None:
        met = "—" if ok is None else ("yes" if ok else "**no**")
        w(f"| {name} | {fmt(val * 100 if val is not None else None, '%')} | {target} | {met} |")
    r_full = full_rps / plain_rps if full_rps and plain_rps else None
    row_line("full chain (OpenAI) req/s ÷ plain Envoy", r_full, "≥ 70%",
             None if r_full is None else r_full >= TARGETS["throughput_ratio"])
    fa = m("full-anthropic", "rps")
    r_fa = fa / plain_rps if fa and plain_rps else None
    row_line("full chain (Anthropic, translated) req/s ÷ plain Envoy", r_fa, "≥ 70%",
             None if r_fa is None else r_fa >= TARGETS["throughput_ratio"])
    one = m("full-one", "rps")
    r_one = one / plain_rps if one and plain_rps else None
    row_line("full chain, auth+router+ratelimit as one module (OpenAI) req/s ÷ plain Envoy",
             r_one, "≥ 70%", None if r_one is None else r_one >= TARGETS["throughput_ratio"])
    for peer, prps, label in (("litellm", lite_rps, "LiteLLM"), ("portkey", port_rps, "Portkey")):
        if full_rps and prps:
            w(f"| full chain req/s ÷ {label} req/s | {full_rps / prps:.1f}× | — | — |")
        else:
            w(f"| full chain req/s ÷ {label} req/s | — ({skipped.get(peer, 'not measured')}) | — | — |")
    if top_rate:
        for q in ("p50", "p99"):
            a = m("full", f"{q}@{top_rate}")
            b = m("plain", f"{q}@{top_rate}")
            added = a - b if a is not None and b is not None else None
            limit = TARGETS[f"added_{q}_us"]
            met = None if added is None else added <= limit
            w(f"| added {q} at {top_rate} req/s, full chain vs plain | {fmt(added, ' µs')} | "
              f"≤ {limit} µs | {'—' if met is None else ('yes' if met else '**no**')} |")
    a = m("full-s", "ttft_p50_us")
    b = m("plain-s", "ttft_p50_us")
    if a is not None and b is not None:
        w(f"| added time to first token (stream, p50), full chain vs plain | {a - b:,.0f} µs | — | — |")
    sizes = wasm_sizes()
    big = [n for n, s in sizes if s > TARGETS["wasm_kib"] * 1024]
    w(f"| largest .wasm | {max((s for _, s in sizes), default=0) / 1024:,.0f} KiB | "
      f"≤ {TARGETS['wasm_kib']} KiB each | {'**no** (' + ', '.join(big) + ')' if big else 'yes'} |")
    w("")

    # Throughput and latency
    w("## Non-streamed requests\n")
    rate_cols = "".join(f" p50 @{r}/s | p99 @{r}/s |" for r in opts.rates)
    w(f"| target | req/s (min–max) | ÷ plain | ÷ LiteLLM | ÷ Portkey | added µs/req¹ |{rate_cols} added p50 / p99 @{top_rate}/s | Envoy CPU µs/req @{top_rate}/s (added)² |")
    w("|---|---|---|---|---|---|" + "---|---|" * len(opts.rates) + "---|---|")
    for r in [r for r in rows if not r.stream]:
        if not results.get(r.key) and r.key not in skipped and r.server not in skipped:
            continue  # not part of this run (--only)
        if r.key in skipped or r.server in skipped:
            w(f"| {r.label} | skipped: {skipped.get(r.key) or skipped.get(r.server)} |")
            continue
        rps = m(r.key, "rps")
        cost = (1e6 / rps - 1e6 / plain_rps) if rps and plain_rps and r.key != "upstream" else None
        cells = [r.label, f"{fmt(rps)} ({fmt(lo(r.key, 'rps'))}–{fmt(hi(r.key, 'rps'))})",
                 ratio(rps, plain_rps), ratio(rps, lite_rps), ratio(rps, port_rps),
                 fmt(cost, digits=1)]
        for rate in opts.rates:
            if results.get(r.key, {}).get(f"saturated@{rate}"):
                cells += ["saturated", "saturated"]
            else:
                cells += [fmt(m(r.key, f"p50@{rate}"), " µs"), fmt(m(r.key, f"p99@{rate}"), " µs")]
        if (top_rate and r.key != "upstream" and m(r.key, f"p50@{top_rate}") is not None
                and m("plain", f"p50@{top_rate}") is not None):
            cells.append(f"{m(r.key, f'p50@{top_rate}') - m('plain', f'p50@{top_rate}'):+,.0f} / "
                         f"{m(r.key, f'p99@{top_rate}') - m('plain', f'p99@{top_rate}'):+,.0f} µs")
        else:
            cells.append("—")
        cpu, cpu_plain = m(r.key, f"cpu@{top_rate}"), m("plain", f"cpu@{top_rate}")
        if cpu is not None and cpu_plain is not None:
            cells.append(f"{cpu:,.0f} ({cpu - cpu_plain:+,.0f})")
        else:
            cells.append("—")
        w("| " + " | ".join(cells) + " |")
    w("\n¹ 1/req/s of the row minus 1/req/s of plain Envoy: the machine time each request costs "
      "on top of plain Envoy (all cores, load tool and upstream included), a way to add filters up.\n")
    w(f"² CPU time (user + system, all threads) of the Envoy process during the {top_rate} req/s run, "
      "divided by the requests answered; in brackets, minus plain Envoy's. The figure least moved by "
      "other jobs on the machine: compare rows and runs by it when the machine is busy.\n")

    def cost(key: str) -> float | None:
        rps = m(key, "rps")
        return 1e6 / rps - 1e6 / plain_rps if rps and plain_rps else None

    parts = {k: cost(k) for k in ("auth", "router", "ratelimit", "translate")}
    if all(v is not None for v in parts.values()) and cost("full") is not None:
        total = sum(parts.values())
        w("**Where the time goes** (added machine time per request vs plain Envoy, from req/s): "
          + ", ".join(f"{k} alone {v:,.0f} µs" for k, v in parts.items())
          + f" (sum {total:,.0f} µs); full chain → OpenAI {cost('full'):,.0f} µs"
          + (f", → Anthropic {cost('full-anthropic'):,.0f} µs" if cost("full-anthropic") is not None else "")
          + (f"; 4 no-op wasm filters in the same places {cost('noop4'):,.0f} µs, 1 no-op filter "
             f"{cost('noop1'):,.0f} µs" if cost("noop4") is not None and cost("noop1") is not None else "")
          + (f" — so the wasm machinery alone (no-op floor) is {cost('noop4') / cost('full'):.0%} of what "
             f"the full chain adds, the filters' own work the other {1 - cost('noop4') / cost('full'):.0%}"
             if cost("noop4") is not None and cost("full") else "")
          + (f"; the full chain with the baseline modules {cost('full-base'):,.0f} µs" if cost("full-base") is not None else "")
          + ". translate alone skips the body (no router facts without router), so in "
            "the chain it costs more than alone; see the analysis below.\n")

    w("## Streamed requests\n")
    w(f"Throughput at saturation (no delay between frames), and time to first token: {opts.ttft_n} "
      f"sequential requests per run by one client that records when the first SSE `data:` frame "
      f"arrives (the mock answers {TTFT_WORDS} words and waits {TTFT_DELAY_MS} ms between frames).\n")
    w("| target | req/s | ÷ plain | TTFT p50 | TTFT p90 | added TTFT p50 vs plain | whole stream p50 |")
    w("|---|---|---|---|---|---|---|")
    plain_s = m("plain-s", "rps")
    plain_ttft = m("plain-s", "ttft_p50_us")
    for r in [r for r in rows if r.stream]:
        if not results.get(r.key) and r.key not in skipped and r.server not in skipped:
            continue
        if r.key in skipped or r.server in skipped:
            w(f"| {r.label} | skipped: {skipped.get(r.key) or skipped.get(r.server)} |")
            continue
        t = m(r.key, "ttft_p50_us")
        w(f"| {r.label} | {fmt(m(r.key, 'rps'))} | {ratio(m(r.key, 'rps'), plain_s)} | "
          f"{fmt(t, ' µs')} | {fmt(m(r.key, 'ttft_p90_us'), ' µs')} | "
          f"{fmt(t - plain_ttft if t is not None and plain_ttft is not None else None, ' µs')} | "
          f"{fmt(m(r.key, 'total_p50_us'), ' µs')} |")
    w("")

    w("## Memory\n")
    w("VmRSS of the whole process (tree, for the peers) right after its load, median of runs. "
      "Envoy runs 2 workers; each wasm filter has one VM per worker plus one on the main thread.\n")
    w("| server | RSS | vs plain Envoy | per worker vs plain |")
    w("|---|---|---|---|")
    plain_rss = med(rss.get("plain"))
    for s in servers:
        if s.kind == "upstream" or s.upstream != "fast":
            continue
        if s.key in skipped:
            w(f"| {s.label} | skipped: {skipped[s.key]} | | |")
            continue
        v = med(rss.get(s.key))
        if v is None:
            continue
        d = v - plain_rss if plain_rss is not None else None
        per = f"{d / 2 / 1024:+,.1f} MiB" if d is not None and s.kind == "envoy" else "—"
        w(f"| {s.label} | {v / 1024:,.1f} MiB | {fmt(d / 1024 if d is not None else None, ' MiB', 1)} | {per} |")
    w("")

    w("## Filter sizes\n")
    w("As `make build` makes them (release profile, opt-level s, then `wasm-opt -Oz --converge`).\n")
    w("| filter | bytes | KiB | ≤ 400 KiB |")
    w("|---|---|---|---|")
    for name, size in sizes:
        w(f"| {name}.wasm | {size:,} | {size / 1024:,.0f} | "
          f"{'yes' if size <= TARGETS['wasm_kib'] * 1024 else '**no**'} |")
    w("")

    if skipped:
        w("## Skipped\n")
        for k, why in skipped.items():
            w(f"- {k}: {why}")
        w("")

    w("## Method\n")
    w(f"- Request: `POST /v1/chat/completions` with `{body(OPENAI_MODEL, False).decode()}` (model "
      f"`{ANTHROPIC_MODEL}` for the Anthropic rows; `\"stream\":true` added for streams).")
    w("- Envoy configs are generated from `envoy/gateway.yaml` by `tests/harness.py` "
      "(`gateway_config`) and `bench/variants.py`: the same listener, route and clusters for "
      "every Envoy row; a row without router routes to a fixed cluster, a row without translate "
      "sets the provider key and removes `x-llmgw-cluster` in the route configuration (plain "
      "Envoy too). The generated files are in `build/run/`.")
    w(f"- The bench client's llmgw key is `{BENCH_KEY[:16]}…` (auth holds its SHA-256; consumer "
      "`bench`); ratelimit counts every request against a limit it never reaches.")
    w(f"- Saturation: `oha --worker-threads {OHA_THREADS} -c {opts.concurrency} -z {opts.duration:g}s` after `-z {opts.warmup:g}s`; only "
      "200 answers count. Fixed rate: `oha -q RATE --latency-correction` (latency from the "
      "scheduled send time, so a stall is not hidden). A row whose saturation throughput is "
      "below 1.1 × the rate is marked saturated instead.")
    w(f"- LiteLLM: `{LITELLM_REQUIREMENT}`, 2 workers, no database, model entry "
      "`openai/gpt-4o-mini` with `api_base` = the mock. Portkey: "
      f"`{PORTKEY_PACKAGE}` (Node.js {run_quiet(['node', '--version']).stdout.strip() if shutil.which('node') else '—'}), "
      "headers `x-portkey-provider: openai`, `x-portkey-custom-host: <mock>/v1`.")
    w("")
    analysis = ROOT / "bench" / "analysis.md"
    if analysis.exists():
        w(analysis.read_text())
    return "\n".join(out) + "\n"


# bench/pinned.py's headline block in BENCHMARKS.md: this report keeps it when it rewrites the file.
PINNED_BEGIN, PINNED_END = "<!-- pinned -->", "<!-- /pinned -->"


def write_report(path: Path, text: str, pinned: str | None = None) -> None:
    """Writes `text` to `path` with a pinned block after the title: `pinned`, else the block the
    file already holds (bench/pinned.py's and this script's reports share BENCHMARKS.md)."""
    old = path.read_text() if path.exists() else ""
    if pinned is None and PINNED_BEGIN in old and PINNED_END in old:
        pinned = old.split(PINNED_BEGIN, 1)[1].split(PINNED_END, 1)[0].strip("\n")
    if pinned is not None:
        if PINNED_BEGIN in text:  # pinned.py rewrites its block in the file as it is
            head, rest = text.split(PINNED_BEGIN, 1)
            text = head + rest.split(PINNED_END, 1)[1].lstrip("\n")
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n{PINNED_BEGIN}\n{pinned}\n{PINNED_END}\n{rest}"
    path.write_text(text)


def main() -> None:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", default=quick,
                    help="1 run of 3 s per figure (also BENCH_QUICK=1)")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--duration", type=float, help="seconds per figure (default 10)")
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rates", default="500,1000")
    ap.add_argument("--ttft-n", type=int)
    ap.add_argument("--skip-peers", action="store_true",
                    default=os.environ.get("BENCH_SKIP_PEERS", "") not in ("", "0"),
                    help="leave LiteLLM and Portkey out (also BENCH_SKIP_PEERS=1)")
    ap.add_argument("--only", help="comma-separated server keys to measure (plain is always kept)")
    ap.add_argument("--upstream", choices=["nginx", "mock"], default="nginx",
                    help="upstream of the non-streamed rows (default nginx; streams always use the mock)")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--baseline-wasm", metavar="DIR",
                    help="also measure the full chain with the modules in DIR (e.g. a build of "
                         "an earlier commit): before and after in one run")
    ap.add_argument("--from-results", metavar="JSON",
                    help="only write the report again from a results.json of an earlier run")
    a = ap.parse_args()
    if a.from_results:
        data = json.loads(Path(a.from_results).read_text())
        opts = Opts(**data["opts"])
        servers, rows = plan("", "litellm", "", ["node"], "", "noop",
                             data.get("fast_label", "nginx (fixed answers)"),
                             data.get("baseline_wasm"))
        note = data.get("upstream_note", UPSTREAM_NOTE_NGINX)
        write_report(Path(a.out), report(opts, rows, servers, data["results"], data["rss_kib"],
                                         data["skipped"], ensure_oha(), note))
        log(f"wrote {a.out} from {a.from_results}")
        return
    opts = Opts(
        runs=a.runs or (1 if a.quick else 3),
        duration=a.duration or (3 if a.quick else 10),
        warmup=a.warmup or (1 if a.quick else 2),
        concurrency=a.concurrency,
        rates=[int(x) for x in a.rates.split(",") if x],
        ttft_n=a.ttft_n or (30 if a.quick else 100),
    )
    for f in ("auth", "router", "ratelimit", "translate"):
        if not (WASM_DIR / f"{f}.wasm").exists():
            sys.exit(f"bench: {WASM_DIR}/{f}.wasm missing: run `make build` first")
    if not harness.MOCK_BIN.exists():
        sys.exit(f"bench: {harness.MOCK_BIN} missing: run `make build` first")
    oha_exe = ensure_oha()
    noop = ensure_noop()
    skip_peers = "skipped on request (--skip-peers / BENCH_SKIP_PEERS=1)" if a.skip_peers else ""
    litellm = portkey = None
    litellm_skip = portkey_skip = ""
    if not skip_peers:
        litellm, litellm_skip = ensure_litellm()
        portkey, portkey_skip = ensure_portkey()
        for name, why in (("LiteLLM", litellm_skip), ("Portkey", portkey_skip)):
            if why:
                log(f"SKIPPING {name}: {why}")
    upstreams: dict[str, Upstream] = {}
    try:
        upstreams["mock"] = start_mock()
        fast_label = "mock provider"
        upstream_note = (f"non-streamed rows: the mock provider (`{harness.MOCK_BIN.relative_to(ROOT)}`, "
                         "release build). Streamed rows and TTFT: the same mock.")
        if a.upstream == "nginx":
            nginx, why = ensure_nginx()
            if nginx:
                upstreams["fast"] = start_nginx(nginx, capture_answers(upstreams["mock"]))
                fast_label = "nginx (fixed answers)"
                upstream_note = UPSTREAM_NOTE_NGINX
            else:
                log(f"nginx unavailable ({why}); the mock serves the non-streamed rows too")
                upstream_note += f" (nginx unavailable: {why})"
        upstreams.setdefault("fast", upstreams["mock"])
        servers, rows = plan(skip_peers, litellm, litellm_skip, portkey, portkey_skip, noop,
                             fast_label, a.baseline_wasm)
        if a.only:
            only = set(a.only.split(",")) | {"plain", "plain-s"}
            servers = [s for s in servers if s.key in only or s.key.removesuffix("-s") in only]
            rows = [r for r in rows if r.server in {s.key for s in servers}]
        log(f"upstreams: {', '.join(f'{k} {u.url}' for k, u in upstreams.items())}; "
            f"{opts.runs} run(s) × {opts.duration:g} s")
        def write_partial(run: int, results: dict, rss: dict, skipped: dict) -> None:
            if run == opts.runs:
                return
            # A long run interrupted later still leaves the runs done so far.
            partial = Opts(**{**opts.__dict__, "runs": run})
            text = report(partial, rows, servers, results, rss, skipped, oha_exe, upstream_note)
            note = f"> Partial: {run} of {opts.runs} runs done when this was written.\n\n"
            write_report(Path(a.out), text.replace("\n", "\n" + note, 1))
            log(f"wrote {a.out} after run {run} of {opts.runs}")

        results, rss, skipped = measure_all(opts, oha_exe, servers, rows, upstreams,
                                            write_partial)
    finally:
        for u in {id(u): u for u in upstreams.values()}.values():
            u.stop()
    text = report(opts, rows, servers, results, rss, skipped, oha_exe, upstream_note)
    write_report(Path(a.out), text)
    Path(BENCH_DIR).mkdir(parents=True, exist_ok=True)
    (BENCH_DIR / "results.json").write_text(json.dumps(
        {"opts": opts.__dict__, "results": results, "rss_kib": rss, "skipped": skipped,
         "fast_label": fast_label, "upstream_note": upstream_note,
         "baseline_wasm": a.baseline_wasm}, indent=1))
    print()
    print(text.split("## Method")[0])
    log(f"wrote {a.out} and {BENCH_DIR.relative_to(ROOT)}/results.json")


if __name__ == "__main__":
    main()
