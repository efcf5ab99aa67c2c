"""Where warehouse rows are written. Each backend does its I/O on the calling thread;
the destination runs it on one dedicated thread.

- `SQLiteBackend`: a local file (WAL) through sqlite-utils. SQLite keeps any value in
  any column, so nothing needs widening there; the key column is always TEXT.
- `PostgresBackend`: psycopg 3. A new column gets its type from the values of the batch
  that adds it (boolean, bigint, double precision, timestamptz for ISO 8601 text, text);
  a column's type is never changed afterwards: later values that do not fit are kept in
  ``_discards`` (see `fit`). Each batch is COPYed into a temporary table and upserted
  from it in one transaction.
- `DuckDBBackend` (module `duckdb_backend`): a local DuckDB file, typed like PostgreSQL.
- All keep every table within a column budget (`fit.fit_budget`) and tell the
  record's fault (dead letter) from the store's (retry) in `delivery_error`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlite_utils import Database, suggest_column_types
from sqlite_utils.db import quote_identifier

from connectord import PermanentError
from connectord.tables import BIGINT, DOUBLE, EXTRA, TEXT, TIMESTAMPTZ, Rows

from .common import (
    DEFAULT_BUDGET,
    Backend,
    column_types,
    group_by_columns,
    merge_duplicates,
)
from .errors import open_error, postgres_error, sqlite_error
from .fit import DISCARDS, fit_budget, fit_types

__all__ = ["DEFAULT_BUDGET", "Backend", "column_types", "open_backend", "open_error"]

POSTGRES_SCHEMES = ("postgresql", "postgres")
FILE_SCHEMES = ("sqlite", "duckdb")
_EXAMPLES = "sqlite:///path.db, duckdb:///path.duckdb or postgresql://user@host/database"


def validate_url(url: str) -> str:
    """Refuse a URL no backend can open, saying which forms are accepted."""
    scheme = urlparse(url).scheme
    if scheme in POSTGRES_SCHEMES:
        if not urlparse(url).hostname and "host=" not in url:
            raise ValueError("write postgresql://user@host:5432/database")
        return url
    if scheme not in FILE_SCHEMES:
        raise ValueError(f"unsupported warehouse URL scheme {scheme!r}; use {_EXAMPLES}")
    prefix = f"{scheme}:///"
    if not url.startswith(prefix) or len(url) <= len(prefix) or url.endswith("/"):
        raise ValueError(f"write {prefix}relative.db or {prefix}/absolute/path.db (a file)")
    if scheme == "duckdb" and urlparse(url).path in ("/:memory:", "//:memory:"):
        raise ValueError("duckdb:///:memory: keeps nothing; name a file")
    return url


def open_backend(
    url: str,
    base_dir: Path,
    *,
    schema: str = "public",
    password: str | None = None,
    budget: int = DEFAULT_BUDGET,
) -> Backend:
    validate_url(url)
    scheme = urlparse(url).scheme
    if scheme in POSTGRES_SCHEMES:
        return PostgresBackend(url, schema=schema, password=password, budget=budget)
    path = Path(url[len(scheme) + 4 :])
    path = path if path.is_absolute() else base_dir / path
    if scheme == "duckdb":
        from .duckdb_backend import DuckDBBackend  # optional dependency, loaded on use

        return DuckDBBackend(path, schema=schema, budget=budget)
    return SQLiteBackend(path, budget=budget)


# --- SQLite ----------------------------------------------------------------------------


class SQLiteBackend:
    """A local SQLite file (WAL). sqlite-utils creates tables and adds columns as they
    come; rows go in with one prepared ``INSERT ... ON CONFLICT DO UPDATE`` per table
    and column set (``executemany``), all in one transaction per batch."""

    def __init__(self, path: Path, *, budget: int = DEFAULT_BUDGET) -> None:
        self.path = path
        self.budget = budget
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o640))
        self.db = Database(
            sqlite3.connect(str(path), check_same_thread=False, timeout=30), execute_plugins=False
        )
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.columns: dict[str, set[str]] = {}

    def write(self, rows: Rows) -> int:
        for table in rows.tables:
            if table not in self.columns:
                self._repair_key(table, rows.keys[table])
        try:
            with self.db.atomic():
                for table, table_rows in rows.tables.items():
                    key = rows.keys[table]
                    unique = merge_duplicates(table_rows, key)
                    fit_budget(unique, self._known(table), self.budget)
                    self._ensure(table, key, unique)
                    for group in group_by_columns(unique):
                        self._upsert(table, key, group)
        except Exception:
            self.columns.clear()  # DDL was rolled back with the transaction
            raise
        return 0  # SQLite keeps every value as it came

    def _repair_key(self, table: str, key: str) -> None:
        """Make the key column TEXT in a table an earlier version created with an
        ``INTEGER PRIMARY KEY`` (a rowid alias that refuses text ids). sqlite-utils
        rebuilds the table in one transaction and keeps views that read it working."""
        handle = self.db[table]
        if handle.exists() and handle.columns_dict.get(key) is int:
            handle.transform(types={key: str})

    def _known(self, table: str) -> set[str]:
        known = self.columns.get(table)
        if known is None:
            handle = self.db[table]
            known = self.columns[table] = (
                {c.name for c in handle.columns} if handle.exists() else set()
            )
        return known

    def _ensure(self, table: str, key: str, rows: list[dict[str, Any]]) -> None:
        """Create the table or add the columns these rows bring (typed by their values;
        SQLite keeps a value of another type as it is, so nothing is lost later). The
        key column is always TEXT, whatever the first id looked like."""
        known = self._known(table)
        missing: dict[str, None] = {}
        for row in rows:
            for column in row:
                if column not in known and column not in missing:
                    missing[column] = None
        if not missing:
            return
        types = suggest_column_types(
            [{c: row.get(c) for c in missing if row.get(c) is not None} for row in rows]
        )
        types[key] = types[EXTRA] = str
        if not known:
            self.db[table].create(
                {c: types.get(c, str) for c in missing}, pk=key, if_not_exists=True
            )
        else:
            for column in missing:
                self.db[table].add_column(column, types.get(column, str))
            if "uuid_ts" in missing and "_loaded_at" in known:
                # rows loaded before uuid_ts existed: the same instant as _loaded_at
                self.db.execute(
                    f"UPDATE {quote_identifier(table)} SET uuid_ts = _loaded_at "
                    "WHERE uuid_ts IS NULL"
                )
        known.update(missing)

    def _upsert(self, table: str, key: str, group: list[dict[str, Any]]) -> None:
        columns = list(group[0])
        names = ", ".join(quote_identifier(c) for c in columns)
        updates = ", ".join(
            f"{quote_identifier(c)} = excluded.{quote_identifier(c)}" for c in columns if c != key
        )
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        sql = (
            f"INSERT INTO {quote_identifier(table)} ({names}) "
            f"VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT({quote_identifier(key)}) {action}"
        )
        self.db.conn.executemany(sql, [[row[c] for c in columns] for row in group])

    def probe(self) -> None:
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS _connectord_check (id TEXT)")
            conn.execute("INSERT INTO _connectord_check VALUES ('probe')")
        finally:
            conn.execute("ROLLBACK")

    def close(self) -> None:
        self.db.close()

    def describe(self) -> str:
        return f"SQLite file {self.path}"

    def delivery_error(self, err: Exception) -> Exception | None:
        return sqlite_error(err)


# --- PostgreSQL ------------------------------------------------------------------------


_FAMILY = {
    # columns someone altered by hand: coerce to the nearest type we write
    "character varying": TEXT,
    "character": TEXT,
    "integer": BIGINT,
    "smallint": BIGINT,
    "numeric": DOUBLE,
    "real": DOUBLE,
    "timestamp without time zone": TIMESTAMPTZ,
}


def _load_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as err:  # pragma: no cover - depends on the install
        raise PermanentError(
            "PostgreSQL support needs psycopg: pip install 'connectord[postgres]'"
        ) from err
    return psycopg


class PostgresBackend:
    """PostgreSQL through psycopg 3: typed, widening columns; COPY, then upsert."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        password: str | None = None,
        budget: int = DEFAULT_BUDGET,
    ) -> None:
        self.psycopg = _load_psycopg()
        self.budget = budget
        self.url = url
        self.schema = schema
        self._password = password
        self.conn: Any = None
        self.columns: dict[str, dict[str, str]] = {}
        self._stage = 0
        self._connect()

    def _connect(self) -> None:
        extra = {"password": self._password} if self._password is not None else {}
        self.conn = self.psycopg.connect(
            self.url, autocommit=False, connect_timeout=10, application_name="connectord", **extra
        )
        self.columns.clear()
        with self.conn.transaction():
            self.conn.execute(
                self._sql("CREATE SCHEMA IF NOT EXISTS {}").format(self._ident(self.schema))
            )

    def _sql(self, text: str) -> Any:
        return self.psycopg.sql.SQL(text)

    def _ident(self, *names: str) -> Any:
        return self.psycopg.sql.Identifier(*names)

    def _table(self, table: str) -> Any:
        return self._ident(self.schema, table)

    # --- schema ---------------------------------------------------------------------

    def _known_columns(self, table: str) -> dict[str, str]:
        known = self.columns.get(table)
        if known is None:
            found = self.conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (self.schema, table),
            ).fetchall()
            known = self.columns[table] = dict(found)
        return known

    def _ensure(self, table: str, key: str, wanted: dict[str, str | None]) -> dict[str, str]:
        """Create the table and add missing columns; return every column's type. An
        existing column's type is never changed (see `fit`)."""
        known = self._known_columns(table)
        if not known:
            columns = [
                self._sql("{} {}").format(self._ident(c), self._sql(t or TEXT))
                for c, t in wanted.items()
                if c != key
            ]
            self.conn.execute(
                self._sql("CREATE TABLE IF NOT EXISTS {} ({} text PRIMARY KEY{}{})").format(
                    self._table(table),
                    self._ident(key),
                    self._sql(", " if columns else ""),
                    self._sql(", ").join(columns),
                )
            )
            self.columns.pop(table, None)
            known = self._known_columns(table)
        for column, wanted_type in wanted.items():
            if column not in known:
                self.conn.execute(
                    self._sql("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        self._table(table), self._ident(column), self._sql(wanted_type or TEXT)
                    )
                )
                known[column] = wanted_type or TEXT
                if column == "uuid_ts" and "_loaded_at" in known:
                    self._backfill_uuid_ts(table)
        return {c: _FAMILY.get(t, t) for c, t in known.items()}

    def _backfill_uuid_ts(self, table: str) -> None:
        """Rows loaded before ``uuid_ts`` existed get their ``_loaded_at`` (the same
        instant), so Segment-era SQL that filters on ``uuid_ts`` still sees them."""
        self.conn.execute(
            self._sql("UPDATE {} SET uuid_ts = _loaded_at WHERE uuid_ts IS NULL").format(
                self._table(table)
            )
        )

    # --- loading --------------------------------------------------------------------

    def write(self, rows: Rows) -> int:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self._connect()
        try:
            with self.conn.transaction():
                discards: list[dict[str, Any]] = []
                for table, table_rows in rows.tables.items():
                    discards += self._load(table, rows.keys[table], table_rows)
                if discards:
                    self._load(DISCARDS, "id", discards)
        except Exception:
            self.columns.clear()  # DDL was rolled back with the transaction
            raise
        return len(discards)

    def _load(self, table: str, key: str, table_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Upsert one table's rows; return the values that did not fit their columns."""
        unique = merge_duplicates(table_rows, key)
        fit_budget(unique, self._known_columns(table), self.budget)
        types = self._ensure(table, key, column_types(unique, key, self._known_columns(table)))
        discards = fit_types(table, key, unique, types, unique[0].get("_loaded_at"))
        for group in group_by_columns(unique):
            self._upsert(table, key, group)
        return discards if table != DISCARDS else []

    def _upsert(self, table: str, key: str, group: list[dict[str, Any]]) -> None:
        columns = list(group[0])
        self._stage += 1
        stage = self._ident(f"_connectord_stage_{self._stage}")
        names = self._sql(", ").join(self._ident(c) for c in columns)
        self.conn.execute(
            self._sql(
                "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
            ).format(stage, names, self._table(table))
        )
        with self.conn.cursor() as cursor:
            copy_sql = self._sql("COPY {} ({}) FROM STDIN").format(stage, names)
            with cursor.copy(copy_sql) as copy:
                for row in group:
                    copy.write_row([row[c] for c in columns])
        updates = [
            self._sql("{} = EXCLUDED.{}").format(self._ident(c), self._ident(c))
            for c in columns
            if c != key
        ]
        action = (
            self._sql("DO UPDATE SET ") + self._sql(", ").join(updates)
            if updates
            else self._sql("DO NOTHING")
        )
        self.conn.execute(
            self._sql("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) ").format(
                self._table(table), names, names, stage, self._ident(key)
            )
            + action
        )

    def probe(self) -> None:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self._connect()
        with self.conn.transaction():
            check = self._table("_connectord_check")
            self.conn.execute(self._sql("CREATE TABLE IF NOT EXISTS {} (id text)").format(check))
            self.conn.execute(self._sql("INSERT INTO {} VALUES ('probe')").format(check))
            raise self.psycopg.Rollback()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def describe(self) -> str:
        info = urlparse(self.url)
        where = f"{info.hostname or 'localhost'}:{info.port or 5432}{info.path}"
        return f"PostgreSQL {where} (schema {self.schema})"

    def delivery_error(self, err: Exception) -> Exception | None:
        return postgres_error(self.psycopg, err)
