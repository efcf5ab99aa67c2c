"""The typed warehouse stores the same tests run against: a real PostgreSQL database and
a real DuckDB file. `query` reads either with the same SQL; column types are reported in
PostgreSQL's names, so one assertion holds for both."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import psycopg

from tests.plugins.clevertap.common import postgres_database

TYPED_STORES = ("postgresql", "duckdb")
_PG_NAMES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
}


@contextmanager
def typed_store(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty store of this kind."""
    if kind == "duckdb":
        yield f"duckdb:///{tmp_path}/warehouse.duckdb"
        return
    with postgres_database() as url:
        yield url


def duck_path(url: str) -> str:
    return url[len("duckdb:///") :]


def query(url: str, sql: str, *args: Any) -> list[tuple]:
    if url.startswith("duckdb:"):
        with duckdb.connect(duck_path(url)) as db:
            found = db.execute(re.sub(r"%s", "?", sql), list(args)).fetchall()
        if "data_type" in sql:
            found = [tuple(_PG_NAMES.get(v, v) for v in row) for row in found]
        return found
    with psycopg.connect(url) as db:
        return db.execute(sql, args).fetchall()


def execute(url: str, sql: str) -> None:
    if url.startswith("duckdb:"):
        with duckdb.connect(duck_path(url)) as db:
            db.execute(sql)
        return
    with psycopg.connect(url) as db:
        db.execute(sql)


def first_row(url: str, table: str) -> dict[str, Any]:
    """The table's first row as a dict of column → value."""
    if url.startswith("duckdb:"):
        with duckdb.connect(duck_path(url)) as db:
            cursor = db.execute(f'SELECT * FROM "{table}" LIMIT 1')
            names = [d[0] for d in cursor.description]
            return dict(zip(names, cursor.fetchone(), strict=True))
    with psycopg.connect(url) as db:
        cursor = db.execute(f'SELECT * FROM "{table}" LIMIT 1')
        names = [d.name for d in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))
