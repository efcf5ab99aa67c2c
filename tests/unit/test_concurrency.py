"""The adaptive request concurrency rule, driven by a fake clock (no sleeps)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from connectord.concurrency import Controller, Settings, controller_for
from connectord.metrics import Metrics

pytestmark = pytest.mark.timeout(20)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def window(c: Controller, clock: Clock, rtt: float, *, status_ok: bool = True) -> None:
    """One full window: as many requests as the limit allows, all answered after ``rtt``."""
    n = c.limit
    for _ in range(n):
        c.start()
    clock.now += max(rtt, c.next_update - clock.now)
    for _ in range(n):
        if status_ok:
            c.finish(rtt)
        else:
            c.finish(None, back_pressure=True)


def whole_window(c: Controller, clock: Clock, rtt: float, *, status_ok: bool = True) -> None:
    """Like `window`, but the window closes with its last answer, so that every answer
    of it counts in it (with `window`, all but the first spill into the next one)."""
    n = c.limit
    for _ in range(n):
        c.start()
    closes = max(clock.now + rtt, c.next_update)
    clock.now = max(clock.now, c.next_update - 1e-7)  # the answers carry ``rtt`` anyway
    for i in range(n):
        if i == n - 1:
            clock.now = closes
        c.finish(rtt if status_ok else None, back_pressure=not status_ok)


def warmed(maximum: int = 50, **kwargs) -> tuple[Controller, Clock]:
    clock = Clock()
    changes: list[int] = []
    c = Controller(maximum, clock=clock, on_change=changes.append, **kwargs)
    c.changes = changes  # type: ignore[attr-defined]
    window(c, clock, 0.010)  # the first answer sets the baseline
    return c, clock


VECTOR = Settings(slow_start=False)
"""Vector's rule alone: +1 per window from the start."""


def test_slow_start_doubles_per_clean_window_up_to_the_maximum():
    c, clock = warmed()
    assert c.limit == 1
    for _ in range(7):
        window(c, clock, 0.010)
    assert c.changes == [1, 2, 4, 8, 16, 32, 50]  # type: ignore[attr-defined]


def test_back_pressure_in_slow_start_halves_then_grows_by_one():
    c, clock = warmed()
    for _ in range(5):
        whole_window(c, clock, 0.010)
    assert c.limit == 32
    whole_window(c, clock, 0.010, status_ok=False)
    assert c.limit == 16  # TCP halves on loss in slow start
    whole_window(c, clock, 0.010)
    whole_window(c, clock, 0.010)
    assert c.limit == 18


def test_rising_latency_in_slow_start_decreases_and_ends_it():
    c, clock = warmed()
    for _ in range(4):
        whole_window(c, clock, 0.010)
    assert c.limit == 16
    whole_window(c, clock, 0.050)
    assert c.limit == 14  # int(16 * 0.9)
    whole_window(c, clock, 0.010)
    assert c.limit == 15


def test_starts_at_one_and_adds_one_per_window_while_latency_stays_flat():
    c, clock = warmed(settings=VECTOR)
    assert c.limit == 1
    for expected in range(2, 8):
        window(c, clock, 0.010)
        assert c.limit == expected
    assert c.changes == [1, 2, 3, 4, 5, 6, 7]  # type: ignore[attr-defined]


def test_no_increase_without_demand_for_more():
    c, clock = warmed()
    for _ in range(5):
        c.start()  # never more than one in flight while the limit is higher
        clock.now += 0.02
        c.finish(0.010)
        window(c, clock, 0.010)
    grown = c.limit
    # Now requests arrive one at a time although the limit allows more.
    for _ in range(10):
        c.start()
        clock.now += 0.02
        c.finish(0.010)
    assert c.limit == grown


def test_429_decreases_multiplicatively():
    c, clock = warmed(settings=VECTOR)
    for _ in range(19):
        window(c, clock, 0.010)
    assert c.limit == 20
    window(c, clock, 0.010, status_ok=False)
    assert c.limit == 18  # 20 * 0.9
    window(c, clock, 0.010, status_ok=False)
    assert c.limit == 16  # int(18 * 0.9)


def test_never_below_one():
    c, clock = warmed()
    for _ in range(5):
        window(c, clock, 0.010, status_ok=False)
    assert c.limit == 1


def test_back_pressure_before_any_baseline_still_decreases():
    clock = Clock()
    c = Controller(10, fixed=None, clock=clock)
    c.limit = 5
    c.start()
    c.finish(None, back_pressure=True)
    assert c.limit == 4


def test_rising_latency_beyond_the_deviation_decreases():
    c, clock = warmed(settings=VECTOR)
    for _ in range(9):
        window(c, clock, 0.010)
    assert c.limit == 10
    window(c, clock, 0.050)  # five times the baseline, no variance to excuse it
    assert c.limit == 9


