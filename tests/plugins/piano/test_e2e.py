"""Piano connectors in the real daemon: real SQLite, real HTTP, the Piano emulator."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import orjson
import pytest

from .conftest import API_KEY, DOMAIN, SITE

pytestmark = pytest.mark.e2e

TOKEN = "t0ken-for-piano-tests"
DLQ_LIST = [sys.executable, "-m", "connectord", "dlq", "list"]


def rows(path, sql):
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:  # table not created yet
            return []


def membership(warehouse, segment):
    """Members now, replaying the audience rows in the order they were loaded."""
    members: set[str] = set()
    for user, action in rows(
        warehouse,
        "select user_id, action from audiences "
        f"where audience_id = '{segment}' order by _loaded_at, rowid",
    ):
        (members.add if action == "add" else members.discard)(user)
    return members


def test_segment_membership_follows_piano_across_runs(connectord_daemon, emulator_server, piano):
    server = emulator_server(piano)
    piano.set_segment("seg-a", ["alice", "bob", "carol"])
    piano.set_segment("seg-b", ["dave"])
    daemon = connectord_daemon(
        f"""
[connectors.piano_segments]
schedule = "every 1s"
source = {{ type = "piano.segment", site_id = {SITE}, api_key = "${{PIANO_API_KEY}}", \
segments = ["seg-a", "seg-b"], segment_names = {{ "seg-a" = "Engaged" }}, \
base_url = "{server.url}" }}
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}
""",
        env={"PIANO_API_KEY": API_KEY},
    )
    warehouse = daemon.config.parent / "warehouse.db"
    count = "select count(*) from audiences"

    daemon.wait_for(lambda: rows(warehouse, count) == [(4,)], message="first run")
    assert membership(warehouse, "seg-a") == {"alice", "bob", "carol"}
    assert membership(warehouse, "seg-b") == {"dave"}
    assert rows(warehouse, "select distinct audience_name from audiences order by 1") == [
        (None,),
        ("Engaged",),
    ]

    piano.set_segment("seg-a", ["bob", "carol", "erin"])
    daemon.wait_for(lambda: rows(warehouse, count) == [(6,)], message="second run")
    assert membership(warehouse, "seg-a") == {"bob", "carol", "erin"}

    piano.set_segment("seg-a", ["alice", "erin"])
    piano.set_segment("seg-b", [])
    daemon.wait_for(lambda: rows(warehouse, count) == [(10,)], message="third run")
    assert membership(warehouse, "seg-a") == {"alice", "erin"}
    assert membership(warehouse, "seg-b") == set()
    assert sorted(rows(warehouse, "select audience_id, action, user_id from audiences")) == sorted(
        [
            ("seg-a", "add", "alice"),
            ("seg-a", "add", "bob"),
            ("seg-a", "add", "carol"),
            ("seg-b", "add", "dave"),
            ("seg-a", "add", "erin"),
            ("seg-a", "remove", "alice"),
            ("seg-a", "add", "alice"),
            ("seg-a", "remove", "bob"),
            ("seg-a", "remove", "carol"),
            ("seg-b", "remove", "dave"),
        ]
    )

    runs_before = len(piano.requests_to("/v3/data/getData"))
    daemon.wait_for(
        lambda: len(piano.requests_to("/v3/data/getData")) >= runs_before + 4,
        message="two more runs",
    )
    assert rows(warehouse, count) == [(10,)], "unchanged segments emit nothing"
    assert API_KEY not in daemon.logs()
    assert daemon.stop() == 0


def test_track_with_piano_visitor_arrives_in_collection(connectord_daemon, emulator_server, piano):
    server = emulator_server(piano)
    daemon = connectord_daemon(
        f"""
[connectors.to_piano]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "piano.collect", site_id = {SITE}, collection_domain = "{DOMAIN}", \
base_url = "{server.url}" }}
"""
    )
    records = [
        {
            "type": "track",
            "event": "pw_siteopened",
            "userId": "pw-user-7",
            "properties": {"pushwooshid": "pw-user-7", "src_medium": "CAMP-1", "Plan": "pro"},
            "context": {
                "piano": {"idclient": "piano-visitor-7"},
                "ip": "198.51.100.4",
                "userAgent": "Mozilla/5.0 (Android)",
            },
        },
        {"type": "identify", "userId": "pw-user-7", "traits": {"plan": "pro"}},
    ]
    status, body = daemon.post(
        "/ingest/to_piano/", records, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200, body
    daemon.wait_for(lambda: piano.collected, message="event collected")
    (event,) = piano.collected
    assert (event.site, event.idclient, event.name) == (SITE, "piano-visitor-7", "pw_siteopened")
    assert event.data["pushwooshid"] == "pw-user-7"
    assert event.data["src_medium"] == "CAMP-1"
    assert event.data["Plan"] == "pro"  # keys as given, as Piano's JS SDK sends them
    assert event.data["user_id"] == "pw-user-7"
    assert event.data["user_recognition"] is False
    assert piano.limit_breaches == []
    assert event.headers["X-Forwarded-For"] == "198.51.100.4"
    assert event.headers["User-Agent"] == "Mozilla/5.0 (Android)"

    def dead_letters():
        done = subprocess.run(
            [*DLQ_LIST, "to_piano", "--json", "-c", str(daemon.config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0 or not done.stdout.strip():
            return []
        return orjson.loads(done.stdout)["dead_letters"]

    (letter,) = daemon.wait_for(dead_letters, message="identify dead-lettered")
    assert letter["record"]["type"] == "identify"
    assert "takes track, page and screen records, not 'identify'" in letter["reason"]
    time.sleep(0.5)
    assert len(piano.collected) == 1
    assert daemon.stop() == 0


def test_membership_is_stored_only_after_the_destination_acknowledged(
    connectord_daemon, emulator_server, piano
):
    from tests.emulators.sink import SinkEmulator

    sink = SinkEmulator()
    sink_url = emulator_server(sink).url
    piano_url = emulator_server(piano).url
    piano.set_segment("seg-a", ["alice", "bob"])
    # The outage lasts until a run has failed on it, however long the daemon takes to
    # start on a loaded machine; a fixed window could end before the first run.
    sink.fail_until(time.time() + 3600, status=503)
    daemon = connectord_daemon(
        f"""
[connectors.segments_to_hook]
schedule = "every 1s"
source = {{ type = "piano.segment", site_id = {SITE}, api_key = "{API_KEY}", \
segments = ["seg-a"], base_url = "{piano_url}" }}
destination = {{ type = "webhook", url = "{sink_url}/hook" }}
delivery = {{ retry_initial = 0.2, retry_max = 0.5, pull_retry_budget = 1 }}
"""
    )
    failed = daemon.wait_for(
        lambda: [e for e in daemon.log_events() if e.get("event") == "run.failed"],
        message="a run that fails while the destination is down",
    )
    assert "destination kept failing" in failed[0]["error"]
    sink.clear_faults()
    daemon.wait_for(lambda: len(sink.received) >= 2, message="delivery after the outage")
    refused = sink.requests_to("/hook")[0].json()["records"]
    assert sorted(r["messageId"] for r in refused) == sorted(sink.message_ids()), (
        "records of the failed run are sent again with the same ids"
    )
    piano.set_segment("seg-a", ["bob"])
    daemon.wait_for(lambda: len(sink.received) >= 3, message="the removal")
    time.sleep(2.5)  # more runs: nothing new to send
    changes = sorted((r["action"], r["userId"]) for r in sink.received)
    assert changes == [("add", "alice"), ("add", "bob"), ("remove", "alice")]
    assert daemon.stop() == 0
