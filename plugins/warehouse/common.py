"""What every warehouse backend shares: its interface, the column budget, and how one
batch's rows are merged, grouped and typed before they are written."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Protocol

from connectord.tables import EXTRA, TEXT, Rows, value_type, widen

DEFAULT_BUDGET = 400  # columns per table: 400 TOAST pointers (18 bytes) fit a PostgreSQL row


class Backend(Protocol):
    def write(self, rows: Rows) -> int:
        """Write the rows; return how many values were kept in ``_discards``."""

    def probe(self) -> None:
        """Write and roll back, to prove the store accepts writes."""

    def close(self) -> None: ...

    def describe(self) -> str: ...

    def delivery_error(self, err: Exception) -> Exception | None:
        """The delivery error ``err`` stands for, or ``None`` if it is unexpected."""


def merge_duplicates(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """One row per key, later values winning column by column (an upsert of the same
    id twice in one batch must behave like two upserts in a row)."""
    merged: dict[Any, dict[str, Any]] = {}
    for row in rows:
        found = merged.get(row[key])
        if found is None:
            merged[row[key]] = row
        else:
            extra = {**(found.get(EXTRA) or {}), **(row.get(EXTRA) or {})}
            found.update(row)
            if extra:
                found[EXTRA] = extra
    return list(merged.values()) if len(merged) != len(rows) else rows


def group_by_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Upsert rows with the same columns together, so a row that lacks a column never
    overwrites a value another load stored there with NULL."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    return list(groups.values())


def column_types(rows: list[dict[str, Any]], key: str, known: Any = ()) -> dict[str, str | None]:
    """The type each column not in ``known`` needs for these rows; ``None`` where every
    value is NULL. The key column is always text."""
    types: dict[str, str | None] = {}
    for row in rows:
        for column, value in row.items():
            if column in known:
                continue
            incoming = value_type(value)
            if column not in types:
                types[column] = incoming
            elif types[column] != incoming:
                types[column] = widen(types[column], incoming)
    types[key] = TEXT
    return types
