"""The learned request rate (`connectord.pacing`), driven by a fake clock (no sleeps)."""

from __future__ import annotations

import pytest

from connectord.concurrency import Controller, controller_for
from connectord.metrics import Metrics
from connectord.pacing import Pacer, PacingSettings, Quota, quota_from_headers
from tests.unit.test_concurrency import Clock

pytestmark = pytest.mark.timeout(20)


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
