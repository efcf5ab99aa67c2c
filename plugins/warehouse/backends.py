"""Where warehouse rows are written. Each backend does its I/O on the calling thread;
the destination runs it on one dedicated thread."""

from __future__ import annotations

import os
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from sqlite_utils import Database

from .schema import Rows


class Backend(Protocol):
    transient_errors: tuple[type[BaseException], ...]

    def write(self, rows: Rows) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> str: ...


def validate_url(url: str) -> str:
    scheme = urlparse(url).scheme
    if scheme != "sqlite":
        raise ValueError(f"unsupported warehouse URL scheme {scheme!r}; use sqlite:///path.db")
    if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
        raise ValueError("write sqlite:///relative.db or sqlite:////absolute/path.db")
    return url


def open_backend(url: str, base_dir: Path) -> Backend:
    validate_url(url)
    path = Path(url[len("sqlite:///") :])
    return SQLiteBackend(path if path.is_absolute() else base_dir / path)


def _group_by_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Upsert rows with the same columns together, so a row that lacks a column never
    overwrites a value another load stored there with NULL."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    return list(groups.values())


class SQLiteBackend:
    """A local SQLite file (WAL) through sqlite-utils; new columns are added as they come."""

    transient_errors = (sqlite3.OperationalError,)

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

    def write(self, rows: Rows) -> None:
        with self.db.atomic():
            for table, table_rows in rows.tables.items():
                key = rows.keys[table]
                for group in _group_by_columns(table_rows):
                    self.db[table].upsert_all(group, pk=key, alter=True, batch_size=500)

    def close(self) -> None:
        self.db.close()

    def describe(self) -> str:
        return f"SQLite file {self.path}"
