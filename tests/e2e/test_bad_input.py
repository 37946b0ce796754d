"""Bad input through the real Envoy: each case with its expected status and, for errors, an
OpenAI-format body (`{"error":{"message","type","code"}}`) of the expected type and code; over
HTTP/1.1 (raw bytes, so nothing is tidied up on the way) and HTTP/2. Afterwards: no wasm VM
failed or panicked in Envoy's log, and every worker still answers."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field

import pytest

import h2client
import rawhttp
from conftest import KEYS

KEY = KEYS["alice"]
CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hi"}]


def doc(model="gpt-4o-mini", messages=HELLO, **fields) -> bytes:
    return json.dumps({"model": model, "messages": messages, **fields}).encode()


def nested(depth: int) -> bytes:
    return b'{"model":"gpt-4o-mini","messages":' + b"[" * depth + b"]" * depth + b"}"


@dataclass
class Case:
    id: str
    body: bytes = field(default_factory=doc)
    status: int = 200
    kind: str | None = None  # the error's `type` (None: a 2xx answer)
    code: str | None = None  # the error's `code`, where it has a fixed one
    headers: dict = field(default_factory=dict)  # bytes or str values, replace the defaults
    path: str = CHAT
    method: str = "POST"
    framing: str = "length"  # length | chunked | trailers | te+cl | short
    slow: float = 0.0  # seconds between 1-byte-ish pieces of the body
    h2: bool = False


INVALID = "invalid_request_error"
OK = {}
CASES = [
    # Malformed JSON: router reads the body first and refuses it (400).
    Case("empty body", b"", 400, INVALID),
    Case("open brace", b"{", 400, INVALID),
    Case("null", b"null", 400, INVALID),
    Case("array", b"[]", 400, INVALID),
    Case("string", b'"gpt-4o-mini"', 400, INVALID),
    Case("number", b"42", 400, INVALID),
    Case("broken array", b'{"model":"gpt-4o-mini","messages":[}', 400, INVALID),
    Case("trailing garbage", doc() + b" xyz", 400, INVALID),
    Case("two documents", doc() + doc(), 400, INVALID),
    Case("single quotes", b"{'model':'gpt-4o-mini'}", 400, INVALID),
    Case("NaN", b'{"model":"gpt-4o-mini","temperature":NaN,"messages":[]}', 400, INVALID),
    Case("comment", b'{"model":"gpt-4o-mini", /* hi */ "messages":[]}', 400, INVALID),
    Case("BOM", b"\xef\xbb\xbf" + doc(), 400, INVALID),
    Case("truncated", doc()[:-5], 400, INVALID),
    Case("form encoded", b"model=gpt-4o-mini&messages=hi", 400, INVALID),
    # Wrong types and values, where router checks them and where the provider does.
    Case("model missing", b'{"messages":[]}', 400, INVALID, "missing_required_parameter"),
    Case("model number", doc(model=123), 400, INVALID, "invalid_type"),
    Case("model null", doc(model=None), 400, INVALID, "missing_required_parameter"),
    Case("model object", doc(model={"name": "gpt-4o-mini"}), 400, INVALID, "invalid_type"),
    Case("model empty", doc(model=""), 400, INVALID, "missing_required_parameter"),
    Case("unknown model", doc(model="gpt-17"), 404, INVALID, "model_not_found"),
    Case("model with NUL", doc(model="gpt-4o-mini\u0000"), 404, INVALID, "model_not_found"),
    Case("huge model name", doc(model="m" * 100_000), 404, INVALID, "model_not_found"),
    Case("stream string", doc(stream="yes"), 400, INVALID, "invalid_type"),
    Case("stream number", doc(stream=1), 400, INVALID, "invalid_type"),
    Case("messages string", doc(messages="hi"), 400, INVALID),
    Case("messages empty", doc(messages=[]), 400, INVALID),
    Case("role unknown", doc(messages=[{"role": "wizard", "content": "hi"}]), 400, INVALID),
    Case("content number", doc(messages=[{"role": "user", "content": 42}]), 400, INVALID),
    Case("max_tokens string", doc(max_tokens="ten"), 400, INVALID),
    Case("max_tokens negative", doc(max_tokens=-1), 400, INVALID),
    Case("temperature string", doc(temperature="hot"), 400, INVALID),
    Case("unknown field", doc(frobnicate=True), 400, INVALID),
    Case("anthropic: messages string", doc("claude-haiku-4-5", "hi"), 400, INVALID),
    Case("anthropic: content number",
         doc("claude-haiku-4-5", [{"role": "user", "content": 42}]), 400, INVALID),
    Case("anthropic: role unknown",
         doc("claude-haiku-4-5", [{"role": "wizard", "content": "hi"}]), 400, INVALID),
    Case("anthropic: max_tokens string", doc("claude-haiku-4-5", max_tokens="ten"), 400, INVALID),
    Case("anthropic: tools not a list", doc("claude-haiku-4-5", tools="all"), 400, INVALID),
    Case("anthropic: unknown field", doc("claude-haiku-4-5", frobnicate=True), 400, INVALID),
    Case("gemini: messages empty", doc("gemini-2.5-flash", []), 400, INVALID),
    Case("gemini: content number",
         doc("gemini-2.5-flash", [{"role": "user", "content": 42}]), 400, INVALID),
    Case("bedrock: role unknown",
         doc("claude-3-haiku-bedrock", [{"role": "wizard", "content": "hi"}]), 400, INVALID),
    # Huge and deeply nested bodies.
    Case("nested 100k arrays", nested(100_000), 400, INVALID),
    Case("nested 100k objects", b'{"model":"gpt-4o-mini","x":' + b'{"a":' * 100_000 + b"1"
         + b"}" * 100_000 + b"}", 400, INVALID),
    Case("nested 100k, model first", b'{"model":"claude-haiku-4-5","messages":'
         + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, INVALID),
    Case("900 KiB prompt", doc(messages=[{"role": "user", "content": "a " * 460_000}])),
    # Over any buffer limit on the way (Envoy's 1 MiB default, or 16 MiB where raised).
    Case("24 MiB body", doc(messages=[{"role": "user", "content": "a" * (24 << 20)}]), 413,
         INVALID, "request_too_large"),
    Case("20k messages", doc(messages=HELLO * 20_000)),
    # Invalid UTF-8 in the body and in headers.
    Case("latin-1 in content", doc().replace(b"hi", b"h\xe9"), 400, INVALID),
    Case("latin-1 in model", doc().replace(b"gpt-4o-mini", b"gpt-4o-m\xefni"), 400, INVALID),
    Case("lone surrogate escape", doc().replace(b"hi", b"\\ud800"), 400, INVALID),
    Case("escaped NUL in content", doc().replace(b"hi", b"\\u0000")),
    Case("latin-1 key", headers={"authorization": b"Bearer sk-\xe9\xe8"}, status=401,
         kind=INVALID, code="invalid_api_key"),
    Case("latin-1 in another header", headers={"x-note": b"caf\xe9"}),
    Case("latin-1 user agent", headers={"user-agent": b"\xff\xfe client"}),
    # Keys.
    Case("no key", headers={"authorization": None}, status=401, kind=INVALID,
         code="missing_api_key"),
    Case("empty bearer", headers={"authorization": "Bearer "}, status=401, kind=INVALID),
    Case("basic auth", headers={"authorization": "Basic YWxpY2U6c2VjcmV0"}, status=401,
         kind=INVALID),
    Case("wrong key", headers={"authorization": "Bearer sk-test-nobody-0123456789"}, status=401,
         kind=INVALID, code="invalid_api_key"),
    Case("expired key", headers={"authorization": f"Bearer {KEYS['old']}"}, status=401,
         kind=INVALID, code="expired_api_key"),
    Case("key twice", headers={"authorization": f"Bearer {KEY}, Bearer {KEY}"}, status=401,
         kind=INVALID, code="invalid_api_key"),
    Case("50 KiB key", headers={"authorization": "Bearer " + "k" * 50_000}, status=401,
         kind=INVALID, code="invalid_api_key"),
    Case("model not allowed", headers={"authorization": f"Bearer {KEYS['bob']}"},
         body=doc("claude-haiku-4-5"), status=403, kind="permission_error",
         code="model_not_allowed"),
    # Headers, methods, paths, framing.
    Case("100 KiB header", headers={"x-big": "b" * 100_000}, status=431),
    Case("200 headers", headers={f"x-h{i}": "v" for i in range(200)}, status=431),
    Case("GET", method="GET", body=b"", status=404, kind=INVALID),
    Case("unknown path", path="/v1/chat/completion", status=404, kind=INVALID),
    Case("text/plain", headers={"content-type": "text/plain"}),
    Case("gzip body", gzip.compress(doc()), 400, INVALID, headers={"content-encoding": "gzip"}),
    Case("chunked", framing="chunked"),
    Case("chunked + trailers", framing="trailers"),
    Case("content-length and chunked", framing="te+cl", status=400),
    Case("slow client", slow=0.05),
    # HTTP/2.
    Case("h2", h2=True),
    Case("h2 malformed", b"{", 400, INVALID, h2=True),
    Case("h2 unknown model", doc(model="gpt-17"), 404, INVALID, "model_not_found", h2=True),
    Case("h2 no key", headers={"authorization": None}, status=401, kind=INVALID,
         code="missing_api_key", h2=True),
    # Trailers end the body: routed and answered as without them (tests/e2e/test_trailers.py).
    Case("h2 trailers", framing="trailers", h2=True),
    Case("h2 nested", nested(100_000)[:60_000], 400, INVALID, h2=True),
]


def request_bytes(case: Case, host: str) -> list[bytes]:
    headers = {"host": host, "content-type": "application/json", "authorization": f"Bearer {KEY}"}
    headers.update(case.headers)
    body = case.body
    if case.framing == "length":
        headers["content-length"] = str(len(body))
    elif case.framing in ("chunked", "trailers"):
        headers["transfer-encoding"] = "chunked"
        half = len(body) // 2
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:]) if p)
        body += b"0\r\nx-checksum: 1\r\n\r\n" if case.framing == "trailers" else b"0\r\n\r\n"
    elif case.framing == "te+cl":
        headers["transfer-encoding"] = "chunked"
        headers["content-length"] = str(len(body))
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    head = f"{case.method} {case.path} HTTP/1.1\r\n".encode()
    for name, value in headers.items():
        if value is not None:
            head += name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()) + b"\r\n"
    head += b"connection: close\r\n\r\n"
    if case.slow:
        return [head] + [body[i:i + 8] for i in range(0, len(body), 8)]
    return [head + body]


def send(gateway, case: Case) -> rawhttp.Response | h2client.Response:
    if case.h2:
        headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
        headers.update(case.headers)
        headers = {k: v for k, v in headers.items() if v is not None}
        trailers = {"x-checksum": "1"} if case.framing == "trailers" else None
        return h2client.post(gateway.url + case.path, case.body, headers, trailers,
                             method=case.method)
    host = gateway.url.removeprefix("http://")
    return rawhttp.exchange(gateway.url, request_bytes(case, host), pause=case.slow)


def case_id(case) -> str:
    return (case.values[0] if hasattr(case, "values") else case).id


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_bad_input(gateway, case):
    resp = send(gateway, case)
    assert resp.status == case.status, (resp.status, resp.body[:500])
    if case.status == 200:
        assert resp.json()["choices"][0]["message"]["role"] == "assistant"
        return
    if case.kind is None:  # refused by Envoy's codec before any filter: status only
        return
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    error = resp.json()["error"]
    assert isinstance(error["message"], str) and error["message"], error
    assert error["type"] == case.kind, error
    if case.code:
        assert error["code"] == case.code, error


def test_after_the_matrix_no_vm_failed_and_every_worker_answers(gateway):
    for case in CASES:  # again, so this test holds when run alone
        case = case.values[0] if hasattr(case, "values") else case
        try:
            send(gateway, case)
        except OSError:  # Envoy may close on a refused request before reading all of it
            pass
    log = gateway.log()
    for sign in ("panicked", "Uncaught RuntimeError", "wasm trap", "VM failed", "Wasm VM"):
        assert sign not in log, [line for line in log.splitlines() if sign in line][:5]
    # Each new connection may land on either worker: 40 in a row all answer.
    statuses = [send(gateway, Case("after")).status for _ in range(40)]
    assert statuses == [200] * 40, statuses
