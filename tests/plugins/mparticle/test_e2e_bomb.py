"""An unauthenticated decompression bomb costs the real daemon next to nothing on every
mParticle path: credentials are checked from headers before a body is read, and where
the secret travels in the body (Firehose account settings) at most 1 MiB is inflated
and parsed before it is checked."""

from __future__ import annotations

import base64
import gzip
import threading
import time
from pathlib import Path

import pytest

from tests.emulators.sink import SinkEmulator

from .conftest import FIREHOSE_SECRET, events_batch

pytestmark = pytest.mark.e2e

INFLATED = 32 * 1024 * 1024
BOMB = gzip.compress(b"[" + b"{}," * (INFLATED // 3 - 1) + b"{}]", compresslevel=9)
BASIC = {"Authorization": "Basic " + base64.b64encode(b"e2e-key:e2e-secret").decode()}
ENV = {
    "MP_API_KEY": "e2e-key",
    "MP_API_SECRET": "e2e-secret",
    "MP_FIREHOSE_SECRET": FIREHOSE_SECRET,
    "MP_WEBHOOK_AUTH": "Bearer e2e-webhook",
    "MP_KINESIS_KEY": "e2e-kinesis-key",
}
# (path, headers, expected status): no or wrong credentials on each path
ATTEMPTS = [
    ("firehose", {}, 413),  # the secret could only be in the body: capped at 1 MiB
    ("firehose", {"Authorization": "Bearer wrong"}, 403),
    ("v2/events", {}, 401),
    ("v2/bulkevents", {"Authorization": "Basic bm9wZTpub3Bl"}, 403),
    ("webhook", {}, 401),
    ("kinesis", {}, 401),
    ("kinesis", {"X-Amz-Firehose-Access-Key": "wrong"}, 403),
]
MAX_SECONDS = 0.5
"""Per refused bomb. Parsing the whole 32 MiB before the secret check took 1.1-1.3 s."""
MAX_PEAK_GROWTH = 64 * 1024 * 1024
"""Peak resident memory growth over all bombs. Parsing one took +0.9-1 GB."""


def config(sink_url: str) -> str:
    return f"""
[connectors.mp]
destination = {{ type = "webhook", url = "{sink_url}/hook" }}

[connectors.mp.source]
type = "mparticle.http"
api_key = "${{MP_API_KEY}}"
api_secret = "${{MP_API_SECRET}}"
firehose_secret = "${{MP_FIREHOSE_SECRET}}"
webhook_authorization = "${{MP_WEBHOOK_AUTH}}"
kinesis_access_key = "${{MP_KINESIS_KEY}}"
"""


def peak_rss(pid: int) -> int:
    """The process's peak resident set size (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


@pytest.fixture
def daemon(connectord_daemon, emulator_server):
    sink = SinkEmulator()
    return connectord_daemon(config(emulator_server(sink).url), env=ENV)


def post_bomb(daemon, path: str, headers: dict[str, str]) -> tuple[int, float]:
    started = time.perf_counter()
    status, _ = daemon.post(f"/ingest/mp/{path}", BOMB, {"Content-Encoding": "gzip", **headers})
    return status, time.perf_counter() - started


def test_bombs_without_credentials_are_refused_cheaply(daemon):
    assert len(BOMB) < 64 * 1024
    daemon.post("/ingest/mp/v2/events", events_batch(), BASIC)  # warm up the request path
    before = peak_rss(daemon.pid)
    for path, headers, expected in ATTEMPTS:
        status, seconds = post_bomb(daemon, path, headers)
        assert status == expected, path
        assert seconds < MAX_SECONDS, (path, headers, seconds)
    growth = peak_rss(daemon.pid) - before
    assert growth < MAX_PEAK_GROWTH, f"peak memory grew by {growth / 2**20:.0f} MiB"


def test_other_clients_ingest_promptly_during_a_bomb_barrage(daemon):
    stop = threading.Event()

    def barrage() -> None:
        while not stop.is_set():
            for path, headers, _ in ATTEMPTS:
                post_bomb(daemon, path, headers)

    attackers = [threading.Thread(target=barrage, daemon=True) for _ in range(2)]
    for thread in attackers:
        thread.start()
    try:
        timings = []
        for _ in range(10):
            started = time.perf_counter()
            status, _ = daemon.post("/ingest/mp/v2/events", events_batch(), BASIC)
            timings.append(time.perf_counter() - started)
            assert status == 202
    finally:
        stop.set()
        for thread in attackers:
            thread.join(timeout=30)
    assert sorted(timings)[len(timings) // 2] < MAX_SECONDS, timings
