"""Plugin state: JSON values by key, in namespaces (``<connector>/<plugin type>``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from .rows import Connected, now


class KeyValueOps(Connected):
    def get_state(self, namespace: str, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        out: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self.conn.execute(
                "SELECT key, value FROM state WHERE namespace = ? AND key IN "
                "(SELECT value FROM json_each(?))",
                [namespace, orjson.dumps(chunk).decode()],
            ).fetchall()
            out.update((k, orjson.loads(v)) for k, v in rows)
        return out

    def scan_state(self, namespace: str, prefix: str = "") -> dict[str, Any]:
        rows = self.conn.execute(
            "SELECT key, value FROM state WHERE namespace = ? AND substr(key, 1, ?) = ?",
            [namespace, len(prefix), prefix],
        ).fetchall()
        return {k: orjson.loads(v) for k, v in rows}

    def set_state(self, namespace: str, items: dict[str, Any]) -> None:
        with self.db.atomic():
            self._set_state(namespace, items, now())

    def _set_state(self, namespace: str, items: dict[str, Any], at: float) -> None:
        """Write inside the caller's transaction (``None`` deletes the key), so that a
        pull batch commits the source's state together with its checkpoint."""
        deletes = [(namespace, k) for k, v in items.items() if v is None]
        upserts = [
            (namespace, k, orjson.dumps(v).decode(), at) for k, v in items.items() if v is not None
        ]
        if deletes:
            self.conn.executemany("DELETE FROM state WHERE namespace = ? AND key = ?", deletes)
        if upserts:
            self.conn.executemany(
                "INSERT INTO state (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                upserts,
            )

    def clear_state(self, namespace_prefix: str) -> int:
        with self.db.atomic():
            return self.conn.execute(
                "DELETE FROM state WHERE substr(namespace, 1, ?) = ?",
                [len(namespace_prefix), namespace_prefix],
            ).rowcount
