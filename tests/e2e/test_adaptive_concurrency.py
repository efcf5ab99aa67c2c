"""Adaptive request concurrency in the real daemon: Segment → Pendo against a Pendo
emulator that answers 429 beyond a rate limit."""

from __future__ import annotations

import uuid

import pytest

from tests.plugins.pendo.emulator import INTEGRATION_KEY, TRACK_SECRET, PendoEmulator

pytestmark = pytest.mark.e2e

WRITE_KEY = "adaptive-write-key-12345"


def config(pendo_url: str, request_concurrency: str) -> str:
    return f"""
[connectors.seg]
source = {{ type = "segment.http", write_key = "{WRITE_KEY}" }}
mapping = [{{ type = "segment.to_pendo" }}]
delivery = {{ request_concurrency = {request_concurrency}, retry_initial = 0.2 }}

[connectors.seg.destination]
type = "pendo"
track_secret = "{TRACK_SECRET}"
integration_key = "{INTEGRATION_KEY}"
base_url = "{pendo_url}"
"""


def batch(start: int, count: int) -> dict:
    return {
        "writeKey": WRITE_KEY,
        "batch": [
            {
                "type": "track",
                "event": "Order Completed",
                "userId": f"user-{i}",
                "properties": {"n": i},
                "messageId": str(uuid.uuid4()),
            }
            for i in range(start, start + count)
        ],
    }


def test_rate_limited_pendo_gets_everything_and_the_limit_moves(connectord_daemon, emulator_server):
    pendo = PendoEmulator(rate_limit=60)
    daemon = connectord_daemon(config(emulator_server(pendo).url, '"adaptive"'))
    for start in range(0, 300, 100):
        status, body = daemon.post("/ingest/seg/v1/batch", batch(start, 100))
        assert status == 200, body
    seen: list[float] = []

    def all_delivered() -> bool:
        value = daemon.metric("connectord_delivery_concurrency", connector="seg")
        if value is not None:
            seen.append(value)
        return len(pendo.events) >= 300

    daemon.wait_for(all_delivered, timeout=60, message="300 events in Pendo")
    assert sorted(e["visitorId"] for e in pendo.events) == sorted(f"user-{i}" for i in range(300))
    assert daemon.metric("connectord_dead_letters", connector="seg") in (None, 0.0)
    events = {e.get("event") for e in daemon.log_events()}
    assert events & {"delivery.partial_retry", "delivery.retry"}  # it did hit the limit
    assert seen and all(1 <= v <= 64 for v in seen)
    assert max(seen) > 1  # it grew from 1 while answers were fast 2xx


def test_fixed_request_concurrency_is_exported_as_set(connectord_daemon, emulator_server):
    pendo = PendoEmulator()
    daemon = connectord_daemon(config(emulator_server(pendo).url, "3"))
    status, body = daemon.post("/ingest/seg/v1/batch", batch(0, 50))
    assert status == 200, body
    daemon.wait_for(lambda: len(pendo.events) >= 50, message="50 events in Pendo")
    assert daemon.metric("connectord_delivery_concurrency", connector="seg") == 3.0
