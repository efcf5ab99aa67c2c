"""The sink of the Segment → Pendo benchmarks: a Pendo ``/data/track`` stand-in that
checks the integration key, counts and discards (``GET /_count`` reads the count)."""

from __future__ import annotations

import asyncio
from typing import Any

TRACK_SECRET = "bench-track-secret"


class SinkProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive server: checks the Pendo key header, counts, answers
    200. Written on a bare protocol so that the sink is never the bottleneck."""

    count = 0
    refused = 0

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.respond(lines[0], headers)

    def respond(self, request_line: str, headers: dict[str, str]) -> None:
        assert self.transport is not None
        if request_line.startswith("GET /_count"):
            body = f"{SinkProtocol.count} {SinkProtocol.refused}".encode()
            status = b"200 OK"
        elif headers.get("x-pendo-integration-key") == TRACK_SECRET:
            SinkProtocol.count += 1
            body, status = b"OK", b"200 OK"
        else:
            SinkProtocol.refused += 1
            body, status = b"bad key", b"401 Unauthorized"
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )


async def serve_sink(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SinkProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()
