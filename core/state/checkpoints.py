"""Pull checkpoints: where each source resumes, moved only once a batch is delivered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from .dead_letters import DeadLetterOps
from .kv import KeyValueOps
from .rows import DeadLetter, Json, now


class CheckpointOps(DeadLetterOps, KeyValueOps):
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
        at = now()
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
                    [connector, orjson.dumps(checkpoint).decode(), at],
                )
            if state:
                self._set_state(state_namespace, state, at)
            self.insert_dead_letters(dead, at)
            self.bump_counters(
                connector,
                received=received,
                delivered=delivered,
                rejected=len(dead),
                received_at=at if received else None,
                delivered_at=at if delivered else None,
            )

    def reset_checkpoint(self, connector: str) -> None:
        with self.db.atomic():
            self.conn.execute("DELETE FROM checkpoints WHERE connector = ?", [connector])
