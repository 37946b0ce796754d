"""llmgw-rls, the global rate limit service (rls/), as a deployable part: health and readiness
following Redis, Prometheus metrics counting real calls from a real Envoy, and a graceful exit
on SIGTERM that lets the call in flight finish.

Each test starts its own redis-server and service, so the counts below are exact.
"""

from __future__ import annotations

import json
import signal
import subprocess
import socket
import threading
import time
import urllib.error
import urllib.request

import harness
import rawhttp
import rls
from conftest import AUTH_CONFIG, KEYS


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(what, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.05)
    return False


def metrics(service: rls.Rls) -> dict[str, float]:
    """`/metrics` as {series: value}, e.g. `llmgw_rls_requests_total{result="ok"}`."""
    status, text = http_get(f"{service.http}/metrics")
    assert status == 200
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines() if line and not line.startswith("#")
    }


def gateway(mock, service: rls.Rls, ratelimit: dict) -> harness.Envoy:
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH_CONFIG, "llmgw.ratelimit": ratelimit})
    config["static_resources"]["clusters"].append(rls.cluster(service.port))
    return harness.Envoy(config, harness.provider_env(set()))


def global_limits(requests_per_hour: int, failure_mode: str, timeout_ms: int = 500) -> dict:
    return {"consumers": {"alice": {"requests_per_hour": requests_per_hour}},
            "global": {"cluster": rls.CLUSTER, "timeout_ms": timeout_ms,
                       "failure_mode": failure_mode}}


