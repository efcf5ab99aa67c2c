"""Where warehouse rows are written. Each backend does its I/O on the calling thread;
the destination runs it on one dedicated thread.

- `SQLiteBackend`: a local file (WAL) through sqlite-utils. SQLite keeps any value in
  any column, so nothing needs widening there.
- `PostgresBackend`: psycopg 3. Columns get types from the values (boolean, bigint,
  double precision, timestamptz for ISO 8601 text, text) and are widened, never
  narrowed, when a later value does not fit: bigint → double precision → text, any
  other mix → text. Each batch is COPYed into a temporary table and upserted from it in
  one transaction.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from sqlite_utils import Database, suggest_column_types
from sqlite_utils.db import quote_identifier

from connectord import AuthError, PermanentError, RetryableError

from .schema import Rows

POSTGRES_SCHEMES = ("postgresql", "postgres")


class Backend(Protocol):
    def write(self, rows: Rows) -> None: ...

    def probe(self) -> None:
        """Write and roll back, to prove the store accepts writes."""

    def close(self) -> None: ...

    def describe(self) -> str: ...

    def delivery_error(self, err: Exception) -> Exception | None:
        """The delivery error ``err`` stands for, or ``None`` if it is unexpected."""


def validate_url(url: str) -> str:
    scheme = urlparse(url).scheme
    if scheme in POSTGRES_SCHEMES:
        if not urlparse(url).hostname and "host=" not in url:
            raise ValueError("write postgresql://user@host:5432/database")
        return url
    if scheme != "sqlite":
        raise ValueError(
            f"unsupported warehouse URL scheme {scheme!r}; use sqlite:///path.db or "
            "postgresql://user@host/database"
        )
    if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
        raise ValueError("write sqlite:///relative.db or sqlite:////absolute/path.db")
    return url


def open_backend(
    url: str, base_dir: Path, *, schema: str = "public", password: str | None = None
) -> Backend:
    validate_url(url)
    if urlparse(url).scheme in POSTGRES_SCHEMES:
        return PostgresBackend(url, schema=schema, password=password)
    path = Path(url[len("sqlite:///") :])
    return SQLiteBackend(path if path.is_absolute() else base_dir / path)


def merge_duplicates(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """One row per key, later values winning column by column (an upsert of the same
    id twice in one batch must behave like two upserts in a row)."""
    merged: dict[Any, dict[str, Any]] = {}
    for row in rows:
        found = merged.get(row.get(key))
        if found is None:
            merged[row.get(key)] = row
        else:
            found.update(row)
    return list(merged.values()) if len(merged) != len(rows) else rows


def group_by_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Upsert rows with the same columns together, so a row that lacks a column never
    overwrites a value another load stored there with NULL."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    return list(groups.values())


# --- SQLite ----------------------------------------------------------------------------


class SQLiteBackend:
    """A local SQLite file (WAL). sqlite-utils creates tables and adds columns as they
    come; rows go in with one prepared ``INSERT ... ON CONFLICT DO UPDATE`` per table
    and column set (``executemany``), all in one transaction per batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o640))
        self.db = Database(
            sqlite3.connect(str(path), check_same_thread=False, timeout=30), execute_plugins=False
        )
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.columns: dict[str, set[str]] = {}

    def write(self, rows: Rows) -> None:
        try:
            with self.db.atomic():
                for table, table_rows in rows.tables.items():
                    key = rows.keys[table]
                    unique = merge_duplicates(table_rows, key)
                    self._ensure(table, key, unique)
                    for group in group_by_columns(unique):
                        self._upsert(table, key, group)
        except Exception:
            self.columns.clear()  # DDL was rolled back with the transaction
            raise

    def _ensure(self, table: str, key: str, rows: list[dict[str, Any]]) -> None:
        """Create the table or add the columns these rows bring (typed by their values;
        SQLite keeps a value of another type as it is, so nothing is lost later)."""
        known = self.columns.get(table)
        if known is None:
            handle = self.db[table]
            known = self.columns[table] = (
                {c.name for c in handle.columns} if handle.exists() else set()
            )
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
        if not known:
            self.db[table].create(
                {c: types.get(c, str) for c in missing}, pk=key, if_not_exists=True
            )
        else:
            for column in missing:
                self.db[table].add_column(column, types.get(column, str))
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
        if isinstance(err, sqlite3.OperationalError):  # locked, disk full, I/O
            return RetryableError(f"warehouse write failed: {err}")
        return None


# --- PostgreSQL ------------------------------------------------------------------------

