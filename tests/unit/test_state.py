"""The SQLite state file: queue, dead letters, checkpoints, state, locks, safety."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys

import orjson
import pytest

from connectord.errors import StateError
from connectord.state import AsyncStore, DeadLetter, Store, process_token


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "state.db")
    yield store
    store.close()


def test_file_is_private_and_in_wal_mode(tmp_path, store):
    mode = stat.S_IMODE(os.stat(tmp_path / "state.db").st_mode)
    assert mode == 0o600
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_are_recorded_and_idempotent(tmp_path, store):
    again = Store(tmp_path / "state.db")
    names = [
        r[0]
        for r in again.conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = 'connectord'"
        )
    ]
    again.close()
    assert names == ["m001_initial", "m002_run_requests", "m003_ui_history", "m004_leases"]


def test_queue_round_trip_and_range_completion(store):
    store.enqueue_many([("a", [b"1", b"2", b"3"]), ("b", [b"x"])])
    rows = store.read_queue("a", 0, 2)
    assert [r.body for r in rows] == [b"1", b"2"]
    store.complete(
        "a",
        rows[0].id,
        rows[-1].id,
        [DeadLetter("a", b'{"type":"track"}', "bad", "destination")],
        delivered=1,
    )
    assert [r.body for r in store.read_queue("a", 0, 10)] == [b"3"]
    assert store.queue_depth() == {"a": 1, "b": 1}
    counts = store.counters("a")
    assert (counts["received"], counts["delivered"], counts["rejected"]) == (3, 1, 1)


def test_ids_are_never_reused_after_the_queue_empties(store):
    store.enqueue_many([("a", [b"1"])])
    [row] = store.read_queue("a", 0, 10)
    store.complete("a", row.id, row.id, [], 1)
    store.enqueue_many([("a", [b"2"])])
    assert [r.body for r in store.read_queue("a", row.id, 10)] == [b"2"]


def test_dead_letters_replay_and_purge(store):
    store.complete(
        "a",
        0,
        0,
        [DeadLetter("a", orjson.dumps({"n": i}), f"r{i}", "destination") for i in range(3)],
        0,
    )
    listed = store.dead_letters("a")
    assert [d["record"]["n"] for d in listed] == [0, 1, 2]
    assert store.replay_dead_letters("a", [listed[1]["id"]]) == 1
    assert [orjson.loads(r.body)["n"] for r in store.read_queue("a", 0, 10)] == [1]
    assert store.dead_letter_count("a") == 2
    assert store.purge_dead_letters("a") == 2
    assert store.dead_letter_count() == {}


def test_pull_batch_commits_checkpoint_state_and_dead_letters_together(store):
    store.commit_pull_batch(
        "p",
        checkpoint={"day": "2026-01-01"},
        state_namespace="p/src",
        state={"members": ["u1"], "gone": None},
        dead=[DeadLetter("p", b"{}", "why", "validation")],
        delivered=5,
        received=6,
    )
    assert store.checkpoint("p") == {"day": "2026-01-01"}
    assert store.get_state("p/src", ["members", "gone"]) == {"members": ["u1"]}
    assert store.dead_letter_count("p") == 1
    store.commit_pull_batch(
        "p", checkpoint=None, state_namespace="p/src", state=None, dead=[], delivered=0, received=0
    )
    assert store.checkpoint("p") == {"day": "2026-01-01"}, "None keeps the checkpoint"


def test_state_scan_and_delete(store):
    store.set_state("ns", {"user:1": {"a": 1}, "user:2": 2, "other": 3})
    assert store.scan_state("ns", "user:") == {"user:1": {"a": 1}, "user:2": 2}
    store.set_state("ns", {"user:1": None})
    assert store.scan_state("ns", "user:") == {"user:2": 2}


def test_runs_are_recorded(store):
    run = store.start_run("p", "scheduled")
    store.finish_run(run, status="succeeded", records_in=3, records_out=3, rejected=0)
    [last] = store.last_runs("p")
    assert (last.status, last.records_in) == ("succeeded", 3)
    assert store.last_success("p") is not None
    orphan = store.start_run("p", "scheduled")
    assert store.abandon_running("p") == 1
    assert store.last_runs("p")[0].id == orphan
    assert store.last_runs("p")[0].status == "interrupted"


def test_locks_exclude_other_live_processes(tmp_path, store):
    assert store.acquire_lock("connector:a")
    assert store.acquire_lock("connector:a"), "re-entrant for the same process"
    script = (
        "import sys; from connectord.state import Store; "
        "s = Store(sys.argv[1]); print(s.acquire_lock('connector:a'))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "state.db")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert other.stdout.strip() == "False"
    store.release_lock("connector:a")
    other = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "state.db")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert other.stdout.strip() == "True"
    # That process is gone now: its lock is stale and can be taken over.
    assert store.acquire_lock("connector:a")


def test_process_token_distinguishes_dead_processes():
    assert process_token(os.getpid()) is not None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_token(child.pid) is None


def test_a_foreign_sqlite_file_is_refused_by_name(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("create table customers (id integer)")
    with pytest.raises(StateError, match=r"other\.db.*did not create.*customers"):
        Store(path)


def test_a_corrupt_file_is_refused_by_name(tmp_path):
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match=r"broken\.db cannot be used"):
        Store(path)


async def test_group_commit_serves_concurrent_enqueues(tmp_path):
    store = AsyncStore(tmp_path / "state.db")
    await store.open()
    try:
        await asyncio.gather(*(store.enqueue("c", [f"{i}".encode()]) for i in range(200)))
        rows = await store.read(Store.read_queue, "c", 0, 1000)
        assert sorted(int(r.body) for r in rows) == list(range(200))
        assert await store.read(Store.queue_depth, "c") == 200
    finally:
        await store.close()


def test_run_requests_are_taken_once_and_linked_to_their_run(store):
    first = store.request_run("p", full_refresh=True)
    store.request_run("other")
    assert store.pending_run_requests(["p"])
    assert store.take_run_requests(["p"]) == [(first, "p", True)]
    assert store.take_run_requests(["p"]) == [], "a request is served once"
    assert not store.pending_run_requests(["p"]) and store.pending_run_requests(["other"])
    run = store.start_run("p", "manual")
    store.serve_run_request(first, run)
    assert store.run_request(first)["run_id"] == run
    store.commit_pull_batch(
        "p",
        checkpoint=None,
        state_namespace="p/x",
        state=None,
        dead=[],
        delivered=4,
        received=5,
        run_id=run,
    )
    info = store.run(run)
    assert (info.status, info.records_in, info.records_out) == ("running", 5, 4)
