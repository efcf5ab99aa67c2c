"""Queue rows by id: what the delivery loop needs to retry rows it held back, and what
operators need to see and drop queued records (``connectord queue list|drop``).

Functions take a `connectord.state.Store` first, so that the daemon runs them on its
database threads (``AsyncStore.read(fn, ...)``) and the command line calls them directly
on the state file while the daemon runs, as ``connectord dlq`` does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from .state import DeadLetter, QueueRow, Store


def _ids(ids: Iterable[int]) -> str:
    return orjson.dumps(sorted(set(ids))).decode()


def read_rows(store: Store, connector: str, ids: Iterable[int]) -> list[QueueRow]:
    """The rows of these ids still queued for ``connector``, in id order."""
    rows = store.conn.execute(
        "SELECT id, body FROM queue WHERE connector = ? AND id IN "
        "(SELECT value FROM json_each(?)) ORDER BY id",
        [connector, _ids(ids)],
    ).fetchall()
    return [QueueRow(i, b) for i, b in rows]


def complete_rows(
    store: Store,
    connector: str,
    ids: Sequence[int],
    dead: Sequence[DeadLetter],
    delivered: int,
) -> int:
    """Drop these acknowledged rows and keep the dead letters, atomically; return how
    many rows were still there (another process may have dropped some meanwhile)."""
    now = time.time()
    with store.db.atomic():
        removed = store.conn.execute(
            "DELETE FROM queue WHERE connector = ? AND id IN (SELECT value FROM json_each(?))",
            [connector, _ids(ids)],
        ).rowcount
        store.insert_dead_letters(dead, now)
        store.bump_counters(
            connector,
            delivered=delivered,
            rejected=len(dead),
            delivered_at=now if delivered else None,
        )
    return int(removed)


def list_rows(
    store: Store, connector: str, *, limit: int | None = 50, after: int = 0
) -> list[dict[str, Any]]:
    """Queued records of ``connector``, oldest first: id, when queued, the record."""
    sql = "SELECT id, body, enqueued_at FROM queue WHERE connector = ? AND id > ? ORDER BY id"
    params: list[Any] = [connector, after]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [
        {"id": i, "enqueued_at": at, "record": decode_body(body)}
        for i, body, at in store.conn.execute(sql, params).fetchall()
    ]


def drop_rows(store: Store, connector: str, ids: Iterable[int] | None = None) -> int:
    """Delete queued records for good (all of the connector's when ``ids`` is None);
    return how many were deleted."""
    with store.db.atomic():
        if ids is None:
            sql, params = "DELETE FROM queue WHERE connector = ?", [connector]
        else:
            sql = "DELETE FROM queue WHERE connector = ? AND id IN (SELECT value FROM json_each(?))"
            params = [connector, _ids(ids)]
        return int(store.conn.execute(sql, params).rowcount)


def queued_connectors(store: Store) -> dict[str, int]:
    """Every connector name with queued records in the state file, and how many."""
    return dict(
        store.conn.execute("SELECT connector, count(*) FROM queue GROUP BY connector").fetchall()
    )


def known_names(store: Store) -> set[str]:
    """Connector names the state file holds queued records or dead letters for."""
    rows = store.conn.execute(
        "SELECT connector FROM queue UNION SELECT connector FROM dead_letters"
    ).fetchall()
    return {name for (name,) in rows}


def orphans(store: Store, running: Iterable[str]) -> dict[str, int]:
    """Queued records of connectors that are not running here (removed from the config
    or disabled): nothing delivers them until the connector is back or they are
    dropped."""
    live = set(running)
    return {name: n for name, n in queued_connectors(store).items() if name not in live}


def decode_body(body: bytes) -> Any:
    """A queued body as its record, or as text when it is not JSON (shown, not lost)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")
