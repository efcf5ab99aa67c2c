"""The queue: records pushed to a connector, kept until its destination acknowledges them."""

from __future__ import annotations

from collections.abc import Sequence

from .dead_letters import DeadLetterOps
from .rows import DeadLetter, QueueRow, now


class QueueOps(DeadLetterOps):
    def enqueue_many(self, items: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        """Append records for one or more connectors in one transaction."""
        at = now()
        with self.db.atomic():
            for connector, bodies in items:
                self.conn.executemany(
                    "INSERT INTO queue (connector, body, enqueued_at) VALUES (?, ?, ?)",
                    [(connector, body, at) for body in bodies],
                )
                self.bump_counters(connector, received=len(bodies), received_at=at)

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
        at = now()
        with self.db.atomic():
            self.conn.execute(
                "DELETE FROM queue WHERE connector = ? AND id BETWEEN ? AND ?",
                [connector, first_id, last_id],
            )
            self.insert_dead_letters(dead, at)
            self.bump_counters(
                connector,
                delivered=delivered,
                rejected=len(dead),
                delivered_at=at if delivered else None,
            )
