"""A small HTTP/2 client (cleartext, prior knowledge) that can end a request with trailers, which
neither the OpenAI SDK nor urllib can send. Frames come from the `h2` library."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

import h2.config
import h2.connection
import h2.events


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def post(url: str, body: bytes, headers: dict[str, str], trailers: dict[str, str] | None = None,
         chunk: int = 0, timeout: float = 20, method: str = "POST") -> Response:
    """`body` on one HTTP/2 stream; with `trailers`, the body does not end the stream: a
    trailing HEADERS frame does. `chunk` > 0 sends the body in DATA frames of that size, else in
    frames as large as the peer takes (within its initial 64 KiB window: callers send less)."""
    parsed = urlparse(url)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout) as sock:
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        request_headers = [(":method", method), (":scheme", "http"),
                           (":authority", parsed.netloc), (":path", parsed.path or "/"),
                           *headers.items()]
        conn.send_headers(sid, request_headers, end_stream=not body and not trailers)
        step = chunk or conn.max_outbound_frame_size
        pieces = [body[i:i + step] for i in range(0, len(body), step)]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1 and not trailers
            conn.send_data(sid, piece, end_stream=last)
        if trailers:
            conn.send_headers(sid, list(trailers.items()), end_stream=True)
        sock.sendall(conn.data_to_send())
        status, got_headers, out = 0, {}, bytearray()
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed before the response ended")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    got_headers = {k.decode(): v.decode() for k, v in event.headers}
                    status = int(got_headers[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    out += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, sid)
                elif isinstance(event, h2.events.StreamReset):
                    raise ConnectionError(f"stream reset: {event.error_code}")
                elif isinstance(event, h2.events.StreamEnded):
                    sock.sendall(conn.data_to_send())
                    return Response(status, got_headers, bytes(out))
            sock.sendall(conn.data_to_send())
