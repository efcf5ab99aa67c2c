"""From source records to acknowledged deliveries: mappings, batching, retries, rejects.

`Pipeline.process` takes the records a source produced (a queue batch or a pull batch)
and returns only when each one is acknowledged or dead-lettered. Transient failures are
retried behind a per-connector `Throttle`, so a destination that is down sees one probe
at a time with growing delays instead of every in-flight batch hammering it.
"""

from __future__ import annotations

import asyncio
import time
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
from .errors import AuthError, PermanentError, RecordRejected, RetryableError
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
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=delay)
            except TimeoutError:
                return
            raise Stopping()

    def succeeded(self) -> None:
        self.failures = 0
        self.auth_failing = False
        self.last_error = None

    def failed(self, error: RetryableError) -> float:
        """Record a transient failure; return the delay before the next attempt."""
        self.failures += 1
        self.auth_failing = isinstance(error, AuthError)
        self.last_error = redact(str(error))  # shown by /healthz: vendors echo credentials
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


@dataclass
class _Item:
    origin: int
    record: Record


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
    ) -> None:
        self.connector = connector
        self.mappings = list(mappings)
        self.destination = destination
        self.throttle = throttle
        self.log = log
        self.metrics = metrics
        self.chunk_size = max(1, int(getattr(destination, "max_batch_size", 500)))

    async def process(self, records: Sequence[Record], *, budget: float | None = None) -> Outcome:
        """Map and deliver; return when every record is acknowledged or dead-lettered.

        :param budget: seconds to keep retrying transient failures; ``None`` retries
            until the connector stops (push connectors: the queue keeps the records).
        :raises Stopping: the connector is stopping; nothing of this call is final.
        :raises BudgetExceeded: the budget ran out; nothing of this call is final.
        """
        deadline = None if budget is None else time.monotonic() + budget
        reasons: dict[int, list[str]] = {}
        stages: dict[int, str] = {}
        tap.publish(self.connector, "raw", records)
        items = self._validate(records, reasons, stages)
        items = await self._map(items, reasons, stages)
        tap.publish(self.connector, "mapped", (item.record for item in items))
        mapped_origins = {item.origin for item in items}
        outcome = Outcome()
        for start in range(0, len(items), self.chunk_size):
            chunk = items[start : start + self.chunk_size]
            outcome.delivered += await self._send(chunk, reasons, stages, deadline)
        for origin, why in sorted(reasons.items()):
            outcome.dead.append(
                DeadLetter(
                    connector=self.connector,
                    record=orjson.dumps(records[origin], default=str),
                    reason=redact("; ".join(dict.fromkeys(why))),
                    stage=stages.get(origin, "destination"),
                )
            )
        outcome.dropped = sum(
            1 for i in range(len(records)) if i not in mapped_origins and i not in reasons
        )
        return outcome

    # --- stages ----------------------------------------------------------------------

    def _validate(
        self, records: Sequence[Record], reasons: dict[int, list[str]], stages: dict[int, str]
    ) -> list[_Item]:
        items = []
        for i, record in enumerate(records):
            issue = record_model.problem(record)
            if issue is None:
                items.append(_Item(i, record))
            else:
                reasons.setdefault(i, []).append(f"invalid record: {issue}")
                stages[i] = "validation"
        return items

    async def _map(
        self, items: list[_Item], reasons: dict[int, list[str]], stages: dict[int, str]
    ) -> list[_Item]:
        for mapping in self.mappings:
            if not items:
                break
            results = await mapping.map_batch([item.record for item in items])
            mapped: list[_Item] = []
            for item, result in zip(items, results, strict=True):
                if isinstance(result, Exception):
                    reasons.setdefault(item.origin, []).append(_mapping_reason(mapping, result))
                    stages[item.origin] = "mapping"
                    if not isinstance(result, RecordRejected):
                        self.log.error("mapping.failed", mapping=mapping.type, error=repr(result))
                else:
                    mapped.extend(_Item(item.origin, r) for r in result)
            items = mapped
        return items

    async def _send(
        self,
        items: list[_Item],
        reasons: dict[int, list[str]],
        stages: dict[int, str],
        deadline: float | None,
    ) -> int:
        """Deliver one chunk with retries; return how many records were acknowledged."""
        delivered = 0
        pending = items
        while pending:
            try:
                result = await self._call(pending, deadline)
            except PermanentError as err:
                if len(pending) == 1:
                    reasons.setdefault(pending[0].origin, []).append(str(err))
                    stages[pending[0].origin] = "destination"
                    return delivered
                # Isolate the records at fault: each half is retried on its own.
                middle = len(pending) // 2
                self.log.info("delivery.batch.split", size=len(pending), error=str(err))
                delivered += await self._send(pending[:middle], reasons, stages, deadline)
                delivered += await self._send(pending[middle:], reasons, stages, deadline)
                return delivered
            retry = []
            for index, item in enumerate(pending):
                if index in result.rejected:
                    reasons.setdefault(item.origin, []).append(result.rejected[index])
                    stages[item.origin] = "destination"
                elif index in result.retry:
                    retry.append(item)
                else:
                    delivered += 1
            if retry:
                delay = self.throttle.failed(
                    RetryableError(
                        f"{len(retry)} of {len(pending)} records to retry",
                        retry_after=result.retry_after,
                    )
                )
                self.log.info("delivery.partial_retry", count=len(retry), delay=round(delay, 2))
            pending = retry
        return delivered

    async def _call(self, pending: list[_Item], deadline: float | None) -> Any:
        """One destination call per slot, retrying transient errors until the deadline."""
        from .api import DeliveryResult

        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise BudgetExceeded(f"destination kept failing: {self.throttle.last_error}")
            async with self.throttle.slot():
                started = time.monotonic()
                try:
                    result = await self.destination.send([item.record for item in pending])
                except RetryableError as err:
                    self._failed(err, len(pending))
                    continue
                except (aiohttp.ClientError, TimeoutError, OSError) as err:
                    # The network, not the records: a refused connection, a reset, a
                    # timeout. Retry like a 5xx; never dead-letter over it.
                    self._failed(RetryableError(f"network error: {err!r}"), len(pending))
                    continue
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
