"""Which failures are the store's (retry) and which the rows' (dead letter)."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from connectord import AuthError, PermanentError, RetryableError

_SQLITE_TRANSIENT = frozenset(
    # BUSY, LOCKED, NOMEM, READONLY, INTERRUPT, IOERR, CORRUPT, FULL, CANTOPEN,
    # PROTOCOL, NOLFS, AUTH (https://www.sqlite.org/rescode.html): the file's fault
    {5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 22, 23}
)


def sqlite_error(err: Exception) -> Exception | None:
    """The store's trouble (locked, disk full, I/O) → `RetryableError`; anything the
    rows caused (too many columns, too big, mismatch, constraint) → `PermanentError`, so
    the framework isolates the record at fault and dead-letters it with the reason."""
    if not isinstance(err, sqlite3.Error):
        return None
    code = getattr(err, "sqlite_errorcode", None)
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if code is not None and code & 0xFF in _SQLITE_TRANSIENT:
        return RetryableError(f"warehouse write failed: {first}")
    if code is None and isinstance(err, sqlite3.OperationalError):
        return RetryableError(f"warehouse write failed: {first}")  # no code: assume the file
    return PermanentError(f"SQLite refused the rows: {first}")


_AUTH_STATES = frozenset({"28000", "28P01", "42501"})
_AUTH_WORDS = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|permission denied|"
    r'role "[^"]*" does not exist|password is required'
)


def postgres_error(psycopg: Any, err: Exception) -> Exception | None:
    """Classify a psycopg error: credentials → `AuthError`; connection trouble,
    deadlocks, serialisation failures and a full disk (class 53) → `RetryableError`; bad
    data and limits a row exceeds (class 54: row or index entry too big) →
    `PermanentError` (the framework then isolates the records at fault). Never echoes
    the URL."""
    state = getattr(err, "sqlstate", None) or ""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if state in _AUTH_STATES or _AUTH_WORDS.search(str(err)):
        return AuthError(f"PostgreSQL refused the credentials: {text}")
    if state.startswith("54"):  # program limit exceeded: row or index entry too big
        return PermanentError(f"PostgreSQL refused the rows: {text}")
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
