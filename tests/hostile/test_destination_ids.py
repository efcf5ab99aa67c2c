"""The real daemon: ``http.webhook`` into a SQLite ``warehouse`` with hostile ids. A
numeric first ``messageId`` must not type the key column, and records without one must
not be merged: every acknowledged record is a row, none a dead letter."""

from __future__ import annotations

import sqlite3

import orjson
import pytest

from tests.chaos.support import report

pytestmark = pytest.mark.e2e

TOKEN = "hostile-ids-token-123"
CONFIG = f"""
[connectors.demo]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}
"""


def clicked(i: int, message_id) -> dict:
    record = {"type": "track", "event": "Clicked", "userId": f"u{i}", "properties": {"n": i}}
    if message_id != "absent":
        record["messageId"] = message_id
    return record


def test_numeric_null_and_absent_message_ids_all_land(connectord_daemon):
    daemon = connectord_daemon(CONFIG)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    batches = [
        [clicked(0, 12345)],  # first: a number
        [clicked(i, None) for i in range(1, 51)],  # 50 nulls
        [clicked(i, "absent") for i in range(51, 61)],
        [clicked(i, f"m{i}") for i in range(61, 81)] + [clicked(81, 2.5), clicked(82, True)],
    ]
    for batch in batches:
        status, body = daemon.post("/ingest/demo/", batch, headers=auth)
        assert status == 200, body
    warehouse = daemon.config.parent / "warehouse.db"

    def loaded() -> int:
        try:
            with sqlite3.connect(warehouse) as db:
                return db.execute("SELECT count(DISTINCT user_id) FROM clicked").fetchone()[0]
        except sqlite3.Error:
            return 0

    daemon.wait_for(lambda: loaded() == 83, timeout=60, message="every record delivered")
    with sqlite3.connect(warehouse) as db:
        assert db.execute("SELECT count(*), count(DISTINCT id) FROM clicked").fetchone() == (
            83,
            83,
        )
        key = db.execute("SELECT type FROM pragma_table_info('clicked') WHERE pk").fetchall()
    assert key == [("TEXT",)]
    status = orjson.loads(daemon.cli("status", "--json", "-c", str(daemon.config)).stdout)
    (demo,) = [c for c in status["connectors"] if c["name"] == "demo"]
    assert demo["dead_letters"] == 0 and demo["queue_depth"] == 0
    report("hostile destination ids (daemon)", acknowledged=83, rows=83, dead_letters=0)
