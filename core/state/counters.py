"""Per-connector totals: received, delivered, rejected, and when records last moved.

They are bumped in the same transaction as the change they count, so that
received = delivered + rejected + queued holds at every commit.
"""

from __future__ import annotations

from typing import Any

from .rows import Connected


class CounterOps(Connected):
    def bump_counters(
        self,
        connector: str,
        *,
        received: int = 0,
        delivered: int = 0,
        rejected: int = 0,
        received_at: float | None = None,
        delivered_at: float | None = None,
    ) -> None:
        """Add to the connector's totals. Call it inside the transaction that made the
        change (storage backends do, from their own fenced transactions)."""
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
