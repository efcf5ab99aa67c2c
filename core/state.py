"""The state database: queue, dead letters, checkpoints, runs, plugin state, locks.

One SQLite file in WAL mode, opened through sqlite-utils. `Store` is the synchronous
interface (used by the CLI and by the daemon's database threads); `AsyncStore` runs it
off the event loop on one writer thread and one reader thread, and commits concurrent
enqueues together (group commit), so a burst of push requests costs one fsync.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlite_utils import Database

from .errors import StateError
from .migrations import MIGRATION_SET, migrations

T = TypeVar("T")
Json = Any


@dataclass(frozen=True)
class QueueRow:
    id: int
    body: bytes


@dataclass(frozen=True)
class DeadLetter:
    """A record the destination (or a mapping) refused for good, with the reason."""

    connector: str
    record: bytes
    reason: str
    stage: str = "destination"


@dataclass(frozen=True)
class RunInfo:
    id: int
    connector: str
    kind: str
    started_at: float
    ended_at: float | None
    status: str
    records_in: int
    records_out: int
    rejected: int
    error: str | None


def _now() -> float:
    return time.time()


def _create_private(path: Path) -> None:
    """Create the file readable by its owner only, before SQLite opens it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


class Store:
    """Synchronous access to the state file. Not thread-safe: one per thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "process",
        create: bool = True,
        readonly: bool = False,
        verify: bool = False,
    ) -> None:
        """:param verify: run ``PRAGMA quick_check`` first (the daemon does at start), so
        that a damaged file is refused by name rather than failing later."""
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise StateError(f"state file {self.path} does not exist (has the daemon run?)")
            _create_private(self.path)
        try:
            conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
            self.db = Database(conn, execute_plugins=False)
            self._configure(durability)
            if verify:
                self._verify()
            self._check_ours()
            if not readonly:
                migrations.apply(self.db)
        except sqlite3.DatabaseError as err:
            raise StateError(
                f"state file {self.path} cannot be used: {err}. If it is not a connectord "
                "state file, point [daemon].state elsewhere; if it is damaged, move it aside "
                "(undelivered records in it would be lost) and restart"
            ) from err

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def _configure(self, durability: str) -> None:
        self.conn.execute("PRAGMA busy_timeout = 30000")
        mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateError(f"state file {self.path}: cannot enable WAL mode (got {mode})")
        sync = "FULL" if durability == "power" else "NORMAL"
        self.conn.execute(f"PRAGMA synchronous = {sync}")

    def _verify(self) -> None:
        problems = [row[0] for row in self.conn.execute("PRAGMA quick_check(5)").fetchall()]
        if problems != ["ok"]:
            raise StateError(
                f"state file {self.path} is damaged (integrity check: {'; '.join(problems)}). "
                "Move it aside and restart (undelivered records in it would be lost), or "
                "restore it from a backup"
            )

    def _check_ours(self) -> None:
        tables = set(self.db.table_names())
        if not tables or ("_sqlite_migrations" in tables and self._has_our_migrations()):
            return
        shown = ", ".join(sorted(tables)[:8])
        raise StateError(
            f"state file {self.path} is an SQLite database that connectord did not create "
            f"(it has tables: {shown}); point [daemon].state at a new file"
        )

    def _has_our_migrations(self) -> bool:
        row = self.conn.execute(
            "SELECT count(*) FROM _sqlite_migrations WHERE migration_set = ?", [MIGRATION_SET]
        ).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        self.db.close()

    # --- queue -----------------------------------------------------------------------

    def enqueue_many(self, items: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        """Append records for one or more connectors in one transaction."""
        now = _now()
        with self.db.atomic():
            for connector, bodies in items:
                self.conn.executemany(
                    "INSERT INTO queue (connector, body, enqueued_at) VALUES (?, ?, ?)",
                    [(connector, body, now) for body in bodies],
                )
                self._bump(connector, received=len(bodies), received_at=now)

    def read_queue(self, connector: str, after: int, limit: int) -> list[QueueRow]:
        rows = self.conn.execute(
            "SELECT id, body FROM queue WHERE connector = ? AND id > ? ORDER BY id LIMIT ?",
            [connector, after, limit],
        ).fetchall()
        return [QueueRow(i, b) for i, b in rows]

    def queue_depth(self, connector: str | None = None) -> int | dict[str, int]:
        if connector is not None:
            row = self.conn.execute(
                "SELECT count(*) FROM queue WHERE connector = ?", [connector]
            ).fetchone()
            return int(row[0])
        return dict(
            self.conn.execute("SELECT connector, count(*) FROM queue GROUP BY connector").fetchall()
        )

    def complete(
        self,
        connector: str,
        first_id: int,
        last_id: int,
        dead: Sequence[DeadLetter],
        delivered: int,
    ) -> None:
        """Drop acknowledged queue rows and keep the dead letters, atomically.

        Rows from ``first_id`` to ``last_id`` of this connector are exactly the batch that
        was read (reads are ordered by id), so a range delete removes that batch only.
        """
        now = _now()
        with self.db.atomic():
            self.conn.execute(
                "DELETE FROM queue WHERE connector = ? AND id BETWEEN ? AND ?",
                [connector, first_id, last_id],
            )
            self._insert_dead(dead, now)
            self._bump(
                connector,
                delivered=delivered,
                rejected=len(dead),
                delivered_at=now if delivered else None,
            )

    # --- dead letters ------------------------------------------------------------------

    def add_dead_letters(self, connector: str, dead: Sequence[DeadLetter]) -> None:
        """Dead letters that never went through the queue (refused at ingest): received
        and rejected at once, so received = delivered + rejected + queued still holds."""
        now = _now()
        with self.db.atomic():
            self._insert_dead(dead, now)
            self._bump(connector, received=len(dead), rejected=len(dead), received_at=now)

    def _insert_dead(self, dead: Sequence[DeadLetter], now: float) -> None:
        if dead:
            self.conn.executemany(
                "INSERT INTO dead_letters (connector, record, reason, stage, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(d.connector, d.record, d.reason, d.stage, now) for d in dead],
            )

    def dead_letters(
        self, connector: str, limit: int | None = None, after: int = 0
    ) -> list[dict[str, Any]]:
        sql = (
            "SELECT id, record, reason, stage, created_at FROM dead_letters "
            "WHERE connector = ? AND id > ? ORDER BY id"
        )
        params: list[Any] = [connector, after]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            {
                "id": i,
                "record": orjson.loads(r),
                "reason": reason,
                "stage": stage,
                "created_at": created,
            }
            for i, r, reason, stage, created in self.conn.execute(sql, params).fetchall()
        ]

    def dead_letter_count(self, connector: str | None = None) -> int | dict[str, int]:
        if connector is not None:
            return int(
                self.conn.execute(
                    "SELECT count(*) FROM dead_letters WHERE connector = ?", [connector]
                ).fetchone()[0]
            )
        return dict(
            self.conn.execute(
                "SELECT connector, count(*) FROM dead_letters GROUP BY connector"
            ).fetchall()
        )

    def replay_dead_letters(self, connector: str, ids: Iterable[int] | None = None) -> int:
        """Move dead letters back into the connector's queue; return how many moved."""
        now = _now()
        where, params = self._dead_filter(connector, ids)
        with self.db.atomic():
            moved = self.conn.execute(
                f"INSERT INTO queue (connector, body, enqueued_at) "
                f"SELECT connector, record, ? FROM dead_letters WHERE {where} ORDER BY id",
                [now, *params],
            ).rowcount
            self.conn.execute(f"DELETE FROM dead_letters WHERE {where}", params)
            self._bump(connector, rejected=-moved)
        return moved

    def purge_dead_letters(self, connector: str, ids: Iterable[int] | None = None) -> int:
        where, params = self._dead_filter(connector, ids)
        with self.db.atomic():
            return self.conn.execute(f"DELETE FROM dead_letters WHERE {where}", params).rowcount

    @staticmethod
    def _dead_filter(connector: str, ids: Iterable[int] | None) -> tuple[str, list[Any]]:
        if ids is None:
            return "connector = ?", [connector]
        return (
            "connector = ? AND id IN (SELECT value FROM json_each(?))",
            [connector, orjson.dumps(sorted(set(ids))).decode()],
        )

    # --- pull runs and checkpoints -----------------------------------------------------

    def checkpoint(self, connector: str) -> Json:
        row = self.conn.execute(
            "SELECT value FROM checkpoints WHERE connector = ?", [connector]
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def checkpoints(self) -> dict[str, Json]:
        return {
            c: orjson.loads(v)
            for c, v in self.conn.execute("SELECT connector, value FROM checkpoints").fetchall()
        }

    def commit_pull_batch(
        self,
        connector: str,
        *,
        checkpoint: Json,
        state_namespace: str,
        state: dict[str, Any] | None,
        dead: Sequence[DeadLetter],
        delivered: int,
        received: int,
        run_id: int | None = None,
    ) -> None:
        """After the destination acknowledged a batch: move the checkpoint, atomically
        with the source's state changes, the dead letters, the counters and the run's
        running totals (which `connectord sync` shows as progress)."""
        now = _now()
        with self.db.atomic():
            if run_id is not None:
                self.conn.execute(
                    "UPDATE runs SET records_in = records_in + ?, records_out = records_out + ?, "
                    "rejected = rejected + ? WHERE id = ?",
                    [received, delivered, len(dead), run_id],
                )
            if checkpoint is not None:
                self.conn.execute(
                    "INSERT INTO checkpoints (connector, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (connector) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at",
                    [connector, orjson.dumps(checkpoint).decode(), now],
                )
            if state:
                self._set_state(state_namespace, state, now)
            self._insert_dead(dead, now)
            self._bump(
                connector,
                received=received,
                delivered=delivered,
                rejected=len(dead),
                received_at=now if received else None,
                delivered_at=now if delivered else None,
            )

    def reset_checkpoint(self, connector: str) -> None:
        with self.db.atomic():
            self.conn.execute("DELETE FROM checkpoints WHERE connector = ?", [connector])

    def start_run(self, connector: str, kind: str) -> int:
        with self.db.atomic():
            cursor = self.conn.execute(
                "INSERT INTO runs (connector, kind, started_at, status) VALUES (?, ?, ?, ?)",
                [connector, kind, _now(), "running"],
            )
        return int(cursor.lastrowid or 0)

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        records_in: int,
        records_out: int,
        rejected: int,
        error: str | None = None,
    ) -> None:
        with self.db.atomic():
            self.conn.execute(
                "UPDATE runs SET ended_at = ?, status = ?, records_in = ?, records_out = ?, "
                "rejected = ?, error = ? WHERE id = ?",
                [_now(), status, records_in, records_out, rejected, error, run_id],
            )

    def abandon_running(self, connector: str) -> int:
        """Mark runs a dead process left 'running' as 'interrupted'.

        Call it while holding the connector's lock: then no live process runs it.
        """
        with self.db.atomic():
            return self.conn.execute(
                "UPDATE runs SET status = 'interrupted', ended_at = ? "
                "WHERE connector = ? AND status = 'running'",
                [_now(), connector],
            ).rowcount

    def run(self, run_id: int) -> RunInfo | None:
        row = self.conn.execute(
            "SELECT id, connector, kind, started_at, ended_at, status, records_in, "
            "records_out, rejected, error FROM runs WHERE id = ?",
            [run_id],
        ).fetchone()
        return RunInfo(*row) if row else None

    # --- run requests (`connectord sync` while the daemon runs the connector) -------

    def request_run(self, connector: str, *, full_refresh: bool = False) -> int:
        with self.db.atomic():
            cursor = self.conn.execute(
                "INSERT INTO run_requests (connector, full_refresh, requested_at) VALUES (?, ?, ?)",
                [connector, int(full_refresh), _now()],
            )
        return int(cursor.lastrowid or 0)

    def pending_run_requests(self, connectors: Iterable[str]) -> bool:
        """Whether any of these connectors has a request waiting (a cheap read)."""
        return (
            self.conn.execute(
                "SELECT 1 FROM run_requests WHERE taken_at IS NULL AND connector IN "
                "(SELECT value FROM json_each(?)) LIMIT 1",
                [orjson.dumps(sorted(connectors)).decode()],
            ).fetchone()
            is not None
        )

    def take_run_requests(self, connectors: Iterable[str]) -> list[tuple[int, str, bool]]:
        """Claim the pending requests for these connectors: ``(id, connector, full_refresh)``."""
        names = orjson.dumps(sorted(connectors)).decode()
        with self.db.atomic():
            rows = self.conn.execute(
                "SELECT id, connector, full_refresh FROM run_requests WHERE taken_at IS NULL "
                "AND connector IN (SELECT value FROM json_each(?)) ORDER BY id",
                [names],
            ).fetchall()
            if rows:
                self.conn.execute(
                    "UPDATE run_requests SET taken_at = ? WHERE id IN "
                    "(SELECT value FROM json_each(?))",
                    [_now(), orjson.dumps([r[0] for r in rows]).decode()],
                )
        return [(i, c, bool(f)) for i, c, f in rows]

    def serve_run_request(self, request_id: int, run_id: int) -> None:
        with self.db.atomic():
            self.conn.execute(
                "UPDATE run_requests SET run_id = ? WHERE id = ?", [run_id, request_id]
            )

    def run_request(self, request_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT connector, requested_at, taken_at, run_id FROM run_requests WHERE id = ?",
            [request_id],
        ).fetchone()
        keys = ("connector", "requested_at", "taken_at", "run_id")
        return dict(zip(keys, row, strict=True)) if row else None

    def last_runs(self, connector: str, limit: int = 1) -> list[RunInfo]:
        rows = self.conn.execute(
            "SELECT id, connector, kind, started_at, ended_at, status, records_in, "
            "records_out, rejected, error FROM runs WHERE connector = ? ORDER BY id DESC LIMIT ?",
            [connector, limit],
        ).fetchall()
        return [RunInfo(*row) for row in rows]

    def last_success(self, connector: str) -> float | None:
        row = self.conn.execute(
            "SELECT max(ended_at) FROM runs WHERE connector = ? AND status = 'succeeded'",
            [connector],
        ).fetchone()
        return row[0] if row else None

    # --- counters ----------------------------------------------------------------------

    def _bump(
        self,
        connector: str,
        *,
        received: int = 0,
        delivered: int = 0,
        rejected: int = 0,
        received_at: float | None = None,
        delivered_at: float | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO counters (connector, received, delivered, rejected, last_received_at, "
            "last_delivered_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (connector) DO UPDATE SET "
            "received = received + excluded.received, delivered = delivered + excluded.delivered,"
            " rejected = max(0, rejected + excluded.rejected), "
            "last_received_at = coalesce(excluded.last_received_at, last_received_at), "
            "last_delivered_at = coalesce(excluded.last_delivered_at, last_delivered_at)",
            [connector, received, delivered, rejected, received_at, delivered_at],
        )

    def counters(self, connector: str) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT received, delivered, rejected, last_received_at, last_delivered_at "
            "FROM counters WHERE connector = ?",
            [connector],
        ).fetchone()
        keys = ("received", "delivered", "rejected", "last_received_at", "last_delivered_at")
        return dict(zip(keys, row or (0, 0, 0, None, None), strict=True))

    # --- plugin state ----------------------------------------------------------------

    def get_state(self, namespace: str, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        out: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self.conn.execute(
                "SELECT key, value FROM state WHERE namespace = ? AND key IN "
                "(SELECT value FROM json_each(?))",
                [namespace, orjson.dumps(chunk).decode()],
            ).fetchall()
            out.update((k, orjson.loads(v)) for k, v in rows)
        return out

    def scan_state(self, namespace: str, prefix: str = "") -> dict[str, Any]:
        rows = self.conn.execute(
            "SELECT key, value FROM state WHERE namespace = ? AND substr(key, 1, ?) = ?",
            [namespace, len(prefix), prefix],
        ).fetchall()
        return {k: orjson.loads(v) for k, v in rows}

    def set_state(self, namespace: str, items: dict[str, Any]) -> None:
        with self.db.atomic():
            self._set_state(namespace, items, _now())

    def _set_state(self, namespace: str, items: dict[str, Any], now: float) -> None:
        deletes = [(namespace, k) for k, v in items.items() if v is None]
        upserts = [
            (namespace, k, orjson.dumps(v).decode(), now) for k, v in items.items() if v is not None
        ]
        if deletes:
            self.conn.executemany("DELETE FROM state WHERE namespace = ? AND key = ?", deletes)
        if upserts:
            self.conn.executemany(
                "INSERT INTO state (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                upserts,
            )

    def clear_state(self, namespace_prefix: str) -> int:
        with self.db.atomic():
            return self.conn.execute(
                "DELETE FROM state WHERE substr(namespace, 1, ?) = ?",
                [len(namespace_prefix), namespace_prefix],
            ).rowcount

    # --- locks ------------------------------------------------------------------------

    def acquire_lock(self, name: str) -> bool:
        """Take a named lock unless another live process holds it.

        Used so that one connector never runs twice at once, e.g. the daemon and a
        `connectord sync` started by hand. A lock left by a dead process is taken over.
        """
        pid, token = os.getpid(), process_token(os.getpid())
        with self.db.atomic():
            row = self.conn.execute(
                "SELECT pid, owner FROM locks WHERE name = ?", [name]
            ).fetchone()
            if row and row[0] != pid and process_token(row[0]) == row[1]:
                return False
            self.conn.execute(
                "INSERT INTO locks (name, owner, pid, acquired_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, pid = excluded.pid, "
                "acquired_at = excluded.acquired_at",
                [name, token, pid, _now()],
            )
        return True

    def release_lock(self, name: str) -> None:
        with self.db.atomic():
            self.conn.execute("DELETE FROM locks WHERE name = ? AND pid = ?", [name, os.getpid()])

    def lock_holder(self, name: str) -> int | None:
        """The pid of the live process holding the lock, if any."""
        row = self.conn.execute("SELECT pid, owner FROM locks WHERE name = ?", [name]).fetchone()
        if row and process_token(row[0]) == row[1]:
            return int(row[0])
        return None


def process_token(pid: int) -> str | None:
    """Identify a process across pid reuse: pid plus its start time (Linux), else pid.

    ``None`` when no such process exists.
    """
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            return f"{pid}:{int(fields[19])}"
        except (OSError, IndexError, ValueError):
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return str(pid)


class AsyncStore:
    """`Store` off the event loop: one writer thread, one reader thread, group commit."""

    def __init__(self, path: str | os.PathLike[str], *, durability: str = "process") -> None:
        self.path = Path(path)
        self.durability = durability
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="connectord-db-write")
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="connectord-db-read")
        self._writer: Store | None = None
        self._reader: Store | None = None
        self._pending: list[tuple[str, list[bytes], asyncio.Future[None]]] = []
        self._flushing = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._writer = await loop.run_in_executor(
            self._writer_pool, partial(Store, self.path, durability=self.durability, verify=True)
        )
        self._reader = await loop.run_in_executor(
            self._reader_pool, partial(Store, self.path, durability=self.durability, readonly=True)
        )

    async def close(self) -> None:
        await self._idle.wait()
        for store, pool in ((self._writer, self._writer_pool), (self._reader, self._reader_pool)):
            if store is not None:
                await asyncio.get_running_loop().run_in_executor(pool, store.close)
            pool.shutdown(wait=True)

    async def write(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(store, *args, **kwargs)`` on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._writer_pool, partial(fn, self._writer, *args, **kwargs)
        )

    async def read(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(store, *args, **kwargs)`` on the reader thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._reader_pool, partial(fn, self._reader, *args, **kwargs)
        )

    async def enqueue(self, connector: str, bodies: list[bytes]) -> None:
        """Commit records to the queue; concurrent callers share one transaction."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((connector, bodies, future))
        if not self._flushing:
            self._flushing = True
            self._idle.clear()
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    await self.write(Store.enqueue_many, [(c, b) for c, b, _ in group])
                except Exception as err:
                    for _, _, future in group:
                        if not future.done():
                            future.set_exception(err)
                else:
                    for _, _, future in group:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._flushing = False
            self._idle.set()


class StateNamespace:
    """The `KeyValueStore` a plugin sees: the state table, scoped to one namespace."""

    def __init__(self, store: AsyncStore, namespace: str) -> None:
        self._store = store
        self.namespace = namespace

    async def get(self, key: str, default: Any = None) -> Any:
        found = await self._store.read(Store.get_state, self.namespace, [key])
        return found.get(key, default)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        return await self._store.read(Store.get_state, self.namespace, list(keys))

    async def set(self, key: str, value: Any) -> None:
        await self._store.write(Store.set_state, self.namespace, {key: value})

    async def set_many(self, items: dict[str, Any]) -> None:
        if items:
            await self._store.write(Store.set_state, self.namespace, dict(items))

    async def delete(self, key: str) -> None:
        await self._store.write(Store.set_state, self.namespace, {key: None})

    async def scan(self, prefix: str = "") -> dict[str, Any]:
        return await self._store.read(Store.scan_state, self.namespace, prefix)


def state_namespace(connector: str, plugin_type: str) -> str:
    return f"{connector}/{plugin_type}"


class MemoryKeyValue:
    """A `KeyValueStore` in a dict: for online checks and tests, never the daemon."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        return {k: self.data[k] for k in keys if k in self.data}

    async def set(self, key: str, value: Any) -> None:
        await self.set_many({key: value})

    async def set_many(self, items: dict[str, Any]) -> None:
        for key, value in items.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = orjson.loads(orjson.dumps(value))

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def scan(self, prefix: str = "") -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k.startswith(prefix)}
