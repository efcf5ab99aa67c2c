"""Leases and node heartbeats as PostgreSQL rows, on the database's clock.

A lease is (name, holder node, epoch, expires_at). Every change is one conditional
statement evaluated with ``now()`` of the database, so the nodes' clocks never matter.
Acquiring always increases the epoch, even when the same node takes its own lease again
(a restarted process must fence out its previous incarnation). Releasing only expires the
row: rows are never deleted, so an epoch never repeats.

Why not advisory locks: a holder that is paused (SIGSTOP, a long GC, a VM migration)
would keep a session lock for as long as its TCP connection survives, and PgBouncer in
transaction mode hands sessions to other clients.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from . import LeaseInfo, StaleEpoch, connector_lease
from .pg_connect import PgAccess

_ACQUIRE = """
INSERT INTO leases AS l (name, holder, epoch, acquired_at, expires_at)
VALUES (%(name)s, %(node)s, 1, now(), now() + make_interval(secs => %(ttl)s))
ON CONFLICT (name) DO UPDATE
    SET holder = excluded.holder, epoch = l.epoch + 1, acquired_at = now(),
        expires_at = excluded.expires_at
    WHERE l.expires_at <= now() OR l.holder = excluded.holder
RETURNING epoch
"""

_RENEW = """
UPDATE leases SET expires_at = now() + make_interval(secs => %(ttl)s)
WHERE name = %(name)s AND holder = %(node)s AND epoch = %(epoch)s
"""


async def fence(conn: AsyncConnection, connector: str, epoch: int) -> None:
    """Inside a transaction: go on only while ``epoch`` is the connector lease's epoch.

    The row is locked FOR SHARE until the transaction ends, so an acquisition (an UPDATE
    of that row) waits for this write to commit and cannot slip in between the check and
    the write. Raises `StaleEpoch`, rolling the transaction back.
    """
    cursor = await conn.execute(
        "SELECT 1 FROM leases WHERE name = %s AND epoch = %s FOR SHARE",
        [connector_lease(connector), epoch],
    )
    if await cursor.fetchone() is None:
        raise StaleEpoch(
            f"connector {connector!r}: epoch {epoch} is stale, another node holds the lease"
        )


class LeaseMixin(PgAccess):
    _heartbeats: dict[str, Any]
    """Each node's last heartbeat time from this process (the database's), for `leave`."""

    async def acquire(self, name: str, node: str, ttl: float) -> int | None:
        row = await self._row(_ACQUIRE, {"name": name, "node": node, "ttl": float(ttl)})
        return int(row[0]) if row else None

    async def renew(self, name: str, node: str, epoch: int, ttl: float) -> bool:
        """True while nobody acquired the lease since our epoch (even just after expiry:
        then nobody else worked under a newer epoch, and our fenced writes stay valid)."""
        params = {"name": name, "node": node, "epoch": epoch, "ttl": float(ttl)}
        return await self._count(_RENEW, params) == 1

    async def release(self, name: str, node: str, epoch: int) -> None:
        await self._count(
            "UPDATE leases SET expires_at = '-infinity' "
            "WHERE name = %s AND holder = %s AND epoch = %s",
            [name, node, epoch],
        )

    async def holder(self, name: str) -> LeaseInfo | None:
        row = await self._row(
            "SELECT holder, epoch, extract(epoch FROM expires_at - now()) FROM leases "
            "WHERE name = %s AND expires_at > now()",
            [name],
        )
        return LeaseInfo(name, row[0], int(row[1]), float(row[2])) if row else None

    async def heartbeat(self, node: str, ttl: float) -> None:
        row = await self._row(
            "INSERT INTO nodes (node, first_seen_at, seen_at, expires_at) "
            "VALUES (%(node)s, now(), now(), now() + make_interval(secs => %(ttl)s)) "
            "ON CONFLICT (node) DO UPDATE SET seen_at = now(), expires_at = excluded.expires_at "
            "RETURNING seen_at",
            {"node": node, "ttl": float(ttl)},
        )
        if row is not None:
            self._heartbeats[node] = row[0]

    async def live_nodes(self) -> list[str]:
        rows = await self._rows("SELECT node FROM nodes WHERE expires_at > now() ORDER BY node")
        return [r[0] for r in rows]

    async def leave(self, node: str) -> None:
        seen_at = self._heartbeats.pop(node, None)
        if seen_at is not None:
            await self._count("DELETE FROM nodes WHERE node = %s AND seen_at = %s", [node, seen_at])
