"""redis-server and the rate limit service (rls/, `llmgw-rls`) for llmgw's global mode.

Used by the end-to-end tests and by `make run RATELIMIT=global`.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RLS_BIN = ROOT / "build" / "bin" / "llmgw-rls"
CLUSTER = "llmgw-rls"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A throw-away redis-server on a free port: no persistence, gone when stopped."""

    def __init__(self, port: int | None = None, extra: list[str] = ()):
        self.port = port or _free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 10
        while not self._pong():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Rls:
    """`llmgw-rls` on free ports (gRPC `port`, HTTP `http`), counting in `redis_url`;
    `delay_ms` answers every call that late (a slow service); `args` adds options
    (rls/README.md)."""

    def __init__(self, redis_url: str | None = None, delay_ms: int = 0, args: list[str] = ()):
        redis = ["--redis", redis_url] if redis_url else []
        delay = ["--delay-ms", str(delay_ms)] if delay_ms else []
        self.proc = subprocess.Popen(
            [str(RLS_BIN), "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", *redis, *delay, *args],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        # listening on grpc 127.0.0.1:PORT http 127.0.0.1:PORT
        words = line.split()
        if words[:3] != ["listening", "on", "grpc"] or len(words) != 6:
            self.stop()
            raise RuntimeError(f"rate limit service did not start: {line!r}")
        self.port = int(words[3].rsplit(":", 1)[1])
        self.http = f"http://{words[5]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def cluster(port: int) -> dict:
    """The Envoy cluster of the rate limit service (gRPC needs HTTP/2)."""
    return {
        "name": CLUSTER,
        "type": "STATIC",
        "connect_timeout": "0.5s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}],
        },
    }


def use_global(config: dict, service_port: int, domain: str | None = None) -> None:
    """Switch an Envoy config's ratelimit filter to global mode through the service on
    `service_port`: adds its cluster and a `global` section to the filter's JSON."""
    import json

    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("name") == "llmgw.ratelimit" and "configuration" in node:
                rl = json.loads(node["configuration"]["value"])
                # Not the admin listener's (local mode's read path; llmgw-rls has its own).
                if "admin" not in rl:
                    rl["global"] = {"cluster": CLUSTER, **({"domain": domain} if domain else {})}
                    node["configuration"]["value"] = json.dumps(rl)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    config["static_resources"]["clusters"].append(cluster(service_port))


def enable_global(config: dict) -> list:
    """Starts redis-server and the rate limit service and switches `config` to global mode
    through them (`make run RATELIMIT=global`). Returns what to stop afterwards."""
    redis = Redis()
    try:
        service = Rls(redis.url)
    except Exception:
        redis.stop()
        raise
    use_global(config, service.port)
    return [service, redis]
