"""A local DuckDB file as the warehouse, for BI tools on the same machine.

Typed like PostgreSQL: a new column gets its type from the values of the batch that adds
it (BOOLEAN, BIGINT, DOUBLE, TIMESTAMPTZ for ISO 8601 text, VARCHAR); a column's type
never changes afterwards and values that do not fit go to ``_discards`` (see `fit`).
Each table's key column is a VARCHAR primary key; rows are upserted with ``INSERT ...
ON CONFLICT (id) DO UPDATE``, all tables of a batch in one transaction.

One process at a time may open a DuckDB file for writing, and while it is open no other
process can open it, not even read-only (https://duckdb.org/docs/stable/connect/concurrency).
So the backend holds the file only while batches keep coming: it closes it once no batch
has arrived for `RELEASE_AFTER` seconds (and after any failed batch), and between loads
a BI tool may attach the file read-only. While a reader holds it, a load cannot take the
file's lock and is retried later; nothing is lost.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from connectord import PermanentError, RetryableError
from connectord.tables import BIGINT, BOOLEAN, DOUBLE, TEXT, TIMESTAMPTZ, Rows

from .common import DEFAULT_BUDGET, column_types, group_by_columns, merge_duplicates
from .fit import DISCARDS, fit_budget, fit_types

_DUCK_TYPE = {
    TEXT: "VARCHAR",
    BIGINT: "BIGINT",
    DOUBLE: "DOUBLE",
    BOOLEAN: "BOOLEAN",
    TIMESTAMPTZ: "TIMESTAMPTZ",
}
_FAMILY = {
    # DuckDB's names (information_schema.columns.data_type) as the types `fit` knows;
    # columns someone altered by hand map to the nearest type we write
    "VARCHAR": TEXT,
    "BIGINT": BIGINT,
    "INTEGER": BIGINT,
    "SMALLINT": BIGINT,
    "HUGEINT": DOUBLE,
    "DOUBLE": DOUBLE,
    "FLOAT": DOUBLE,
    "BOOLEAN": BOOLEAN,
    "TIMESTAMP WITH TIME ZONE": TIMESTAMPTZ,
    "TIMESTAMP": TIMESTAMPTZ,
}
RELEASE_AFTER = 2.0
"""Seconds without a batch after which the file is closed for readers. Reopening costs
a checkpoint and a catalog load (~0.1-0.3 s), so back-to-back batches keep it open."""

# Failures of the file or the process, not of the rows: try the batch again later.
_STORE_ERRORS = (
    "IOException",
    "OutOfMemoryException",
    "TransactionException",
    "InterruptException",
    "ConnectionException",
    "FatalException",
    "InternalException",
)


def load_duckdb() -> Any:
    try:
        import duckdb
    except ImportError as err:  # pragma: no cover - depends on the install
        raise PermanentError(
            "DuckDB support needs duckdb: pip install 'connectord[duckdb]'"
        ) from err
    return duckdb


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_error(duckdb: Any, err: Exception) -> Exception | None:
    """A locked, full or unreadable file, or a conflicting transaction → `RetryableError`;
    anything the rows caused (a conversion, a constraint, an invalid value) →
    `PermanentError`, so the framework isolates the record at fault and dead-letters it."""
    if not isinstance(err, duckdb.Error):
        return None
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if any(isinstance(err, getattr(duckdb, name, ())) for name in _STORE_ERRORS):
        return RetryableError(f"DuckDB unavailable: {first}")
    return PermanentError(f"DuckDB refused the rows: {first}")


class DuckDBBackend:
    """A DuckDB file, held while batches come and released when they pause, so readers
    can attach it between loads."""

    def __init__(
        self,
        path: Path,
        *,
        schema: str = "main",
        budget: int = DEFAULT_BUDGET,
        release_after: float = RELEASE_AFTER,
    ) -> None:
        self.duckdb = load_duckdb()
        self.path = path
        self.schema = "main" if schema == "public" else schema  # DuckDB's default is main
        self.budget = budget
        self.conn: Any = None
        self.release_after = release_after
        self._lock = threading.Lock()  # the idle timer closes the file from its own thread
        self._timer: threading.Timer | None = None
        self._schema = quote(self.schema)
        self.columns: dict[str, dict[str, str]] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._open()  # fail now on a file that is not DuckDB's, or is locked
        self._release()

    def _open(self) -> Any:
        if self.conn is None:
            self.conn = self.duckdb.connect(str(self.path))
            # names carry the catalog: a file named bi.duckdb is catalog "bi", so a bare
            # "bi"."t" would be ambiguous with schema "bi"
            (catalog,) = self.conn.execute("SELECT current_database()").fetchone()
            self._schema = f"{quote(catalog)}.{quote(self.schema)}"
            if self.schema != "main":
                self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._schema}")
        return self.conn

    def _table(self, table: str) -> str:
        return f"{self._schema}.{quote(table)}"

    def _release_later(self) -> None:
        """Close the file once no batch has come for `release_after` seconds."""
        self._cancel_timer()
        self._timer = threading.Timer(self.release_after, self._idle)
        self._timer.daemon = True
        self._timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _idle(self) -> None:
        with self._lock:
            self._release()

    def _release(self) -> None:
        """Close the file (DuckDB checkpoints its WAL on close) so readers may attach."""
        if self.conn is not None:
            conn, self.conn = self.conn, None
            conn.close()

    # --- schema ---------------------------------------------------------------------

    def _known_columns(self, table: str) -> dict[str, str]:
        known = self.columns.get(table)
        if known is None:
            found = self.conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
                [self.schema, table],
            ).fetchall()
            known = self.columns[table] = {c: _FAMILY.get(t, TEXT) for c, t in found}
        return known

    def _ensure(self, table: str, key: str, wanted: dict[str, str | None]) -> dict[str, str]:
        """Create the table and add missing columns; an existing column keeps its type."""
        known = self._known_columns(table)
        if not known:
            columns = "".join(
                f", {quote(c)} {_DUCK_TYPE[t or TEXT]}" for c, t in wanted.items() if c != key
            )
            self.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table(table)} "
                f"({quote(key)} VARCHAR PRIMARY KEY{columns})"
            )
            self.columns.pop(table, None)
            known = self._known_columns(table)
        for column, wanted_type in wanted.items():
            if column not in known:
                self.conn.execute(
                    f"ALTER TABLE {self._table(table)} ADD COLUMN IF NOT EXISTS "
                    f"{quote(column)} {_DUCK_TYPE[wanted_type or TEXT]}"
                )
                known[column] = wanted_type or TEXT
                if column == "uuid_ts" and "_loaded_at" in known:
                    # rows loaded before uuid_ts existed: the same instant as _loaded_at
                    where = self._table(table)
                    self.conn.execute(
                        f"UPDATE {where} SET uuid_ts = _loaded_at WHERE uuid_ts IS NULL"
                    )
        return known

    # --- loading --------------------------------------------------------------------

    def write(self, rows: Rows) -> int:
        with self._lock:
            self._cancel_timer()
            try:
                discards = self._write(rows)
            except Exception:
                self._release()  # a reader may attach while the batch waits for its retry
                raise
            self._release_later()
            return discards

    def _write(self, rows: Rows) -> int:
        conn = self._open()
        try:
            conn.begin()
            discards: list[dict[str, Any]] = []
            for table, table_rows in rows.tables.items():
                discards += self._load(table, rows.keys[table], table_rows)
            if discards:
                self._load(DISCARDS, "id", discards)
            conn.commit()
        except Exception:
            self.columns.clear()  # DDL was rolled back with the transaction
            with contextlib.suppress(self.duckdb.Error):  # none left if begin or commit failed
                conn.rollback()
            raise
        return len(discards)

    def _load(self, table: str, key: str, table_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Upsert one table's rows; return the values that did not fit their columns."""
        unique = merge_duplicates(table_rows, key)
        fit_budget(unique, self._known_columns(table), self.budget)
        types = self._ensure(table, key, column_types(unique, key, self._known_columns(table)))
        discards = fit_types(table, key, unique, types, unique[0].get("_loaded_at"))
        for group in group_by_columns(unique):
            self._upsert(table, key, group, types)
        return discards if table != DISCARDS else []

    def _upsert(
        self, table: str, key: str, group: list[dict[str, Any]], types: dict[str, str]
    ) -> None:
        columns = list(group[0])
        names = ", ".join(quote(c) for c in columns)
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c != key)
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        # one statement per group: each column goes in as one typed list, unnested side
        # by side (VARCHAR text is cast to TIMESTAMPTZ by DuckDB)
        values = ", ".join(
            "CAST(unnest(?::VARCHAR[]) AS TIMESTAMPTZ)"
            if types.get(c) == TIMESTAMPTZ
            else f"unnest(?::{_DUCK_TYPE[types.get(c) or TEXT]}[])"
            for c in columns
        )
        self.conn.execute(
            f"INSERT INTO {self._table(table)} ({names}) SELECT {values} "
            f"ON CONFLICT ({quote(key)}) {action}",
            [[row[c] for row in group] for c in columns],
        )

    # --- the rest of the interface --------------------------------------------------

    def probe(self) -> None:
        with self._lock:
            conn = self._open()
            try:
                conn.begin()
                check = self._table("_connectord_check")
                conn.execute(f"CREATE TABLE IF NOT EXISTS {check} (id VARCHAR)")
                conn.execute(f"INSERT INTO {check} VALUES ('probe')")
                conn.rollback()
            finally:
                self._release()

    def close(self) -> None:
        with self._lock:
            self._cancel_timer()
            self._release()

    def describe(self) -> str:
        return f"DuckDB file {self.path} (schema {self.schema})"

    def delivery_error(self, err: Exception) -> Exception | None:
        return duckdb_error(self.duckdb, err)
