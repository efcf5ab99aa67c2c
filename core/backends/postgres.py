"""`PostgresBackend`: the daemon's state in a PostgreSQL database that several daemons share.

The queue and its trap. Ids come from one identity sequence, and with two writers
PostgreSQL commits them out of id order: writer A draws id 10, writer B draws 11 and
commits first. A reader that saw 11 and moved its cursor past it would never see 10, and
a range delete ``BETWEEN first AND last`` would remove 10 unseen. Two rules close it:

1. every insert into a connector's queue first locks that connector's ``queue_heads``
   row (``FOR UPDATE``, held to commit), so within one connector ids are drawn and made
   visible one transaction at a time, in order: when a reader sees id N, every lower id
   of that connector is visible already or was rolled back, and ``id > cursor`` is safe;
2. `complete` deletes exactly the ids that were read, never a range.

Rule 1 costs nothing the counters did not cost already: each enqueue updates the
connector's counters row, which serialised concurrent enqueues of one connector anyway.
Connectors never wait for each other.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import structlog
from psycopg import AsyncConnection

from connectord.queue import decode_body

from . import DeadLetter, Json, QueueRow
from .group_commit import GroupCommit
from .leases import LeaseMixin, fence
from .pg_connect import ConnectionPool, conninfo, redacted_url
from .postgres_migrations import apply as apply_migrations
from .postgres_runs import NOW, RunsStateMixin, bump, write_state

log = structlog.get_logger("connectord.state.postgres")


class _MissingHead(Exception):
    """A queue_heads row is missing: without it the insert would not be ordered."""


async def _lock_queues(conn: AsyncConnection, connectors: Sequence[str]) -> None:
    """Rule 1 above. Sorted, so two multi-connector enqueues cannot deadlock."""
    wanted = sorted(set(connectors))
    cursor = await conn.execute(
        "SELECT connector FROM queue_heads WHERE connector = ANY(%s) ORDER BY connector FOR UPDATE",
        [wanted],
    )
    if len(await cursor.fetchall()) != len(wanted):
        raise _MissingHead()


async def _insert_dead(conn: AsyncConnection, dead: Sequence[DeadLetter]) -> None:
    if dead:
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO dead_letters (connector, record, reason, stage, created_at) "
                f"VALUES (%s, %s, %s, %s, {NOW})",
                [(d.connector, d.record, d.reason, d.stage) for d in dead],
            )


def _dead_filter(connector: str, ids: Iterable[int] | None) -> tuple[str, list[Any]]:
    if ids is None:
        return "connector = %s", [connector]
    return "connector = %s AND id = ANY(%s)", [connector, sorted(set(ids))]


class PostgresBackend(LeaseMixin, RunsStateMixin):
    """`StateBackend` on PostgreSQL (psycopg 3, async). Open it before use."""

    def __init__(
        self,
        url: str,
        *,
        password_file: str | os.PathLike[str] | None = None,
        pool_size: int = 4,
        migrate: bool = True,
    ) -> None:
        self.url = url
        self._pool = ConnectionPool(conninfo(url, password_file=password_file), pool_size)
        self._migrate = migrate
        self._known_heads: set[str] = set()
        self._heartbeats = {}
        self._group = GroupCommit(self._enqueue_group)

    def redacted_url(self) -> str:
        return redacted_url(self.url)

    async def open(self) -> None:
        if self._migrate:
            async with self._pool.connection() as conn:
                applied = await apply_migrations(conn)
            if applied:
                log.info("state.migrated", url=self.redacted_url(), migrations=applied)
        log.info("state.opened", backend="postgresql", url=self.redacted_url())

    async def close(self) -> None:
        await self._group.drain()
        await self._pool.close()

    # --- queue -----------------------------------------------------------------------
    async def _ensure_heads(self, connectors: Iterable[str]) -> None:
        """Create missing queue_heads rows in their own transaction, so the enqueue's
        transaction only locks existing rows (inserting there could deadlock)."""
        new = sorted(set(connectors) - self._known_heads)
        if new:
            await self._count(
                "INSERT INTO queue_heads (connector) SELECT unnest(%s::text[]) "
                "ON CONFLICT DO NOTHING",
                [new],
            )
            self._known_heads.update(new)

    async def enqueue_many(self, items: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        """Append records for one or more connectors in one transaction, with COPY;
        concurrent callers share it (`GroupCommit`): one turn of each connector's queue
        lock and one WAL flush for a burst of requests."""
        await self._group.submit([(c, b) for c, b in items if b])

    async def _enqueue_group(self, items: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        try:
            await self._enqueue(items)
        except _MissingHead:  # rows are never deleted; someone did: make them again
            self._known_heads.clear()
            await self._enqueue(items)

    async def _enqueue(self, items: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        await self._ensure_heads(c for c, _ in items)
        async with self._pool.connection() as conn, conn.transaction():
            await _lock_queues(conn, [c for c, _ in items])
            async with (
                conn.cursor() as cursor,
                cursor.copy("COPY queue (connector, body) FROM STDIN") as copy,
            ):
                for connector, bodies in items:
                    for body in bodies:
                        await copy.write_row((connector, body))
            totals: dict[str, int] = {}
            for connector, bodies in items:
                totals[connector] = totals.get(connector, 0) + len(bodies)
            for connector in sorted(totals):
                await bump(conn, connector, received=totals[connector])

    async def read_queue(self, connector: str, after: int, limit: int) -> list[QueueRow]:
        rows = await self._rows(
            "SELECT id, body FROM queue WHERE connector = %s AND id > %s ORDER BY id LIMIT %s",
            [connector, after, limit],
        )
        return [QueueRow(int(i), bytes(b)) for i, b in rows]

    async def read_rows(self, connector: str, ids: Sequence[int]) -> list[QueueRow]:
        rows = await self._rows(
            "SELECT id, body FROM queue WHERE connector = %s AND id = ANY(%s) ORDER BY id",
            [connector, sorted(set(ids))],
        )
        return [QueueRow(int(i), bytes(b)) for i, b in rows]

    async def list_queue(self, connector: str, limit: int | None = 50) -> list[dict[str, Any]]:
        rows = await self._rows(
            "SELECT id, body, enqueued_at FROM queue WHERE connector = %s ORDER BY id LIMIT %s",
            [connector, limit],
        )
        return [
            {"id": int(i), "enqueued_at": float(at), "record": decode_body(bytes(body))}
            for i, body, at in rows
        ]

    async def drop_queue(self, connector: str, ids: Sequence[int] | None = None) -> int:
        if ids is None:
            return await self._count("DELETE FROM queue WHERE connector = %s", [connector])
        return await self._count(
            "DELETE FROM queue WHERE connector = %s AND id = ANY(%s)",
            [connector, sorted(set(ids))],
        )

    async def queue_depth(self, connector: str | None = None) -> int | dict[str, int]:
        if connector is not None:
            row = await self._row("SELECT count(*) FROM queue WHERE connector = %s", [connector])
            return int(row[0]) if row else 0
        rows = await self._rows("SELECT connector, count(*) FROM queue GROUP BY connector")
        return {c: int(n) for c, n in rows}

    async def complete(
        self,
        connector: str,
        ids: Sequence[int],
        dead: Sequence[DeadLetter],
        delivered: int,
        *,
        epoch: int,
    ) -> int:
        async with self._pool.connection() as conn, conn.transaction():
            await fence(conn, connector, epoch)
            cursor = await conn.execute(
                "DELETE FROM queue WHERE connector = %s AND id = ANY(%s)",
                [connector, sorted(set(ids))],
            )
            removed = cursor.rowcount
            await _insert_dead(conn, dead)
            await bump(conn, connector, delivered=delivered, rejected=len(dead))
        return removed

    # --- dead letters ------------------------------------------------------------------
    async def add_dead_letters(self, connector: str, dead: Sequence[DeadLetter]) -> None:
        """Like `Store.add_dead_letters`: received = delivered + rejected + queued holds."""
        async with self._pool.connection() as conn, conn.transaction():
            await _insert_dead(conn, dead)
            await bump(conn, connector, received=len(dead), rejected=len(dead))

    async def dead_letters(
        self, connector: str, limit: int | None = None, after: int = 0
    ) -> list[dict[str, Any]]:
        rows = await self._rows(
            "SELECT id, record, reason, stage, created_at FROM dead_letters "
            "WHERE connector = %s AND id > %s ORDER BY id LIMIT %s",
            [connector, after, limit],
        )
        return [
            {
                "id": int(i),
                "record": orjson.loads(bytes(r)),
                "reason": reason,
                "stage": stage,
                "created_at": created,
            }
            for i, r, reason, stage, created in rows
        ]

    async def dead_letter_count(self, connector: str | None = None) -> int | dict[str, int]:
        if connector is not None:
            row = await self._row(
                "SELECT count(*) FROM dead_letters WHERE connector = %s", [connector]
            )
            return int(row[0]) if row else 0
        rows = await self._rows("SELECT connector, count(*) FROM dead_letters GROUP BY connector")
        return {c: int(n) for c, n in rows}

    async def replay_dead_letters(self, connector: str, ids: Iterable[int] | None = None) -> int:
        """Move dead letters back into the queue (under the queue lock, like any insert)."""
        where, params = _dead_filter(connector, ids)
        self._known_heads.discard(connector)
        await self._ensure_heads([connector])
        async with self._pool.connection() as conn, conn.transaction():
            await _lock_queues(conn, [connector])
            cursor = await conn.execute(
                f"WITH moved AS (DELETE FROM dead_letters WHERE {where} "
                "RETURNING id, connector, record) INSERT INTO queue (connector, body, enqueued_at)"
                f" SELECT connector, record, {NOW} FROM moved ORDER BY id",
                params,
            )
            moved = cursor.rowcount
            await bump(conn, connector, rejected=-moved)
        return moved

    async def purge_dead_letters(self, connector: str, ids: Iterable[int] | None = None) -> int:
        where, params = _dead_filter(connector, ids)
        return await self._count(f"DELETE FROM dead_letters WHERE {where}", params)

    # --- checkpoints -------------------------------------------------------------------
    async def checkpoint(self, connector: str) -> Json:
        row = await self._row("SELECT value FROM checkpoints WHERE connector = %s", [connector])
        return orjson.loads(row[0]) if row else None

    async def checkpoints(self) -> dict[str, Json]:
        rows = await self._rows("SELECT connector, value FROM checkpoints")
        return {c: orjson.loads(v) for c, v in rows}

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
        async with self._pool.connection() as conn, conn.transaction():
            await fence(conn, connector, epoch)
            if run_id is not None:
                await conn.execute(
                    "UPDATE runs SET records_in = records_in + %s, records_out = records_out + "
                    "%s, rejected = rejected + %s WHERE id = %s",
                    [received, delivered, len(dead), run_id],
                )
            if checkpoint is not None:
                await conn.execute(
                    f"INSERT INTO checkpoints (connector, value, updated_at) VALUES (%s, %s, {NOW})"
                    " ON CONFLICT (connector) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at",
                    [connector, orjson.dumps(checkpoint).decode()],
                )
            if state:
                await write_state(conn, state_namespace, state)
            await _insert_dead(conn, dead)
            await bump(conn, connector, received=received, delivered=delivered, rejected=len(dead))

    async def reset_checkpoint(self, connector: str) -> None:
        await self._count("DELETE FROM checkpoints WHERE connector = %s", [connector])
