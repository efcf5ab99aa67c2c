"""`SqliteBackend`: `StateBackend` on one SQLite state file, a thin wrapper of `Store`.

`AsyncStore` gives it the threads (one writer, one reader per process); every write runs
in a ``BEGIN IMMEDIATE`` transaction (`sqlite_ops.immediate`), so several processes on one
machine (``[daemon] workers = N``) can share the file: SQLite admits one writer at a time
and the others wait up to the store's busy timeout. Concurrent enqueues of one process
are committed together (group commit), so a burst of push requests costs one fsync.

The queue is cursor-safe without more: write transactions on one file never overlap, so
AUTOINCREMENT ids become visible in the order they were drawn. `complete` still deletes
exactly the ids read, like the PostgreSQL backend.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from connectord import queue as queue_rows
from connectord.state import AsyncStore, Store

from . import DeadLetter, Json, LeaseInfo, QueueRow, RunInfo, connector_lease
from . import sqlite_ops as ops
from .group_commit import GroupCommit

log = structlog.get_logger("connectord.state.sqlite")


class _OneDaemonPerFile:
    """One process per connector on this file (not part of `StateBackend`): what a lone
    daemon uses to refuse running beside a second daemon started on the same file."""

    store: AsyncStore
    if TYPE_CHECKING:  # SqliteBackend's

        async def _write(self, fn: Any, *args: Any, **kwargs: Any) -> Any: ...

    async def lock_connector(self, connector: str) -> bool:
        """The OS-level claim a lone daemon makes on a connector of this file, so that a
        second daemon started on the same file by mistake refuses to run it. Once held,
        the connector's lease is ended whoever holds it, keeping its epoch (the next
        acquisition fences the old holder): the OS lock proves that holder's process is
        gone, so a restart after ``kill -9`` need not wait for its lease to expire."""
        if not await self.store.write(Store.acquire_lock, connector_lease(connector)):
            return False
        await self._write(ops.expire, connector_lease(connector))
        return True

    async def unlock_connector(self, connector: str) -> None:
        await self.store.write(Store.release_lock, connector_lease(connector))

    async def connector_locker(self, connector: str) -> int | None:
        """The pid of the process holding `lock_connector`, if any."""
        return await self.store.read(Store.lock_holder, connector_lease(connector))


class SqliteBackend(_OneDaemonPerFile):
    """`StateBackend` on an SQLite file. Open it before use; one per process."""

    def __init__(self, path: str | os.PathLike[str], *, durability: str = "process") -> None:
        self.path = Path(path)
        self.store = AsyncStore(self.path, durability=durability)
        self._group = GroupCommit(lambda batch: self._write(Store.enqueue_many, batch))
        self._heartbeats: dict[str, float] = {}
        """Each node's last heartbeat from this process, for `leave`."""

    async def open(self) -> None:
        """Processes starting together open the file one at a time: creating the file,
        switching it to WAL and applying migrations are not safe to race (a second
        process sees "database is locked", or half-created tables and refuses the file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:  # a lock on the directory: closing an fd of the database itself would drop
            # SQLite's own locks (https://www.sqlite.org/howtocorrupt.html, section 2.2)
            await asyncio.get_running_loop().run_in_executor(
                None, fcntl.flock, directory, fcntl.LOCK_EX
            )
            await self.store.open()
        finally:
            os.close(directory)  # releases the flock
        log.info("state.opened", backend="sqlite", path=str(self.path))

    async def close(self) -> None:
        await self._group.drain()
        await self.store.close()

    async def _write(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(store, ...)`` on the writer thread, in one IMMEDIATE transaction."""
        return await self.store.write(lambda store: ops.immediate(store, fn, *args, **kwargs))

    async def _read(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await self.store.read(fn, *args, **kwargs)

    # --- queue -----------------------------------------------------------------------
    async def enqueue_many(self, items: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        """Durable on return. Callers that arrive while a commit is under way share the
        next transaction; one call's items always commit together."""
        await self._group.submit([(c, b) for c, b in items if b])

    async def read_queue(self, connector: str, after: int, limit: int) -> list[QueueRow]:
        return await self._read(Store.read_queue, connector, after, limit)

    async def read_rows(self, connector: str, ids: Sequence[int]) -> list[QueueRow]:
        return await self._read(queue_rows.read_rows, connector, list(ids))

    async def list_queue(self, connector: str, limit: int | None = 50) -> list[dict[str, Any]]:
        return await self._read(queue_rows.list_rows, connector, limit=limit)

    async def drop_queue(self, connector: str, ids: Sequence[int] | None = None) -> int:
        return await self._write(queue_rows.drop_rows, connector, _ids(ids))

    async def queue_depth(self, connector: str | None = None) -> int | dict[str, int]:
        return await self._read(Store.queue_depth, connector)

    async def complete(
        self,
        connector: str,
        ids: Sequence[int],
        dead: Sequence[DeadLetter],
        delivered: int,
        *,
        epoch: int,
    ) -> int:
        return await self._write(ops.complete_ids, connector, list(ids), dead, delivered, epoch)

    # --- dead letters ------------------------------------------------------------------
    async def add_dead_letters(self, connector: str, dead: Sequence[DeadLetter]) -> None:
        await self._write(Store.add_dead_letters, connector, dead)

    async def dead_letters(
        self, connector: str, limit: int | None = None, after: int = 0
    ) -> list[dict[str, Any]]:
        return await self._read(Store.dead_letters, connector, limit, after)

    async def dead_letter_count(self, connector: str | None = None) -> int | dict[str, int]:
        return await self._read(Store.dead_letter_count, connector)

    async def replay_dead_letters(self, connector: str, ids: Iterable[int] | None = None) -> int:
        return await self._write(Store.replay_dead_letters, connector, _ids(ids))

    async def purge_dead_letters(self, connector: str, ids: Iterable[int] | None = None) -> int:
        return await self._write(Store.purge_dead_letters, connector, _ids(ids))

    # --- checkpoints -------------------------------------------------------------------
    async def checkpoint(self, connector: str) -> Json:
        return await self._read(Store.checkpoint, connector)

    async def checkpoints(self) -> dict[str, Json]:
        return await self._read(Store.checkpoints)

    async def commit_pull_batch(
        self,
        connector: str,
        *,
        epoch: int,
        checkpoint: Json,
        state_namespace: str,
        state: dict[str, Any] | None,
        dead: Sequence[DeadLetter],
        delivered: int,
        received: int,
        run_id: int | None = None,
    ) -> None:
        await self._write(
            ops.commit_pull_batch,
            connector,
            epoch,
            checkpoint=checkpoint,
            state_namespace=state_namespace,
            state=state,
            dead=dead,
            delivered=delivered,
            received=received,
            run_id=run_id,
        )

    async def reset_checkpoint(self, connector: str) -> None:
        await self._write(Store.reset_checkpoint, connector)

    # --- runs and run requests ---------------------------------------------------------
    async def start_run(self, connector: str, kind: str) -> int:
        return await self._write(Store.start_run, connector, kind)

    async def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        records_in: int,
        records_out: int,
        rejected: int,
        error: str | None = None,
    ) -> None:
        await self._write(
            Store.finish_run,
            run_id,
            status=status,
            records_in=records_in,
            records_out=records_out,
            rejected=rejected,
            error=error,
        )

    async def abandon_running(self, connector: str) -> int:
        return await self._write(Store.abandon_running, connector)

    async def run(self, run_id: int) -> RunInfo | None:
        return await self._read(Store.run, run_id)

    async def last_runs(self, connector: str, limit: int = 1) -> list[RunInfo]:
        return await self._read(Store.last_runs, connector, limit)

    async def last_success(self, connector: str) -> float | None:
        return await self._read(Store.last_success, connector)

    async def request_run(self, connector: str, *, full_refresh: bool = False) -> int:
        return await self._write(Store.request_run, connector, full_refresh=full_refresh)

    async def pending_run_requests(self, connectors: Iterable[str]) -> bool:
        return await self._read(Store.pending_run_requests, list(connectors))

    async def take_run_requests(self, connectors: Iterable[str]) -> list[tuple[int, str, bool]]:
        """The select and the update share one IMMEDIATE transaction: no request is
        taken by two processes."""
        return await self._write(Store.take_run_requests, list(connectors))

    async def serve_run_request(self, request_id: int, run_id: int) -> None:
        await self._write(Store.serve_run_request, request_id, run_id)

    async def run_request(self, request_id: int) -> dict[str, Any] | None:
        return await self._read(Store.run_request, request_id)

    # --- counters and plugin state -----------------------------------------------------
    async def counters(self, connector: str) -> dict[str, Any]:
        return await self._read(Store.counters, connector)

    async def get_state(self, namespace: str, keys: Iterable[str]) -> dict[str, Any]:
        return await self._read(Store.get_state, namespace, list(keys))

    async def scan_state(self, namespace: str, prefix: str = "") -> dict[str, Any]:
        return await self._read(Store.scan_state, namespace, prefix)

    async def set_state(self, namespace: str, items: dict[str, Any]) -> None:
        await self._write(Store.set_state, namespace, dict(items))

    async def clear_state(self, namespace_prefix: str) -> int:
        return await self._write(Store.clear_state, namespace_prefix)

    async def compare_and_set(self, namespace: str, key: str, expected: Any, new: Any) -> bool:
        return await self._write(ops.compare_and_set, namespace, key, expected, new)

    # --- leases and nodes --------------------------------------------------------------
    async def acquire(self, name: str, node: str, ttl: float) -> int | None:
        return await self._write(ops.acquire, name, node, ttl)

    async def renew(self, name: str, node: str, epoch: int, ttl: float) -> bool:
        return await self._write(ops.renew, name, node, epoch, ttl)

    async def release(self, name: str, node: str, epoch: int) -> None:
        await self._write(ops.release, name, node, epoch)

    async def holder(self, name: str) -> LeaseInfo | None:
        return await self._read(ops.holder, name)

    async def heartbeat(self, node: str, ttl: float) -> None:
        self._heartbeats[node] = await self._write(ops.heartbeat, node, ttl)

    async def live_nodes(self) -> list[str]:
        return await self._read(ops.live_nodes)

    async def leave(self, node: str) -> None:
        seen_at = self._heartbeats.pop(node, None)
        if seen_at is not None:
            await self._write(ops.leave, node, seen_at)


def _ids(ids: Iterable[int] | None) -> list[int] | None:
    return None if ids is None else list(ids)
