"""PostgreSQL backend, part two: runs, run requests, counters and plugin state.

Times are seconds since the epoch, as in the SQLite store, but taken from the database's
clock (``NOW``) so that every node writes on one clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from psycopg import AsyncConnection

from . import RunInfo
from .pg_connect import PgAccess

NOW = "extract(epoch FROM now())::double precision"
_RUN_COLUMNS = (
    "id, connector, kind, started_at, ended_at, status, records_in, records_out, rejected, error"
)


def dump_state(value: Any) -> str:
    """Canonical JSON (sorted keys), so equal values have equal text: `compare_and_set`
    compares the stored text."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


async def bump(
    conn: AsyncConnection,
    connector: str,
    *,
    received: int = 0,
    delivered: int = 0,
    rejected: int = 0,
) -> None:
    """Add to a connector's counters (inside the caller's transaction)."""
    await conn.execute(
        "INSERT INTO counters AS c (connector, received, delivered, rejected, last_received_at,"
        f" last_delivered_at) VALUES (%(c)s, %(r)s, %(d)s, %(x)s, CASE WHEN %(r)s > 0 THEN {NOW}"
        f" END, CASE WHEN %(d)s > 0 THEN {NOW} END) ON CONFLICT (connector) DO UPDATE SET "
        "received = c.received + excluded.received, delivered = c.delivered + excluded.delivered,"
        " rejected = greatest(0, c.rejected + excluded.rejected), "
        "last_received_at = coalesce(excluded.last_received_at, c.last_received_at), "
        "last_delivered_at = coalesce(excluded.last_delivered_at, c.last_delivered_at)",
        {"c": connector, "r": received, "d": delivered, "x": rejected},
    )


async def write_state(conn: AsyncConnection, namespace: str, items: dict[str, Any]) -> None:
    """Upsert plugin state; None deletes (inside the caller's transaction)."""
    deletes = sorted(k for k, v in items.items() if v is None)
    upserts = sorted((k, dump_state(v)) for k, v in items.items() if v is not None)
    if deletes:
        await conn.execute(
            "DELETE FROM state WHERE namespace = %s AND key = ANY(%s)", [namespace, deletes]
        )
    if upserts:
        await conn.execute(
            f"INSERT INTO state (namespace, key, value, updated_at) SELECT %s, k, v, {NOW} "
            "FROM unnest(%s::text[], %s::text[]) AS u(k, v) ON CONFLICT (namespace, key) "
            "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            [namespace, [k for k, _ in upserts], [v for _, v in upserts]],
        )


