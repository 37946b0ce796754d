"""A tiny raw HTTP client for what the OpenAI SDK will not send (malformed JSON, spoofed headers)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def post(url: str, body: bytes | str | dict, headers: dict[str, str] | None = None) -> Response:
    parsed = urlparse(url)
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=20)
    try:
        conn.request("POST", parsed.path, body=body,
                     headers={"content-type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()
