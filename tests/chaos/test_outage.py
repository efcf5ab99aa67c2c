"""A destination outage in four acts: 500s, 429 with Retry-After, answers slower than the
request timeout, hung connections; then recovery.

While it lasts, records keep arriving: the queue grows on disk, the daemon's memory does
not grow with it, no record is dead-lettered or lost, the destination sees a trickle of
probes (one at a time, with growing delays, never sooner than Retry-After) rather than
a storm, and delivery catches up once it answers again.
"""

from __future__ import annotations

import math
import threading
import time

import orjson
import pytest

from tests.chaos.support import (
    Loader,
    disk_bytes,
    report,
    rss_bytes,
    state_counts,
    track,
    wait_until,
)
from tests.emulators.sink import SinkEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "outage-token-4567"
RETRY_INITIAL = 0.25
RETRY_MAX = 2.0
REQUEST_TIMEOUT = 1.0
PAD = "x" * 2000  # ~2 KB per record, so the backlog is measured in megabytes
PHASES = (  # (name, seconds, fault)
    ("HTTP 500", 3.0, {"status": 500}),
    ("HTTP 429 Retry-After: 2", 3.5, {"status": 429, "headers": {"Retry-After": "2"}}),
    ("slower than the timeout", 4.0, {"status": 200, "delay": REQUEST_TIMEOUT * 3}),
    ("hung connections", 4.0, {"hang": True}),
)


class Sampler(threading.Thread):
    """Samples the daemon's RSS and the state file size until stopped."""

    def __init__(self, pid: int, state, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.state, self.interval = pid, state, interval
        self.rss: list[int] = []
        self.disk: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.rss.append(rss_bytes(self.pid))
            self.disk.append(disk_bytes(self.state))
            self.halt.wait(self.interval)


def test_outage_grows_the_queue_on_disk_and_loses_nothing(tmp_path, emulator_server, spawn_daemon):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = spawn_daemon(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{server.url}/hook", batch_size = 100 }}

[connectors.relay.delivery]
batch_size = 200
retry_initial = {RETRY_INITIAL}
retry_max = {RETRY_MAX}
request_timeout = {REQUEST_TIMEOUT}
""",
    )
    state = tmp_path / "state.db"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def request(ids: list[str]) -> tuple[bytes, dict[str, str]]:
        return orjson.dumps([track(i, pad=PAD) for i in ids]), headers

    # Warm up: the process has served and delivered before we take its baseline.
    warm = Loader(
        daemon.listen,
        "/ingest/relay/",
        request,
        prefix="warm",
        batch=50,
        interval=0.01,
        max_requests=20,
    )
    warm.run()
    wait_until(lambda: set(warm.acked) <= set(sink.message_ids()), 30, "warm-up delivered")
    rss_before = rss_bytes(daemon.pid)
    disk_before = disk_bytes(state)

    sampler = Sampler(daemon.pid, state)
    sampler.start()
    loader = Loader(
        daemon.listen,
        "/ingest/relay/",
        request,
        prefix="out",
        batch=50,
        interval=0.02,
        max_requests=300,
        max_seconds=60,
    )
    windows = []
    outage_start = time.time()
    loader.start()
    for name, seconds, fault in PHASES:
        begin = time.time()
        sink.fail_until(begin + seconds + 5, **fault)
        time.sleep(seconds)
        windows.append((name, begin, time.time()))
    sink.clear_faults()
    outage_end = time.time()
    health_during = daemon.health()["connectors"]["relay"]
    loader.join(90)
    sampler.halt.set()
    sampler.join()
    acked = set(loader.acked)
    assert loader.statuses and set(loader.statuses) == {200}, loader.statuses

    wait_until(
        lambda: acked <= set(sink.message_ids()),
        timeout=90,
        message="every acknowledged record delivered after the outage",
    )
    caught_up = time.time() - outage_end
    # The sink counts a request when it arrives; the daemon deletes the rows once the
    # answer is back, a moment later: the queue must then be empty.
    wait_until(
        lambda: state_counts(state, "relay")["queued"] == 0,
        timeout=10,
        message="the delivered rows leave the queue",
    )
    counts = state_counts(state, "relay")
    during = [r for r in sink.requests if outage_start <= r.at < outage_end]
    outage = outage_end - outage_start
    # One probe at a time, each at least half the grown delay after the previous one.
    ramp = math.ceil(math.log2(RETRY_MAX / RETRY_INITIAL)) + 1
    bound = 2 + ramp + math.ceil(outage / (RETRY_MAX / 2))
    rss_growth = max(sampler.rss) - rss_before
    disk_growth = max(sampler.disk) - disk_before
    report(
        "outage (500, 429, timeout, hang)",
        outage_seconds=round(outage, 1),
        acknowledged=len(acked),
        delivered_unique=len(acked & set(sink.message_ids())),
        dead_letters=counts["dead"],
        requests_during_outage=len(during),
        request_bound=bound,
        queue_peak_mib=round(disk_growth / 2**20, 1),
        rss_before_mib=round(rss_before / 2**20, 1),
        rss_growth_mib=round(rss_growth / 2**20, 1),
        catch_up_seconds=round(caught_up, 1),
    )
    assert counts["dead"] == 0, "an outage must not dead-letter anything"
    assert counts["queued"] == 0
    assert health_during["healthy"] is False and health_during["queued"] > 0
    assert len(during) <= bound, f"{len(during)} requests in a {outage:.0f} s outage"
    # Retry-After is honoured: after a 429 the next attempt waits at least 2 s.
    name, begin, end = windows[1]
    answered_429 = [r.at for r in during if begin + 0.05 < r.at < end - 0.05]
    for at in answered_429:
        following = [r.at for r in sink.requests if r.at > at]
        if following:
            assert following[0] - at >= 1.9, f"retried {following[0] - at:.2f} s after a 429"
    # The backlog lived on disk, not in memory.
    assert disk_growth > 20 * 2**20, f"queue grew by only {disk_growth} bytes"
    assert rss_growth < disk_growth / 2, (
        f"RSS grew {rss_growth / 2**20:.1f} MiB for a {disk_growth / 2**20:.1f} MiB backlog"
    )
    logged = daemon.current_logs()
    assert "delivery.retry" in logged
    # A timeout or a dropped connection is transient: never a reason to split the batch
    # as if its records were at fault (which ends in dead letters if it lasts).
    assert "delivery.batch.split" not in logged
    assert "destination.error" not in logged
    assert daemon.alive()
