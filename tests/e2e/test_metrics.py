"""Usage, errors and auth failures show up in Envoy's /stats/prometheus with labels."""

from __future__ import annotations

import re
import time
import urllib.request

import openai
import pytest

import harness
from conftest import KEYS

LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def prometheus(gateway) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(f"{gateway.admin}/stats/prometheus") as resp:
        text = resp.read().decode()
    series = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match and not line.startswith("#"):
            labels = dict(LABEL.findall(match["labels"] or ""))
            # The native build's names as the wasm build's (harness.metric_name).
            series.append((harness.metric_name(match["name"]), labels, float(match["value"])))
    return series


def prometheus_when(gateway, ready, timeout: float = 3.0) -> list[tuple[str, dict[str, str], float]]:
    """/stats/prometheus once `ready(series)` holds, or at the timeout (the test's assertions then
    say what is missing). The native build hands counters to Envoy from the main thread every
    10 ms (README, "Native build"), so a read right after a response may come before them; the
    wasm build's counts are there at once and the first read returns."""
    deadline = time.monotonic() + timeout
    while True:
        series = prometheus(gateway)
        if ready(series) or time.monotonic() > deadline:
            return series
        time.sleep(0.02)


def value(series, name: str, **labels) -> float:
    found = [v for n, l, v in series if n == name and all(l.get(k) == w for k, w in labels.items())]
    return sum(found)


@pytest.fixture
def dora(client_as):
    return client_as(KEYS["dora"])


@pytest.mark.parametrize(
    "model,provider,upstream_model,price",
    [("gpt-4o-mini", "openai", "gpt-4o-mini", (0.15, 0.6)),
     ("smart", "anthropic", "claude-sonnet-4-5", (3.0, 15.0))],
)
def test_token_usage_and_cost_are_counted_per_model_provider_and_consumer(
    gateway, dora, model, provider, upstream_model, price
):
    """`price` is the catalogue's (envoy/gateway.yaml), USD per million input / output tokens."""
    labels = dict(provider=provider, model=upstream_model, consumer="dora", team="obs")
    before = prometheus(gateway)
    prompt = completion = cost_nanos = 0

    def add(usage):
        nonlocal prompt, completion, cost_nanos
        prompt += usage.prompt_tokens
        completion += usage.completion_tokens
        # Each try's cost is rounded to whole nanos of a USD.
        cost_nanos += round((usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) * 1000)

    for i in range(3):
        reply = dora.chat.completions.create(
            model=model, messages=[{"role": "user", "content": f"count my tokens {i} " * (i + 1)}]
        )
        add(reply.usage)
    stream = dora.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "and a stream"}], stream=True,
        stream_options={"include_usage": True},
    )
    add([c.usage for c in stream if c.usage][0])

    tokens, cost = "llmgw_tokens_total", "llmgw_cost_usd_nanos_total"
    requests, client_requests = "llmgw_upstream_requests_total", "llmgw_requests_total"
    assert cost_nanos > 0
    # Per client request (router): the catalogue's model name, here the same as the provider's.
    expected = [
        (tokens, dict(token_type="input", **labels), prompt),
        (tokens, dict(token_type="output", **labels), completion),
        (cost, labels, cost_nanos),
        (requests, dict(provider=provider, model=upstream_model, status="200"), 4),
        (client_requests, dict(status="200", **labels), 4),
    ]

    def delta(series, name, labels):
        return value(series, name, **labels) - value(before, name, **labels)

    after = prometheus_when(gateway, lambda s: all(delta(s, n, l) >= want for n, l, want in expected))
    for name, labels_, want in expected:
        assert delta(after, name, labels_) == want, (name, labels_)


