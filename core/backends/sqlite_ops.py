"""What `Store` lacks for `StateBackend`, as SQL on a `Store`'s connection.

Every function here runs on the writer thread of one process, inside `immediate`: a
``BEGIN IMMEDIATE`` transaction, which takes the file's write lock before the first read.
SQLite lets one writer at a time into a database file, across threads and processes
alike, so a check (an epoch, an expected value, a lease's expiry) and the write that
depends on it cannot be separated by another process's write. A plain ``BEGIN`` would
read first and could fail with ``SQLITE_BUSY`` when upgrading to a write after another
process committed, without waiting for the busy timeout
(https://www.sqlite.org/lang_transaction.html,
https://www.sqlite.org/rescode.html#busy_snapshot). `Store`'s own ``atomic()`` blocks
nest inside as savepoints.

Lease times are seconds since the epoch on the machine's clock: the processes sharing a
state file share one machine (SQLite's WAL mode does not work over a network file
system, https://www.sqlite.org/wal.html), hence one clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from connectord.state import DeadLetter, Store

from . import LeaseInfo, StaleEpoch, connector_lease

T = TypeVar("T")
# `release` moves expiry here: before any clock reading, and the row (its epoch) stays.
EXPIRED = -1.0


def immediate(store: Store, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(store, ...)`` in one ``BEGIN IMMEDIATE`` transaction; roll back on error."""
    conn = store.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(store, *args, **kwargs)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def fence(store: Store, connector: str, epoch: int) -> None:
    """Go on only while ``epoch`` is the connector lease's epoch (inside `immediate`)."""
    row = store.conn.execute(
        "SELECT 1 FROM leases WHERE name = ? AND epoch = ?", [connector_lease(connector), epoch]
    ).fetchone()
    if row is None:
        raise StaleEpoch(
            f"connector {connector!r}: epoch {epoch} is stale, another node holds the lease"
        )


def complete_ids(
    store: Store,
    connector: str,
    ids: Sequence[int],
    dead: Sequence[DeadLetter],
    delivered: int,
    epoch: int,
) -> int:
    """Fenced `complete` by exact ids (never a range: see `connectord.backends.postgres`)."""
    fence(store, connector, epoch)
    now = time.time()
    removed = store.conn.execute(
        "DELETE FROM queue WHERE connector = ? AND id IN (SELECT value FROM json_each(?))",
        [connector, orjson.dumps(sorted(set(ids))).decode()],
    ).rowcount
    store.insert_dead_letters(dead, now)
    store.bump_counters(
        connector,
        delivered=delivered,
        rejected=len(dead),
        delivered_at=now if delivered else None,
    )
    return removed


def commit_pull_batch(store: Store, connector: str, epoch: int, **batch: Any) -> None:
    fence(store, connector, epoch)
    store.commit_pull_batch(connector, **batch)


def dump_state(value: Any) -> str:
    """Canonical JSON (sorted keys), as `connectord.backends.postgres_runs.dump_state`."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def compare_and_set(store: Store, namespace: str, key: str, expected: Any, new: Any) -> bool:
    """Compare canonical JSON, so key order in the stored text does not matter."""
    row = store.conn.execute(
        "SELECT value FROM state WHERE namespace = ? AND key = ?", [namespace, key]
    ).fetchone()
    current = None if row is None else dump_state(orjson.loads(row[0]))
    if current != (None if expected is None else dump_state(expected)):
        return False
    if new is None:
        store.conn.execute("DELETE FROM state WHERE namespace = ? AND key = ?", [namespace, key])
    else:
        store.conn.execute(
            "INSERT INTO state (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            [namespace, key, dump_state(new), time.time()],
        )
    return True


def acquire(store: Store, name: str, node: str, ttl: float) -> int | None:
    """Free, expired or already ours: take it with the next epoch (one statement)."""
    now = time.time()
    row = store.conn.execute(
        "INSERT INTO leases AS l (name, holder, epoch, acquired_at, expires_at) "
        "VALUES (?1, ?2, 1, ?3, ?3 + ?4) ON CONFLICT (name) DO UPDATE SET "
        "holder = excluded.holder, epoch = l.epoch + 1, acquired_at = excluded.acquired_at, "
        "expires_at = excluded.expires_at WHERE l.expires_at <= ?3 OR l.holder = excluded.holder "
        "RETURNING epoch",
        [name, node, now, float(ttl)],
    ).fetchone()
    return int(row[0]) if row else None


def renew(store: Store, name: str, node: str, epoch: int, ttl: float) -> bool:
    """True while nobody acquired the lease since ``epoch`` (even just after expiry)."""
    return (
        store.conn.execute(
            "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND epoch = ?",
            [time.time() + float(ttl), name, node, epoch],
        ).rowcount
        == 1
    )


def release(store: Store, name: str, node: str, epoch: int) -> None:
    store.conn.execute(
        "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND epoch = ?",
        [EXPIRED, name, node, epoch],
    )


def expire(store: Store, name: str) -> None:
    store.conn.execute("UPDATE leases SET expires_at = ? WHERE name = ?", [EXPIRED, name])


def holder(store: Store, name: str) -> LeaseInfo | None:
    now = time.time()
    row = store.conn.execute(
        "SELECT holder, epoch, expires_at FROM leases WHERE name = ? AND expires_at > ?",
        [name, now],
    ).fetchone()
    return LeaseInfo(name, row[0], int(row[1]), float(row[2]) - now) if row else None


def heartbeat(store: Store, node: str, ttl: float) -> float:
    """Returns the heartbeat's time, which `leave` needs."""
    now = time.time()
    store.conn.execute(
        "INSERT INTO nodes (node, first_seen_at, seen_at, expires_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at, "
        "expires_at = excluded.expires_at",
        [node, now, now, now + float(ttl)],
    )
    return now


def leave(store: Store, node: str, seen_at: float) -> None:
    store.conn.execute("DELETE FROM nodes WHERE node = ? AND seen_at = ?", [node, seen_at])


def live_nodes(store: Store) -> list[str]:
    rows = store.conn.execute(
        "SELECT node FROM nodes WHERE expires_at > ? ORDER BY node", [time.time()]
    ).fetchall()
    return [r[0] for r in rows]
