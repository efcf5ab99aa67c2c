"""Concurrent reads, in-order results: the machinery behind exact pull checkpoints.

A pull backfill is a sequence of units (a day, a day and an event name, a page): each
unit is read by its own task, up to ``window`` units ahead of the one being delivered,
but their items come out strictly in unit order. Because the connector commits a
batch's checkpoint only after the destination acknowledged it, and batches reach it in
order, a checkpoint never passes a unit that is not fully delivered: a crash resumes
at the first incomplete unit, and nothing after it was committed.

How many HTTP calls run at once is not decided here but by the vendor's per-account
limiter (`AccountLimits`): the window only keeps enough units started to fill it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
U = TypeVar("U")

_END = object()


class AccountLimits:
    """Semaphores keyed by account (and event loop), so every connector reading the same
    vendor account shares one concurrency cap: the vendor counts calls per account,
    not per connector."""

    def __init__(self) -> None:
        self._slots: dict[tuple[int, Any], asyncio.Semaphore] = {}

    def get(self, key: Any, limit: int) -> asyncio.Semaphore:
        """The semaphore of ``key``; the first caller's ``limit`` sizes it."""
        full_key = (id(asyncio.get_running_loop()), key)
        slots = self._slots.get(full_key)
        if slots is None:
            slots = self._slots[full_key] = asyncio.Semaphore(limit)
        return slots


async def ordered_streams(
    units: Iterable[U],
    read: Callable[[U], AsyncIterator[T]],
    *,
    window: int,
    buffer: int = 2,
) -> AsyncIterator[T]:
    """Yield every item of ``read(unit)`` for each unit, in unit order, while up to
    ``window`` units are read concurrently.

    Each unit's task holds at most ``buffer`` items not yet taken, so memory stays
    bounded by ``window * buffer`` items. An error of a unit surfaces when the consumer
    reaches that unit (the items before it are still yielded first); closing the
    generator cancels every unit task.
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    pending = iter(units)
    running: list[tuple[asyncio.Queue[Any], asyncio.Task[None]]] = []

    async def produce(unit: U, queue: asyncio.Queue[Any]) -> None:
        try:
            async for item in read(unit):
                await queue.put(item)
        except asyncio.CancelledError:
            raise
        except BaseException as err:
            await queue.put(_Failed(err))
            return
        await queue.put(_END)

    def start_next() -> bool:
        for unit in pending:
            queue: asyncio.Queue[Any] = asyncio.Queue(max(1, buffer))
            task = asyncio.create_task(produce(unit, queue), name="pull-unit")
            running.append((queue, task))
            return True
        return False

    try:
        while len(running) < window and start_next():
            pass
        while running:
            queue, _task = running[0]
            item = await queue.get()
            if item is _END:
                running.pop(0)
                start_next()
                continue
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        for _queue, task in running:
            task.cancel()
        for _queue, task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@dataclass
class _Failed:
    error: BaseException


@dataclass
class UnitProgress:
    """Units done out of the total planned for this run, and the pace: what
    ``connectord sync`` shows while a backfill runs."""

    total: int = 0
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    def plan(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n

    def rate(self) -> float:
        """Units per second since the plan."""
        seconds = time.monotonic() - self.started
        return self.done / seconds if seconds > 0 else 0.0


def units_of(source: Any) -> tuple[int, int] | None:
    """``(done, total)`` of the source's `UnitProgress`, if it keeps one as
    ``progress`` and planned anything."""
    units = getattr(source, "progress", None)
    if isinstance(units, UnitProgress) and units.total:
        return units.done, units.total
    return None
