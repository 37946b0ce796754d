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


def h2_post(url: str, body: bytes, headers: dict[str, str], trailers: dict[str, str] | None = None,
            method: str = "POST") -> Response:
    """One request over HTTP/2 without TLS (prior knowledge), optionally with trailers."""
    import socket

    import h2.config
    import h2.connection
    import h2.events

    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=20) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", method), (":scheme", "http"),
                                   (":authority", f"{parsed.hostname}:{parsed.port}"),
                                   (":path", parsed.path), *headers.items()],
                          end_stream=not body and not trailers)
        # Within the peer's initial window (64 KiB; the cases here send less), in frames it takes.
        step = conn.max_outbound_frame_size
        for at in range(0, len(body), step):
            last = at + step >= len(body)
            conn.send_data(stream, body[at:at + step], end_stream=last and not trailers)
        if trailers:
            conn.send_headers(stream, list(trailers.items()), end_stream=True)
        sock.sendall(conn.data_to_send())
        status, got, data, done = 0, {}, b"", False
        while not done:
            chunk = sock.recv(65536)
            if not chunk:
                break
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived):
                    got = {k.decode().lower(): v.decode() for k, v in event.headers}
                    status = int(got.pop(":status"))
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    done = True
            sock.sendall(conn.data_to_send())
        return Response(status, got, data)
