"""Pull runs, and run requests (`connectord sync` while the daemon runs the connector)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from .rows import Connected, RunInfo, now


class RunOps(Connected):
    def start_run(self, connector: str, kind: str) -> int:
        with self.db.atomic():
            cursor = self.conn.execute(
                "INSERT INTO runs (connector, kind, started_at, status) VALUES (?, ?, ?, ?)",
                [connector, kind, now(), "running"],
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
                [now(), status, records_in, records_out, rejected, error, run_id],
            )

    def abandon_running(self, connector: str) -> int:
        """Mark runs a dead process left 'running' as 'interrupted'.

        Call it while holding the connector's lock: then no live process runs it.
        """
        with self.db.atomic():
            return self.conn.execute(
                "UPDATE runs SET status = 'interrupted', ended_at = ? "
                "WHERE connector = ? AND status = 'running'",
                [now(), connector],
            ).rowcount

    def run(self, run_id: int) -> RunInfo | None:
        row = self.conn.execute(
            "SELECT id, connector, kind, started_at, ended_at, status, records_in, "
            "records_out, rejected, error FROM runs WHERE id = ?",
            [run_id],
        ).fetchone()
        return RunInfo(*row) if row else None

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


class RunRequestOps(Connected):
    """Requests from another process to run a connector now: the daemon, which holds
    the connector's lock, takes them and records which run served each."""

    def request_run(self, connector: str, *, full_refresh: bool = False) -> int:
        with self.db.atomic():
            cursor = self.conn.execute(
                "INSERT INTO run_requests (connector, full_refresh, requested_at) VALUES (?, ?, ?)",
                [connector, int(full_refresh), now()],
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
                    [now(), orjson.dumps([r[0] for r in rows]).decode()],
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
