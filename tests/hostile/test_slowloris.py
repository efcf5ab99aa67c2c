"""Slow clients: connections that trickle their headers or their body are closed after
``header_timeout`` / ``body_timeout``, connections beyond ``max_connections`` are
answered 503 at once, and other clients stay fast meanwhile.

Real sockets on 127.0.0.1 against the real daemon; every loop is bounded in time.
"""

from __future__ import annotations

import http.client
import socket
import time

import orjson
import pytest

from tests.chaos.support import report
from tests.emulators.sink import SinkEmulator

pytestmark = [pytest.mark.e2e]

TOKEN = "slowloris-token-9876"
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
SLOW = 100  # connections trickling headers, and as many trickling bodies


def connect(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.setblocking(False)
    return sock


def trickle(sock: socket.socket, data: bytes) -> bool:
    """Send bytes; False once the daemon has closed the connection."""
    try:
        sock.send(data)
        got = sock.recv(4096)
        return got != b""  # b"" is the daemon closing; data is an answer (408): on we go
    except BlockingIOError:
        return True
    except OSError:  # reset or broken pipe: closed by the daemon
        return False


def timed_post(listen: str) -> float:
    host, _, port = listen.rpartition(":")
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    body = orjson.dumps([{"type": "track", "userId": "u", "event": "fast", "messageId": "f"}])
    conn.request(
        "POST",
        "/ingest/relay/",
        body,
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    status = conn.getresponse().status
    conn.close()
    assert status == 200
    return time.monotonic() - started


def test_trickling_clients_are_cut_off_and_others_stay_fast(emulator_server, spawn_daemon):
    sink = emulator_server(SinkEmulator())
    daemon = spawn_daemon(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{sink.url}/hook" }}
""",
        daemon=f"header_timeout = {HEADER_TIMEOUT}\nbody_timeout = {BODY_TIMEOUT}\n",
    )
    heads = [connect(daemon.listen) for _ in range(SLOW)]
    bodies = [connect(daemon.listen) for _ in range(SLOW)]
    for sock in heads:
        sock.send(b"POST /ingest/relay/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    for sock in bodies:
        sock.send(
            b"POST /ingest/relay/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n["
        )
    started = time.monotonic()
    open_heads, open_bodies = set(range(SLOW)), set(range(SLOW))
    closed_at: dict[str, float] = {}
    latencies = []
    while time.monotonic() - started < 12 and (open_heads or open_bodies):
        for i in list(open_heads):
            if not trickle(heads[i], b"X"):
                open_heads.discard(i)
        for i in list(open_bodies):
            if not trickle(bodies[i], b" "):
                open_bodies.discard(i)
        if not open_heads:
            closed_at.setdefault("headers", time.monotonic() - started)
        if not open_bodies:
            closed_at.setdefault("bodies", time.monotonic() - started)
        latencies.append(timed_post(daemon.listen))
        time.sleep(0.25)
    for sock in heads + bodies:
        sock.close()
    report(
        "slowloris",
        slow_connections=2 * SLOW,
        headers_closed_after_s=closed_at.get("headers", -1.0),
        bodies_closed_after_s=closed_at.get("bodies", -1.0),
        other_requests=len(latencies),
        other_max_latency_s=max(latencies),
    )
    assert not open_heads, f"{len(open_heads)} header tricklers still open after 12 s"
    assert not open_bodies, f"{len(open_bodies)} body tricklers still open after 12 s"
    assert closed_at["headers"] < HEADER_TIMEOUT + 3
    assert closed_at["bodies"] < BODY_TIMEOUT + 3
    assert max(latencies) < 1.0, "other clients were slowed down"
    assert '"ingest.rejected"' in daemon.logs() and "body_timeout" in daemon.logs()


def test_connections_beyond_the_cap_are_refused_at_once(emulator_server, spawn_daemon):
    sink = emulator_server(SinkEmulator())
    daemon = spawn_daemon(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{sink.url}/hook" }}
""",
        daemon=f"header_timeout = {HEADER_TIMEOUT}\nmax_connections = 20\n",
    )
    idle = [connect(daemon.listen) for _ in range(20)]
    time.sleep(0.3)
    host, _, port = daemon.listen.rpartition(":")
    started = time.monotonic()
    extra = socket.create_connection((host, int(port)), timeout=5)
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = extra.recv(4096)
    refused_in = time.monotonic() - started
    extra.close()
    assert answer.startswith(b"HTTP/1.1 503"), answer
    assert refused_in < 1.0
    # The idle ones are cut off at the header deadline; then service is back.
    time.sleep(HEADER_TIMEOUT + 1.5)
    for sock in idle:
        sock.close()
    assert timed_post(daemon.listen) < 1.0
    report("connection cap", cap=20, refused_in_s=refused_in)
