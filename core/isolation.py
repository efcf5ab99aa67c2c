"""Telling a record at fault from a destination that is down.

A destination (or its plugin) may answer "retry later" for a record it will never take.
Retried forever, such records would hold every delivery slot; dead-lettered too eagerly,
an outage would turn healthy records into dead letters. The rule here decides from one
kind of evidence: whether the destination accepts *other* records while these fail
(docs/guarantees.md, "Records at fault and outages").
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .api import Record
from .errors import RetryableError

if TYPE_CHECKING:
    import structlog

    from .delivery import Throttle


@dataclass
class Strikes:
    """How one record has fared across attempts; the push queue keeps one per queued
    row for as long as the row is queued, so that it survives being handed back."""

    failures: int = 0
    """Failed attempts that included this record."""
    alone: int = 0
    """Failed attempts with this record on its own."""
    first_alone: float = 0.0
    """When it first failed on its own (`time.monotonic`)."""
    idle: int = 0
    """Failures on its own in a row with nothing else acknowledged in between."""
    last_failure: float = 0.0

    def failed(self, now: float, last_success: float, *, alone: bool) -> None:
        if alone:
            self.alone += 1
            self.first_alone = self.first_alone or now
            others_went_through = self.last_failure and last_success > self.last_failure
            self.idle = 0 if others_went_through else self.idle + 1
        self.failures += 1
        self.last_failure = now

    def at_fault(self, last_success: float, limit: int) -> bool:
        """Failed ``limit`` times on its own, and the destination accepted other records
        after its first failure on its own: it works, only this record does not."""
        return self.alone >= limit and last_success > self.first_alone


@dataclass
class Item:
    origin: int
    record: Record


@dataclass
class RecordSet:
    """Records sent together, and how that has gone."""

    items: list[Item]
    since: float
    """When the set was made (`time.monotonic`)."""
    failures: int = 0
    split: bool = False
    """Made by splitting a set that kept failing."""

    def halves(self, *, split: bool) -> list[RecordSet]:
        middle = len(self.items) // 2
        now = time.monotonic()
        return [
            RecordSet(self.items[:middle], since=now, split=split),
            RecordSet(self.items[middle:], since=now, split=split),
        ]


@dataclass
class Ledger:
    """One `Pipeline.process` call's bookkeeping."""

    reasons: dict[int, list[str]]
    stages: dict[int, str]
    strikes: Sequence[Strikes]
    deadline: float | None
    park: bool
    parked: set[int] = field(default_factory=set)

    def reject(self, item: Item, reason: str) -> None:
        self.reasons.setdefault(item.origin, []).append(reason)
        self.stages[item.origin] = "destination"


class Isolation:
    """Tells a record at fault from a destination that is down (docs/guarantees.md,
    "Records at fault and outages"), for one connector's pipeline."""

    def __init__(
        self, throttle: Throttle, log: structlog.typing.FilteringBoundLogger, isolate_after: int
    ) -> None:
        self.throttle = throttle
        self.log = log
        self.isolate_after = max(1, isolate_after)

    def after_failure(
        self, batch: RecordSet, err: RetryableError, run: Ledger, work: deque[RecordSet]
    ) -> None:
        """Decide what a retryable failure of ``batch`` leads to.

        The rule that tells a record at fault from a destination that is down:

        - A set of several records is split in two after ``isolate_after`` failures in a
          row, or after one failure once it is itself half of a split and the destination
          has acknowledged other records since it was made. Splitting never dead-letters.
        - A single record is dead-lettered once it has failed ``isolate_after`` times on
          its own and the destination acknowledged other records after its first failure
          on its own: the destination works, only this record does not.
        - A single record that fails while nothing else is acknowledged is what an
          outage looks like: it is retried (behind the throttle), never dead-lettered.
          When the caller can hold it back (``park``, the push queue), it is handed back
          after two failures in a row with nothing else acknowledged in between, so that
          it does not hold a delivery slot while other records wait.

        Network errors (no answer at all) count like any other retryable failure here;
        only an answer proves the destination is up, and that proof is what dead-letters.
        """
        batch.failures += 1
        now = time.monotonic()
        alone = len(batch.items) == 1
        for item in batch.items:
            run.strikes[item.origin].failed(now, self.throttle.last_success, alone=alone)
        if not alone:
            evidence = self.throttle.last_success > batch.since
            if batch.failures >= self.isolate_after or (batch.split and evidence):
                self.log.info(
                    "delivery.batch.isolating",
                    size=len(batch.items),
                    attempts=batch.failures,
                    error=str(err),
                )
                work.extend(batch.halves(split=True))
            else:
                work.append(batch)
            return
        item = batch.items[0]
        strikes = run.strikes[item.origin]
        if strikes.at_fault(self.throttle.last_success, self.isolate_after):
            reason = (
                f"kept failing ({strikes.failures} attempts, {strikes.alone} on its own) "
                f"while the destination accepted other records; isolated as the record "
                f"at fault: {err}"
            )
            self.log.warning(
                "delivery.record.isolated",
                attempts=strikes.failures,
                message_id=_message_id(item.record),
                error=str(err),
            )
            run.reject(item, reason)
        elif run.park and strikes.idle >= 2:
            run.parked.add(item.origin)
        else:
            work.append(batch)


def _message_id(record: Any) -> str | None:
    value = record.get("messageId") if isinstance(record, dict) else None
    return value if isinstance(value, str) else None
