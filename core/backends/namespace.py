"""The `KeyValueStore` a plugin sees, on whichever `StateBackend` the daemon runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import StateBackend


class BackendNamespace:
    """Plugin state scoped to one namespace (``connector/plugin-type``).

    ``compare_and_set`` is what a plugin uses for a read-modify-write that other daemons
    sharing the state may race (the Pushwoosh relay's device records, written during
    ingest by whichever node took the request)."""

    def __init__(self, backend: StateBackend, namespace: str) -> None:
        self._backend = backend
        self.namespace = namespace

    async def get(self, key: str, default: Any = None) -> Any:
        found = await self._backend.get_state(self.namespace, [key])
        return found.get(key, default)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        return await self._backend.get_state(self.namespace, list(keys))

    async def set(self, key: str, value: Any) -> None:
        await self._backend.set_state(self.namespace, {key: value})

    async def set_many(self, items: dict[str, Any]) -> None:
        if items:
            await self._backend.set_state(self.namespace, dict(items))

    async def delete(self, key: str) -> None:
        await self._backend.set_state(self.namespace, {key: None})

    async def scan(self, prefix: str = "") -> dict[str, Any]:
        return await self._backend.scan_state(self.namespace, prefix)

    async def compare_and_set(self, key: str, expected: Any, new: Any) -> bool:
        """Write ``new`` only if ``key`` still holds ``expected`` (None: absent); True
        when written. Retry the read-modify-write when False."""
        return await self._backend.compare_and_set(self.namespace, key, expected, new)
