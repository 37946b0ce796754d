"""Two llmgw gateways behind one port, sharing their limits through one llmgw-rls: `make fleet`
(README "Scaling out") and tests/e2e/test_fleet.py.

Starts, all on this machine: a redis-server, `llmgw-rls` (build/bin), the mock provider (for
providers without a key in the environment, as `make run`), two Envoys with envoy/gateway.yaml
in global rate-limit mode, and the plain front Envoy of examples/fleet/front.yaml, round robin
over the two.
"""

from __future__ import annotations

import copy
import os
import signal
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import harness  # noqa: E402
import rls  # noqa: E402

FRONT_YAML = Path(__file__).with_name("front.yaml")


def front_config(port: int, admin_port: int, gateway_ports: list[int]) -> dict:
    """front.yaml with its ports, and one endpoint per gateway."""
    config = copy.deepcopy(yaml.safe_load(FRONT_YAML.read_text()))
    config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    group = config["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]
    template = group["lb_endpoints"][0]
    group["lb_endpoints"] = []
    for gateway_port in gateway_ports:
        endpoint = copy.deepcopy(template)
        endpoint["endpoint"]["address"]["socket_address"]["port_value"] = gateway_port
        group["lb_endpoints"].append(endpoint)
    return config


class Fleet:
    """Everything above, stopped by `stop()`. `filter_configs` replace filters' JSON in every
    gateway (tests); `front_concurrency` 1 makes the round robin strict (one worker, one
    rotation)."""

    def __init__(self, *, port: int, admin_port: int, gateway_ports: list[int],
                 gateway_admin_ports: list[int], real_providers: set[str] = frozenset(),
                 mock: harness.MockProvider | None = None,
                 filter_configs: dict[str, dict] | None = None, front_concurrency: int = 2):
        self._stack = []
        try:
            self.redis = self._keep(rls.Redis())
            self.rls = self._keep(rls.Rls(self.redis.url))
            self.mock = mock or self._keep(harness.MockProvider())
            env = harness.provider_env(set(real_providers))
            self.gateways = []
            for gateway_port, admin in zip(gateway_ports, gateway_admin_ports):
                config = harness.gateway_config(
                    port=gateway_port, admin_port=admin, mock_port=self.mock.port,
                    real_providers=set(real_providers), filter_configs=filter_configs)
                rls.use_global(config, self.rls.port)
                self.gateways.append(self._keep(harness.Envoy(config, env)))
            self.front = self._keep(harness.Envoy(
                front_config(port, admin_port, gateway_ports), env,
                concurrency=front_concurrency))
        except Exception:
            self.stop()
            raise
        self.url = self.front.url

    def _keep(self, part):
        self._stack.append(part)
        return part

    def stop(self) -> None:
        while self._stack:
            self._stack.pop().stop()


def main() -> None:
    # SIGTERM (systemd, `timeout`, a test runner) stops everything too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = int(os.environ.get("PORT", "10000"))
    admin = int(os.environ.get("ADMIN_PORT", "9900"))
    real = {p for p, (var, _) in harness.PROVIDER_KEYS.items() if os.environ.get(var)}
    fleet = Fleet(port=port, admin_port=admin, gateway_ports=[port + 1, port + 2],
                  gateway_admin_ports=[admin + 1, admin + 2], real_providers=real)
    print(f"""
llmgw fleet: {fleet.url}/v1 (front Envoy, admin {fleet.front.admin})
  → gateways {', '.join(f"{g.url} (admin {g.admin})" for g in fleet.gateways)}
  rate limit service: grpc 127.0.0.1:{fleet.rls.port}, {fleet.rls.http}/metrics, Redis {fleet.redis.url}
  demo key: {harness.DEMO_KEY}
  try:      curl {fleet.url}/v1/chat/completions -H 'authorization: Bearer {harness.DEMO_KEY}' \\
              -H 'content-type: application/json' \\
              -d '{{"model":"fast","messages":[{{"role":"user","content":"Hello"}}]}}'
Press Ctrl-C to stop.""", flush=True)
    try:
        while all(p.proc.poll() is None for p in [fleet.front, fleet.rls, *fleet.gateways]):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        fleet.stop()


if __name__ == "__main__":
    main()
