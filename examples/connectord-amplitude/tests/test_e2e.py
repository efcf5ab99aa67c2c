"""End to end: the real daemon loads the installed plugin through its entry point."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from emulator import API_KEY, SECRET_KEY

pytestmark = pytest.mark.e2e

ENV = {"CONNECTORD_LOAD_PLUGINS": "amplitude"}
AUTH = {"Authorization": "Bearer t0ken"}


def test_webhook_to_amplitude(emulator, server, connectord_daemon):
    emulator.throttled_users.add("user-busy")
    daemon = connectord_daemon(
        f"""
[connectors.to_amplitude]
source = {{ type = "http.webhook", token = "t0ken" }}

[connectors.to_amplitude.destination]
type = "amplitude"
api_key = "{API_KEY}"
base_url = "{server.url}"
throttle_pause = 1
""",
        env=ENV,
    )
    status, body = daemon.post(
        "/ingest/to_amplitude/",
        [
            {"type": "track", "userId": "user-0001", "event": "Order Completed"},
            {"type": "identify", "userId": "user-0001", "traits": {"plan": "pro"}},
            {"type": "track", "userId": "abc", "event": "Too Short"},
            {"type": "track", "userId": "user-busy", "event": "Busy"},
        ],
        headers=AUTH,
    )
    assert (status, body["accepted"]) == (200, 4)
    daemon.wait_for(lambda: len(emulator.ingested) == 2, message="two events ingested")
    emulator.throttled_users.clear()  # the throttled user's event goes through on retry
    daemon.wait_for(lambda: len(emulator.ingested) == 3, message="the throttled event retried")
    assert [e["event_type"] for e in emulator.ingested] == ["Order Completed", "$identify", "Busy"]
    daemon.wait_for(
        lambda: daemon.metric("connectord_records_rejected", connector="to_amplitude") == 1,
        message="the short id dead-lettered",
    )
    dead = daemon.cli("dlq", "list", "to_amplitude", "--json", "-c", str(daemon.config))
    (letter,) = orjson.loads(dead.stdout)["dead_letters"]
    assert "at least 5 characters" in letter["reason"]
    assert daemon.stop() == 0


def test_amplitude_export_to_warehouse(emulator, server, connectord_daemon):
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    emulator.add_exportable(4, hour=hour)
    daemon = connectord_daemon(
        f"""
[connectors.from_amplitude]
schedule = "every 1s"
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}

[connectors.from_amplitude.source]
type = "amplitude.export"
api_key = "{API_KEY}"
secret_key = "{SECRET_KEY}"
base_url = "{server.url}"
start = "{hour:%Y%m%dT%H}"
""",
        env=ENV,
    )
    warehouse = daemon.config.parent / "warehouse.db"

    def rows() -> int:
        if not warehouse.exists():
            return 0
        with sqlite3.connect(warehouse) as db:
            names = {r[0] for r in db.execute("select name from sqlite_master")}
            if "song_played" not in names:
                return 0
            return db.execute("select count(*) from song_played").fetchone()[0]

    daemon.wait_for(lambda: rows() == 4, message="four exported events in the warehouse")
    assert daemon.stop() == 0
