"""Fitting rows to a table that already exists, without ever changing a live column.

- **Column budget.** A table gets at most ``budget`` columns. Columns a table already
  has are always used; a new column is added while there is room; any other value goes,
  under its column name, into the row's one JSON column `EXTRA`. SQLite allows 2000
  columns and PostgreSQL 1600 (and about 8 KB of row), so a record with thousands of
  properties is stored, not refused.
- **Type mismatch** (PostgreSQL). A column's type is chosen once, when it is added
  (Segment's rule: "data types are set up in your warehouse based on the first value";
  changing one takes a support request). A later value that cannot be stored as that
  type without loss is stored as NULL and kept whole in the ``_discards`` table, the
  shape RudderStack uses for ``rudder_discards`` (``row_id``, ``table_name``,
  ``column_name``, ``column_value``, ``received_at``, ``uuid_ts``). No ``ALTER COLUMN
  ... TYPE`` ever runs, so views over the tables (dbt models) never block a load.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from connectord.tables import (
    BIGINT,
    BOOLEAN,
    DOUBLE,
    EXTRA,
    TEXT,
    TIMESTAMPTZ,
    is_time,
    json_text,
    put_extra,
    value_type,
)

DISCARDS = "_discards"  # sql_name never yields a leading underscore before a letter
_MISSING = object()
_NATIVE = {TEXT: str, BIGINT: int, DOUBLE: float, BOOLEAN: bool}
ALWAYS = frozenset(
    # the layout's own columns get a column whatever the budget
    {"id", "_loaded_at", "uuid_ts", "user_id", "anonymous_id", "timestamp", "event"}
    | {"original_timestamp", "sent_at", "received_at", "event_text", "name", "category"}
)


def fit_budget(
    rows: list[dict[str, Any]], known: set[str] | dict[str, Any], budget: int
) -> list[dict[str, Any]]:
    """Move the values of columns beyond the budget into `EXTRA`, then store `EXTRA` as
    JSON text. Deterministic for a given table and batch; ``known`` is not changed."""
    room = max(budget - len(known) - (0 if EXTRA in known else 1), 0)
    added: set[str] = set()
    names = known.keys() if isinstance(known, dict) else known
    for row in rows:
        extra = row.get(EXTRA)
        if extra is None and row.keys() <= names:
            continue  # the common case: every column exists already
        for column in row:
            if column in known or column in added or column == EXTRA:
                continue
            if column in ALWAYS or len(added) < room:
                added.add(column)
        spilled = [c for c in row if c not in known and c not in added and c != EXTRA]
        if spilled:
            extra = dict(extra or {})
            for column in spilled:
                put_extra(extra, column, row.pop(column))
        if extra is not None:
            row[EXTRA] = json_text(extra) if extra else None
    return rows


def as_text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return value if isinstance(value, str) else json_text(value)


def coerce(kind: str, value: Any) -> Any:
    """``value`` as column type ``kind`` without loss, or `_MISSING` if it does not fit."""
    if value is None or kind == TEXT:
        return value if value is None else as_text(value)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == DOUBLE and number:
        return float(value) if float(value) == value else _MISSING
    if kind == BIGINT and number:
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            return _MISSING
        return int(value) if abs(value) < 2**63 else _MISSING
    if kind == BOOLEAN and isinstance(value, bool):
        return value
    if kind == TIMESTAMPTZ and isinstance(value, str):
        return value if value_type(value) == TIMESTAMPTZ else _MISSING
    return _MISSING


def fit_types(
    table: str, key: str, rows: list[dict[str, Any]], types: dict[str, str], loaded_at: Any
) -> list[dict[str, Any]]:
    """Coerce each value to its column's type in place; return a `DISCARDS` row for
    each value that does not fit (its cell becomes NULL). A NUL character, which
    PostgreSQL text cannot hold, becomes U+FFFD."""
    discards: list[dict[str, Any]] = []
    for row in rows:
        for column, value in row.items():
            if value is None:
                continue
            cls = value.__class__
            if cls is str and "\0" in value:
                # PostgreSQL text cannot hold NUL: U+FFFD stands in for it
                value = row[column] = value.replace("\0", "\ufffd")
            kind = types.get(column)
            if kind is None or _NATIVE.get(kind) is cls or column == key:
                continue  # the common case: the value already is the column's type
            if kind == TIMESTAMPTZ and cls is str and is_time(value):
                continue
            fitted = coerce(kind, value)
            if fitted is _MISSING:
                discards.append(discard_row(table, row, key, column, value, loaded_at))
                row[column] = None
            else:
                row[column] = fitted
    return discards


def discard_row(
    table: str, row: dict[str, Any], key: str, column: str, value: Any, loaded_at: Any
) -> dict[str, Any]:
    """One kept value; its id makes a re-load of the same record upsert, not duplicate."""
    row_id = str(row.get(key))
    digest = hashlib.sha256(f"{table}\0{row_id}\0{column}".encode()).hexdigest()[:40]
    return {
        "id": digest,
        "row_id": row_id,
        "table_name": table,
        "column_name": column,
        "column_value": as_text(value),
        "received_at": row.get("received_at"),
        "uuid_ts": loaded_at,
        "_loaded_at": loaded_at,
    }
