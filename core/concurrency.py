"""Adaptive request concurrency: as many requests in flight as the vendor answers well.

Destinations that send one request per record (Pendo's Track Events, Pushwoosh's
per-user calls) are bounded by the vendor's rate limit, not by us. A fixed number of
requests in flight is either too low (idle capacity) or too high (429s, retries, a
backoff for the whole connector). This module follows Vector's adaptive request
concurrency (ARC), https://vector.dev/docs/architecture/arc/ and
https://vector.dev/blog/adaptive-request-concurrency/, whose controller is
``src/sinks/util/adaptive_concurrency/controller.rs`` in github.com/vectordotdev/vector:

- The limit starts at 1 and is reconsidered once per *window*, one averaged round trip
  long.
- Additive increase: +1 when, in the window, the limit was reached (there was demand
  for more), no answer signalled back pressure and the mean round-trip time stayed at or
  below its moving average (EWMA).
- Multiplicative decrease: x `decrease_ratio` when an answer signalled back pressure
  (429, 5xx, a timeout or network error) or the window's mean RTT rose above the EWMA
  by more than `rtt_deviation_scale` standard deviations.
- Never above the destination's declared ``max_concurrency``.

Three additions to Vector's rule. Like TCP, the limit starts in *slow start*: it
doubles per clean window (limit reached, no back pressure, RTT not above its average)
until the first back pressure, which halves it, or the first rise in latency, which
decreases it as above; from then on it grows by +1. At +1 per window, a backlog took
some thirty round trips to reach the concurrency a fast vendor allows, time in which
delivery ran at a fraction of its speed after every start. A ``Retry-After`` on a 429
or 503 pauses new requests until it has passed, since the vendor said exactly when to
come back. And vendors limit requests per second, not in flight: with fast answers
even one request in flight can exceed a limit of 200/s, and the rule above alone would
keep probing into 429s. So the adaptive controller also paces requests at a rate
learned from the 429s and the 2xx rate before them (`connectord.pacing`): a request
waits for the pacer, then for a slot.

`Controller` is a plain state machine: its clock is injectable so that the unit tests
(``tests/unit/test_concurrency.py``) drive it without sleeping.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from .http import retry_after_seconds
from .pacing import Pacer, quota_from_headers

if TYPE_CHECKING:
    from .metrics import Metrics

ADAPTIVE = "adaptive"
BACK_PRESSURE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Settings:
    """Vector's defaults for ``request.adaptive_concurrency`` (its configuration
    reference lists them: initial 1, decrease_ratio 0.9, ewma_alpha 0.4,
    rtt_deviation_scale 2.5)."""

    initial: int = 1
    decrease_ratio: float = 0.9
    ewma_alpha: float = 0.4
    rtt_deviation_scale: float = 2.5
    slow_start: bool = True
    """Ours, not Vector's: double the limit per clean window until the first sign of
    back pressure or rising latency (TCP's slow start), then go on by +1."""


class Ewma:
    """Exponentially weighted mean and variance of the window RTTs."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.mean: float | None = None
        self.variance = 0.0

    def update(self, value: float) -> None:
        if self.mean is None:
            self.mean = value
            return
        delta = value - self.mean
        self.mean += self.alpha * delta
        self.variance = (1 - self.alpha) * (self.variance + self.alpha * delta * delta)


class Controller:
    """One connector's limit on destination requests in flight.

    ``fixed`` set: the limit is that number and never moves (``request_concurrency = N``).
    Otherwise the limit adapts between 1 and ``maximum``.
    """

    def __init__(
        self,
        maximum: int,
        *,
        fixed: int | None = None,
        settings: Settings = Settings(),
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[int], None] | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.maximum = max(1, maximum)
        self.fixed = None if fixed is None else min(max(1, fixed), self.maximum)
        self.settings = settings
        self.clock = clock
        self.on_change = on_change
        self.limit = self.fixed or min(settings.initial, self.maximum)
        self.in_flight = 0
        self.pacer = pacer if pacer is not None else Pacer(clock=clock)
        """Requests per second: learned in adaptive mode; with a fixed limit it only
        keeps the ``Retry-After`` pauses."""
        self.past_rtt = Ewma(settings.ewma_alpha)
        self.next_update = 0.0
        self._rtt_sum = 0.0
        self._rtt_count = 0
        self._back_pressure = False
        self._reached_limit = False
        self._slow_start = settings.slow_start and fixed is None
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        if on_change is not None:
            on_change(self.limit)

    # --- slots --------------------------------------------------------------------------

    @property
    def paused_until(self) -> float:
        """Clock time before which no request starts (``Retry-After``, a spent quota)."""
        return self.pacer.paused_until

    @paused_until.setter
    def paused_until(self, moment: float) -> None:
        self.pacer.paused_until = moment

    async def acquire(self) -> None:
        """Wait for the pacer (a ``Retry-After`` pause, the learned rate) and a free
        slot, then hold both. Callers are served in order: a waiting caller is handed its
        slot directly when one frees (`_wake`), with one wake-up, so that saturated
        delivery spends no extra event-loop turns per request; one timer paces them all
        and no request holds a slot while it waits for the rate."""
        if not self.take_free_slot():
            await self._queue()

    def take_free_slot(self) -> bool:
        """Hold a slot now if one is free, nobody waits and the pacer allows a start.
        Synchronous, so that a request that need not wait costs no coroutine."""
        if self._waiters or self.in_flight >= self.limit or self.pacer.wait() > 0:
            return False
        self._grant()
        return True

    async def _queue(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # granted, then cancelled
                self.in_flight -= 1
                self._wake()
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def _grant(self) -> None:
        self.pacer.take()
        self.start()

    def start(self) -> None:
        self.in_flight += 1
        if self.in_flight >= self.limit:
            self._reached_limit = True

    def finish(
        self,
        rtt: float | None,
        *,
        back_pressure: bool = False,
        retry_after: float | None = None,
        refused_at: float | None = None,
    ) -> None:
        """A request ended: ``rtt`` only when the vendor processed it (2xx), as in
        Vector, so that fast refusals do not pass for a fast destination.
        ``refused_at``: it was a 429 to a request sent at that clock time."""
        now = self.clock()
        self.in_flight -= 1
        if back_pressure:
            self._back_pressure = True
        if refused_at is not None and self.fixed is None:
            self.pacer.refused(refused_at, retry_after)
        elif retry_after is not None and retry_after > 0:
            self.pacer.pause(retry_after)
        if rtt is not None:
            self.pacer.accepted()
            self._rtt_sum += rtt
            self._rtt_count += 1
        self._window(now)
        self._wake()

    # --- the rule -----------------------------------------------------------------------

    def _window(self, now: float) -> None:
        # Rounded to the microsecond: a mean of equal samples must not drift above them
        # by a rounding error and pass for rising latency (Vector rounds in its tests).
        current = round(self._rtt_sum / self._rtt_count, 6) if self._rtt_count else None
        if self.past_rtt.mean is None:
            if current is not None:
                self.past_rtt.update(current)
                self.next_update = now + current
            elif self._back_pressure and self.fixed is None:
                self._slow_start = False
                self._decrease()  # refused before any baseline: still back off
                self._reset_window(now, 0.0)
            return
        if now < self.next_update:
            return
        if self.fixed is None:
            self._adjust(self.past_rtt.mean, math.sqrt(self.past_rtt.variance), current)
        if current is not None:
            self.past_rtt.update(current)
        self._reset_window(now, self.past_rtt.mean)

    def _adjust(self, past: float, deviation: float, current: float | None) -> None:
        threshold = past + deviation * self.settings.rtt_deviation_scale
        if (
            self.limit < self.maximum
            and self._reached_limit
            and not self._back_pressure
            and current is not None
            and current <= past
        ):
            step = self.limit if self._slow_start else 1
            self._set_limit(min(self.maximum, self.limit + step))
        elif self._back_pressure and self._slow_start:
            self._slow_start = False  # overshot while doubling: back to half, as TCP does
            self._set_limit(max(1, self.limit // 2))
        elif self._back_pressure or (current is not None and current > threshold):
            self._slow_start = False
            self._decrease()

    def _decrease(self) -> None:
        if self.limit > 1:
            self._set_limit(max(1, int(self.limit * self.settings.decrease_ratio)))

    def _reset_window(self, now: float, length: float) -> None:
        self.next_update = now + length
        self._rtt_sum = 0.0
        self._rtt_count = 0
        self._back_pressure = False
        self._reached_limit = self.in_flight >= self.limit

    def _set_limit(self, limit: int) -> None:
        self.limit = limit
        if self.on_change is not None:
            self.on_change(limit)
        self._wake()

    def _wake(self) -> None:
        """Hand free slots to waiting callers, first come first served, as far as the
        pacer allows now; when it asks to wait, one timer wakes this again."""
        while self._waiters and self.in_flight < self.limit:
            delay = self.pacer.wait()
            if delay > 0:
                if self._timer is None:
                    loop = asyncio.get_running_loop()
                    self._timer = loop.call_later(delay, self._timer_fired)
                return
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._grant()
                waiter.set_result(None)

    def _timer_fired(self) -> None:
        self._timer = None
        self._wake()

    # --- HTTP -----------------------------------------------------------------------------

    async def middleware(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        """aiohttp client middleware: every request of the connector's session takes a
        slot, and its answer feeds the rule."""
        if not self.take_free_slot():
            await self._queue()
        started = self.clock()
        try:
            response = await handler(request)
        except (aiohttp.ClientError, TimeoutError, OSError):
            self.finish(None, back_pressure=True)  # Vector counts timeouts as back pressure
            raise
        except BaseException:
            self.finish(None)
            raise
        status = response.status
        if self.fixed is None:
            quota = quota_from_headers(response.headers)
            if quota is not None:
                self.pacer.announced(quota)
        wait = (
            retry_after_seconds(response.headers.get("Retry-After"))
            if status in (429, 503)
            else None
        )
        self.finish(
            self.clock() - started if 200 <= status < 300 else None,
            back_pressure=status in BACK_PRESSURE_STATUS,
            retry_after=wait,
            refused_at=started if status == 429 else None,
        )
        return response


def controller_for(
    connector: str, destination: Any, setting: str | int, metrics: Metrics | None
) -> Controller | None:
    """The controller for a destination that declares ``max_concurrency``, else None
    (its requests are bounded by the batches in flight alone)."""
    maximum = getattr(destination, "max_concurrency", None)
    if not maximum:
        return None
    gauge = None if metrics is None else metrics.delivery_concurrency.labels(connector)
    rate = None if metrics is None else metrics.delivery_request_rate.labels(connector)
    if rate is not None:
        rate.set(0)
    return Controller(
        int(maximum),
        fixed=None if setting == ADAPTIVE else int(setting),
        on_change=None if gauge is None else gauge.set,
        pacer=Pacer(on_change=None if rate is None else rate.set),
    )
