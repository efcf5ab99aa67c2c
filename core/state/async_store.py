"""`Store` for the event loop, and the key-value stores plugins are handed.

`AsyncStore` runs `Store` off the event loop on one writer thread and one reader
thread, and commits concurrent enqueues together (group commit), so a burst of push
requests costs one fsync.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from .store import Store


class AsyncStore:
    """`Store` off the event loop: one writer thread, one reader thread, group commit."""

    def __init__(self, path: str | os.PathLike[str], *, durability: str = "process") -> None:
        self.path = Path(path)
        self.durability = durability
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="connectord-db-write")
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="connectord-db-read")
        self._writer: Store | None = None
        self._reader: Store | None = None
        self._pending: list[tuple[str, list[bytes], asyncio.Future[None]]] = []
        self._flushing = False
        self._idle = asyncio.Event()
        self._idle.set()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._writer = await loop.run_in_executor(
            self._writer_pool, partial(Store, self.path, durability=self.durability, verify=True)
        )
        self._reader = await loop.run_in_executor(
            self._reader_pool, partial(Store, self.path, durability=self.durability, readonly=True)
        )

    async def close(self) -> None:
        await self._idle.wait()
        for store, pool in ((self._writer, self._writer_pool), (self._reader, self._reader_pool)):
            if store is not None:
                await asyncio.get_running_loop().run_in_executor(pool, store.close)
            pool.shutdown(wait=True)

    async def write(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(store, *args, **kwargs)`` on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._writer_pool, partial(fn, self._writer, *args, **kwargs)
        )

    async def read(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(store, *args, **kwargs)`` on the reader thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._reader_pool, partial(fn, self._reader, *args, **kwargs)
        )

    async def enqueue(self, connector: str, bodies: list[bytes]) -> None:
        """Commit records to the queue; concurrent callers share one transaction."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((connector, bodies, future))
        if not self._flushing:
            self._flushing = True
            self._idle.clear()
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    await self.write(Store.enqueue_many, [(c, b) for c, b, _ in group])
                except Exception as err:
                    for _, _, future in group:
                        if not future.done():
                            future.set_exception(err)
                else:
                    for _, _, future in group:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._flushing = False
            self._idle.set()


def state_namespace(connector: str, plugin_type: str) -> str:
    return f"{connector}/{plugin_type}"


class MemoryKeyValue:
    """A `KeyValueStore` in a dict: for online checks and tests, never the daemon."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        return {k: self.data[k] for k in keys if k in self.data}

    async def set(self, key: str, value: Any) -> None:
        await self.set_many({key: value})

    async def set_many(self, items: dict[str, Any]) -> None:
        for key, value in items.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = orjson.loads(orjson.dumps(value))

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def scan(self, prefix: str = "") -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k.startswith(prefix)}

    async def compare_and_set(self, key: str, expected: Any, new: Any) -> bool:
        """As the daemon's state does it: compared as JSON values, ``None`` is absent."""
        current = self.data.get(key)
        if current != (None if expected is None else orjson.loads(orjson.dumps(expected))):
            return False
        await self.set_many({key: new})
        return True
