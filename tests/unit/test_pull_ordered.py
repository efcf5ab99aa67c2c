"""`connectord.pull`: units read concurrently, items yielded strictly in unit order."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from connectord.pull import AccountLimits, UnitProgress, ordered_streams, units_of


async def collect(stream) -> list:
    return [item async for item in stream]


def test_items_come_out_in_unit_order_whatever_order_units_finish():
    rng = random.Random(7)
    delays = {unit: rng.uniform(0, 0.01) for unit in range(40)}

    async def read(unit: int):
        for page in range(3):
            await asyncio.sleep(delays[unit] / (page + 1))
            yield unit, page

    items = asyncio.run(collect(ordered_streams(range(40), read, window=6)))
    assert items == [(unit, page) for unit in range(40) for page in range(3)]


def test_at_most_window_units_run_at_once_and_the_window_fills():
    running = 0
    peak = 0

    async def read(unit: int):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.005)
            yield unit
        finally:
            running -= 1

    async def main() -> list:
        return await collect(ordered_streams(range(30), read, window=4, buffer=1))

    assert asyncio.run(main()) == list(range(30))
    assert peak == 4


def test_concurrency_cuts_wall_time():
    async def read(unit: int):
        await asyncio.sleep(0.02)
        yield unit

    async def timed(window: int) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await collect(ordered_streams(range(20), read, window=window))
        return loop.time() - started

    sequential = asyncio.run(timed(1))
    concurrent = asyncio.run(timed(5))
    assert sequential >= 0.4
    assert concurrent < sequential / 3


def test_an_error_surfaces_after_the_items_before_it():
    async def read(unit: int):
        if unit == 3:
            await asyncio.sleep(0)
            raise RuntimeError("unit 3 failed")
        await asyncio.sleep(0.01 if unit < 3 else 0)
        yield unit

    seen: list[int] = []

    async def main() -> None:
        async for item in ordered_streams(range(8), read, window=8):
            seen.append(item)

    with pytest.raises(RuntimeError, match="unit 3 failed"):
        asyncio.run(main())
    assert seen == [0, 1, 2]


def test_closing_early_cancels_every_running_unit():
    cancelled: list[int] = []

    async def read(unit: int):
        try:
            yield unit
            await asyncio.sleep(10)
            yield unit
        except asyncio.CancelledError:
            cancelled.append(unit)
            raise

    async def main() -> None:
        stream = ordered_streams(range(10), read, window=3)
        async with contextlib.aclosing(stream) as items:
            async for _ in items:
                break
        await asyncio.sleep(0)

    asyncio.run(main())
    assert sorted(cancelled) == [0, 1, 2]


def test_account_limits_share_one_semaphore_per_account():
    async def main() -> None:
        limits = AccountLimits()
        first = limits.get(("eu1", "ACC-1"), 3)
        assert limits.get(("eu1", "ACC-1"), 9) is first
        assert limits.get(("eu1", "ACC-2"), 3) is not first

    asyncio.run(main())


def test_unit_progress_reports_done_of_total():
    class Source:
        progress = UnitProgress()

    source = Source()
    assert units_of(source) is None  # nothing planned yet
    source.progress.plan(1096)
    source.progress.advance(3)
    assert units_of(source) == (3, 1096)
    assert units_of(object()) is None
