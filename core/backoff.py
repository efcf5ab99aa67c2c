"""Retry delays: exponential growth with jitter, never shorter than ``Retry-After``."""

from __future__ import annotations

import random
from dataclasses import dataclass

_JITTER = random.Random()
"""A generator of our own: retry jitter must not draw from, or move, the global
``random`` state that the program embedding connectord (or a test seeding it) uses."""


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number ``attempt`` (0-based).

    Half of the exponential step is fixed and half random ("equal jitter"): retries of
    many connectors spread out, yet none retries almost immediately.
    """

    initial: float = 1.0
    maximum: float = 300.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        step = min(self.maximum, self.initial * (2 ** min(attempt, 32)))
        jittered = step / 2 + _JITTER.uniform(0, step / 2)
        if retry_after is not None and retry_after > 0:
            return max(jittered, min(retry_after, max(self.maximum, retry_after)))
        return jittered
