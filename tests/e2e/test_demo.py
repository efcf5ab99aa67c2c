"""The default demo connector, end to end: the real daemon, HTTP and SQLite."""

from __future__ import annotations

import sqlite3

import pytest

pytestmark = pytest.mark.e2e

DEMO = """
[connectors.demo]
source = { type = "http.webhook", token = "t0ken-for-tests" }
destination = { type = "warehouse", url = "sqlite:///warehouse.db" }
"""
AUTH = {"Authorization": "Bearer t0ken-for-tests"}


def rows(path, sql):
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_posted_records_land_in_the_warehouse(connectord_daemon):
    daemon = connectord_daemon(DEMO)
    status, body = daemon.post(
        "/ingest/demo/",
        [
            {
                "type": "track",
                "userId": "u1",
                "event": "Order Completed",
                "properties": {"total": 12.5, "items": [1, 2]},
            },
            {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}},
        ],
        headers=AUTH,
    )
    assert status == 200, body
    assert body["accepted"] == 2
    warehouse = daemon.config.parent / "warehouse.db"
    daemon.wait_for(
        lambda: (
            warehouse.exists()
            and rows(warehouse, "select count(*) from sqlite_master where name='users'")[0][0]
        ),
        message="users table",
    )
    daemon.wait_for(lambda: rows(warehouse, "select count(*) from order_completed")[0][0] == 1)
    assert rows(warehouse, "select user_id, total, items from order_completed") == [
        ("u1", 12.5, "[1,2]")
    ]
    assert rows(warehouse, "select id, email from users") == [("u1", "a@example.com")]
    assert daemon.stop() == 0
