"""End to end: the real daemon loads the installed plugin through its entry point."""

from __future__ import annotations

import sqlite3

import pytest
from emulator import API_KEY

pytestmark = pytest.mark.e2e

# Load only this plugin, whatever else is installed.
ENV = {"CONNECTORD_LOAD_PLUGINS": "myvendor"}


def test_webhook_to_myvendor(emulator, server, connectord_daemon):
    daemon = connectord_daemon(
        f"""
[connectors.inbound]
source = {{ type = "http.webhook", token = "t0ken" }}
mapping = [{{ type = "myvendor.rename_events", events = {{ "Order Completed" = "purchase" }} }}]
destination = {{ type = "myvendor", api_key = "{API_KEY}", base_url = "{server.url}" }}
""",
        env=ENV,
    )
    status, body = daemon.post(
        "/ingest/inbound/",
        [
            {"type": "track", "userId": "u-1", "event": "Order Completed"},
            {"type": "group", "userId": "u-1", "groupId": "acme"},
        ],
        headers={"Authorization": "Bearer t0ken"},
    )
    assert (status, body["accepted"]) == (200, 2)
    daemon.wait_for(lambda: emulator.tracked, message="an event at the emulator")
    assert emulator.tracked[0]["name"] == "purchase"
    daemon.wait_for(
        lambda: daemon.metric("connectord_records_rejected", connector="inbound") == 1,
        message="the group record dead-lettered",
    )
    assert daemon.stop() == 0


def test_myvendor_events_to_warehouse(emulator, server, connectord_daemon):
    emulator.add_events(3)
    daemon = connectord_daemon(
        f"""
[connectors.export]
schedule = "every 1s"
source = {{ type = "myvendor.events", api_key = "{API_KEY}", base_url = "{server.url}" }}
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}
""",
        env=ENV,
    )
    warehouse = daemon.config.parent / "warehouse.db"

    def rows() -> int:
        if not warehouse.exists():
            return 0
        with sqlite3.connect(warehouse) as db:
            tables = {r[0] for r in db.execute("select name from sqlite_master")}
            if "signed_up" not in tables:
                return 0
            return db.execute("select count(*) from signed_up").fetchone()[0]

    daemon.wait_for(lambda: rows() == 3, message="three events in the warehouse")
    assert daemon.stop() == 0
