"""A learned request-rate limit: how many requests per second the vendor accepts.

Adaptive concurrency (`connectord.concurrency`) bounds requests *in flight*; vendors
limit requests *per second*. When the vendor answers fast, even one or two requests in
flight exceed a limit of a few hundred per second, so a concurrency limit alone keeps
probing into 429s. `Pacer` adds the missing half: a token bucket whose rate is learned
from the vendor's answers.

- Unknown until the vendor says so: no pacing until the first 429 (or a quota header).
- Decrease, at most once per refusal episode (a 429 for a request sent before the last
  decrease is the same episode, as TCP reduces once per round trip): the rate becomes
  ``margin`` x the *delivery rate* observed since the previous decrease, that is the 2xx
  answers counted over that interval, Retry-After pause included. This is the sampling
  BBR uses to estimate a path's bottleneck bandwidth (Cardwell et al., "BBR:
  Congestion-Based Congestion Control", ACM Queue 14(5), 2016): what got through per
  unit of time, not what was sent. Against a vendor's token bucket, refused at both
  ends of the interval, it is the bucket's refill rate exactly, since everything the
  bucket let through in between was refilled in between. A refusal never raises the
  rate, and lowers it by half at most: a pause longer than the vendor's bucket holds
  makes the sample low. One with nothing accepted since the last one halves it.
- Additive increase: after ``probe_interval`` seconds without refusal during which the
  pacer held requests back (there was demand for more), +``probe_ratio`` of the rate
  learned at the last decrease, so that a vendor that raised its limit is found again.
- Burst: the bucket holds up to ``burst_seconds`` of the rate, so the requests held back
  during a ``Retry-After`` pause go out at once when it ends, as the vendor's own bucket
  refilled meanwhile. Without that allowance a pause would be time lost for good. A 429
  while burst was left shrinks it to what the vendor let through.
- ``Retry-After`` pauses new requests until it has passed; so does a quota header saying
  none remain (``RateLimit-Remaining: 0`` with ``RateLimit-Reset``, or their ``X-``
  forms). A quota with a window (``RateLimit-Policy: 100;w=10``) caps the rate at 10/s.

Why not the client-side throttling of Google's SRE book ("Handling Overload": reject
locally with probability ``max(0, (requests - K * accepts) / (requests + 1))``)? It
bounds the share of refused requests but does not pace them: the refused ones still
cost a retry each. Pacing at the learned rate sends only what will be accepted.

`Pacer` is a plain state machine with an injectable clock; the unit tests
(``tests/unit/test_concurrency.py``) drive it without sleeping.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

EPOCH_THRESHOLD = 1e9
"""A ``*-Reset`` value above this is a Unix time (GitHub's form), else seconds to wait."""


@dataclass(frozen=True)
class PacingSettings:
    """Tuning of the learned rate; the defaults meet the rate-limit benchmark's goals
    (``bench/rate_limited.py``: 90 % of the vendor's rate, under 2 % refused)."""

    margin: float = 0.97
    probe_interval: float = 1.0
    probe_ratio: float = 0.02
    burst_seconds: float = 1.0
    idle_reset: float = 1.0
    """A gap this long without requests starts a new delivery-rate sample: the vendor
    refilled meanwhile, and idle time says nothing about its rate."""


@dataclass(frozen=True)
class Quota:
    """What a vendor's rate-limit headers announced."""

    limit: float | None = None
    window: float | None = None
    remaining: float | None = None
    reset: float | None = None
    """Seconds until the quota resets."""

    @property
    def rate(self) -> float | None:
        if self.limit is None or not self.window:
            return None
        return self.limit / self.window


class Pacer:
    """One connector's learned limit on destination requests per second."""

    def __init__(
        self,
        settings: PacingSettings = PacingSettings(),
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.on_change = on_change
        self.rate: float | None = None
        """Requests per second allowed; ``None`` until the vendor refused or announced."""
        self.ceiling: float | None = None
        """The rate a quota header announced: probing never goes above it."""
        self.burst = 0.0
        self.tokens = 0.0
        self.paused_until = 0.0
        self._stamp = clock()
        self._step = 0.0
        self._last_start: float | None = None
        self._sample_start: float | None = None
        self._accepted = 0
        self._decided_at = -float("inf")
        self._clean_since = 0.0
        self._held_back = False

    # --- requests -------------------------------------------------------------------------

    def wait(self) -> float:
        """Seconds before the next request may start (0: now)."""
        now = self.clock()
        pause = self.paused_until - now
        if pause > 0:
            return pause
        if self.rate is None:
            return 0.0
        self._refill(now)
        if self.tokens >= 1 - 1e-9:  # a rounding error must not cost a timer
            return 0.0
        self._held_back = True
        return (1 - self.tokens) / self.rate

    def take(self) -> None:
        """A request starts now (call when `wait` returned 0)."""
        now = self.clock()
        idle_since = max(self._last_start or -float("inf"), self.paused_until)
        if self._sample_start is None or now - idle_since > self.settings.idle_reset:
            self._sample_start, self._accepted = now, 0
        self._last_start = now
        if self.rate is not None:
            self._refill(now)
            self.tokens -= 1

    def accepted(self) -> None:
        """The vendor processed a request (2xx)."""
        now = self.clock()
        self._accepted += 1
        if (
            self.rate is not None
            and self._held_back
            and now - self._clean_since >= self.settings.probe_interval
        ):
            rate = self.rate + self._step
            self._set_rate(rate if self.ceiling is None else min(rate, self.ceiling))
            self._clean_since, self._held_back = now, False

    def refused(self, sent_at: float, retry_after: float | None = None) -> None:
        """The vendor answered 429 to a request started at ``sent_at``."""
        now = self.clock()
        if retry_after is not None and retry_after > 0:
            self.pause(retry_after)
        if sent_at < self._decided_at:
            return  # sent before the last decrease: that one already accounted for it
        self._refill(now)
        spent = self.burst - self.tokens
        start = self._sample_start if self._sample_start is not None else now
        if self._accepted:
            delivered = self._accepted / max(now - start, 1e-3)
            if self.rate is not None:  # never up, and at most halved by one sample
                delivered = min(max(delivered, self.rate / 2), self.rate)
            rate = delivered * self.settings.margin
        elif self.rate is not None:
            rate = self.rate / 2
        else:
            rate = None  # refused before anything got through: the pause will have to do
        self._decided_at, self._sample_start, self._accepted = now, now, 0
        self._clean_since, self._held_back = now, False
        if rate is None:
            return
        bursting = self.rate is not None and self.tokens >= 1
        self._set_rate(rate)
        self._step = rate * self.settings.probe_ratio
        if bursting:  # refused with burst to spare: the vendor's is ``spent`` less this one
            self.burst = max(1.0, min(self.burst, spent - 1))
        self.tokens = min(self.tokens, 0.0)  # the vendor's bucket is empty: so is ours

    def pause(self, seconds: float) -> None:
        """No new request for ``seconds`` (``Retry-After``, or a quota spent)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def announced(self, quota: Quota) -> None:
        """Apply a vendor's rate-limit headers."""
        if quota.remaining is not None and quota.remaining < 1 and quota.reset:
            self.pause(quota.reset)
        rate = quota.rate
        if rate is None or rate == self.ceiling:
            return
        self.ceiling = rate
        self._clean_since = self.clock()
        if self.rate is None or self.rate > rate:
            self._set_rate(rate)
            self._step = rate * self.settings.probe_ratio
            self.burst = min(self.burst, quota.limit or self.burst)

    # --- internals ------------------------------------------------------------------------

    def _refill(self, now: float) -> None:
        if self.rate is not None:
            self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def _set_rate(self, rate: float) -> None:
        self._refill(self.clock())
        first = self.rate is None
        self.rate = rate
        cap = rate * self.settings.burst_seconds
        self.burst = cap if first else min(max(self.burst, 1.0), cap)
        if first:
            self.tokens = 0.0
        if self.on_change is not None:
            self.on_change(rate)


_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)")
_WINDOW = re.compile(r";\s*(?:w|window)\s*=\s*([0-9]+(?:\.[0-9]+)?)")


def quota_from_headers(headers: Mapping[str, str], *, wall: float | None = None) -> Quota | None:
    """Read ``RateLimit-*`` (the IETF httpapi draft) or ``X-RateLimit-*`` headers.

    ``RateLimit-Policy`` or ``RateLimit-Limit`` may carry the window (``100;w=60``);
    ``*-Reset`` is seconds to wait, or a Unix time when that large. ``None`` when the
    response carries none of them.
    """

    def header(name: str) -> str | None:
        return headers.get(f"RateLimit-{name}") or headers.get(f"X-RateLimit-{name}")

    limit_text = header("Limit")
    policy = headers.get("RateLimit-Policy") or limit_text
    remaining, reset = _number(header("Remaining")), _number(header("Reset"))
    if limit_text is None and remaining is None and reset is None:
        return None
    if reset is not None and reset > EPOCH_THRESHOLD:
        reset = max(0.0, reset - (time.time() if wall is None else wall))
    window = _WINDOW.search(policy) if policy else None
    return Quota(
        limit=_number(policy),
        window=float(window.group(1)) if window else None,
        remaining=remaining,
        reset=reset,
    )


def _number(text: str | None) -> float | None:
    match = _NUMBER.match(text) if text else None
    return float(match.group(1)) if match else None
