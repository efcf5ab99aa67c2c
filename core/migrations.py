"""Named, append-only migrations of the state database.

Never edit or reorder a released migration: add a new one. Applied names are recorded
by sqlite-utils in ``_sqlite_migrations`` under the set ``connectord``.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

MIGRATION_SET = "connectord"
migrations = Migrations(MIGRATION_SET)


@migrations(name="m001_initial")
def m001_initial(db: Database) -> None:
    # AUTOINCREMENT matters: delivery reads the queue with `id > cursor`, and plain
    # rowids are reused once the table empties, which would make the cursor skip rows.
    _execute_all(
        db,
        """
        CREATE TABLE queue (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connector TEXT NOT NULL,
            body BLOB NOT NULL,
            enqueued_at REAL NOT NULL
        );
        CREATE INDEX queue_connector_id ON queue (connector, id);

        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connector TEXT NOT NULL,
            record BLOB NOT NULL,
            reason TEXT NOT NULL,
            stage TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX dead_letters_connector_id ON dead_letters (connector, id);

        CREATE TABLE checkpoints (
            connector TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        );

        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connector TEXT NOT NULL,
            kind TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            status TEXT NOT NULL,
            records_in INTEGER NOT NULL DEFAULT 0,
            records_out INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE INDEX runs_connector_id ON runs (connector, id);

        CREATE TABLE state (
            namespace TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (namespace, key)
        ) WITHOUT ROWID;

        CREATE TABLE counters (
            connector TEXT PRIMARY KEY,
            received INTEGER NOT NULL DEFAULT 0,
            delivered INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            last_received_at REAL,
            last_delivered_at REAL
        );

        CREATE TABLE locks (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            pid INTEGER NOT NULL,
            acquired_at REAL NOT NULL
        );
        """,
    )


@migrations(name="m002_run_requests")
def m002_run_requests(db: Database) -> None:
    # `connectord sync NAME` while the daemon runs NAME: the request is left here, the
    # daemon takes it and records which run served it.
    _execute_all(
        db,
        """
        CREATE TABLE run_requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            connector TEXT NOT NULL,
            full_refresh INTEGER NOT NULL DEFAULT 0,
            requested_at REAL NOT NULL,
            taken_at REAL,
            run_id INTEGER
        );
        CREATE INDEX run_requests_pending ON run_requests (taken_at, connector)
        """,
    )


@migrations(name="m003_ui_history")
def m003_ui_history(db: Database) -> None:
    # The status page's charts: each connector's cumulative counters sampled once a
    # minute (the latest sample of a minute wins), pruned to the last 48 hours.
    _execute_all(
        db,
        """
        CREATE TABLE ui_history (
            connector TEXT NOT NULL,
            minute INTEGER NOT NULL,
            received INTEGER NOT NULL,
            delivered INTEGER NOT NULL,
            rejected INTEGER NOT NULL,
            queue_depth INTEGER NOT NULL,
            PRIMARY KEY (connector, minute)
        ) WITHOUT ROWID
        """,
    )


@migrations(name="m004_leases")
def m004_leases(db: Database) -> None:
    # Several processes on one state file (`connectord.backends.sqlite`): a lease gives a
    # connector's pull runs and queue draining to one of them, and its epoch fences out a
    # holder that lost it. Rows are never deleted, so an epoch never repeats. Times are
    # seconds since the epoch on the machine's clock (one machine shares one file).
    _execute_all(
        db,
        """
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            acquired_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE TABLE nodes (
            node TEXT PRIMARY KEY,
            first_seen_at REAL NOT NULL,
            seen_at REAL NOT NULL,
            expires_at REAL NOT NULL
        )
        """,
    )


def _execute_all(db: Database, script: str) -> None:
    """Run each statement with `execute` (``executescript`` would commit mid-migration)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
