"""A drain cancelled by `disown` stops, even when new rows arrive at that very moment.

On Python 3.11 `asyncio.wait_for` returns normally when the cancellation arrives while
the awaited event is set in the same loop turn, swallowing the cancellation. The drain's
idle wait used it, and pushes set the event every few milliseconds under load: a
drain cancelled on a handover kept delivering without acknowledging while the new owner
delivered the same rows (hundreds of duplicates in the workers crash test).
"""

from __future__ import annotations

import asyncio
import types

import pytest

from connectord.draining import QueueDraining


async def test_idle_wait_does_not_swallow_a_cancellation_that_meets_a_wake_up():
    drainer = types.SimpleNamespace(_wake=asyncio.Event())
    task = asyncio.create_task(QueueDraining._idle(drainer, 10.0))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # waiting now
    drainer._wake.set()  # a push arrives...
    task.cancel()  # ...as the lease is given up
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_stdlib_wait_for_swallows_it_here_which_is_why_idle_avoids_it():
    """Documents the interpreter behaviour the drain must not rely on (fixed in 3.12)."""
    import sys

    event = asyncio.Event()
    task = asyncio.create_task(asyncio.wait_for(event.wait(), 10.0))
    await asyncio.sleep(0)
    event.set()
    task.cancel()
    if sys.version_info < (3, 12):
        assert await task is True  # swallowed: the cancelled caller carries on
    else:
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_drain_that_is_no_longer_owned_stops_at_its_next_round():
    """The second guard: whatever happened to the cancellation, a drain without an
    epoch (disowned) does not read or deliver another batch."""
    reads = []

    class Drainer:
        epoch = None
        stop_event = asyncio.Event()
        config = types.SimpleNamespace(delivery=types.SimpleNamespace(concurrency=2))

        async def _next_rows(self, cursor):
            reads.append(cursor)
            return [], cursor

    await asyncio.wait_for(QueueDraining._drain(Drainer()), 2.0)  # type: ignore[arg-type]
    assert reads == []
