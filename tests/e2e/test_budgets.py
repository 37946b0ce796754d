"""Spend budgets end to end (README "Budgets"): real Envoys with the built .wasm, the official
OpenAI and Anthropic SDKs, the mock provider.

A budget is a micro-USD counter admitted at each request's worst case and settled at its real
cost. The tests read the gateway's own count with a probe: a request whose worst case exceeds
every budget here is always refused, and its 429 says how much of the budget is used, to the
micro-USD. Each test's consumer has its own budget, so the tests do not meet; budgets are per day
and the probe is exact, so a test only breaks at midnight UTC by bad luck (then rerun).
"""

from __future__ import annotations

import datetime
import json
import math
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import anthropic
import openai
import pytest

import harness
import rawhttp
import rls
from conftest import AUTH_CONFIG, sha

CONSUMERS = ["cent", "conc", "stream", "refund", "fallback", "soft", "msgs", "glob", "globerr",
             "big", "adm"]
KEYS = {c: f"sk-budget-{c}-0123456789" for c in CONSUMERS}
AUTH = {"keys": AUTH_CONFIG["keys"] + [{"sha256": sha(k), "consumer": c} for c, k in KEYS.items()]}

ADMIN_KEY = "sk-budget-admin-0123456789"  # llmgw-rls's GET /budgets
CENT = 10_000  # micro-USD
CONC_BUDGET = 50_000
BUDGET = "limits.keys.usd_per_day"
BUDGETS = {
    "default": {"requests_per_hour": 1_000_000},
    "limits": [{
        "name": "keys", "by": ["consumer"], "usd_per_day": 0.01,
        "consumers": {"conc": {"usd_per_day": CONC_BUDGET / 1e6},
                      "stream": {"usd_per_day": 1}, "refund": {"usd_per_day": 1},
                      "fallback": {"usd_per_day": 1}, "glob": {"usd_per_day": 0.02},
                      "globerr": {"usd_per_day": 1}, "adm": {"usd_per_day": 1}},
    }],
    "budget_warning_percent": 50,
}
# router's catalogue in envoy/gateway.yaml: USD per million input / output tokens.
PRICES = {"gpt-4.1": (2.0, 8.0), "gpt-4o-mini": (0.15, 0.6), "claude-haiku-4-5": (1.0, 5.0)}
SPENT = re.compile(r"is spent: (\d+)\.(\d{6}) of (\d+)\.(\d{6}) USD per (\w+) \(UTC\) used, "
                   r"and this request may cost up to (\d+)\.(\d{6}) USD\. It resets at (\S+)\.$")


def micros(whole: str, frac: str) -> int:
    return int(whole) * 1_000_000 + int(frac)


def cost(usage, model: str) -> int:
    """What ratelimit settles: usage × the catalogue's price, micro-USD (Rust's arithmetic)."""
    inp, out = PRICES[model]
    nanos = math.floor((usage.prompt_tokens * inp + usage.completion_tokens * out) * 1000.0 + 0.5)
    return (nanos + 500) // 1000


def tomorrow() -> str:
    day = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=1)
    return f"{day.isoformat()}T00:00:00Z"


def start_gateway(mock, ratelimit: dict, extra_clusters=(), combined=False) -> harness.Envoy:
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH, "llmgw.ratelimit": ratelimit},
    )
    config["static_resources"]["clusters"].extend(extra_clusters)
    if combined:
        config = harness.combine_downstream(config)
    return harness.Envoy(config, harness.provider_env(set()))


@pytest.fixture(scope="module")
def local(mock):
    envoy = start_gateway(mock, BUDGETS)
    yield envoy
    envoy.stop()


def sdk(gw, consumer: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=KEYS[consumer], max_retries=0,
                         timeout=20)


