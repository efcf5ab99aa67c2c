"""Leases on one SQLite file shared by OS processes (``[daemon] workers = N``).

Real processes (`sqlite_lease_worker.py`), real signals: a SIGKILLed holder's lease moves
to the other process after its ttl with a higher epoch, and a SIGSTOPped holder that
resumes after losing its lease cannot change anything with its stale epoch.

A holder stopped *inside* a write transaction would keep the file's write lock and block
every writer until it resumes or dies (SQLite's locking, not the lease); the tests stop
the holder between transactions, right after a renewal, where a paused daemon spends
nearly all its time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from connectord.backends import connector_lease
from connectord.backends.sqlite import SqliteBackend

WORKER = Path(__file__).with_name("sqlite_lease_worker.py")
REPO = Path(__file__).resolve().parents[2]
TTL = 1.0
LEASE = connector_lease("c")


class Worker:
    """One worker process and the JSON events it printed."""

    def __init__(self, state: Path, node: str, writes: int) -> None:
        self.node = node
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(state), node, str(TTL), str(writes)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.events: queue.Queue[dict] = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            self.lines.append(line)
            if line.startswith("{"):
                self.events.put(orjson.loads(line))

    def wait_for(self, event: str, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = self.events.get(timeout=left)
            except queue.Empty:
                break
            if got["event"] == event:
                return got
        raise AssertionError(f"{self.node}: no {event!r} within {timeout}s: {self.lines[-20:]}")

    def seen(self, event: str) -> bool:
        return any(f'"event":"{event}"' in line for line in self.lines)

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def workers(tmp_path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def prepared(tmp_path: Path, records: int) -> Path:
    state = tmp_path / "state.db"

    async def setup() -> None:
        db = SqliteBackend(state)
        await db.open()
        await db.enqueue_many([("c", [orjson.dumps({"n": i}) for i in range(records)])])
        await db.close()

    asyncio.run(setup())
    return state


async def observe(state: Path) -> tuple:
    db = SqliteBackend(state)
    await db.open()
    try:
        return (
            await db.checkpoint("c"),
            await db.scan_state("c/src"),
            [r.id for r in await db.read_queue("c", 0, 100)],
            await db.counters("c"),
            await db.holder(LEASE),
        )
    finally:
        await db.close()


def test_a_killed_holder_loses_its_lease_after_the_ttl(tmp_path, workers):
    state = prepared(tmp_path, 0)
    a = Worker(state, "node-a", writes=0)
    workers.append(a)
    assert a.wait_for("acquired")["epoch"] == 1
    b = Worker(state, "node-b", writes=1)
    workers.append(b)
    b.wait_for("started")
    time.sleep(TTL)  # B keeps trying while A renews
    assert not b.seen("acquired")
    a.wait_for("renewed")
    killed = time.time()
    a.signal(signal.SIGKILL)
    took = b.wait_for("acquired")
    assert took["epoch"] == 2
    # A renewed just before it died: its lease ran for most of a ttl after the kill.
    assert took["at"] - killed >= TTL * 0.8
    assert b.wait_for("wrote")["epoch"] == 2
    held = asyncio.run(observe(state))[-1]
    assert (held.node, held.epoch) == ("node-b", 2)


def test_a_stopped_holder_cannot_write_with_its_stale_epoch(tmp_path, workers):
    state = prepared(tmp_path, 10)
    a = Worker(state, "node-a", writes=2)
    workers.append(a)
    assert a.wait_for("acquired")["epoch"] == 1
    a.wait_for("idle")
    a.wait_for("renewed")
    a.signal(signal.SIGSTOP)
    stopped = time.time()
    b = Worker(state, "node-b", writes=1)
    workers.append(b)
    took = b.wait_for("acquired")
    assert took["epoch"] == 2
    assert took["at"] - stopped >= TTL * 0.8
    b.wait_for("idle")
    before = asyncio.run(observe(state))
    checkpoint, plugin_state, queued, counters, held = before
    assert checkpoint == {"node": "node-b", "epoch": 2, "n": 0}
    assert plugin_state == {"last": "node-b"}
    assert len(queued) == 10 - 3  # two rows completed by A, one by B
    assert counters["delivered"] == 3
    assert (held.node, held.epoch) == ("node-b", 2)

    a.signal(signal.SIGCONT)
    assert a.wait_for("lost")["epoch"] == 1
    assert a.wait_for("stale")["epoch"] == 1
    assert a.proc.wait(10) == 0  # it did not report "wrote-stale"
    after = asyncio.run(observe(state))
    assert after[:4] == before[:4]
    assert (after[4].node, after[4].epoch) == ("node-b", 2)


OPEN_AND_ENQUEUE = """
import asyncio, sys
from connectord.backends.sqlite import SqliteBackend

async def main():
    db = SqliteBackend(sys.argv[1])
    await db.open()
    await db.enqueue_many([("c", [b"{}"])])
    await db.close()

asyncio.run(main())
"""


def test_processes_starting_together_all_open_a_new_file(tmp_path):
    """Creating the file, WAL mode and migrations must not race between processes."""
    for attempt in range(3):
        state = tmp_path / f"state-{attempt}.db"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_AND_ENQUEUE, str(state)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
            for _ in range(5)
        ]
        outputs = [p.communicate(timeout=60)[0].decode() for p in procs]
        assert [p.returncode for p in procs] == [0] * 5, outputs
        assert asyncio.run(observe(state))[3]["received"] == 5
