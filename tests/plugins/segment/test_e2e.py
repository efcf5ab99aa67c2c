"""Segment libraries → the real daemon → the Pendo emulator.

The official ``segment-analytics-python`` and ``rudder-sdk-python`` clients, with their
host set to ``http://127.0.0.1:<port>/ingest/seg``, send identify/group/track/page; what
reaches the emulator must be what the default mapping promises.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from datetime import UTC, datetime

import orjson
import pytest

from tests.plugins.pendo.emulator import INTEGRATION_KEY, TRACK_SECRET, PendoEmulator

from .conftest import WRITE_KEY

pytestmark = pytest.mark.e2e

BASIC = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}


def config(pendo_url: str) -> str:
    return f"""
[connectors.seg]
source = {{ type = "segment.http", write_key = "{WRITE_KEY}" }}
mapping = [{{ type = "segment.to_pendo", anonymous_visitors = true }}]

[connectors.seg.destination]
type = "pendo"
track_secret = "{TRACK_SECRET}"
integration_key = "{INTEGRATION_KEY}"
base_url = "{pendo_url}"
page_events = true

[connectors.seg.delivery]
retry_initial = 0.2
retry_max = 1.0
"""


@pytest.fixture
def pipeline(connectord_daemon, emulator_server):
    pendo = PendoEmulator()
    server = emulator_server(pendo)
    daemon = connectord_daemon(config(server.url))
    return daemon, pendo


def make_client(library: str, daemon, gzip: bool, errors: list):
    if library == "segment":
        from segment.analytics import Client
    else:
        from rudderstack.analytics import Client
    return Client(
        write_key=WRITE_KEY,
        host=f"{daemon.url}/ingest/seg",
        gzip=gzip,
        max_retries=1,
        on_error=lambda error, batch: errors.append(error),
    )


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("library", ["segment", "rudderstack"])
def test_official_clients_reach_pendo(pipeline, library, gzip):
    daemon, pendo = pipeline
    errors: list = []
    client = make_client(library, daemon, gzip, errors)
    started = int(time.time() * 1000)
    client.identify("u-1", {"email": "ada@example.com", "plan": "pro", "address": {"city": "Lyon"}})
    client.group("u-1", "acct-1", {"name": "Acme", "employees": 42})
    client.flush()
    client.track("u-1", "Report Exported", {"format": "csv", "rows": 120})
    client.page(
        "u-1",
        "Docs",
        "Quickstart",
        {"url": "https://example.com/docs", "title": "Quickstart"},
    )
    client.track(anonymous_id="anon-7", event="Pricing Viewed")
    client.flush()
    client.shutdown()
    assert errors == []

    daemon.wait_for(lambda: len(pendo.events) == 3, message="3 events in Pendo")
    daemon.wait_for(lambda: pendo.account("acct-1"), message="account metadata")
    assert pendo.visitor("u-1") == {
        "email": "ada@example.com",
        "plan": "pro",
        "address_city": "Lyon",
    }
    assert pendo.account("acct-1") == {"name": "Acme", "employees": 42}
    report, page, anonymous = (
        next(e for e in pendo.events if e["event"] == name)
        for name in ("Report Exported", "Viewed Quickstart Page", "Pricing Viewed")
    )
    assert report["visitorId"] == "u-1"
    assert report["accountId"] == "acct-1"  # from the group call
    assert report["properties"] == {"format": "csv", "rows": 120}
    assert started - 5000 <= report["timestamp"] <= int(time.time() * 1000)
    assert page["accountId"] == "acct-1"
    assert page["context"] == {"url": "https://example.com/docs", "title": "Quickstart"}
    assert anonymous["visitorId"] == "_PENDO_T_anon-7"
    assert "accountId" not in anonymous
    assert not any(e["properties_too_large"] for e in pendo.events)


def test_segment_webhook_style_single_message(pipeline):
    """What Segment's Webhooks destination posts: one processed message per request."""
    daemon, pendo = pipeline
    message = {
        "version": 2,
        "type": "track",
        "event": "Order Completed",
        "userId": "u-9",
        "messageId": "ajs-next-1a2b3c",
        "properties": {"revenue": 25.5, "currency": "EUR"},
        "context": {
            "ip": "203.0.113.50",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
            "page": {"url": "https://shop.example.com/checkout", "title": "Checkout"},
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "groupId": "acct-9",
        },
        "integrations": {},
        "originalTimestamp": "2026-11-23T09:59:58.000Z",
        "sentAt": "2026-11-23T09:59:59.000Z",
        "receivedAt": "2026-11-23T10:00:00.100Z",
        "timestamp": "2026-11-23T10:00:00.000Z",
    }
    status, body = daemon.post(
        "/ingest/seg/v1/track", message, headers={**BASIC, "User-Agent": "Segment.io/1.0"}
    )
    assert (status, body) == (200, {"success": True})
    daemon.wait_for(lambda: pendo.events, message="event in Pendo")
    (event,) = pendo.events
    assert event["timestamp"] == int(datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp() * 1000)
    assert event["accountId"] == "acct-9"
    assert event["context"] == {
        "ip": "203.0.113.50",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        "url": "https://shop.example.com/checkout",
        "title": "Checkout",
    }
    assert event["properties"] == {"revenue": 25.5, "currency": "EUR"}


