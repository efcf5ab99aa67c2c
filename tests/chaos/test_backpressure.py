"""A bounded queue under a long outage: 503 with Retry-After, never accept-and-drop.

Several clients post at once while the destination is down. Once ``max_queue`` records
wait, the push endpoint answers 503 with ``Retry-After`` and stores nothing of the
refused requests; the queue never exceeds its bound, even with requests racing each
other. Every request that was answered 2xx is delivered after recovery, and the
endpoint accepts again.
"""

from __future__ import annotations

import time

import orjson
import pytest

from tests.chaos.support import (
    Loader,
    report,
    state_counts,
    track,
    wait_until,
)
from tests.emulators.sink import SinkEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "backpressure-token-89"
MAX_QUEUE = 200
CLIENTS = 4


def test_full_queue_answers_503_and_recovers(tmp_path, emulator_server, spawn_daemon):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = spawn_daemon(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{server.url}/hook" }}

[connectors.relay.delivery]
max_queue = {MAX_QUEUE}
retry_initial = 0.2
retry_max = 1.0
""",
    )
    state = tmp_path / "state.db"
    sink.fail_until(time.time() + 3600, status=503)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    loaders = [
        Loader(
            daemon.listen,
            "/ingest/relay/",
            lambda ids: (orjson.dumps([track(i) for i in ids]), headers),
            prefix=f"c{n}",
            batch=15,
            interval=0.0,
            max_requests=60,
        )
        for n in range(CLIENTS)
    ]
    for loader in loaders:
        loader.start()
    peak = 0
    while any(loader.is_alive() for loader in loaders):
        peak = max(peak, state_counts(state, "relay")["queued"])
        time.sleep(0.02)
    peak = max(peak, state_counts(state, "relay")["queued"])
    acked = {i for loader in loaders for i in loader.acked}
    statuses = sum((loader.statuses for loader in loaders), start=type(loaders[0].statuses)())
    retry_after = [v for loader in loaders for v in loader.retry_after]
    _, refusal = daemon.post(
        "/ingest/relay/", [track(f"probe-{n}") for n in range(15)], headers=headers
    )
    counts = state_counts(state, "relay")

    assert statuses[503] > 0, statuses
    assert set(statuses) <= {200, 503}, statuses
    assert all(value is not None and int(value) >= 1 for value in retry_after), retry_after
    assert refusal["error"] == "queue_full" and "retry later" in refusal["message"]
    assert peak <= MAX_QUEUE, f"the queue held {peak} records with max_queue = {MAX_QUEUE}"
    # Nothing refused was stored; nothing accepted is missing.
    assert counts["queued"] == len(acked)
    assert counts["received"] == len(acked)

    sink.clear_faults()
    wait_until(lambda: acked <= set(sink.message_ids()), 30, "accepted records delivered")
    after = wait_until(
        lambda: daemon.post("/ingest/relay/", [track("after")], headers=headers)[0] == 200,
        30,
        "accepting again after recovery",
    )
    assert after
    wait_until(lambda: "after" in sink.message_ids(), 30, "the new record delivered")
    report(
        "backpressure (max_queue)",
        max_queue=MAX_QUEUE,
        clients=CLIENTS,
        accepted=len(acked),
        answered_503=statuses[503],
        queue_peak=peak,
        delivered_after_recovery=len(acked & set(sink.message_ids())),
    )
