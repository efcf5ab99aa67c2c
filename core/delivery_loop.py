"""A push connector's queue delivery on its own event loop, in its own thread.

Why: delivery to a per-event API such as Pendo's Track Events is one HTTP request per
record, and at a few thousand requests a second it keeps an event loop busy all the
time. On the loop that also serves ``/ingest``, every step of an accept (reading the
body, answering once the commit is durable) waits behind a full round of delivery
callbacks and behind each batch's mapping and payload building: the sender sees tens of
milliseconds per batch although the accept itself costs about two.

In a thread of its own, delivery still competes for the one GIL, but the interpreter
hands the GIL to a waiting thread after at most ``sys.getswitchinterval()`` (5 ms), so
the ingest loop gets to run whenever it has work instead of after everything queued on
a shared loop. Delivery keeps all the CPU the ingest loop does not use. Measured with
``bench/segment_pendo.py`` (paced phase: 5,000 msg/s offered while the backlog
delivers); see the bench README.

Everything the delivery side owns lives on its loop: the drain coroutine and its tasks,
the pipeline's throttle and request limiter, and an HTTP session of its own (aiohttp
sessions belong to one loop). The ingest side talks to it only through `call`, which
is thread-safe, and the delivery side hands work back through `call_main`. The state
backend stays the main loop's: its connections, pools and futures belong to that loop,
so `MainLoopState` runs every call made from the delivery thread there.

The thread lives from the first `start` (the connector is owned) to `stop`; losing and
regaining ownership only cancels and restarts the drain coroutine on it (`cancel`,
`run`), so the asyncio objects delivery created stay on the loop they belong to.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it (Python's default is
5 ms). An accept takes the GIL several times (the request, the commit on the writer
thread, the answer), each time possibly after the delivery thread's turn: at 1 ms the
ingest loop's p99 under saturated delivery fell by a third in the paced benchmark."""


class DeliveryLoop:
    """One event loop in one thread, running one connector's queue delivery."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] | None = None
        self._main_task: asyncio.Task[Any] | None = None
        self._done: asyncio.Future[None] | None = None
        self.stopped = False
        """Set by `stop`: the loop is not started (again) after it."""

    # --- from the main loop ---------------------------------------------------------------

    def start(self, tasks: set[asyncio.Task[Any]]) -> bool:
        """Start the loop's thread unless it runs already; False once `stop` was called.
        ``tasks`` is the set where the drain coroutine keeps its in-flight deliveries,
        cancelled by `cancel` and waited for (then cancelled) by `stop`."""
        if self.stopped:
            return False
        if self._thread is not None:
            return True
        self._main = asyncio.get_running_loop()
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        self._tasks = tasks
        ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"connectord-deliver:{self.name}", daemon=True
        )
        self._thread.start()
        ready.wait()
        return True

    def run(self, main: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Future[None]:
        """Run ``main()`` on the delivery loop (started); the returned future, of the
        calling loop, completes when it returns."""
        assert self.loop is not None
        running = asyncio.run_coroutine_threadsafe(self._guard(main), self.loop)
        self._done = asyncio.wrap_future(running)
        return self._done

    async def cancel(self, cleanup: Callable[[], None]) -> None:
        """Cancel ``main`` and its in-flight deliveries on the delivery loop, wait for
        them, then call ``cleanup`` there (the lease is gone: what was not acknowledged
        stays queued). Not running: just calls ``cleanup``."""
        loop = self.loop
        if loop is None:
            cleanup()
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: all ended
            done = asyncio.run_coroutine_threadsafe(self._cancel(cleanup), loop)
            await asyncio.wrap_future(done)

    async def stop(self, grace: float, signal: Callable[[], None]) -> bool:
        """Call ``signal`` on the delivery loop (it tells ``main`` to return), let
        in-flight deliveries finish within ``grace`` seconds, cancel the rest, close the
        session and end the thread. Returns whether everything finished in time.
        Never started: just calls ``signal``."""
        self.stopped = True
        if self.loop is None or self._thread is None:
            signal()
            return True
        self.call(signal)
        finished = asyncio.run_coroutine_threadsafe(self._finish(grace), self.loop)
        try:
            in_time = await asyncio.wrap_future(finished)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            await asyncio.to_thread(self._thread.join)
            self.loop = self._thread = None  # a second stop only signals
            if self._done is not None and not self._done.done():
                self._done.cancel()  # ``main`` never ended: its loop is gone
        return in_time

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the delivery loop (at once when already on it)."""
        loop = self.loop
        if loop is None or self.on_delivery_thread():
            fn(*args)
            return
        with contextlib.suppress(RuntimeError):  # closed: delivery is over, nobody to tell
            loop.call_soon_threadsafe(fn, *args)

    # --- from the delivery loop -----------------------------------------------------------

    def call_main(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the main loop (at once when not on the delivery thread)."""
        if self._main is None or not self.on_delivery_thread():
            fn(*args)
        else:
            self._main.call_soon_threadsafe(fn, *args)

    def main_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop that started this one, when called on the delivery thread."""
        return self._main if self.on_delivery_thread() else None

    def on_delivery_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def session(self, new: Callable[[], aiohttp.ClientSession]) -> aiohttp.ClientSession:
        """The delivery loop's own HTTP session, made by ``new`` on first use."""
        if self._session is None or self._session.closed:
            self._session = new()
        return self._session

    # --- inside the thread ----------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        assert self.loop is not None
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    async def _guard(self, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._main_task = asyncio.current_task()
        await main()

    async def _cancel(self, cleanup: Callable[[], None]) -> None:
        work = [t for t in (self._main_task, *(self._tasks or ())) if t and not t.done()]
        for task in work:
            task.cancel()
        await asyncio.gather(*work, return_exceptions=True)
        cleanup()

    async def _finish(self, grace: float) -> bool:
        pending = set(self._tasks or ())
        if self._main_task is not None and not self._main_task.done():
            pending.add(self._main_task)  # it may be waiting for a slot to start one more
        in_time = True
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                in_time = False
                await asyncio.wait(still, timeout=5)
        if self._session is not None and not self._session.closed:
            await self._session.close()
        return in_time


class MainLoopState:
    """A state backend as the delivery thread may use it: each awaited method called
    there runs on the main loop, which owns the backend's connections and futures
    (an async psycopg pool, the SQLite store's result futures). Called on the main
    loop, or with no delivery thread, it is the backend itself."""

    def __init__(self, backend: Any, delivery: DeliveryLoop) -> None:
        self.backend = backend
        self._delivery = delivery

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.backend, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        async def on_main(*args: Any, **kwargs: Any) -> Any:
            main = self._delivery.main_loop()
            if main is None:
                return await attr(*args, **kwargs)
            future = asyncio.run_coroutine_threadsafe(attr(*args, **kwargs), main)
            return await asyncio.wrap_future(future)

        return on_main
