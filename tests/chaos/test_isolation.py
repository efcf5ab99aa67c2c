"""One connector's sick destination does not slow the others down.

Two push connectors in one daemon, each with its own destination. The healthy one's
delivery latency (from the 2xx answer to arrival at its destination) is measured while
both destinations answer, then again while the other one's destination hangs every
connection and its queue piles up. The latency must stay in the same range.
"""

from __future__ import annotations

import statistics
import time

import orjson
import pytest

from tests.chaos.support import Loader, report, track, wait_until
from tests.emulators.sink import SinkEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "isolation-token-42"
SECONDS = 4.0


def arrivals(sink: SinkEmulator) -> dict[str, float]:
    """When each record first reached the sink (requests are recorded on arrival)."""
    seen: dict[str, float] = {}
    for request in sink.requests:
        for record in request.json()["records"]:
            seen.setdefault(record["messageId"], request.at)
    return seen


def latencies(loader: Loader, sink: SinkEmulator) -> list[float]:
    wait_until(lambda: set(loader.acked) <= set(sink.message_ids()), 30, "healthy delivered")
    arrived = arrivals(sink)
    return sorted(arrived[i] - loader.acked_at[i] for i in loader.acked)


def p95(values: list[float]) -> float:
    return values[int(len(values) * 0.95) - 1]


def run_load(daemon, prefix: str) -> tuple[Loader, Loader]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    loaders = tuple(
        Loader(
            daemon.listen,
            f"/ingest/{name}/",
            lambda ids: (orjson.dumps([track(i) for i in ids]), headers),
            prefix=f"{prefix}-{name}",
            batch=10,
            interval=0.02,
            max_seconds=SECONDS,
        )
        for name in ("healthy", "sick")
    )
    for loader in loaders:
        loader.start()
    for loader in loaders:
        loader.join(SECONDS + 15)
    return loaders


def test_a_hung_destination_does_not_slow_other_connectors(tmp_path, emulator_server, spawn_daemon):
    healthy_sink, sick_sink = SinkEmulator(), SinkEmulator()
    healthy_url = emulator_server(healthy_sink).url
    sick_url = emulator_server(sick_sink).url
    daemon = spawn_daemon(
        f"""
[connectors.healthy]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{healthy_url}/hook" }}

[connectors.sick]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{sick_url}/hook" }}
delivery = {{ retry_initial = 0.2, retry_max = 1.0 }}
""",
    )
    healthy, _ = run_load(daemon, "base")
    baseline = latencies(healthy, healthy_sink)

    sick_sink.fail_until(time.time() + 3600, hang=True)
    healthy, sick = run_load(daemon, "sick")
    during = latencies(healthy, healthy_sink)
    sick_queue = daemon.health()["connectors"]["sick"]["queued"]
    report(
        "slow consumer isolation",
        baseline_p50_ms=round(statistics.median(baseline) * 1000, 1),
        baseline_p95_ms=round(p95(baseline) * 1000, 1),
        sick_neighbour_p50_ms=round(statistics.median(during) * 1000, 1),
        sick_neighbour_p95_ms=round(p95(during) * 1000, 1),
        sick_connector_queued=sick_queue,
    )
    assert len(sick.acked) > 0 and sick_queue >= len(sick.acked) // 2
    assert set(healthy.statuses) == {200}
    assert p95(during) <= 3 * p95(baseline) + 0.25, (
        f"healthy connector p95 went from {p95(baseline):.3f} s to {p95(during):.3f} s"
    )
    assert statistics.median(during) <= 3 * statistics.median(baseline) + 0.1