BOOLEAN, BIGINT, DOUBLE, TIMESTAMPTZ, TEXT = (
    "boolean",
    "bigint",
    "double precision",
    "timestamp with time zone",
    "text",
)
_NUMERIC = frozenset({BIGINT, DOUBLE})
_ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d(:?\d\d)?)$")


def value_type(value: Any) -> str | None:
    """The PostgreSQL type a value asks for; ``None`` for NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return BIGINT
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str) and _ISO_TIME.match(value):
        return TIMESTAMPTZ
    return TEXT


def widen(current: str | None, incoming: str | None) -> str | None:
    """The narrowest type that holds both: bigint and double → double; any other mix
    → text."""
    if current is None or current == incoming:
        return incoming if current is None else current
    if incoming is None:
        return current
    if current in _NUMERIC and incoming in _NUMERIC:
        return DOUBLE
    return TEXT


def column_types(rows: list[dict[str, Any]], key: str) -> dict[str, str | None]:
    """The type each column needs for these rows; ``None`` where every value is NULL.
    The key column is always text."""
    types: dict[str, str | None] = {}
    for row in rows:
        for column, value in row.items():
            incoming = value_type(value)
            if column not in types:
                types[column] = incoming
            elif types[column] != incoming:
                types[column] = widen(types[column], incoming)
    types[key] = TEXT
    return types


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

    def __init__(self, url: str, *, schema: str = "public", password: str | None = None) -> None:
        self.psycopg = _load_psycopg()
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

    def _ensure(self, table: str, key: str, wanted: dict[str, str | None]) -> None:
        """Create the table, add missing columns, widen columns that are too narrow."""
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
            current = known.get(column)
            if current is None:
                self.conn.execute(
                    self._sql("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        self._table(table), self._ident(column), self._sql(wanted_type or TEXT)
                    )
                )
                known[column] = wanted_type or TEXT
            elif wanted_type is not None and widen(current, wanted_type) != current:
                self._widen(table, column, current, widen(current, wanted_type) or TEXT)

    def _widen(self, table: str, column: str, current: str, target: str) -> None:
        name = self._ident(column)
        if target == TEXT and current == TIMESTAMPTZ:
            using = self._sql("to_json({})#>>'{{}}'").format(name)  # stays ISO 8601
        else:
            using = self._sql("{}::" + target).format(name)
        self.conn.execute(
            self._sql("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}").format(
                self._table(table), name, self._sql(target), using
            )
        )
        self.columns[table][column] = target

    # --- loading --------------------------------------------------------------------

    def write(self, rows: Rows) -> None:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self._connect()
        try:
            with self.conn.transaction():
                for table, table_rows in rows.tables.items():
                    key = rows.keys[table]
                    unique = merge_duplicates(table_rows, key)
                    self._ensure(table, key, column_types(unique, key))
                    for group in group_by_columns(unique):
                        self._upsert(table, key, group)
        except Exception:
            self.columns.clear()  # DDL was rolled back with the transaction
            raise

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


_AUTH_STATES = frozenset({"28000", "28P01", "42501"})
_AUTH_WORDS = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|permission denied|"
    r'role "[^"]*" does not exist|password is required'
)


def postgres_error(psycopg: Any, err: Exception) -> Exception | None:
    """Classify a psycopg error: credentials → `AuthError`; connection trouble,
    deadlocks and serialisation failures → `RetryableError`; bad data → `PermanentError`
    (the framework then isolates the records at fault). Never echoes the URL."""
    state = getattr(err, "sqlstate", None) or ""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if state in _AUTH_STATES or _AUTH_WORDS.search(str(err)):
        return AuthError(f"PostgreSQL refused the credentials: {text}")
    if isinstance(err, psycopg.OperationalError | psycopg.InterfaceError) or state.startswith(
        ("08", "40", "53", "57")
    ):
        return RetryableError(f"PostgreSQL unavailable: {text}")
    if isinstance(err, psycopg.DataError | psycopg.IntegrityError | psycopg.ProgrammingError):
        return PermanentError(f"PostgreSQL refused the rows: {text}")
    return None


def open_error(err: Exception) -> Exception:
    """A failure to open the store as a delivery error: refused credentials →
    `AuthError`, anything else (server down, unreachable host, locked file) retryable."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - depends on the install
        psycopg = None
    if psycopg is not None and isinstance(err, psycopg.Error):
        found = postgres_error(psycopg, err)
        if found is not None:
            return found
    first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
    return RetryableError(f"warehouse unavailable: {first}")