def test_provider_errors_are_counted_by_class(gateway, dora):
    labels = dict(provider="anthropic", model="claude-haiku-4-5")
    before = prometheus(gateway)
    for status in (500, 529, 429):
        with pytest.raises(openai.APIStatusError):
            dora.chat.completions.create(
                model="claude-haiku-4-5", messages=[{"role": "user", "content": f"[mock:status={status}] x"}]
            )
    name = "llmgw_upstream_errors_total"
    status = "llmgw_upstream_requests_total"
    after = prometheus_when(gateway, lambda s: (
        value(s, name, **labels) - value(before, name, **labels) >= 3
        and value(s, status, status="503", **labels) - value(before, status, status="503", **labels) >= 1))
    for error, count in (("server_error", 2), ("rate_limited", 1)):
        delta = value(after, name, error=error, **labels) - value(before, name, error=error, **labels)
        assert delta == count, error
    assert value(after, status, status="503", **labels) - value(before, status, status="503", **labels) == 1


def test_auth_failures_are_counted(gateway, client_as):
    before = prometheus(gateway)
    with pytest.raises(openai.AuthenticationError):
        client_as("sk-wrong").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    name = "llmgw_auth_failures_total"
    after = prometheus_when(
        gateway, lambda s: value(s, name, reason="invalid_key") - value(before, name, reason="invalid_key") >= 1)
    assert value(after, name, reason="invalid_key") - value(before, name, reason="invalid_key") == 1


def test_label_values_never_carry_the_tag_syntax(gateway):
    for name, labels, _ in prometheus(gateway):
        if name.startswith("llmgw_"):
            assert "=.=" not in name and ";.;" not in name, name
            assert all("=.=" not in v for v in labels.values())


def test_latency_histograms_are_exported(gateway, dora):
    """Durations and time to first token are histograms; Envoy merges them at each stats flush."""
    import time

    labels = dict(provider="anthropic", model="claude-haiku-4-5")
    # Earlier tests (the combined module runs them all on one Envoy) send this model too, and
    # Envoy merges histogram samples at each stats flush, so an earlier request's sample may
    # still arrive after `before`: wait for this stream's duration (at least the mock's 50 ms
    # pacing) to show in the sum, not merely for the count to move.
    names = ("llmgw_time_to_first_token_ms_count", "llmgw_request_duration_ms_count",
             "llmgw_request_duration_ms_sum")
    before = prometheus(gateway)
    stream = dora.chat.completions.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "[mock:delay_ms=50] hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    deadline = time.monotonic() + 15  # the default stats flush interval is 5 s
    while True:
        series = prometheus(gateway)
        ttft, count, duration_sum = (value(series, n, **labels) - value(before, n, **labels) for n in names)
        if (ttft >= 1 and count >= 1 and duration_sum >= 50) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ttft >= 1 and count >= 1, "histograms did not reach /stats/prometheus"
    # The whole stream took at least the mock's pacing.
    assert duration_sum >= 50, duration_sum


def test_dashboard_queries_only_metrics_that_exist(gateway, dora, client_as):
    """examples/grafana's dashboard must not chart a metric the filters do not export."""
    import json
    import re as regex

    dora.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.APIStatusError):
        dora.chat.completions.create(model="fast", messages=[{"role": "user", "content": "[mock:status=500] x"}])
    with pytest.raises(openai.AuthenticationError):
        client_as("sk-wrong").chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    erin = client_as(KEYS["erin"])  # 1 request per minute: the second is refused
    with pytest.raises(openai.RateLimitError):
        for _ in range(2):
            erin.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    dashboard = json.loads((harness.ROOT / "examples/grafana/llmgw-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    wanted = {regex.sub(r"_(bucket|sum|count)$", "", m) for e in exprs for m in regex.findall(r"llmgw_\w+", e)}
    # Histograms appear at Envoy's first stats flush after a sample; counters at once (the
    # native build's within its 10 ms flush).
    counters = {w for w in wanted if w.endswith("_total")}

    def names(series) -> set[str]:
        return {regex.sub(r"_(bucket|sum|count)$", "", n) for n, _, _ in series}

    exported = names(prometheus_when(gateway, lambda s: counters <= names(s)))
    assert counters and counters <= exported, counters - exported
