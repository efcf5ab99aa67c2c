"""SQLite-only: the transaction discipline the conformance suite cannot see from outside."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from connectord.backends import connector_lease
from connectord.backends import sqlite_ops as ops
from connectord.backends.sqlite import SqliteBackend
from connectord.state import Store

LEASE = connector_lease("c")


def test_a_steal_waits_for_a_fenced_write_in_flight(tmp_path):
    """The fence runs inside BEGIN IMMEDIATE: the write lock is held from the epoch
    check to the commit, so another connection's acquisition cannot slip in between."""
    holder, thief = Store(tmp_path / "state.db"), Store(tmp_path / "state.db")
    epoch = ops.immediate(holder, ops.acquire, LEASE, "node-a", 0.1)
    checked, go_on = threading.Event(), threading.Event()

    def fenced_write(store: Store) -> None:
        ops.fence(store, "c", epoch)
        checked.set()
        assert go_on.wait(10)
        store.set_state("c/src", {"by": "node-a"})

    with ThreadPoolExecutor(2) as pool:
        write = pool.submit(ops.immediate, holder, fenced_write)
        assert checked.wait(10)
        time.sleep(0.2)  # the lease expires while the write is in flight
        steal = pool.submit(ops.immediate, thief, ops.acquire, LEASE, "node-b", 30)
        time.sleep(0.3)
        assert not steal.done()
        go_on.set()
        write.result(10)
        assert steal.result(10) == epoch + 1
    assert thief.get_state("c/src", ["by"]) == {"by": "node-a"}
    holder.close()
    thief.close()


def test_a_failed_write_rolls_back_everything(tmp_path):
    store = Store(tmp_path / "state.db")

    def half(s: Store) -> None:
        s.set_state("ns", {"k": 1})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        ops.immediate(store, half)
    assert not store.conn.in_transaction
    assert store.get_state("ns", ["k"]) == {}
    store.close()


async def test_concurrent_enqueues_share_transactions(tmp_path, monkeypatch):
    """Group commit is kept: a burst of push requests costs a few commits, not one each,
    and a failed commit fails every caller it carried (none is told 'durable')."""
    backend = SqliteBackend(tmp_path / "state.db")
    await backend.open()
    commits: list[int] = []
    original = Store.enqueue_many

    def counted(store: Store, items: list) -> None:
        commits.append(len(items))
        if any(connector == "broken" for connector, _ in items):
            raise sqlite3.OperationalError("disk I/O error")
        original(store, items)

    monkeypatch.setattr(Store, "enqueue_many", counted)
    try:
        await asyncio.gather(*(backend.enqueue_many([("c", [b"{}"])]) for _ in range(100)))
        assert await backend.queue_depth("c") == 100
        assert len(commits) < 10
        commits.clear()
        calls = [backend.enqueue_many([("broken" if i == 0 else "c", [b"{}"])]) for i in range(5)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert commits == [5]
        assert all(isinstance(r, sqlite3.OperationalError) for r in results)
        assert await backend.queue_depth("c") == 100
    finally:
        await backend.close()
