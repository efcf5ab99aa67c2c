"""The adaptive request concurrency rule, driven by a fake clock (no sleeps)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from connectord.concurrency import Controller, controller_for
from connectord.metrics import Metrics
from connectord.pacing import Pacer, PacingSettings, Quota, quota_from_headers

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


def warmed(maximum: int = 50, **kwargs) -> tuple[Controller, Clock]:
    clock = Clock()
    changes: list[int] = []
    c = Controller(maximum, clock=clock, on_change=changes.append, **kwargs)
    c.changes = changes  # type: ignore[attr-defined]
    window(c, clock, 0.010)  # the first answer sets the baseline
    return c, clock


def test_starts_at_one_and_adds_one_per_window_while_latency_stays_flat():
    c, clock = warmed()
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
    c, clock = warmed()
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
    c, clock = warmed()
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


# --- the learned request rate (connectord.pacing) ------------------------------------------


class Bucket:
    """A vendor's token bucket: ``rate`` requests/s, room for one second of them."""

    def __init__(self, rate: float, clock: Clock, *, full: bool = False) -> None:
        self.rate, self.clock = rate, clock
        self.tokens = rate if full else 0.0
        self.stamp = clock()

    def admits(self) -> bool:
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def drive(pacer: Pacer, clock: Clock, vendor: Bucket, seconds: float, speed: float) -> tuple:
    """A client that sends ``speed`` requests/s when the pacer lets it, for ``seconds``;
    the vendor answers 429 with ``Retry-After: 1`` when its bucket is empty."""
    end = clock.now + seconds
    accepted = refused = 0
    while clock.now < end:
        delay = pacer.wait()
        if delay > 0:
            clock.now += delay
            continue
        pacer.take()
        sent = clock.now
        clock.now += 1 / speed
        if vendor.admits():
            accepted += 1
            pacer.accepted()
        else:
            refused += 1
            pacer.refused(sent, retry_after=1.0)
    return accepted, refused


def paced(rate: float, clock: Clock, **settings: float) -> Pacer:
    """A pacer that learned ``rate``: 2xx at ``rate / margin`` per second, then a 429."""
    pacer = Pacer(PacingSettings(**settings), clock=clock)
    for _ in range(round(rate)):
        pacer.take()
        pacer.accepted()
        clock.now += pacer.settings.margin / rate
    pacer.refused(clock.now)
    assert pacer.rate == pytest.approx(rate)
    return pacer


def test_no_pacing_until_the_vendor_refuses():
    clock = Clock()
    pacer = Pacer(clock=clock)
    for _ in range(1000):
        assert pacer.wait() == 0
        pacer.take()
        pacer.accepted()
    assert pacer.rate is None


def test_a_429_sets_the_rate_just_below_the_2xx_rate_since_the_first_request():
    clock = Clock()
    pacer = Pacer(clock=clock)
    for _ in range(200):  # 200 accepted in one second, at 1,000/s with pauses between
        pacer.take()
        clock.now += 0.001
        pacer.accepted()
        clock.now += 0.004
    pacer.refused(clock.now - 0.001, retry_after=1.0)
    assert pacer.rate == pytest.approx(200 * pacer.settings.margin)
    assert pacer.paused_until == pytest.approx(clock.now + 1.0)
    assert pacer.wait() == pytest.approx(1.0)


def test_one_decrease_per_episode_but_every_retry_after_counts():
    clock = Clock()
    pacer = paced(100, clock)
    sent = clock.now - 0.01  # in flight when the first 429 came
    clock.now += 0.02
    pacer.refused(sent, retry_after=2.0)
    assert pacer.rate == pytest.approx(100)
    assert pacer.paused_until == pytest.approx(clock.now + 2.0)


def test_the_sample_runs_from_429_to_429_pause_included():
    """Against a token bucket refused at both ends, what got through in between is what
    the bucket refilled in between: the estimate is its rate."""
    clock = Clock()
    pacer = paced(300, clock)  # too high for a vendor allowing 200/s
    pacer.pause(1.0)
    clock.now += 1.0
    for _ in range(250):  # the bucket's 200 refilled during the pause, then 200/s
        pacer.take()
        pacer.accepted()
        clock.now += 0.25 / 250
    pacer.refused(clock.now)
    assert pacer.rate == pytest.approx(200 * pacer.settings.margin)


def test_a_refusal_never_raises_the_rate_and_one_with_nothing_accepted_halves_it():
    clock = Clock()
    pacer = paced(100, clock)
    for _ in range(100):  # a burst well above 100/s, accepted
        pacer.take()
        pacer.accepted()
        clock.now += 0.001
    pacer.refused(clock.now)
    assert pacer.rate == pytest.approx(100 * pacer.settings.margin)
    clock.now += 0.5
    pacer.take()
    pacer.refused(clock.now)
    assert pacer.rate == pytest.approx(50 * pacer.settings.margin)


def test_requests_are_spaced_at_the_learned_rate():
    clock = Clock()
    pacer = paced(100, clock)
    assert pacer.wait() == pytest.approx(0.01)  # the bucket was emptied by the 429
    starts = []
    for _ in range(50):
        clock.now += pacer.wait()
        assert pacer.wait() == 0
        pacer.take()
        starts.append(clock.now)
    assert (starts[-1] - starts[0]) == pytest.approx(49 / 100)


