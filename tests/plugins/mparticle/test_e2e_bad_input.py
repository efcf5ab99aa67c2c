"""Bad input in each of mParticle's formats at the real daemon: a request refused
whole gets a clear 4xx in mParticle's error body and stores nothing; a request accepted
with invalid parts (a bulk upload, mParticle's own outputs) delivers every valid
neighbour and keeps each invalid part as a dead letter with its reason."""

from __future__ import annotations

import base64

import orjson
import pytest

from tests.emulators.sink import SinkEmulator

from .conftest import (
    FIREHOSE_SECRET,
    custom_event,
    events_batch,
    firehose_events,
    membership_change,
    profile,
)
from .conftest import audience as audience_entry

pytestmark = pytest.mark.e2e

ENV = {
    "MP_API_KEY": "e2e-key",
    "MP_API_SECRET": "e2e-secret",
    "MP_FIREHOSE_SECRET": FIREHOSE_SECRET,
    "MP_WEBHOOK_AUTH": "Bearer e2e-webhook",
}
BASIC = {"Authorization": "Basic " + base64.b64encode(b"e2e-key:e2e-secret").decode()}


def config(sink_url: str) -> str:
    return f"""
[connectors.mp]
mapping = [{{ type = "mparticle.to_pushwoosh" }}]
destination = {{ type = "webhook", url = "{sink_url}/hook" }}
delivery = {{ batch_size = 50 }}

[connectors.mp.source]
type = "mparticle.http"
api_key = "${{MP_API_KEY}}"
api_secret = "${{MP_API_SECRET}}"
firehose_secret = "${{MP_FIREHOSE_SECRET}}"
webhook_authorization = "${{MP_WEBHOOK_AUTH}}"
"""


@pytest.fixture
def setup(connectord_daemon, emulator_server):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = connectord_daemon(config(server.url), env=ENV)
    return daemon, sink


def delivered(sink, key="event"):
    return sorted(r.get(key) for r in sink.received if r.get(key))


def test_events_api_bad_event_and_bad_batch(setup):
    daemon, sink = setup
    batch = events_batch()
    batch["events"].append({"event_type": "custom_event", "data": {"event_name": "no type"}})
    batch["events"].append(custom_event("after"))
    status, body = daemon.post("/ingest/mp/v2/events", batch, BASIC)
    assert status == 400
    assert body["errors"] == [
        {
            "code": "BAD_REQUEST",
            "message": 'batch, event 2 (custom_event "no type"): Required event field '
            '"custom_event_type" is missing or empty.',
        }
    ]
    second = events_batch(user_identities={"customer_id": "u-2"}, source_request_id="r-2")
    status, body = daemon.post("/ingest/mp/v2/bulkevents", [{"environment": "qa"}, second], BASIC)
    assert (status, body) == (202, b"")
    daemon.wait_for(lambda: len(sink.received) == 3, message="3 records at the sink")
    assert delivered(sink) == ["click"]
    assert delivered(sink, "name") == ["Checkout"]
    assert {r["userId"] for r in sink.received} == {"u-2"}
    identify = next(r for r in sink.received if r["type"] == "identify")
    assert identify["traits"] == {"First Name": "Jane", "Age": 31, "plan": "gold"}
    assert dead_letters(daemon, 1) == [
        (
            'batch 0: "environment" must be "production" or "development"; found \'qa\'',
            {"environment": "qa"},
        )
    ]


def test_events_api_auth_and_size(setup):
    daemon, sink = setup
    status, body = daemon.post("/ingest/mp/v2/events", events_batch())
    assert (status, body["errors"][0]["code"]) == (401, "UNAUTHORIZED")
    bad = {"Authorization": "Basic " + base64.b64encode(b"e2e-key:nope").decode()}
    status, body = daemon.post("/ingest/mp/v2/events", events_batch(), bad)
    assert (status, body["errors"][0]["code"]) == (403, "FORBIDDEN")
    huge = events_batch(events=[custom_event(custom_attributes={"k": "x" * 4000})] * 70)
    status, body = daemon.post("/ingest/mp/v2/events", huge, BASIC)
    assert (status, body["errors"][0]["code"]) == (413, "REQUEST_TOO_LARGE")
    status, body = daemon.post("/ingest/mp/v2/events", b"{nope", BASIC)
    assert (status, body["errors"][0]["code"]) == (400, "BAD_REQUEST")
    status, _ = daemon.post("/ingest/mp/v2/events", events_batch(), BASIC)
    assert status == 202
    daemon.wait_for(lambda: len(sink.received) == 3, message="the good batch")
    assert daemon.health()["status"] == "ok"


def test_firehose_bad_event_and_bad_profile(setup):
    daemon, sink = setup
    message = firehose_events()
    bad_event = {"type": "screen_view", "id": "s-1", "timestamp_ms": 1}
    message["events"].append(bad_event)
    status, body = daemon.post("/ingest/mp/firehose", message)
    assert (status, body["type"]) == (200, "event_processing_response")
    change = membership_change(
        [
            profile("u-1", "1", audience_entry("add")),
            {"mpid": "2", "audiences": "all of them"},
        ]
    )
    status, body = daemon.post("/ingest/mp/firehose", change)
    assert (status, body["type"]) == (200, "audience_membership_change_response")
    status, body = daemon.post(
        "/ingest/mp/firehose", {**firehose_events(), "account": {"account_settings": {}}}
    )
    assert (status, body["errors"][0]["code"]) == (401, "UNAUTHORIZED")
    daemon.wait_for(lambda: len(sink.received) == 3, message="3 records at the sink")
    assert sorted(r["type"] for r in sink.received) == ["audience", "identify", "track"]
    assert dead_letters(daemon, 2) == [
        (
            'event 1 (screen_view): Required event field "screen_name" is missing or empty.',
            bad_event,
        ),
        (
            'user_profiles[1]: "audiences" must be an array; found a string',
            {"mpid": "2", "audiences": "all of them"},
        ),
    ]


def test_webhook_bad_batch_next_to_good_one(setup):
    daemon, sink = setup
    good = events_batch(user_identities=[{"identity_type": "customer_id", "identity": "w-1"}])
    status, body = daemon.post(
        "/ingest/mp/webhook",
        [good, {"user_identities": "me"}],
        {"Authorization": "Bearer e2e-webhook"},
    )
    assert (status, body) == (202, b"")
    status, _ = daemon.post("/ingest/mp/webhook", good, {"Authorization": "Bearer wrong"})
    assert status == 403
    daemon.wait_for(lambda: len(sink.received) == 3, message="the good batch")
    assert {r["userId"] for r in sink.received} == {"w-1"}
    assert dead_letters(daemon, 1) == [
        ('batch 1: "user_identities" must be an array; found a string', {"user_identities": "me"})
    ]


def dead_letters(daemon, count: int) -> list[tuple[str, object]]:
    """Wait for ``count`` dead letters; return each one's reason and invalid part."""
    daemon.wait_for(
        lambda: daemon.metric("connectord_dead_letters", connector="mp") == count,
        message=f"{count} dead letters",
    )
    listed = orjson.loads(daemon.cli("dlq", "list", "mp", "--json").stdout)
    letters = sorted(listed["dead_letters"], key=lambda row: row["id"])
    assert {row["stage"] for row in letters} == {"ingest"}
    return [(row["reason"], row["record"]) for row in letters]
