"""Dead letters: records refused for good, kept with the reason until replayed or purged."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from .counters import CounterOps
from .rows import DeadLetter, now


class DeadLetterOps(CounterOps):
    def add_dead_letters(self, connector: str, dead: Sequence[DeadLetter]) -> None:
        """Dead letters that never went through the queue (refused at ingest): received
        and rejected at once, so received = delivered + rejected + queued still holds."""
        at = now()
        with self.db.atomic():
            self.insert_dead_letters(dead, at)
            self.bump_counters(connector, received=len(dead), rejected=len(dead), received_at=at)

    def insert_dead_letters(self, dead: Sequence[DeadLetter], at: float) -> None:
        """Store dead letters without touching the counters: for callers that count them
        in their own transaction (a completed batch, a storage backend)."""
        if dead:
            self.conn.executemany(
                "INSERT INTO dead_letters (connector, record, reason, stage, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(d.connector, d.record, d.reason, d.stage, at) for d in dead],
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
        at = now()
        where, params = _dead_filter(connector, ids)
        with self.db.atomic():
            moved = self.conn.execute(
                f"INSERT INTO queue (connector, body, enqueued_at) "
                f"SELECT connector, record, ? FROM dead_letters WHERE {where} ORDER BY id",
                [at, *params],
            ).rowcount
            self.conn.execute(f"DELETE FROM dead_letters WHERE {where}", params)
            self.bump_counters(connector, rejected=-moved)
        return moved

    def purge_dead_letters(self, connector: str, ids: Iterable[int] | None = None) -> int:
        where, params = _dead_filter(connector, ids)
        with self.db.atomic():
            return self.conn.execute(f"DELETE FROM dead_letters WHERE {where}", params).rowcount


def _dead_filter(connector: str, ids: Iterable[int] | None) -> tuple[str, list[Any]]:
    if ids is None:
        return "connector = ?", [connector]
    return (
        "connector = ? AND id IN (SELECT value FROM json_each(?))",
        [connector, orjson.dumps(sorted(set(ids))).decode()],
    )