class RunsStateMixin(PgAccess):
    # --- runs ------------------------------------------------------------------------
    async def start_run(self, connector: str, kind: str) -> int:
        row = await self._row(
            f"INSERT INTO runs (connector, kind, started_at, status) VALUES (%s, %s, {NOW}, "
            "'running') RETURNING id",
            [connector, kind],
        )
        assert row is not None
        return int(row[0])

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
        await self._count(
            f"UPDATE runs SET ended_at = {NOW}, status = %s, records_in = %s, records_out = %s, "
            "rejected = %s, error = %s WHERE id = %s",
            [status, records_in, records_out, rejected, error, run_id],
        )

    async def abandon_running(self, connector: str) -> int:
        """Mark runs a dead node left 'running' as 'interrupted' (call it holding the
        connector's lease: then no live node runs it)."""
        return await self._count(
            f"UPDATE runs SET status = 'interrupted', ended_at = {NOW} "
            "WHERE connector = %s AND status = 'running'",
            [connector],
        )

    async def run(self, run_id: int) -> RunInfo | None:
        row = await self._row(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = %s", [run_id])
        return RunInfo(*row) if row else None

    async def last_runs(self, connector: str, limit: int = 1) -> list[RunInfo]:
        rows = await self._rows(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE connector = %s ORDER BY id DESC LIMIT %s",
            [connector, limit],
        )
        return [RunInfo(*row) for row in rows]

    async def last_success(self, connector: str) -> float | None:
        row = await self._row(
            "SELECT max(ended_at) FROM runs WHERE connector = %s AND status = 'succeeded'",
            [connector],
        )
        return row[0] if row else None

    # --- run requests ------------------------------------------------------------------
    async def request_run(self, connector: str, *, full_refresh: bool = False) -> int:
        row = await self._row(
            "INSERT INTO run_requests (connector, full_refresh, requested_at) "
            f"VALUES (%s, %s, {NOW}) RETURNING id",
            [connector, full_refresh],
        )
        assert row is not None
        return int(row[0])

    async def pending_run_requests(self, connectors: Iterable[str]) -> bool:
        row = await self._row(
            "SELECT 1 FROM run_requests WHERE taken_at IS NULL AND connector = ANY(%s) LIMIT 1",
            [sorted(connectors)],
        )
        return row is not None

    async def take_run_requests(self, connectors: Iterable[str]) -> list[tuple[int, str, bool]]:
        """Claim pending requests: one UPDATE, so two nodes never take the same one."""
        rows = await self._rows(
            f"UPDATE run_requests SET taken_at = {NOW} WHERE taken_at IS NULL "
            "AND connector = ANY(%s) RETURNING id, connector, full_refresh",
            [sorted(connectors)],
        )
        return sorted((int(i), c, bool(f)) for i, c, f in rows)

    async def serve_run_request(self, request_id: int, run_id: int) -> None:
        await self._count("UPDATE run_requests SET run_id = %s WHERE id = %s", [run_id, request_id])

    async def run_request(self, request_id: int) -> dict[str, Any] | None:
        row = await self._row(
            "SELECT connector, requested_at, taken_at, run_id FROM run_requests WHERE id = %s",
            [request_id],
        )
        keys = ("connector", "requested_at", "taken_at", "run_id")
        return dict(zip(keys, row, strict=True)) if row else None

    # --- counters ----------------------------------------------------------------------
    async def counters(self, connector: str) -> dict[str, Any]:
        row = await self._row(
            "SELECT received, delivered, rejected, last_received_at, last_delivered_at "
            "FROM counters WHERE connector = %s",
            [connector],
        )
        keys = ("received", "delivered", "rejected", "last_received_at", "last_delivered_at")
        return dict(zip(keys, row or (0, 0, 0, None, None), strict=True))

    # --- plugin state ------------------------------------------------------------------
    async def get_state(self, namespace: str, keys: Iterable[str]) -> dict[str, Any]:
        rows = await self._rows(
            "SELECT key, value FROM state WHERE namespace = %s AND key = ANY(%s)",
            [namespace, list(keys)],
        )
        return {k: orjson.loads(v) for k, v in rows}

    async def scan_state(self, namespace: str, prefix: str = "") -> dict[str, Any]:
        rows = await self._rows(
            "SELECT key, value FROM state WHERE namespace = %s AND starts_with(key, %s)",
            [namespace, prefix],
        )
        return {k: orjson.loads(v) for k, v in rows}

    async def set_state(self, namespace: str, items: dict[str, Any]) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await write_state(conn, namespace, items)

    async def clear_state(self, namespace_prefix: str) -> int:
        return await self._count(
            "DELETE FROM state WHERE starts_with(namespace, %s)", [namespace_prefix]
        )

    async def compare_and_set(self, namespace: str, key: str, expected: Any, new: Any) -> bool:
        """One conditional statement each way; under READ COMMITTED PostgreSQL re-checks
        the condition on the newest row version after waiting for a concurrent writer,
        so two racing read-modify-writes cannot both succeed from the same value."""
        params = {"ns": namespace, "key": key}
        where = "namespace = %(ns)s AND key = %(key)s"
        if expected is None and new is None:
            return await self._row(f"SELECT 1 FROM state WHERE {where}", params) is None
        if expected is None:
            sql = (
                "INSERT INTO state (namespace, key, value, updated_at) "
                f"VALUES (%(ns)s, %(key)s, %(new)s, {NOW}) ON CONFLICT (namespace, key) DO NOTHING"
            )
        elif new is None:
            sql = f"DELETE FROM state WHERE {where} AND value = %(old)s"
        else:
            sql = (
                f"UPDATE state SET value = %(new)s, updated_at = {NOW} "
                f"WHERE {where} AND value = %(old)s"
            )
        params["old"] = None if expected is None else dump_state(expected)
        params["new"] = None if new is None else dump_state(new)
        return await self._count(sql, params) == 1
