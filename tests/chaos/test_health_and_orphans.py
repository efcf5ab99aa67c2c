"""Health that tells the truth, and queued records nobody delivers made visible.

- A second daemon on the same state file cannot run any connector (the first holds
  them): its ``/healthz`` answered 200 "ok"; now 503 with the reason, and the log says
  who holds them.
- A connector removed from the configuration with records queued, then SIGHUP: the
  rows stayed in the state file and ``status``, ``/healthz`` and ``dlq list`` all
  denied the connector. Now all three show them, the log warns, and ``queue list`` /
  ``queue drop`` work on them.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import orjson
import pytest

from tests.chaos.support import report, state_counts, track, wait_until
from tests.emulators.sink import SinkEmulator

pytestmark = [pytest.mark.e2e]

TOKEN = "health-token-1618"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def relay(name: str, url: str) -> str:
    return f"""
[connectors.{name}]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{url}/hook" }}
"""


def cli(config, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "connectord", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_daemon_on_the_same_state_file_is_not_healthy(
    tmp_path, emulator_server, spawn_daemon
):
    sink = emulator_server(SinkEmulator())
    state = tmp_path / "shared.db"
    first = spawn_daemon(relay("relay", sink.url), directory=tmp_path / "a", state=state)
    second = spawn_daemon(relay("relay", sink.url), directory=tmp_path / "b", state=state)
    status, body = second.get("/healthz")
    health = orjson.loads(body)
    report("second daemon", healthz_status=status, status=health["status"])
    assert status == 503 and health["status"] != "ok"
    assert health["connectors"]["relay"]["start_failed"] is True
    assert "relay" in health["reason"]
    events = [e for e in second.log_events() if e.get("event") == "connector.locked_elsewhere"]
    assert events and events[0]["holder_pid"] == first.pid
    assert first.get("/healthz")[0] == 200


def test_an_orphaned_queue_is_shown_warned_about_and_can_be_dropped(
    tmp_path, emulator_server, spawn_daemon
):
    sink = SinkEmulator()
    sink.fail_until(10**10, status=503)  # nothing leaves: the records stay queued
    server = emulator_server(sink)
    daemon = spawn_daemon(relay("keep", server.url) + relay("gone", server.url))
    records = [track(f"o{i}") for i in range(17)]
    status, _ = daemon.post("/ingest/gone/", orjson.dumps(records), headers=HEADERS)
    assert status == 200
    state = tmp_path / "state.db"
    assert state_counts(state, "gone")["queued"] == 17

    daemon.config.write_text(daemon.config.read_text().split("[connectors.gone]")[0])
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: '"queue.orphaned"' in daemon.logs(), 15, "the orphaned queue is warned")
    warning = next(e for e in daemon.log_events() if e.get("event") == "queue.orphaned")
    assert warning["connector"] == "gone" and warning["queued"] == 17

    health = daemon.health()
    assert health["orphaned"] == {"gone": 17}
    shown = orjson.loads(cli(daemon.config, "status", "--json").stdout)
    assert shown["orphaned"] == [{"name": "gone", "queue_depth": 17, "dead_letters": 0}]
    assert "gone" in cli(daemon.config, "status").stdout
    assert cli(daemon.config, "dlq", "list", "gone").returncode == 0

    listed = orjson.loads(cli(daemon.config, "queue", "list", "gone", "--json").stdout)
    assert listed["total"] == 17
    assert [row["record"]["messageId"] for row in listed["queued"]] == [f"o{i}" for i in range(17)]
    one = str(listed["queued"][0]["id"])
    dropped = cli(daemon.config, "queue", "drop", "gone", "--id", one, "--yes")
    assert dropped.returncode == 0 and "dropped 1" in dropped.stdout
    rest = cli(daemon.config, "queue", "drop", "gone", "--all", "--yes")
    assert "dropped 16" in rest.stdout
    assert state_counts(state, "gone")["queued"] == 0
    wait_until(lambda: "orphaned" not in daemon.health(), 30, "health forgets the orphan")
    report("orphaned queue", queued=17, shown_by=["status", "/healthz", "queue list", "log"])
