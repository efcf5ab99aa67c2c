"""`Store`: the state file opened, checked and migrated, with every part's operations.

Each concern (queue, dead letters, checkpoints, runs, counters, plugin state, locks)
lives in its own module as a mixin over one connection; `Store` only opens the file.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from ..errors import StateError
from ..migrations import MIGRATION_SET, migrations
from .checkpoints import CheckpointOps
from .locks import LockOps
from .queue_ops import QueueOps
from .runs import RunOps, RunRequestOps


def _create_private(path: Path) -> None:
    """Create the file readable by its owner only, before SQLite opens it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


class Store(QueueOps, CheckpointOps, RunOps, RunRequestOps, LockOps):
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
