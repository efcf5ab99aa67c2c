"""From source records to acknowledged deliveries: mappings, batching, retries, rejects.

`Pipeline.process` takes the records a source produced (a queue batch or a pull batch)
and returns only when each one is acknowledged or dead-lettered. Transient failures are
retried behind a per-connector `Throttle`, so a destination that is down sees one probe
at a time with growing delays instead of every in-flight batch hammering it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from . import records as record_model
from . import tap
from .api import Destination, Mapping, Record
from .backoff import Backoff
from .concurrency import ADAPTIVE, controller_for
from .errors import AuthError, PermanentError, RecordRejected, RetryableError
from .isolation import Isolation, Item, Ledger, RecordSet, Strikes
from .log import redact
from .state import DeadLetter

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import structlog

    from .metrics import Metrics


class Stopping(Exception):
    """The connector is stopping; unfinished work stays queued for the next start."""


class BudgetExceeded(RetryableError):
    """The destination kept failing for longer than the retry budget allows."""


class Parked(Exception):
    """Some records keep failing while nothing else is acknowledged (an outage, or only
    records at fault in flight): they are handed back to the caller, which keeps them
    queued and retries them later, so that they do not hold a delivery slot.

    ``outcome`` is final for every other record; ``unfinished`` are the indexes of the
    source records handed back.
    """

    def __init__(self, outcome: Outcome, unfinished: set[int]) -> None:
        super().__init__(f"{len(unfinished)} records held back")
        self.outcome = outcome
        self.unfinished = unfinished


class Throttle:
    """Shared retry state of one connector's destination.

    Healthy: calls go straight through. After a transient failure: callers queue on a
    lock and one probe at a time waits for the backoff delay, so the destination sees
    one request per delay, not one per in-flight batch.
    """

    def __init__(self, backoff: Backoff, stop: asyncio.Event) -> None:
        self.backoff = backoff
        self.stop = stop
        self.failures = 0
        self.open_at = 0.0
        self.auth_failing = False
        self.last_error: str | None = None
        self.last_success = 0.0
        """`time.monotonic` of the last call in which the destination accepted records."""
        self._lock = asyncio.Lock()

    @property
    def healthy(self) -> bool:
        return self.failures == 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.failures == 0:
            yield
            return
        async with self._lock:
            await self.sleep_until(self.open_at)
            yield

    async def sleep_until(self, moment: float) -> None:
        delay = moment - time.monotonic()
        if self.stop.is_set():
            raise Stopping()
        if delay > 0:
            try:  # not `wait_for`, which can swallow a cancellation on Python 3.11
                async with asyncio.timeout(delay):
                    await self.stop.wait()
            except TimeoutError:
                return
            raise Stopping()

    def succeeded(self) -> None:
        self.failures = 0
        self.auth_failing = False
        self.last_error = None

    def acknowledged(self) -> None:
        """The destination accepted records just now: it is up for everyone."""
        self.last_success = time.monotonic()

    def failed(self, error: RetryableError) -> float:
        """Record a transient failure; return the delay before the next attempt."""
        self.failures += 1
        self.auth_failing = isinstance(error, AuthError)
        self.last_error = redact(str(error))  # in run errors: vendors echo credentials
        attempt = self.failures - 1
        if self.auth_failing:  # credentials rarely fix themselves: back off hard
            attempt += 4
        delay = self.backoff.delay(attempt, error.retry_after)
        self.open_at = time.monotonic() + delay
        return delay


@dataclass
class Outcome:
    """What became of a list of source records."""

    delivered: int = 0
    """Records the destination acknowledged (after mapping; one source record may make
    several or none)."""
    dead: list[DeadLetter] = field(default_factory=list)
    dropped: int = 0
    """Source records a mapping filtered out on purpose."""


class Pipeline:
    """One connector's mappings and destination, with its retry policy."""

    def __init__(
        self,
        connector: str,
        mappings: Sequence[Mapping],
        destination: Destination,
        *,
        throttle: Throttle,
        log: structlog.typing.FilteringBoundLogger,
        metrics: Metrics | None = None,
        isolate_after: int = 5,
        request_concurrency: str | int = ADAPTIVE,
    ) -> None:
        self.connector = connector
        self.isolation = Isolation(throttle, log, isolate_after)
        self.mappings = list(mappings)
        self.destination = destination
        self.throttle = throttle
        self.log = log
        self.metrics = metrics
        self.chunk_size = max(1, int(getattr(destination, "max_batch_size", 500)))
        self.limiter = controller_for(connector, destination, request_concurrency, metrics)
        """Requests in flight for destinations declaring ``max_concurrency`` (see
        `connectord.concurrency`); it sits in the connector's HTTP session."""

    def http_middlewares(self) -> tuple[Any, ...]:
        """Client middlewares for the connector's session: the request limiter, if any."""
        return () if self.limiter is None else (self.limiter.middleware,)

    async def process(
        self,
        records: Sequence[Record],
        *,
        budget: float | None = None,
        strikes: Sequence[Strikes] | None = None,
        park: bool = False,
    ) -> Outcome:
        """Map and deliver; return when every record is acknowledged or dead-lettered.

        :param budget: seconds to keep retrying transient failures; ``None`` retries
            until the connector stops (push connectors: the queue keeps the records).
        :param strikes: one per record, carried over from earlier calls for the same
            records (see `Strikes`); fresh ones when omitted.
        :param park: hand back records that keep failing while nothing else is
            acknowledged (raise `Parked`) instead of retrying them here.
        :raises Stopping: the connector is stopping; nothing of this call is final.
        :raises BudgetExceeded: the budget ran out; nothing of this call is final.
        :raises Parked: ``park`` is set and some records were handed back.
        """
        deadline = None if budget is None else time.monotonic() + budget
        run = Ledger(
            reasons={},
            stages={},
            strikes=strikes if strikes is not None else [Strikes() for _ in records],
            deadline=deadline,
            park=park,
        )
        tap.publish(self.connector, "raw", records)
        items = self._validate(records, run.reasons, run.stages)
        items = await self._map(items, run.reasons, run.stages)
        tap.publish(self.connector, "mapped", (item.record for item in items))
        mapped_origins = {item.origin for item in items}
        outcome = Outcome()
        for start in range(0, len(items), self.chunk_size):
            chunk = items[start : start + self.chunk_size]
            outcome.delivered += await self._send(chunk, run)
        for origin, why in sorted(run.reasons.items()):
            if origin in run.parked:
                continue  # sent again in full later
            outcome.dead.append(
                DeadLetter(
                    connector=self.connector,
                    record=orjson.dumps(records[origin], default=str),
                    reason=redact("; ".join(dict.fromkeys(why))),
                    stage=run.stages.get(origin, "destination"),
                )
            )
        outcome.dropped = sum(
            1 for i in range(len(records)) if i not in mapped_origins and i not in run.reasons
        )
        if run.parked:
            raise Parked(outcome, set(run.parked))
        return outcome

    # --- stages ----------------------------------------------------------------------

    def _validate(
        self, records: Sequence[Record], reasons: dict[int, list[str]], stages: dict[int, str]
    ) -> list[Item]:
        items = []
        for i, record in enumerate(records):
            issue = record_model.problem(record)
            if issue is None:
                items.append(Item(i, record))
            else:
                reasons.setdefault(i, []).append(f"invalid record: {issue}")
                stages[i] = "validation"
        return items

    async def _map(
        self, items: list[Item], reasons: dict[int, list[str]], stages: dict[int, str]
    ) -> list[Item]:
        for mapping in self.mappings:
            if not items:
                break
            results = await mapping.map_batch([item.record for item in items])
            mapped: list[Item] = []
            for item, result in zip(items, results, strict=True):
                if isinstance(result, Exception):
                    reasons.setdefault(item.origin, []).append(_mapping_reason(mapping, result))
                    stages[item.origin] = "mapping"
                    if not isinstance(result, RecordRejected):
                        self.log.error("mapping.failed", mapping=mapping.type, error=repr(result))
                else:
                    mapped.extend(Item(item.origin, r) for r in result)
            items = mapped
        return items

    async def _send(self, items: list[Item], run: Ledger) -> int:
        """Deliver one chunk; return how many records were acknowledged.

        Sets of records are tried round-robin, so that while one set waits out its
        failures the others (halves of a split) go through and show whether the
        destination accepts anything at all: see `_after_failure` for the rule.
        """
        delivered = 0
        work = deque([RecordSet(items, since=time.monotonic())])
        while work:
            batch = work.popleft()
            try:
                result = await self._attempt(batch.items, run.deadline)
            except BudgetExceeded:
                raise
            except PermanentError as err:
                if len(batch.items) == 1:
                    run.reject(batch.items[0], str(err))
                    continue
                # Isolate the records at fault: each half is retried on its own.
                self.log.info("delivery.batch.split", size=len(batch.items), error=str(err))
                work.extend(batch.halves(split=False))
                continue
            except RetryableError as err:
                self.isolation.after_failure(batch, err, run, work)
                continue
            retry: list[Item] = []
            accepted = 0
            for index, item in enumerate(batch.items):
                if index in result.rejected:
                    run.reject(item, result.rejected[index])
                elif index in result.retry:
                    retry.append(item)
                else:
                    accepted += 1
            if accepted:
                self.throttle.acknowledged()
                delivered += accepted
            if retry:
                error = RetryableError(
                    f"{len(retry)} of {len(batch.items)} records to retry",
                    retry_after=result.retry_after,
                )
                delay = self._partial_delay(error)
                self.log.info("delivery.partial_retry", count=len(retry), delay=round(delay, 2))
                remainder = RecordSet(retry, since=batch.since, failures=batch.failures, split=True)
                self.isolation.after_failure(remainder, error, run, work)
        return delivered

    def _partial_delay(self, error: RetryableError) -> float:
        """Back off after a partial failure. A ``Retry-After`` the request limiter already
        waited out (the call returns only once its last request went through) is not
        waited out a second time: the throttle opens when the limiter's pause ended."""
        delay = self.throttle.failed(error)
        if self.limiter is None or error.retry_after is None:
            return delay
        now = time.monotonic()
        self.throttle.open_at = min(self.throttle.open_at, max(self.limiter.paused_until, now))
        return max(0.0, self.throttle.open_at - now)

    async def _attempt(self, pending: list[Item], deadline: float | None) -> Any:
        """One destination call behind the throttle.

        :raises RetryableError: a transient failure (network errors become one).
        :raises PermanentError: the request was refused for good (or the plugin failed in
            a way only the records can explain).
        :raises BudgetExceeded: the deadline passed before the call.
        """
        from .api import DeliveryResult

        if deadline is not None and time.monotonic() > deadline:
            raise BudgetExceeded(f"destination kept failing: {self.throttle.last_error}")
        async with self.throttle.slot():
            started = time.monotonic()
            try:
                result = await self.destination.send([item.record for item in pending])
            except RetryableError as err:
                self._failed(err, len(pending))
                raise
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                # The network, not the records: a refused connection, a reset, a
                # timeout. Retry like a 5xx; never dead-letter over it alone.
                error = RetryableError(f"network error: {err!r}")
                self._failed(error, len(pending))
                raise error from err
            except PermanentError:
                self.throttle.succeeded()
                raise
            except (asyncio.CancelledError, Stopping):
                raise
            except Exception as err:
                # A bug or an unexpected vendor answer: isolate the records that
                # trigger it rather than block the queue behind them.
                self.log.exception("destination.error", error=repr(err))
                raise PermanentError(f"destination error: {err!r}") from err
            finally:
                if self.metrics is not None:
                    self.metrics.delivery_latency.labels(self.connector).observe(
                        time.monotonic() - started
                    )
            self.throttle.succeeded()
            if self.metrics is not None:
                self.metrics.connector_up.labels(self.connector).set(1)
            return result if result is not None else DeliveryResult()

    def _failed(self, err: RetryableError, size: int) -> None:
        delay = self.throttle.failed(err)
        event = "delivery.auth_failed" if isinstance(err, AuthError) else "delivery.retry"
        self.log.warning(
            event,
            error=str(err),
            records=size,
            attempt=self.throttle.failures,
            delay=round(delay, 2),
        )
        if self.metrics is not None:
            self.metrics.delivery_retries.labels(self.connector).inc()
            self.metrics.connector_up.labels(self.connector).set(0)


def _mapping_reason(mapping: Mapping, err: Exception) -> str:
    if isinstance(err, RecordRejected):
        return f"mapping {mapping.type}: {err}"
    return f"mapping {mapping.type} failed: {err!r}"
