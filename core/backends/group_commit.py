"""Group commit: concurrent enqueues of one process share one transaction.

A push request is answered 2xx once its records are committed, so every request waits
for a commit: an fsync on SQLite, a WAL flush and a turn of the connector's queue lock on
PostgreSQL. Requests that arrive while a commit is under way are collected and written
together in the next one, so a burst costs one commit instead of one per request; under
no load a request is committed at once, alone. One call's items always commit together,
and when a group's transaction fails every caller in it gets the error (nothing of the
group was kept).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

Items = list[tuple[str, Sequence[bytes]]]


class GroupCommit:
    """Feeds ``write`` (one transaction per call) with every waiting caller's items."""

    def __init__(self, write: Callable[[Items], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[tuple[Items, asyncio.Future[None]]] = []
        self._flush_task: asyncio.Task[None] | None = None

    async def submit(self, items: Items) -> None:
        """Durable on return."""
        if not items:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((items, future))
        if self._flush_task is None:
            self._flush_task = loop.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    await self._write([item for items, _ in group for item in items])
                except Exception as err:  # each caller sees the failure: nothing was kept
                    for _, future in group:
                        if not future.done():
                            future.set_exception(err)
                else:
                    for _, future in group:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._flush_task = None

    async def drain(self) -> None:
        """Wait for the commit under way (before closing the connection)."""
        if self._flush_task is not None:
            await asyncio.shield(self._flush_task)
