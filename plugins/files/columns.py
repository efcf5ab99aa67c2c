"""Each stream's column order and types, learned from its rows and kept in state.

Every part file of a stream starts its header with the previous part's columns, so
loaders that map columns by position keep working; the order therefore outlives the
process, in the connector's state under ``columns:<label>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectord.tables import EXTRA, json_text, put_extra, value_type, widen


@dataclass
class StreamColumns:
    """A stream's column order and (for Parquet) column types, as stored in state."""

    columns: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    limit: int = 10_000

    def learn(self, rows: Sequence[dict[str, Any]]) -> bool:
        """Append new columns (up to ``limit``; further keys go into ``_extra``), widen
        types; ``True`` if anything changed. Rows are rewritten in place to fit."""
        changed = False
        known = set(self.columns)
        for row in rows:
            for column in list(row):
                if column in known or column == EXTRA:
                    continue
                if len(known) + (EXTRA not in known) < self.limit:
                    known.add(column)
                    self.columns.append(column)
                    changed = True
                else:
                    put_extra(row.setdefault(EXTRA, {}), column, row.pop(column))
            if EXTRA in row:
                if EXTRA not in known:
                    known.add(EXTRA)
                    self.columns.append(EXTRA)
                    changed = True
                row[EXTRA] = json_text(row[EXTRA])
            for column, value in row.items():
                kind = value_type(value)
                if kind is None:
                    continue
                current = self.types.get(column)
                wider = widen(current, kind)
                if wider != current and wider is not None:
                    self.types[column] = wider
                    changed = True
        return changed

    def dump(self) -> dict[str, Any]:
        return {"columns": self.columns, "types": self.types}


class ColumnBook:
    """The columns of every stream one destination writes, loaded lazily from state.

    Columns learned by a batch that failed stay pending and are saved with the next
    batch that succeeds, so the stored order never lags the files on disk.
    """

    def __init__(self, state: Any, max_columns: int) -> None:
        self.state = state
        self.max_columns = max_columns
        self.streams: dict[str, StreamColumns] = {}
        self._unsaved: set[str] = set()

    def __getitem__(self, label: str) -> StreamColumns:
        return self.streams[label]

    async def learn(
        self, groups: dict[tuple[str, str], list[dict[str, Any]]], names: dict[str, str]
    ) -> None:
        """Load each stream's columns (stored under its label; earlier versions keyed
        them by the raw stream name, read as a fallback), then learn the new rows."""
        unknown = [label for label in names if label not in self.streams]
        if unknown:
            keys = [f"columns:{s}" for s in unknown] + [f"columns:{names[s]}" for s in unknown]
            stored = await self.state.get_many(keys)
            for label in unknown:
                saved = (
                    stored.get(f"columns:{label}") or stored.get(f"columns:{names[label]}") or {}
                )
                self.streams[label] = StreamColumns(
                    list(saved.get("columns", [])),
                    dict(saved.get("types", {})),
                    self.max_columns,
                )
        for (label, _), rows in groups.items():
            if self.streams[label].learn(rows):
                self._unsaved.add(label)

    async def save(self) -> None:
        """Store the columns learned since the last save (after a batch succeeded)."""
        if self._unsaved:
            await self.state.set_many(
                {f"columns:{label}": self.streams[label].dump() for label in self._unsaved}
            )
            self._unsaved = set()
