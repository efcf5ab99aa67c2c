"""wait_for: poll sync or async conditions without fixed sleeps."""

from __future__ import annotations

import asyncio

import pytest

from connectord.testing import wait_for


async def test_returns_the_first_truthy_value():
    calls = []

    def grows():
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    assert await wait_for(grows, interval=0.001) == 3


async def test_accepts_async_predicates():
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, event.set)

    async def is_set():
        return event.is_set()

    assert await wait_for(is_set, timeout=2) is True


async def test_times_out_with_the_message_and_last_value():
    with pytest.raises(
        TimeoutError, match=r"two uploads not met within 0.05s \(last value: \[\]\)"
    ):
        await wait_for(lambda: [], timeout=0.05, message="two uploads")


async def test_message_may_be_computed_at_failure_time():
    seen = ["/a"]
    with pytest.raises(TimeoutError, match=r"saw \['/a', '/b'\]"):
        await wait_for(
            lambda: seen.append("/b"),
            timeout=0.01,
            interval=0.02,
            message=lambda: f"saw {sorted(set(seen))}",
        )