def test_latency_within_the_deviation_holds_the_limit():
    c, clock = warmed()
    for rtt in (0.010, 0.014, 0.008, 0.013, 0.009, 0.012):  # a jittery baseline
        window(c, clock, rtt)
    before = c.limit
    assert c.past_rtt.mean is not None
    window(c, clock, c.past_rtt.mean * 1.05)  # above the mean, within 2.5 deviations
    assert c.limit == before


def test_bounded_by_the_declared_maximum():
    c, clock = warmed(maximum=4)
    for _ in range(20):
        window(c, clock, 0.010)
    assert c.limit == 4


def test_fixed_never_moves_and_is_capped_by_the_maximum():
    clock = Clock()
    c = Controller(8, fixed=20, clock=clock)
    assert c.limit == 8
    window(c, clock, 0.010)
    window(c, clock, 0.010, status_ok=False)
    window(c, clock, 0.500)
    assert c.limit == 8


def test_retry_after_pauses_new_requests():
    c, clock = warmed()
    c.start()
    c.finish(None, back_pressure=True, retry_after=3.0)
    assert c.paused_until == pytest.approx(clock.now + 3.0)


async def test_waiters_get_slots_as_requests_finish():
    c = Controller(4)
    await c.acquire()
    waiting = asyncio.ensure_future(c.acquire())
    await asyncio.sleep(0)
    assert not waiting.done()  # limit 1, one in flight
    c.finish(0.01)
    await asyncio.wait_for(waiting, 1)
    assert c.in_flight == 1


def test_only_destinations_declaring_a_maximum_get_a_controller():
    class PerEvent:
        max_concurrency = 32

    class Bulk:
        pass

    metrics = Metrics()
    assert controller_for("c", Bulk(), "adaptive", metrics) is None
    adaptive = controller_for("c", PerEvent(), "adaptive", metrics)
    assert adaptive is not None and adaptive.fixed is None and adaptive.maximum == 32
    fixed = controller_for("c", PerEvent(), 8, metrics)
    assert fixed is not None and fixed.limit == 8
    assert b'connectord_delivery_concurrency{connector="c"} 8.0' in metrics.render()


async def test_middleware_reads_429_and_retry_after_over_http():
    """Real HTTP on 127.0.0.1: 2xx answers grow the limit, a 429 shrinks it and pauses."""
    answers = {"status": 200}

    async def handle(request: web.Request) -> web.Response:
        if answers["status"] == 429:
            return web.Response(status=429, headers={"Retry-After": "2"})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/data/track", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    c = Controller(16)
    url = f"http://127.0.0.1:{port}/data/track"
    try:
        async with aiohttp.ClientSession(middlewares=(c.middleware,)) as session:

            async def post() -> int:
                async with session.post(url, json={}) as response:
                    return response.status

            for _ in range(30):
                await asyncio.gather(*(post() for _ in range(c.limit + 1)))
            grown = c.limit
            assert grown > 1
            answers["status"] = 429
            statuses = await asyncio.gather(*(post() for _ in range(c.limit)))
            assert set(statuses) == {429}
            assert c.paused_until > 0
    finally:
        await runner.cleanup()
    assert c.in_flight == 0


def test_a_retry_after_the_limiter_waited_out_is_not_waited_out_again():
    """The destination call returns only after its queued requests went through the
    limiter's pause; the connector's throttle must not add the same wait after it."""
    import time

    import structlog

    from connectord.backoff import Backoff
    from connectord.delivery import Pipeline, Throttle
    from connectord.errors import RetryableError

    class PerEvent:
        max_concurrency = 16

    def pipeline(destination: object) -> Pipeline:
        throttle = Throttle(Backoff(1.0, 30.0), asyncio.Event())
        return Pipeline("c", [], destination, throttle=throttle, log=structlog.get_logger())

    limited = pipeline(PerEvent())
    assert limited.limiter is not None
    limited.limiter.paused_until = time.monotonic() - 0.1  # the pause is over
    assert limited._partial_delay(RetryableError("429", retry_after=1.0)) == 0.0
    assert limited.throttle.open_at <= time.monotonic()
    limited.limiter.paused_until = time.monotonic() + 0.5  # still pausing: open with it
    assert 0.3 < limited._partial_delay(RetryableError("429", retry_after=1.0)) <= 0.5
    no_hint = pipeline(PerEvent())._partial_delay(RetryableError("429"))
    assert no_hint >= 0.5  # no Retry-After: the throttle's own backoff applies
    plain = pipeline(object())._partial_delay(RetryableError("429", retry_after=1.0))
    assert plain >= 1.0  # no limiter: the throttle honours Retry-After itself
