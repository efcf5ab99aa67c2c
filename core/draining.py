"""A connector's queue delivery: read queued rows, deliver them, acknowledge exactly them.

`QueueDraining` is the part of `connectord.connector.ConnectorRuntime` that runs while
this process owns the connector: up to ``delivery.concurrency`` batches in flight, rows
the destination could not take held back (parked) and retried after the destination
accepted something else, and every acknowledgement fenced by the lease's epoch so that
a process that lost the connector acknowledges nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson

from .backends import StaleEpoch, StateBackend, StateUnavailable
from .delivery import BudgetExceeded, Outcome, Parked, Pipeline, Stopping, Strikes, Throttle
from .delivery_loop import DeliveryLoop
from .run_summary import Progress, RunSummary
from .state import QueueRow

if TYPE_CHECKING:
    import structlog

    from .config import ConnectorConfig
    from .metrics import Metrics

DEPTH_RESYNC_SECONDS = 15.0
PARK_LIMIT = 1000  # held-back rows remembered; beyond it only those are retried (an outage)
STATE_ERRORS = (sqlite3.Error, StateUnavailable)
"""The state could not be written right now; nothing was committed (retry)."""


class QueueDraining:
    """Queue delivery for `ConnectorRuntime`, which sets these attributes."""

    name: str
    config: ConnectorConfig
    state: StateBackend
    epoch: int | None
    metrics: Metrics | None
    log: structlog.typing.FilteringBoundLogger
    stop_event: asyncio.Event
    throttle: Throttle
    pipeline: Pipeline
    depth: int
    _wake: asyncio.Event
    _tasks: set[asyncio.Task[Any]]
    _strikes: dict[int, Strikes]
    _parked: deque[tuple[int, float]]
    _delivery: DeliveryLoop
    _drainer: asyncio.Future[None] | None

    if TYPE_CHECKING:  # provided by the class this is mixed into

        def _lease_lost(self, epoch: int | None = None) -> None: ...

    # --- ownership: who drains ------------------------------------------------------------

    def own(self, epoch: int) -> None:
        """This process now holds the connector's lease: drain its queue and allow runs."""
        self.epoch = epoch
        if self._drainer is None or self._drainer.done():
            self._start_drainer()
        self.log.info("connector.owned", epoch=epoch)

    def _start_drainer(self) -> None:
        """A push connector drains on its delivery loop, a pull connector here."""
        if not self.config.is_push:
            self._drainer = asyncio.create_task(self._drain(), name=f"drain:{self.name}")
        elif self._delivery.start(self._tasks):  # not once stopped
            self._drainer = self._delivery.run(self._drain)

    async def disown(self) -> None:
        """The lease is gone (released, or another process took it): stop draining and
        cancel a run in progress. What was not acknowledged stays queued, or behind the
        stored checkpoint, for the new owner."""
        if self.epoch is None and self._drainer is None:
            return
        self.epoch = None
        if self.config.is_push:
            await self._delivery.cancel(self._forget_held_back)
        else:
            me = asyncio.current_task()
            work = [t for t in (self._drainer, *self._tasks) if t and not t.done() and t is not me]
            for task in work:
                task.cancel()
            await asyncio.gather(*work, return_exceptions=True)
            self._forget_held_back()
        self._drainer = None
        self.log.info("connector.disowned")

    def _forget_held_back(self) -> None:
        """Where delivery runs: the next owner's reads decide what is retried."""
        self._parked.clear()
        self._strikes.clear()

    # --- delivery -------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Deliver queued records in batches, up to ``concurrency`` batches in flight."""
        slots = asyncio.Semaphore(self.config.delivery.concurrency)
        cursor = 0
        last_resync = time.monotonic()
        while not self.stop_event.is_set() and self.epoch is not None:  # owned
            await slots.acquire()
            try:
                rows, cursor = await self._next_rows(cursor)
            except Exception as err:
                slots.release()
                self.log.error("queue.read_failed", error=repr(err))
                await self._idle(5.0)
                continue
            if not rows:
                slots.release()
                if time.monotonic() - last_resync > DEPTH_RESYNC_SECONDS:
                    last_resync = time.monotonic()
                    await self._resync_depth()
                await self._idle(1.0)
                continue
            task = asyncio.create_task(
                self._deliver_rows(rows), name=f"deliver:{self.name}:{rows[0].id}"
            )
            self._tasks.add(task)
            task.add_done_callback(lambda t: (self._tasks.discard(t), slots.release()))

    async def _next_rows(self, cursor: int) -> tuple[list[QueueRow], int]:
        """The next rows to deliver and the new read position: a held-back row once the
        destination accepted something since (its next failure is evidence against it),
        else new rows, else (none, or too many held back) the oldest held-back row."""
        parked = self._parked
        if parked and self.throttle.last_success > parked[0][1]:
            return await self._unpark(), cursor
        if len(parked) < PARK_LIMIT:
            rows = await self.state.read_queue(self.name, cursor, self.config.delivery.batch_size)
            if rows:
                return rows, rows[-1].id
        if parked:
            return await self._unpark(), cursor
        return [], cursor

    async def _unpark(self) -> list[QueueRow]:
        row_id, _ = self._parked.popleft()
        rows = await self.state.read_rows(self.name, [row_id])
        if not rows:  # dropped by an operator meanwhile
            self._strikes.pop(row_id, None)
        return rows

    async def _idle(self, seconds: float) -> None:
        """Wait for new rows (`_wake`) or ``seconds``. With `asyncio.timeout`, not
        `asyncio.wait_for`: on Python 3.11, ``wait_for`` swallows a cancellation that
        arrives as the event fires (pushes set it every few milliseconds under load),
        and the drain cancelled by `disown` then went on delivering without
        acknowledging, while the new owner delivered the same rows again."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _resync_depth(self) -> None:
        """Catch up with what other processes changed (``dlq replay``, ``dlq purge``)."""
        with contextlib.suppress(Exception):
            self._delivery.call_main(self._set_depth, int(await self.state.queue_depth(self.name)))
            if self.metrics is not None:
                dead = await self.state.dead_letter_count(self.name)
                self.metrics.dead_letters.labels(self.name).set(dead)

    async def _deliver_rows(self, rows: list[QueueRow]) -> None:
        records = [orjson.loads(row.body) for row in rows]
        strikes = [self._strikes.setdefault(row.id, Strikes()) for row in rows]
        try:
            outcome = await self.pipeline.process(records, strikes=strikes, park=True)
        except Stopping:
            return
        except Parked as held:
            done = [row for i, row in enumerate(rows) if i not in held.unfinished]
            back = [rows[i].id for i in sorted(held.unfinished)]
            self._parked.extend((row_id, time.monotonic()) for row_id in back)
            self.log.info("delivery.records.held_back", count=len(back), first_id=back[0])
            if done:
                await self._complete(done, held.outcome)
            return
        except Exception as err:  # never lose rows to a bug: they stay queued, retried later
            self.log.exception("delivery.batch.crashed", error=repr(err))
            self._parked.extend((row.id, time.monotonic()) for row in rows)
            return
        await self._complete(rows, outcome)

    async def _complete(self, rows: list[QueueRow], outcome: Outcome) -> None:
        attempt = 0
        ids = [row.id for row in rows]
        while True:
            epoch = self.epoch
            if epoch is None:
                return  # not ours any more: the rows stay queued for the new owner
            try:
                await self.state.complete(
                    self.name, ids, outcome.dead, outcome.delivered, epoch=epoch
                )
                break
            except StaleEpoch:
                self._lease_lost(epoch)
                return
            except STATE_ERRORS as err:
                attempt += 1
                self.log.error("queue.ack_failed", error=str(err), attempt=attempt)
                if self.stop_event.is_set():
                    return  # rows stay queued; delivered again after restart
                await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
        for row_id in ids:
            self._strikes.pop(row_id, None)
        self._delivery.call_main(self._release_depth, len(rows))
        self._count(outcome)
        self.log.debug(
            "delivery.batch.acked",
            records=len(rows),
            delivered=outcome.delivered,
            rejected=len(outcome.dead),
        )

    def _count(self, outcome: Outcome) -> None:
        if outcome.dead:
            self.log.warning(
                "delivery.rejected", count=len(outcome.dead), reason=outcome.dead[0].reason
            )
        if self.metrics is None:
            return
        self.metrics.records_out.labels(self.name).inc(outcome.delivered)
        if outcome.dead:
            self.metrics.records_rejected.labels(self.name).inc(len(outcome.dead))
            self.metrics.dead_letters.labels(self.name).inc(len(outcome.dead))
        if outcome.delivered:
            self.metrics.last_success.labels(self.name).set(time.time())

    def _set_depth(self, depth: int) -> None:
        """On the main loop, where ``enqueue`` adds: no update is lost between threads."""
        self.depth = depth
        self._gauge_depth()

    def _release_depth(self, count: int) -> None:
        self._set_depth(max(0, self.depth - count))

    def _gauge_depth(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.labels(self.name).set(self.depth)

    async def drain_once(self, progress: Progress | None = None) -> RunSummary:
        """Deliver everything queued now, then return (``connectord sync`` on a push
        connector)."""
        summary = RunSummary(self.name, "succeeded")
        started = time.monotonic()
        cursor = 0
        while True:
            rows = await self.state.read_queue(self.name, cursor, self.config.delivery.batch_size)
            if not rows:
                break
            cursor = rows[-1].id
            records = [orjson.loads(row.body) for row in rows]
            try:
                outcome = await self.pipeline.process(
                    records, budget=self.config.delivery.pull_retry_budget
                )
            except (BudgetExceeded, Stopping) as err:
                summary.status, summary.error = "failed", str(err) or "stopped"
                break
            await self._complete(rows, outcome)
            summary.records_in += len(rows)
            summary.records_out += outcome.delivered
            summary.rejected += len(outcome.dead)
            if progress is not None:
                progress(summary)
        summary.seconds = time.monotonic() - started
        return summary
