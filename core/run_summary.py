"""What one pull run or one queue drain did: `RunSummary`, reported as it goes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class RunSummary:
    """What one pull run (or one queue drain) did."""

    connector: str
    status: str
    records_in: int = 0
    records_out: int = 0
    rejected: int = 0
    error: str | None = None
    seconds: float = 0.0


Progress = Callable[[RunSummary], None]
