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


def exchange(url: str, request: bytes | list[bytes], pause: float = 0.0) -> Response:
    """Send `request` as raw bytes (a list: pieces with `pause` seconds between them, a slow
    client) on a new HTTP/1.1 connection and read the answer: for what http.client will not
    send (bytes that are not UTF-8 in headers, chunked bodies with trailers, broken framing)."""
    import socket
    import time

    parsed = urlparse(url)
    pieces = request if isinstance(request, list) else [request]
    with socket.create_connection((parsed.hostname, parsed.port), timeout=20) as sock:
        try:
            for i, piece in enumerate(pieces):
                if i and pause:
                    time.sleep(pause)
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # Envoy answered (413, 431) and closed before reading it all: read the answer
        resp = http.client.HTTPResponse(sock, method="POST")
        resp.begin()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())

