"""The state file under stress: a full disk, and files that are not (or no longer) a
usable connectord state file.

The disk is a real, small tmpfs mounted for the test (the suite runs as root; the
mount is the only privileged step). When it fills, push requests get 503 with
Retry-After and a message that says the disk is full, never a 2xx for records that
were not stored; the daemon stays up; once space returns (the tmpfs is grown with
``mount -o remount``) it takes records again, delivers everything it acknowledged, and
``PRAGMA integrity_check`` finds the file intact.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from connectord.state import Store
from tests.chaos.support import Loader, report, state_counts, track, wait_until
from tests.emulators.sink import SinkEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "disk-full-token-77"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@contextlib.contextmanager
def small_disk(where: Path, size: str):
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        check=True,
        capture_output=True,
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def grow(where: Path, size: str) -> None:
    subprocess.run(
        ["mount", "-o", f"remount,size={size}", str(where)], check=True, capture_output=True
    )


def connector(url: str) -> str:
    return f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{url}/hook" }}
delivery = {{ retry_initial = 0.2, retry_max = 1.0 }}
"""


def test_disk_full_answers_503_then_recovers_intact(tmp_path, emulator_server, spawn_daemon):
    sink = SinkEmulator()
    server = emulator_server(sink)
    with small_disk(tmp_path / "disk", "2m") as disk:
        state = disk / "state.db"
        daemon = spawn_daemon(connector(server.url), state=state)
        sink.fail_until(time.time() + 3600, status=500)

        def request(ids):
            return orjson.dumps([track(i, pad="y" * 1000) for i in ids]), HEADERS

        loader = Loader(
            daemon.listen,
            "/ingest/relay/",
            request,
            prefix="full",
            batch=20,
            interval=0.005,
            max_seconds=60,
        )
        loader.start()
        wait_until(lambda: loader.statuses[503] >= 5, 40, "the disk fills up")
        # The refusal as the loader saw it. (A lone small request might still succeed:
        # SQLite reuses WAL space a checkpoint freed, which needs no new disk blocks.)
        body = orjson.loads(loader.error_bodies[503])
        health = daemon.get("/healthz")[0]
        # The destination comes back while the disk is still full: deliveries go out,
        # their acknowledgements cannot be written yet.
        sink.clear_faults()
        time.sleep(1.5)
        alive_while_full = daemon.alive()
        grow(disk, "64m")
        accepted_before = loader.statuses[200]
        wait_until(
            lambda: (
                loader.statuses[200] > accepted_before + 5
                and loader.acked[-1] in set(sink.message_ids())
            ),
            40,
            "accepting and delivering again after space returned",
        )
        loader.stop()
        acked = set(loader.acked)
        wait_until(lambda: acked <= set(sink.message_ids()), 60, "acknowledged delivered")
        wait_until(lambda: state_counts(state, "relay")["queued"] == 0, 30, "queue drained")
        assert daemon.stop() == 0
        with sqlite3.connect(state) as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        logs = daemon.current_logs()

    report(
        "disk full (2 MiB tmpfs, then grown)",
        acknowledged=len(acked),
        answered_503=loader.statuses[503],
        delivered_unique=len(acked & set(sink.message_ids())),
        integrity_check=integrity,
    )
    assert body["error"] == "storage_unavailable", body
    assert "disk full" in body["message"] and "retry later" in body["message"]
    assert set(loader.retry_after) == {"30"}
    assert health == 200 and alive_while_full
    assert "queue.write_failed" in logs and "database or disk is full" in logs
    assert integrity == "ok"


def corrupt_pages(path: Path) -> None:
    """A real state file with its pages after the first overwritten with garbage."""
    store = Store(path)
    store.enqueue_many([("relay", [orjson.dumps(track(f"c{i}")) for i in range(500)])])
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(page, len(data), page):
        data[offset + 8 : offset + 200] = b"\xa5" * 192
    path.write_bytes(bytes(data))


def foreign(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("create table customers (id integer primary key, email text)")


CORRUPTIONS = {
    "garbage": (lambda p: p.write_bytes(b"this is not a database\n" * 200), "not a database"),
    "foreign sqlite": (foreign, "did not create"),
    "damaged pages": (corrupt_pages, "is damaged"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_unusable_state_file_stops_startup_with_its_name(kind, tmp_path, spawn_daemon):
    make, words = CORRUPTIONS[kind]
    state = tmp_path / "state.db"
    make(state)
    daemon = spawn_daemon(connector("http://127.0.0.1:9"), wait=False)
    code = daemon.process.wait(30)
    logs = daemon.logs()
    assert code == 1, logs
    [event] = [e for e in daemon.log_events() if e.get("event") == "state.unusable"]
    assert str(state) in event["error"]
    assert words in event["error"]
    fix = event["error"].lower()
    assert "point [daemon].state" in fix or "move it aside" in fix


@pytest.mark.parametrize(("durability", "level"), [("process", 1), ("power", 2)])
def test_durability_modes_set_sqlite_synchronous(durability, level, tmp_path):
    """``process``: synchronous=NORMAL (1) in WAL mode, durable across a process crash;
    ``power``: synchronous=FULL (2), every commit fsynced, durable across power loss."""
    store = Store(tmp_path / "state.db", durability=durability)
    try:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == level
    finally:
        store.close()