def chat(gw: harness.Envoy) -> rawhttp.Response:
    body = {"model": "gpt-4o-mini", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    return rawhttp.post(f"{gw.url}/v1/chat/completions", body,
                        {"authorization": f"Bearer {KEYS['alice']}"})


def test_ready_follows_redis_and_health_does_not():
    port = harness.free_port()
    service = rls.Rls(f"redis://127.0.0.1:{port}")  # nothing listens there yet
    redis = None
    try:
        assert http_get(f"{service.http}/healthz") == (200, "ok\n")
        status, body = http_get(f"{service.http}/readyz")
        assert status == 503 and body.startswith("redis:"), body
        redis = rls.Redis(port)
        assert wait_for(lambda: http_get(f"{service.http}/readyz")[0] == 200), "not ready with redis up"
        redis.stop()
        assert wait_for(lambda: http_get(f"{service.http}/readyz")[0] == 503), "ready with redis down"
        assert http_get(f"{service.http}/healthz")[0] == 200
        redis = rls.Redis(port)
        assert wait_for(lambda: http_get(f"{service.http}/readyz")[0] == 200), "not ready again"
    finally:
        service.stop()
        if redis:
            redis.stop()


def test_metrics_count_the_calls_of_a_real_envoy(mock):
    redis = rls.Redis()
    service = rls.Rls(redis.url)
    gw = gateway(mock, service, global_limits(1, "open"))
    try:
        before = metrics(service)
        assert before['llmgw_rls_requests_total{result="ok"}'] == 0
        assert before["llmgw_rls_request_duration_seconds_count"] == 0
        assert chat(gw).status == 200
        limited = chat(gw)
        assert limited.status == 429, limited.body
        after = metrics(service)
        assert after['llmgw_rls_requests_total{result="ok"}'] == 1
        assert after['llmgw_rls_requests_total{result="over_limit"}'] == 1
        assert after["llmgw_rls_request_duration_seconds_count"] == 2
        assert after["llmgw_rls_redis_errors_total"] == 0
        # Redis gone: the call fails (Envoy lets it through: failure_mode open) and both the
        # result and the Redis error are counted.
        redis.stop()
        assert chat(gw).status == 200
        after = metrics(service)
        assert after['llmgw_rls_requests_total{result="error"}'] == 1
        assert after["llmgw_rls_redis_errors_total"] >= 1
        print(f"\nllmgw-rls: 2 calls through Envoy, sum of call times "
              f"{1000 * after['llmgw_rls_request_duration_seconds_sum']:.2f} ms")
    finally:
        gw.stop()
        service.stop()
        redis.stop()


def pause_redis(redis: rls.Redis, ms: int) -> None:
    """`CLIENT PAUSE ms ALL`: Redis holds every other client's commands for `ms`."""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as s:
        s.sendall(f"CLIENT PAUSE {ms} ALL\r\n".encode())
        assert s.recv(16).startswith(b"+OK")


def test_sigterm_lets_the_call_in_flight_finish_then_exits_0(mock):
    redis = rls.Redis()
    service = rls.Rls(redis.url, args=["--redis-timeout-ms", "5000"])
    gw = gateway(mock, service, global_limits(100, "closed", timeout_ms=5000))
    try:
        assert chat(gw).status == 200  # Envoy's connection to the service is up
        pause_redis(redis, 1500)
        result = {}

        def call():
            result["response"] = chat(gw)
            result["at"] = time.monotonic()

        client = threading.Thread(target=call)
        client.start()
        time.sleep(0.4)  # the call now waits in the service for Redis
        service.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # A probe that lands before the service has handled the signal checks Redis, which is
        # paused: it waits out the pause. Probe briefly and again, as a kubelet does.
        def draining() -> bool:
            try:
                return http_get(f"{service.http}/readyz", timeout=0.2) == (503, "shutting down\n")
            except OSError:  # socket.timeout: that early probe
                return False
        assert wait_for(draining, timeout=1), "not reported as shutting down while draining"
        client.join(timeout=10)
        response = result["response"]
        assert result["at"] > signalled, "the call finished before the signal: not in flight"
        assert response.status == 200, response.body
        # Counted by the service (closed mode would have answered 503 otherwise).
        assert response.headers["x-ratelimit-remaining-requests"] == "98"
        code = service.proc.wait(timeout=10)
        print(f"\nllmgw-rls: SIGTERM → exit {code} {time.monotonic() - signalled:.2f} s later "
              f"(Redis paused 1.5 s)")
        assert code == 0
    finally:
        gw.stop()
        service.stop()
        redis.stop()


def test_sentinel_failover_keeps_the_counts(mock, tmp_path):
    """A master, its replica and one Sentinel (quorum 1): the service finds the master through
    the Sentinel, and after the master dies and the Sentinel promotes the replica, it serves
    again from the new master with the counts the replica copied."""
    # A full sync writes an RDB file on the replica: in the test's own directory.
    master = rls.Redis(extra=["--dir", str(tmp_path)])
    replica = rls.Redis(extra=["--dir", str(tmp_path), "--replicaof", "127.0.0.1", str(master.port)])
    sentinel_port = harness.free_port()
    conf = tmp_path / "sentinel.conf"  # Sentinel rewrites its config file: it must be its own
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\n"
        f"sentinel monitor llmgw 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds llmgw 500\n"
        "sentinel failover-timeout llmgw 5000\n")
    sentinel = subprocess.Popen(["redis-server", str(conf), "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service = gw = None
    try:
        assert wait_for(lambda: redis_info(replica.port, "master_link_status") == "up")
        service = rls.Rls(args=["--sentinel", f"redis://127.0.0.1:{sentinel_port}",
                                "--sentinel-master", "llmgw"])
        assert wait_for(lambda: http_get(f"{service.http}/readyz")[0] == 200)
        gw = gateway(mock, service, global_limits(100, "closed"))
        remaining = [int(chat(gw).headers["x-ratelimit-remaining-requests"]) for _ in range(3)]
        assert remaining == [99, 98, 97]
        # The replica has the counts before the master goes.
        assert wait_for(lambda: redis_info(replica.port, "master_repl_offset")
                        == redis_info(master.port, "master_repl_offset"))
        master.stop()
        killed = time.monotonic()
        assert wait_for(lambda: redis_info(replica.port, "role") == "master", timeout=20), \
            "the Sentinel did not promote the replica"
        assert wait_for(lambda: chat(gw).status == 200, timeout=10)
        back = time.monotonic() - killed
        after = chat(gw)
        assert after.status == 200, after.body
        # 3 before, 1 through the wait above (maybe more), then this one: the count went on.
        assert int(after.headers["x-ratelimit-remaining-requests"]) <= 95
        assert http_get(f"{service.http}/readyz")[0] == 200
        print(f"\nllmgw-rls over Sentinel: master killed → calls served again {back:.1f} s later "
              f"(down-after 0.5 s); counts kept: {after.headers['x-ratelimit-remaining-requests']} "
              "requests left of 100")
    finally:
        if gw:
            gw.stop()
        if service:
            service.stop()
        sentinel.terminate()
        sentinel.wait(timeout=10)
        replica.stop()
        master.stop()


def redis_info(port: int, field: str) -> str | None:
    """One field of `INFO replication`, or None when Redis does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"INFO replication\r\n")
            data = b""
            while b"\r\n" not in data:  # the bulk reply's header: $<length>
                chunk = s.recv(65536)
                if not chunk:
                    return None
                data += chunk
            header, _, data = data.partition(b"\r\n")
            while len(data) < int(header[1:]):
                chunk = s.recv(65536)
                if not chunk:
                    return None
                data += chunk
    except OSError:
        return None
    for line in data.decode(errors="replace").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1]
    return None