def probe(gw, consumer: str, max_tokens: int = 10_000_000) -> tuple[int, int]:
    """(used, limit) of the consumer's budget, from the 429 of a request no budget here fits
    (10M output tokens of gpt-4.1 may cost $80)."""
    resp = rawhttp.post(f"{gw.url}/v1/chat/completions",
                        {"model": "gpt-4.1", "max_tokens": max_tokens,
                         "messages": [{"role": "user", "content": "probe"}]},
                        {"authorization": f"Bearer {KEYS[consumer]}"})
    assert resp.status == 429, resp.body
    m = SPENT.search(resp.json()["error"]["message"])
    assert m, resp.body
    return micros(m[1], m[2]), micros(m[3], m[4])


def ask(client: openai.OpenAI, text: str, model: str = "gpt-4.1", max_tokens: int = 200, **extra):
    """A chat completion with its raw response: (headers, completion)."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, max_tokens=max_tokens, messages=[{"role": "user", "content": text}], **extra)
    return raw.headers, raw.parse()


def listed_budget(domain, budget: str, period: str, key: dict, limit: int, spent: int,
                  resets_at: str) -> dict:
    """One budget as `GET /budgets` (llmgw-rls) and `GET /llmgw/budgets` (local) list it."""
    usd = lambda micros: f"{micros // 1_000_000}.{micros % 1_000_000:06d}"  # noqa: E731
    return {"domain": domain, "budget": budget, "period": period, "key": key,
            "limit_usd": usd(limit), "spent_usd": usd(spent), "remaining_usd": usd(limit - spent),
            "limit_micros": limit, "spent_micros": spent, "remaining_micros": limit - spent,
            "resets_at": resets_at}


def remaining(headers) -> int:
    whole, frac = headers["x-llmgw-budget-remaining-usd"].split(".")
    return micros(whole, frac)


# ---- local mode ----


def test_a_cent_a_day_is_refused_once_spent_and_not_before(local):
    client = sdk(local, "cent")
    spent, worst, admitted = 0, None, 0
    while True:
        try:
            headers, completion = ask(client, "Hello [mock:words=150]")
        except openai.RateLimitError as e:
            refusal = e
            break
        assert headers["x-llmgw-budget"] == BUDGET
        assert headers["x-llmgw-budget-limit-usd"] == "0.010000"
        assert headers["x-llmgw-budget-reset-at"] == tomorrow()
        # Admission reserved the worst case on top of what was spent: the same each time.
        this_worst = CENT - spent - remaining(headers)
        assert worst in (None, this_worst)
        worst = this_worst
        assert spent + worst <= CENT, "admitted though the worst case did not fit"
        real = cost(completion.usage, "gpt-4.1")
        assert 0 < real < worst
        spent += real
        admitted += 1
        assert admitted < 100
    # Refused exactly when the worst case stopped fitting, and the gateway counted every
    # settled micro-USD the client was billed for.
    assert spent + worst > CENT
    assert admitted >= 2
    assert refusal.status_code == 429
    assert refusal.response.headers["x-should-retry"] == "false"
    error = refusal.response.json()["error"]
    assert error["type"] == "insufficient_quota"
    assert error["code"] == "insufficient_quota"
    m = SPENT.search(error["message"])
    assert m, error["message"]
    assert error["message"].startswith(f"Budget {BUDGET} for cent is spent")
    assert (micros(m[1], m[2]), micros(m[3], m[4]), m[5], micros(m[6], m[7]), m[8]) == (
        spent, CENT, "day", worst, tomorrow())
    print(f"\n$0.01 a day: {admitted} requests admitted, {spent} micro-USD spent, worst case "
          f"{worst}, refused at {spent + worst} > {CENT}")


def test_64_concurrent_clients_overspend_a_budget_by_at_most_one_worst_case(local):
    def client_loop(_):
        client = sdk(local, "conc")
        costs, worst = [], 0
        while True:
            try:
                headers, completion = ask(client, "Hi [mock:words=20]", max_tokens=40)
            except openai.RateLimitError as e:
                m = SPENT.search(e.response.json()["error"]["message"])
                return costs, micros(m[6], m[7])
            costs.append(cost(completion.usage, "gpt-4.1"))
            assert len(costs) < 1000

    started = time.monotonic()
    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(client_loop, range(64)))
    elapsed = time.monotonic() - started
    spent = sum(sum(costs) for costs, _ in results)
    admitted = sum(len(costs) for costs, _ in results)
    # One request's worst case, as the refusals named it.
    worst = max(w for _, w in results)
    used, limit = probe(local, "conc")
    overspend = spent - limit
    print(f"\n64 clients: {admitted} admitted in {elapsed:.1f}s, {spent} of {limit} micro-USD "
          f"spent, overspend {overspend} (bound: one worst case, {worst})")
    assert used == spent, "every settlement was counted exactly, under contention too"
    assert limit == CONC_BUDGET
    assert overspend <= worst
    # Refusals came from a used budget, not early: at most every client's reservation in
    # flight was left over when the last one was refused.
    assert limit - spent < 64 * worst


def test_a_streamed_answer_is_settled_to_its_real_cost(local):
    client = sdk(local, "stream")
    before, _ = probe(local, "stream")
    stream = client.chat.completions.create(
        model="gpt-4.1", max_tokens=300, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Stream [mock:words=120]"}])
    usage = [chunk.usage for chunk in stream if chunk.usage]
    assert len(usage) == 1
    after, _ = probe(local, "stream")
    real = cost(usage[0], "gpt-4.1")
    assert after - before == real
    # The client did not ask for usage: ratelimit forces it, settles it and hides it.
    stream = client.chat.completions.create(
        model="gpt-4.1", max_tokens=300, stream=True,
        messages=[{"role": "user", "content": "Stream [mock:words=120]"}])
    assert not [chunk for chunk in stream if chunk.usage]
    again, _ = probe(local, "stream")
    assert again - after == real


def test_a_provider_error_refunds_the_reservation(local):
    client = sdk(local, "refund")
    before, limit = probe(local, "refund")
    with pytest.raises(openai.InternalServerError) as failed:
        ask(client, "Fail [mock:status=500]")
    # The error response showed the reservation; it was given back when the answer ended.
    assert remaining(failed.value.response.headers) < limit - before
    after, _ = probe(local, "refund")
    assert after == before


def test_a_fallback_to_a_dearer_provider_is_priced_at_the_provider_that_answered(local):
    client = sdk(local, "fallback")
    before, limit = probe(local, "fallback")
    headers, completion = ask(client, "Hello [mock:openai_status=500]", model="resilient",
                              max_tokens=100)
    assert completion.model == "claude-haiku-4-5"
    # Reserved at the dearer target of the chain (anthropic: 100 output tokens at $5/M = 500
    # micro-USD; openai's would be 60).
    assert limit - before - remaining(headers) >= 500
    after, _ = probe(local, "fallback")
    real = cost(completion.usage, "claude-haiku-4-5")
    assert after - before == real
    assert real != cost(completion.usage, "gpt-4o-mini")


def warnings_counted(gw) -> int:
    with urllib.request.urlopen(f"{gw.admin}/stats/prometheus") as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("llmgw_budget_warnings_total{") and f'budget="{BUDGET}"' in line:
                return int(float(line.rsplit(" ", 1)[1]))
    return 0


def test_the_soft_limit_header_appears_at_the_threshold(local):
    client = sdk(local, "soft")
    counted_before = warnings_counted(local)
    seen = []
    while True:
        try:
            headers, _ = ask(client, "Hello [mock:words=100]")
        except openai.RateLimitError:
            break
        used = CENT - remaining(headers)
        warning = headers.get("x-llmgw-budget-warning")
        seen.append((used, warning))
        # budget_warning_percent 50: from half the budget on, after this request's worst case.
        assert (warning is not None) == (used * 2 >= CENT), (used, warning)
        if warning:
            assert re.fullmatch(rf"\d+\.\d% of budget {re.escape(BUDGET)} used "
                                r"\(\d\.\d{6} of 0\.010000 USD per day\)", warning), warning
        assert len(seen) < 100
    warned = sum(1 for _, w in seen if w)
    assert 0 < warned < len(seen), seen
    deadline = time.monotonic() + 10
    while warnings_counted(local) - counted_before < warned and time.monotonic() < deadline:
        time.sleep(0.2)  # stats are flushed on their own schedule
    assert warnings_counted(local) - counted_before == warned


def test_a_messages_client_over_budget_gets_anthropic_s_error(local):
    claude = anthropic.Anthropic(base_url=local.url, api_key=KEYS["msgs"], max_retries=0,
                                 timeout=20)
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=100_000,
                               messages=[{"role": "user", "content": "Hello"}])
    body = refused.value.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["message"].startswith(f"Budget {BUDGET} for msgs is spent: 0.000000")
    assert refused.value.response.headers["x-should-retry"] == "false"


# ---- local mode's admin read path ----


def admin_get(url: str, key: str | None, method: str = "GET", path: str = "/llmgw/budgets"):
    """(status, headers, JSON body) of a request to `url` (a listener)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    req = urllib.request.Request(f"{url}{path}", headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


@pytest.mark.parametrize("variant", ["wasm", "one-module", "native"])
def test_the_admin_listener_lists_local_budgets_exactly(mock, variant):
    """gateway.yaml's admin listener answers GET /llmgw/budgets from the shared data the public
    listener's ratelimit writes (same vm_id; the native build's process memory), in llmgw-rls's
    shape, to the micro-USD the OpenAI SDK's requests cost; only with the admin key."""
    # The one module checks at load that a budget prices every model it covers (the shipped
    # catalogue has unpriced ones): this budget is for gpt-4.1, all this test uses.
    budgets = {**BUDGETS, "limits": [{**BUDGETS["limits"][0], "models": ["gpt-4.1"]}]}
    config = harness.gateway_config(
        port=harness.free_port(), admin_port=harness.free_port(), mock_port=mock.port,
        filter_configs={"llmgw.auth": AUTH, "llmgw.ratelimit": budgets})
    if variant == "one-module":
        config = harness.combine_downstream(config)
    elif variant == "native":
        config = harness.native_filters(config)
    gw = harness.Envoy(config, harness.provider_env(set()))
    try:
        client = sdk(gw, "adm")
        spent = 0
        for words in (40, 90, 150, 30):
            _, completion = ask(client, f"Hello [mock:words={words}]")
            spent += cost(completion.usage, "gpt-4.1")
        time.sleep(0.2)
        status, headers, body = admin_get(gw.admin_listener, harness.ADMIN_DEMO_KEY)
        assert status == 200, body
        assert headers["content-type"] == "application/json"
        assert body["complete"] is True
        listed = [b for b in body["budgets"] if b["key"] == {"consumer": "adm"}]
        limit = 1_000_000
        assert listed == [listed_budget(None, "keys", "day", {"consumer": "adm"}, limit, spent,
                                        tomorrow())]
        # The gateway's own count (the 429's figures) is the same.
        assert probe(gw, "adm") == (spent, limit)
        # Only with the admin key, only GET, only this path.
        for key in (None, KEYS["adm"], harness.ADMIN_DEMO_KEY + "x"):
            status, _, body = admin_get(gw.admin_listener, key)
            assert status == 401, (key, body)
            assert body["error"]["code"] == "invalid_admin_key"
        status, headers, body = admin_get(gw.admin_listener, harness.ADMIN_DEMO_KEY, "POST")
        assert (status, headers["allow"]) == (405, "GET"), body
        status, _, body = admin_get(gw.admin_listener, harness.ADMIN_DEMO_KEY, path="/budgets")
        assert status == 404, body
        # The public listener does not answer it: a request like any other, refused by auth
        # (the admin key is no client key), and OpenAI's 404 for a client's.
        for key, want in ((harness.ADMIN_DEMO_KEY, 401), (KEYS["adm"], 404)):
            status, _, body = admin_get(gw.url, key)
            assert status == want, (key, status, body)
            assert "budgets" not in body, body
        print(f"\nadmin listener ({variant}): {spent} micro-USD spent by 4 requests, listed exactly")
    finally:
        gw.stop()


# ---- bad config ----

BAD_BUDGETS = [
    ("negative", {"default": {"usd_per_day": -5}}, "default.usd_per_day", "must not be negative"),
    ("unknown period", {"limits": [{"name": "b", "by": ["team"], "usd_per_fortnight": 5}]},
     "limits[0].usd_per_fortnight", "unknown field"),
    ("minute budget", {"teams": {"ml": {"usd_per_minute": 5}}}, "teams.ml.usd_per_minute",
     "unknown budget period"),
    ("sub-micro amount", {"consumers": {"a": {"usd_per_month": 0.0000001}}},
     "consumers.a.usd_per_month", "6 decimal places"),
]


def refusal_at_load(tmp_path, ratelimit: dict, combined=False) -> str:
    """The log line in which Envoy (`--mode validate`) refuses the gateway with `ratelimit`."""
    config = harness.gateway_config(port=harness.free_port(), admin_port=harness.free_port(),
                                    mock_port=1, filter_configs={"llmgw.ratelimit": ratelimit})
    if combined:
        config = harness.combine_downstream(config)
    path = tmp_path / "refused.yaml"
    path.write_text(json.dumps(config))
    result = harness.validate(path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, "envoy accepted the config"
    refusals = [line for line in output.splitlines() if "configuration refused" in line]
    assert refusals, output[-3000:]
    return refusals[0]


@pytest.mark.parametrize("name,config,field,reason", BAD_BUDGETS, ids=[b[0] for b in BAD_BUDGETS])
def test_bad_budget_config_is_refused_with_its_field_path(tmp_path, name, config, field, reason):
    refusal = refusal_at_load(tmp_path, config)
    assert field in refusal and reason in refusal, (name, refusal)


def test_a_budget_over_an_unpriced_model_is_refused_at_load_in_the_one_module(tmp_path):
    """The one-module gateway holds router's catalogue and ratelimit's budgets: a budget that
    covers a model without a price (the shipped catalogue has some) is refused at load."""
    refusal = refusal_at_load(tmp_path, {"default": {"usd_per_day": 5}}, combined=True)
    assert "ratelimit.default.usd_per_day" in refusal, refusal
    assert "this budget covers model `mixed`, whose target 0 (openai gpt-4o-mini) has no price" \
        in refusal, refusal


def test_the_one_module_refuses_the_admin_role_naming_ratelimit_wasm(tmp_path):
    """gateway.wasm is built without ratelimit's admin role (issue #16: it stays under 400 KB):
    an `admin` section is refused at load with its path and the module to load instead."""
    key_sha256 = sha(harness.ADMIN_DEMO_KEY)
    refusal = refusal_at_load(tmp_path, {"admin": {"key_sha256": key_sha256}}, combined=True)
    assert ("llmgw.gateway: configuration refused: ratelimit.admin: the admin role is not in "
            "this build of ratelimit (gateway.wasm); load ratelimit.wasm for the admin listener, "
            "with this module's vm_id") in refusal, refusal


def check_config(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "tools/check_config.py", str(path)], cwd=harness.ROOT,
                          capture_output=True, text=True, timeout=180)


def test_check_config_refuses_a_split_gateway_whose_budget_covers_an_unpriced_model(tmp_path):
    """Separate filters cannot see each other's config at load; `make check-config` loads
    router's and ratelimit's sections into the one module offline and gets its refusal."""
    config = harness.gateway_config(port=1, admin_port=2, mock_port=3,
                                    filter_configs={"llmgw.ratelimit": {"default": {"usd_per_day": 5}}})
    path = tmp_path / "split.yaml"
    path.write_text(json.dumps(config))
    refused = check_config(path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert ("llmgw: ratelimit.default.usd_per_day: this budget covers model `mixed`, whose "
            "target 0 (openai gpt-4o-mini) has no price") in refused.stderr, refused.stderr
    # Restricted to priced models, and the shipped files (inline and ECDS): accepted.
    budget = {"limits": [{"name": "b", "by": ["consumer"], "models": ["gpt-4.1"], "usd_per_day": 5}]}
    config = harness.gateway_config(port=1, admin_port=2, mock_port=3,
                                    filter_configs={"llmgw.ratelimit": budget})
    path.write_text(json.dumps(config))
    for accepted in (path, "envoy/gateway.yaml", "envoy/ecds/gateway-ecds.yaml"):
        result = check_config(accepted)
        assert result.returncode == 0, (accepted, result.stdout + result.stderr)
        assert "prices every budgeted model" in result.stdout


# ---- global mode ----


@pytest.fixture(scope="module")
def redis():
    server = rls.Redis()
    yield server
    server.stop()


def admin_budgets(service: rls.Rls, key: str | None) -> list[dict]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    req = urllib.request.Request(f"{service.http}/budgets", headers=headers)
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["content-type"] == "application/json"
        return json.load(resp)["budgets"]


def test_two_envoys_share_one_budget_through_llmgw_rls(mock, redis):
    """One budget counted by llmgw-rls for two gateways (`b` loads the one-module variant):
    reservations, settlements and refunds all reach the service."""
    service = rls.Rls(redis.url, args=["--admin-key-sha256", sha(ADMIN_KEY)])
    # The one-module gateway checks at load that a budget prices every model it covers: the
    # shipped catalogue has unpriced models, so this budget is for gpt-4.1 (all this test uses).
    budget = {**BUDGETS["limits"][0], "models": ["gpt-4.1"]}
    config = {**BUDGETS, "limits": [budget],
              "global": {"cluster": rls.CLUSTER, "domain": "llmgw-budgets", "timeout_ms": 1000,
                         "failure_mode": "closed"}}
    a = start_gateway(mock, config, [rls.cluster(service.port)])
    try:
        b = start_gateway(mock, config, [rls.cluster(service.port)], combined=True)
        try:
            limit = 20_000
            clients = [sdk(a, "glob"), sdk(b, "glob")]
            spent, admitted, refused_by = 0, 0, None
            while refused_by is None:
                gw = admitted % 2
                try:
                    _, completion = ask(clients[gw], "Hello [mock:words=150]")
                except openai.RateLimitError as e:
                    refused_by = gw
                    message = e.response.json()["error"]["message"]
                    break
                spent += cost(completion.usage, "gpt-4.1")
                admitted += 1
                assert admitted < 100
                time.sleep(0.2)  # the settling call is fire-and-forget
            m = SPENT.search(message)
            assert m, message
            assert micros(m[1], m[2]) == spent, "the service holds the settled cost"
            assert micros(m[3], m[4]) == limit
            assert admitted >= 3
            # Both Envoys see the same count.
            time.sleep(0.3)
            assert probe(a, "glob") == probe(b, "glob") == (spent, limit)
            # The admin read path: llmgw-rls's GET /budgets, with the admin key only.
            listed = [b for b in admin_budgets(service, ADMIN_KEY)
                      if b["domain"] == "llmgw-budgets" and b["key"] == {"consumer": "glob"}]
            assert listed == [listed_budget("llmgw-budgets", "keys", "day", {"consumer": "glob"},
                                            limit, spent, tomorrow())]
            for wrong in (None, KEYS["glob"]):
                with pytest.raises(urllib.error.HTTPError) as denied:
                    admin_budgets(service, wrong)
                assert denied.value.code == 401
            # A provider error through the service: reserved, then refunded.
            before = probe(a, "globerr")
            with pytest.raises(openai.InternalServerError):
                ask(sdk(b, "globerr"), "Fail [mock:status=500]")
            time.sleep(0.5)
            assert probe(a, "globerr") == before
            print(f"\nglobal: {admitted} admitted across two Envoys, {spent} of {limit} "
                  f"micro-USD spent")
        finally:
            b.stop()
    finally:
        a.stop()
        service.stop()


def next_month() -> str:
    today = datetime.datetime.now(datetime.timezone.utc).date()
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return f"{year:04d}-{month:02d}-01T00:00:00Z"


def test_a_10000_usd_monthly_budget_is_counted_exactly_in_global_mode(mock, redis):
    """Past the protocol's 32-bit counts ($4,294.967295 in micro-USD): each request reserves a
    worst case above $5,000 (625M output tokens of gpt-4.1 at $8/M) and is settled back to its
    real cost, through llmgw-rls, to the micro-USD."""
    service = rls.Rls(redis.url, args=["--admin-key-sha256", sha(ADMIN_KEY)])
    limit = 10_000_000_000
    config = {"limits": [{"name": "big", "by": ["consumer"], "usd_per_month": 10000}],
              "global": {"cluster": rls.CLUSTER, "domain": "llmgw-big", "timeout_ms": 1000,
                         "failure_mode": "closed"}}
    gw = start_gateway(mock, config, [rls.cluster(service.port)])
    try:
        client = sdk(gw, "big")
        spent, worst, costs = 0, None, []
        for _ in range(3):
            headers, completion = ask(client, "Hello [mock:words=150]", max_tokens=625_000_000)
            assert headers["x-llmgw-budget"] == "limits.big.usd_per_month"
            assert headers["x-llmgw-budget-limit-usd"] == "10000.000000"
            assert headers["x-llmgw-budget-reset-at"] == next_month()
            # Remaining after this worst case, exact past 32 bits: the same reservation each
            # time on top of exactly what the earlier requests cost.
            this_worst = limit - spent - remaining(headers)
            assert 5_000_000_000 <= this_worst < 5_000_100_000, this_worst
            assert worst in (None, this_worst)
            worst = this_worst
            costs.append(cost(completion.usage, "gpt-4.1"))
            spent += costs[-1]
            time.sleep(0.3)  # the settling call (a refund of ~$5,000) is fire-and-forget
        listed = [b for b in admin_budgets(service, ADMIN_KEY) if b["domain"] == "llmgw-big"]
        assert listed == [listed_budget("llmgw-big", "big", "month", {"consumer": "big"}, limit,
                                        spent, next_month())]
        assert listed[0]["limit_usd"] == "10000.000000"
        # A worst case past the budget ($10,400) is refused, naming the exact figures.
        assert probe(gw, "big", max_tokens=1_300_000_000) == (spent, limit)
        print(f"\n$10,000 a month, global: {len(costs)} requests, each reserving {worst} "
              f"micro-USD, settled to {costs} = {spent} micro-USD")
    finally:
        gw.stop()
        service.stop()


def test_budget_gauges_feed_the_dashboard_s_budget_panel(local):
    used, limit = probe(local, "cent")
    with urllib.request.urlopen(f"{local.admin}/stats/prometheus") as resp:
        lines = resp.read().decode().splitlines()
    series = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in lines if line.startswith("llmgw_budget_")}
    labels = f'budget="{BUDGET}",key="cent"'
    assert series[f"llmgw_budget_spent_usd_micros{{{labels}}}"] == used
    assert series[f"llmgw_budget_limit_usd_micros{{{labels}}}"] == limit == CENT
    dashboard = json.loads((harness.ROOT / "examples/grafana/llmgw-dashboard.json").read_text())
    panel = next(p for p in dashboard["panels"] if p["title"] == "Budget used %")
    wanted = {m for t in panel["targets"] for m in re.findall(r"llmgw_\w+", t["expr"])}
    exported = {name.split("{", 1)[0] for name in series}
    assert wanted == {"llmgw_budget_spent_usd_micros", "llmgw_budget_limit_usd_micros"}
    assert wanted <= exported
