"""Records a destination fails forever with a *retryable* answer (a vendor error the
plugin misclassifies) sit among good ones: every acknowledged record still ends
delivered or dead-lettered within a bounded time, and the connector is never blocked.

The real daemon, the real `webhook` destination over HTTP on 127.0.0.1, and a sink that
answers HTTP 500 to every batch holding a record with ``properties.respond = 500``: a
5xx is retryable, so only the isolation rule (docs/guarantees.md) can get rid of it.
The run starts with two such records posted alone, so that they take both delivery
slots before any good record arrives: the case that used to block the connector.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import orjson
import pytest

from tests.chaos.support import Loader, report, state_counts, track, wait_until
from tests.emulators.sink import SinkEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "poison-token-2468"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
ISOLATE_AFTER = 3
SETTLE_SECONDS = 30.0  # the bound: last acknowledgement to every record settled


def dead_ids(state) -> dict[str, str]:
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=30) as db:
        rows = db.execute("select record, reason from dead_letters").fetchall()
    return {orjson.loads(record)["messageId"]: reason for record, reason in rows}


def test_poisoned_records_are_isolated_and_good_ones_flow(tmp_path, emulator_server, spawn_daemon):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = spawn_daemon(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{server.url}/hook" }}

[connectors.relay.delivery]
batch_size = 50
concurrency = 2
retry_initial = 0.05
retry_max = 0.5
isolate_after = {ISOLATE_AFTER}
"""
    )
    state = tmp_path / "state.db"
    poisoned: set[str] = set()

    def post(records):
        status, _ = daemon.post("/ingest/relay/", orjson.dumps(records), headers=HEADERS)
        assert status == 200

    # Two records at fault, each alone, take both delivery slots first.
    for n in range(2):
        poisoned.add(f"lone-poison-{n}")
        post([track(f"lone-poison-{n}", respond=500)])
    time.sleep(0.5)

    def request(ids):
        records = []
        for i, message_id in enumerate(ids):
            bad = int(message_id.split("-")[1]) % 20 == 0 and i == 3
            if bad:
                poisoned.add(message_id)
            records.append(track(message_id, respond=500) if bad else track(message_id))
        return orjson.dumps(records), HEADERS

    samples: list[tuple[float, int]] = []
    halt = threading.Event()

    def sample():
        while not halt.is_set():
            samples.append((time.monotonic(), len(sink.received)))
            halt.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    loader = Loader(
        daemon.listen,
        "/ingest/relay/",
        request,
        prefix="g",
        batch=10,
        interval=0.02,
        max_requests=200,
        max_seconds=60,
    )
    loader.run()
    last_ack = time.monotonic()
    acked = set(loader.acked) | {f"lone-poison-{n}" for n in range(2)}

    def settled():
        return acked <= set(sink.message_ids()) | set(dead_ids(state))

    wait_until(settled, SETTLE_SECONDS, "every acknowledged record delivered or dead-lettered")
    settle = time.monotonic() - last_ack
    halt.set()
    sampler.join()

    dead = dead_ids(state)
    delivered = set(sink.message_ids())
    assert set(dead) == poisoned, "exactly the records at fault are dead-lettered"
    assert not (delivered & poisoned)
    assert acked - poisoned <= delivered
    for reason in dead.values():
        assert "isolated as the record at fault" in reason and "HTTP 500" in reason
    wait_until(lambda: state_counts(state, "relay")["queued"] == 0, 10, "queue empty")

    # Never blocked: while records were arriving, deliveries kept going.
    stall = longest_stall(samples, until=last_ack)
    report(
        "poisoned records",
        acknowledged=len(acked),
        poisoned=len(poisoned),
        delivered=len(acked - poisoned),
        dead_lettered=len(dead),
        settled_after_last_ack_s=settle,
        longest_delivery_stall_s=stall,
        isolate_after=ISOLATE_AFTER,
    )
    assert stall < 5.0, f"deliveries stalled for {stall:.1f} s"
    events = {e.get("event") for e in daemon.log_events()}
    assert "delivery.record.isolated" in events
    # The two lone records failed with nothing else flowing: held back, not dead-lettered
    # on the spot, and their slots went to the records behind them.
    assert "delivery.records.held_back" in events


def longest_stall(samples: list[tuple[float, int]], *, until: float) -> float:
    """The longest time without a new delivery, while records were still arriving."""
    longest, since, last = 0.0, None, -1
    for moment, count in samples:
        if moment > until:
            break
        if count != last:
            since, last = moment, count
        elif since is not None:
            longest = max(longest, moment - since)
    return longest