GOOD = orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "e"}]})
BAD_INPUT = [
    ("bad write key", "v1/batch", {}, b'{"writeKey":"nope-nope-nope","batch":[]}', 401),
    ("no write key", "v1/batch", {}, GOOD, 401),
    ("invalid json", "v1/batch", BASIC, b'{"batch": [', 400),
    ("oversize batch", "v1/batch", BASIC, b'{"batch":["' + b"x" * 600_000 + b'"]}', 400),
    ("oversize message", "v1/track", BASIC, b'{"userId":"u","event":"' + b"x" * 40_000, 400),
    ("broken gzip", "v1/batch", {**BASIC, "Content-Encoding": "gzip"}, b"nope", 400),
    ("unknown route", "v1/identity", BASIC, GOOD, 404),
]


def test_bad_input_gets_segment_errors_and_the_daemon_keeps_serving(pipeline):
    daemon, pendo = pipeline
    for name, path, headers, body, expected in BAD_INPUT:
        status, answer = daemon.request(
            "POST", f"/ingest/seg/{path}", body, {"Content-Type": "application/json", **headers}
        )
        assert status == expected, name
        error = orjson.loads(answer)
        assert error["success"] is False, name
        assert error["code"] and error["message"], name
        assert WRITE_KEY not in error["message"]
    status, body = daemon.post("/ingest/seg/v1/batch", GOOD, headers=BASIC)
    assert (status, body) == (200, {"success": True})
    daemon.wait_for(lambda: pendo.events, message="the good event in Pendo")
    assert daemon.process.poll() is None
    assert "ingest.crashed" not in daemon.logs()
    assert WRITE_KEY not in daemon.logs()


def dead_letters(daemon) -> list[dict]:
    command = ["dlq", "list", "seg", "-c", str(daemon.config), "--json"]
    listed = subprocess.run(
        [sys.executable, "-m", "connectord", *command], capture_output=True, check=True
    )
    return orjson.loads(listed.stdout)["dead_letters"]


def test_messages_segment_would_drop_get_200_and_become_dead_letters(pipeline):
    """Segment answers 200 for all but JSON errors and oversize; what it would drop is
    kept here as a dead letter with the reason (listable, replayable)."""
    daemon, pendo = pipeline
    for path, body in [
        ("v1/identify", {"traits": {"plan": "pro"}, "messageId": "no-user"}),
        ("v1/track", {"userId": "u1", "messageId": "no-event"}),
    ]:
        assert daemon.post(f"/ingest/seg/{path}", body, headers=BASIC) == (200, {"success": True})
    daemon.wait_for(lambda: len(dead_letters(daemon)) == 2, message="2 dead letters")
    reasons = {d["record"]["messageId"]: d["reason"] for d in dead_letters(daemon)}
    assert "needs userId or anonymousId" in reasons["no-user"]
    assert "needs an event name" in reasons["no-event"]
    assert pendo.events == []


def test_pendo_refusals_become_dead_letters_and_outages_are_retried(pipeline):
    daemon, pendo = pipeline
    pendo.fail_until(time.time() + 1.5, status=503, headers={"Retry-After": "1"})
    pendo.fail_ids["u4"] = "visitor is locked"
    batch = [
        {"type": "track", "userId": "u1", "event": "Fine"},
        {"type": "track", "userId": "u2", "event": "Odd name", "properties": {"Order ID": 1}},
        {"type": "identify", "userId": "u3", "traits": {"plan": "pro"}},
        {"type": "identify", "userId": "u4", "traits": {"plan": "free"}},
    ]
    status, _ = daemon.post("/ingest/seg/v1/batch", {"batch": batch}, headers=BASIC)
    assert status == 200
    daemon.wait_for(lambda: len(pendo.events) == 2 and pendo.visitor("u3"), timeout=30)
    assert sorted(e["event"] for e in pendo.events) == ["Fine", "Odd name"]
    odd = next(e for e in pendo.events if e["event"] == "Odd name")
    assert odd["properties"] == {"Order_ID": 1}  # renamed, the event kept
    assert len(pendo.requests) > 3  # the outage's 503s came before the calls that succeeded
    daemon.wait_for(lambda: dead_letters(daemon), message="a dead letter")
    letters = dead_letters(daemon)
    assert [d["record"]["userId"] for d in letters] == ["u4"]
    assert "visitor is locked" in letters[0]["reason"]
    assert "pendo.name.renamed" in daemon.logs()
    renamed = daemon.metric(
        "connectord_plugin_events_total",
        connector="seg",
        plugin="pendo",
        event="pendo_name_renamed",
    )
    assert renamed == 1
