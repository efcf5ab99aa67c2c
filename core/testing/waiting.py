"""Wait for something to become true in an async test, without fixed sleeps."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation
    interval: float = 0.02,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Poll ``predicate`` (sync or async) until it returns something truthy; return it.

    Raises `TimeoutError` naming ``message`` (a string, or a function called at that
    moment, e.g. to include what the emulator received) and the last value seen.

    >>> await wait_for(lambda: len(emulator.requests) >= 2, message="two uploads")
    """
    deadline = time.monotonic() + timeout
    value: Any = None
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"{text} not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)