def test_what_was_held_back_during_a_pause_goes_out_at_once_after_it():
    clock = Clock()
    pacer = paced(100, clock)
    pacer.pause(1.0)
    clock.now += 1.0
    sent = 0
    while pacer.wait() == 0:
        pacer.take()
        sent += 1
    assert sent == 100  # one second of the rate: the vendor's bucket refilled as much


def test_a_429_while_bursting_shrinks_the_burst_to_what_the_vendor_allowed():
    clock = Clock()
    pacer = paced(100, clock)
    pacer.pause(1.0)
    clock.now += 1.0
    for _ in range(20):  # the vendor's bucket holds 20, not 100
        pacer.take()
        pacer.accepted()
    pacer.take()
    pacer.refused(clock.now)
    assert pacer.burst == pytest.approx(20)


def test_probes_upward_after_a_clean_period_with_demand():
    clock = Clock()
    pacer = paced(100, clock)
    step = 100 * pacer.settings.probe_ratio
    for expected in (100 + step, 100 + 2 * step, 100 + 3 * step):
        end = clock.now + pacer.settings.probe_interval
        while clock.now < end:
            clock.now += pacer.wait()
            pacer.take()
            pacer.accepted()
        assert pacer.rate == pytest.approx(expected)


def test_no_probe_without_demand_for_more():
    clock = Clock()
    pacer = paced(100, clock)
    for _ in range(50):
        clock.now += 0.1  # 10/s: never waits for the pacer
        assert pacer.wait() == 0
        pacer.take()
        pacer.accepted()
    assert pacer.rate == pytest.approx(100)


def test_an_idle_gap_starts_a_new_sample():
    clock = Clock()
    pacer = Pacer(clock=clock)
    pacer.take()
    pacer.accepted()
    clock.now += 3600  # an hour idle says nothing about the vendor's rate
    for _ in range(100):
        pacer.take()
        pacer.accepted()
        clock.now += 0.005
    pacer.refused(clock.now)
    assert pacer.rate == pytest.approx(200 * pacer.settings.margin)


@pytest.mark.parametrize("rate, speed", [(200, 1000), (2000, 5000)])
@pytest.mark.parametrize("full", [False, True])
def test_against_a_token_bucket_it_meets_the_benchmark_goals(rate, speed, full):
    """At least 90 % of the vendor's rate, under 2 % of requests refused, whether the
    vendor's bucket starts empty or full, over 8 s (as in bench/rate_limited.py) and 60 s."""
    for seconds in (8, 60):
        clock = Clock()
        accepted, refused = drive(
            Pacer(clock=clock), clock, Bucket(rate, clock, full=full), seconds, speed
        )
        assert accepted >= 0.9 * rate * seconds
        assert refused < 0.02 * (accepted + refused)


def test_quota_headers_pause_and_cap_the_rate():
    clock = Clock()
    pacer = Pacer(clock=clock)
    pacer.announced(Quota(limit=100, window=10, remaining=0, reset=4))
    assert pacer.paused_until == pytest.approx(clock.now + 4)
    assert pacer.rate == pytest.approx(10) and pacer.ceiling == pytest.approx(10)
    pacer.paused_until = 0
    for _ in range(300):  # probing never passes the announced rate
        clock.now += pacer.wait()
        pacer.take()
        pacer.accepted()
    assert pacer.rate == pytest.approx(10)


def test_quota_from_headers():
    ietf = quota_from_headers(
        {"RateLimit-Limit": "100, 100;w=10", "RateLimit-Remaining": "7", "RateLimit-Reset": "3"}
    )
    assert ietf == Quota(limit=100, window=10, remaining=7, reset=3)
    assert ietf.rate == pytest.approx(10)
    policy = quota_from_headers({"RateLimit-Policy": "50;w=60", "RateLimit-Remaining": "0"})
    assert policy is not None and policy.rate == pytest.approx(50 / 60)
    github = quota_from_headers(
        {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1700000060",
        },
        wall=1_700_000_000.0,
    )
    assert github == Quota(limit=5000, window=None, remaining=0, reset=60)
    assert github.rate is None  # no window: the limit alone is no rate
    assert quota_from_headers({"Content-Type": "text/plain"}) is None


def test_fixed_concurrency_honours_retry_after_but_learns_no_rate():
    clock = Clock()
    c = Controller(8, fixed=4, clock=clock)
    c.start()
    c.finish(None, back_pressure=True, retry_after=1.0, refused_at=clock.now)
    assert c.paused_until == pytest.approx(clock.now + 1.0)
    assert c.pacer.rate is None


def test_adaptive_controller_learns_the_rate_from_429s():
    clock = Clock()
    c = Controller(8, clock=clock)
    for _ in range(50):
        c.start()
        c.pacer.take()
        clock.now += 0.01
        c.finish(0.01)
    c.start()
    c.finish(None, back_pressure=True, retry_after=1.0, refused_at=clock.now)
    assert c.pacer.rate == pytest.approx(100 * c.pacer.settings.margin)


def test_the_learned_rate_is_exported():
    class PerEvent:
        max_concurrency = 32

    metrics = Metrics()
    c = controller_for("c", PerEvent(), "adaptive", metrics)
    assert c is not None
    assert b'connectord_delivery_request_rate{connector="c"} 0.0' in metrics.render()
    c.pacer.announced(Quota(limit=120, window=60))
    assert b'connectord_delivery_request_rate{connector="c"} 2.0' in metrics.render()
