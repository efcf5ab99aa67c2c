"""One connector at run time: its plugin instances, queue, delivery loop and pull runs."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import structlog

from . import records as record_model
from .api import Destination, Mapping, PluginContext, PullSource, PushSource, Record, Source
from .backends import StaleEpoch, StateBackend, StateUnavailable
from .backends.namespace import BackendNamespace
from .backoff import Backoff
from .config import ConnectorConfig, PluginSpec
from .delivery import BudgetExceeded, Outcome, Parked, Pipeline, Stopping, Strikes, Throttle
from .errors import ConnectordError, IngestError, QueueFull, describe_error
from .http import new_session
from .metrics import Metrics
from .records import encode, normalise_pulled, serialize
from .state import DeadLetter, QueueRow, state_namespace

DEPTH_RESYNC_SECONDS = 15.0
PARK_LIMIT = 1000  # held-back rows remembered; beyond it only those are retried (an outage)
STATE_ERRORS = (sqlite3.Error, StateUnavailable)
"""The state could not be written right now; nothing was committed (retry)."""


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


class ConnectorRuntime:
    """Owns one connector's plugins and background work between `start` and `stop`."""

    def __init__(
        self,
        config: ConnectorConfig,
        state: StateBackend,
        *,
        base_dir: Any,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.state = state
        self.epoch: int | None = None
        """The connector lease's epoch while this process owns the connector (drains its
        queue, runs its pulls); None otherwise. Every queue completion and checkpoint
        carries it, and the state refuses both once another process took over."""
        self.on_lease_lost: Callable[[], None] | None = None
        self.base_dir = base_dir
        self.metrics = metrics
        self.log = structlog.get_logger().bind(connector=self.name)
        self.stop_event = asyncio.Event()
        self.throttle = Throttle(
            Backoff(config.delivery.retry_initial, config.delivery.retry_max), self.stop_event
        )
        self.depth = 0
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._drainer: asyncio.Task[None] | None = None
        self._run_lock = asyncio.Lock()
        self._strikes: dict[int, Strikes] = {}
        self._parked: deque[tuple[int, float]] = deque()  # (row id, when held back)
        self.source: Source
        self.mappings: list[Mapping] = []
        self.destination: Destination
        self.pipeline: Pipeline
        self.routes: dict[tuple[str, str], Any] = {}
        self.started = False

    # --- lifecycle --------------------------------------------------------------------

    def _context(self, spec: PluginSpec, *, push: bool = False) -> PluginContext:
        return PluginContext(
            connector=self.name,
            log=self.log.bind(plugin=spec.type),
            state=BackendNamespace(self.state, state_namespace(self.name, spec.type)),
            base_dir=self.base_dir,
            http=self.http,
            count=lambda event, n=1: self._count_event(spec.type, event, n),
            enqueue=self.enqueue if push else None,
            dead_letter=self.dead_letter if push else None,
            queue_room=(lambda: self.config.delivery.max_queue - self.depth) if push else None,
        )

    def _count_event(self, plugin: str, event: str, n: int = 1) -> None:
        if self.metrics is not None:
            self.metrics.plugin_events.labels(self.name, plugin, event).inc(n)

    def http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = self.config.delivery.request_timeout
            extra = self.pipeline.http_middlewares() if hasattr(self, "pipeline") else ()
            self._session = new_session(
                timeout=timeout, connect_timeout=min(10.0, timeout), middlewares=extra
            )
        return self._session

    def build(self) -> None:
        """Instantiate the plugins (no I/O yet)."""
        config = self.config
        self.source = config.source.build(self._context(config.source, push=config.is_push))
        self.mappings = [m.build(self._context(m)) for m in config.mappings]
        self.destination = config.destination.build(self._context(config.destination))
        self.pipeline = Pipeline(
            self.name,
            self.mappings,
            self.destination,
            throttle=self.throttle,
            log=self.log,
            metrics=self.metrics,
            isolate_after=config.delivery.isolate_after,
            request_concurrency=config.delivery.request_concurrency,
        )
        if isinstance(self.source, PushSource):
            self.routes = {
                (r.method.upper(), r.path.strip("/")): r.handler for r in self.source.routes()
            }

    async def start(self, *, drain: bool = True) -> None:
        """Start plugins and, unless told otherwise, the queue delivery loop."""
        self.build()
        started: list[Any] = []
        try:
            for plugin in (self.destination, *self.mappings, self.source):
                await plugin.start()
                started.append(plugin)
        except BaseException:
            for plugin in reversed(started):
                with contextlib.suppress(Exception):
                    await plugin.close()
            await self._close_session()
            raise
        await self._resync_depth()
        if drain:
            self._drainer = asyncio.create_task(self._drain(), name=f"drain:{self.name}")
        self.started = True
        self.log.info(
            "connector.started",
            source=self.config.source.type,
            destination=self.config.destination.type,
            queued=self.depth,
        )

    async def stop(self, grace: float) -> None:
        """Stop taking work, let in-flight deliveries finish within ``grace`` seconds, then
        cancel what is left (it stays queued and is delivered after the next start)."""
        self.stop_event.set()
        self._wake.set()
        pending = set(self._tasks)
        if self._drainer is not None:
            pending.add(self._drainer)
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                self.log.warning("connector.stop.cancelling", task=task.get_name())
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=5)
        for plugin in (self.source, *self.mappings, self.destination):
            try:
                await plugin.close()
            except Exception as err:
                self.log.warning("plugin.close_failed", plugin=plugin.type, error=repr(err))
        await self._close_session()
        self.started = False
        self.log.info("connector.stopped", queued=self.depth)

    async def _close_session(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    # --- ownership ----------------------------------------------------------------------

    def own(self, epoch: int) -> None:
        """This process now holds the connector's lease: drain its queue and allow runs."""
        self.epoch = epoch
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name=f"drain:{self.name}")
        self.log.info("connector.owned", epoch=epoch)

    async def disown(self) -> None:
        """The lease is gone (released, or another process took it): stop draining and
        cancel a run in progress. What was not acknowledged stays queued, or behind the
        stored checkpoint, for the new owner."""
        if self.epoch is None and self._drainer is None:
            return
        self.epoch = None
        me = asyncio.current_task()
        work = [t for t in (self._drainer, *self._tasks) if t and not t.done() and t is not me]
        for task in work:
            task.cancel()
        await asyncio.gather(*work, return_exceptions=True)
        self._drainer = None
        self._parked.clear()
        self._strikes.clear()
        self.log.info("connector.disowned")

    def _lease_lost(self) -> None:
        """A write was refused under a stale epoch: another process owns the connector."""
        if self.epoch is None:
            return
        self.log.warning("connector.lease_lost", epoch=self.epoch)
        self.epoch = None
        if self.on_lease_lost is not None:
            self.on_lease_lost()

    # --- push: the durable queue ------------------------------------------------------

    async def dead_letter(self, parts: list[tuple[Any, str]]) -> None:
        """Store parts a push source accepted but could not turn into records."""
        dead = [DeadLetter(self.name, encode(p), reason, "ingest") for p, reason in parts]
        await self.state.add_dead_letters(self.name, dead)
        if self.metrics is not None:
            self.metrics.records_in.labels(self.name).inc(len(dead))
            self.metrics.records_rejected.labels(self.name).inc(len(dead))
            self.metrics.dead_letters.labels(self.name).inc(len(dead))

    async def enqueue(self, records: list[Record]) -> None:
        """Commit records to the queue; returns once they are durable."""
        if not records:
            return
        limit = self.config.delivery.max_queue
        if self.depth + len(records) > limit:
            if self.metrics is not None:
                self.metrics.requests_rejected.labels(self.name, "queue_full").inc()
            raise QueueFull(self.name, limit)
        bodies = serialize(records, record_model.now_iso())
        # Reserve the space before waiting for the commit: requests racing this one must
        # see it taken, or together they overshoot the bound.
        self.depth += len(bodies)
        try:
            await self.state.enqueue_many([(self.name, bodies)])
        except BaseException as err:
            self.depth -= len(bodies)
            if not isinstance(err, STATE_ERRORS):
                raise
            self.log.error("queue.write_failed", error=str(err), records=len(bodies))
            full = "full" in str(err).lower()
            raise IngestError(
                503,
                "storage_unavailable",
                "the daemon cannot store records right now"
                + (" (disk full)" if full else "")
                + "; retry later",
                retry_after=30,
            ) from err
        if self.metrics is not None:
            self.metrics.records_in.labels(self.name).inc(len(bodies))
        self._gauge_depth()
        self._wake.set()

    async def _drain(self) -> None:
        """Deliver queued records in batches, up to ``concurrency`` batches in flight."""
        slots = asyncio.Semaphore(self.config.delivery.concurrency)
        cursor = 0
        last_resync = time.monotonic()
        while not self.stop_event.is_set():
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
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _resync_depth(self) -> None:
        """Catch up with what other processes changed (``dlq replay``, ``dlq purge``)."""
        with contextlib.suppress(Exception):
            self.depth = int(await self.state.queue_depth(self.name))
            self._gauge_depth()
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
            if self.epoch is None:
                return  # not ours any more: the rows stay queued for the new owner
            try:
                await self.state.complete(
                    self.name, ids, outcome.dead, outcome.delivered, epoch=self.epoch
                )
                break
            except StaleEpoch:
                self._lease_lost()
                return
            except STATE_ERRORS as err:
                attempt += 1
                self.log.error("queue.ack_failed", error=str(err), attempt=attempt)
                if self.stop_event.is_set():
                    return  # rows stay queued; delivered again after restart
                await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
        for row_id in ids:
            self._strikes.pop(row_id, None)
        self.depth = max(0, self.depth - len(rows))
        self._gauge_depth()
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

    # --- pull runs --------------------------------------------------------------------

    async def run_pull(
        self,
        *,
        kind: str = "scheduled",
        progress: Progress | None = None,
        request: int | None = None,
        full_refresh: bool = False,
    ) -> RunSummary:
        """Read the source from its checkpoint and deliver batch by batch.

        The checkpoint moves after each batch the destination acknowledged; a failed
        or interrupted run resumes from the last one stored. A scheduled run is skipped
        while another is going; a requested one (``request``: the id of a
        ``connectord sync`` request) waits for it and then runs.
        """
        summary = RunSummary(self.name, "running")
        if not isinstance(self.source, PullSource):
            summary.status, summary.error = "failed", "not a pull connector"
            return summary
        if self.epoch is None:
            self.log.info("run.skipped", reason="another daemon owns this connector")
            summary.status = "skipped"
            return summary
        if self._run_lock.locked() and request is None:
            self.log.info("run.skipped", reason="previous run still going")
            summary.status = "skipped"
            return summary
        current = asyncio.current_task()
        async with self._run_lock:
            if current is not None:  # so that stop() waits for, then cancels, the run
                self._tasks.add(current)
            try:
                if full_refresh:
                    await self.state.reset_checkpoint(self.name)
                return await self._run_pull(summary, kind, progress, request)
            finally:
                if current is not None:
                    self._tasks.discard(current)

    async def _run_pull(
        self, summary: RunSummary, kind: str, progress: Progress | None, request: int | None
    ) -> RunSummary:
        started = time.monotonic()
        run_id = await self.state.start_run(self.name, kind)
        if request is not None:
            await self.state.serve_run_request(request, run_id)
        checkpoint = await self.state.checkpoint(self.name)
        namespace = state_namespace(self.name, self.config.source.type)
        log = self.log.bind(run_id=run_id)
        log.info("run.started", kind=kind, checkpoint=checkpoint)
        assert isinstance(self.source, PullSource)
        try:
            async with contextlib.aclosing(self.source.read(checkpoint)) as batches:
                async for batch in batches:
                    if self.stop_event.is_set():
                        raise Stopping()
                    normalise_pulled(self.name, batch.records, batch.checkpoint)
                    outcome = await self.pipeline.process(
                        batch.records, budget=self.config.delivery.pull_retry_budget
                    )
                    if self.epoch is None:
                        raise Stopping()
                    await self.state.commit_pull_batch(
                        self.name,
                        epoch=self.epoch,
                        checkpoint=batch.checkpoint,
                        state_namespace=namespace,
                        state=batch.state,
                        dead=outcome.dead,
                        delivered=outcome.delivered,
                        received=len(batch.records),
                        run_id=run_id,
                    )
                    summary.records_in += len(batch.records)
                    summary.records_out += outcome.delivered
                    summary.rejected += len(outcome.dead)
                    self._count(outcome)
                    if self.metrics is not None:
                        self.metrics.records_in.labels(self.name).inc(len(batch.records))
                    if progress is not None:
                        progress(summary)
            summary.status = "succeeded"
        except (Stopping, asyncio.CancelledError):
            summary.status, summary.error = "cancelled", "stopped before the run finished"
        except StaleEpoch:
            summary.status, summary.error = "cancelled", "another daemon took the connector over"
            self._lease_lost()
        except Exception as err:
            summary.status, summary.error = "failed", describe_error(err)
            log.error(
                "run.failed", error=summary.error, exc_info=not isinstance(err, ConnectordError)
            )
        summary.seconds = time.monotonic() - started
        await self.state.finish_run(
            run_id,
            status=summary.status,
            records_in=summary.records_in,
            records_out=summary.records_out,
            rejected=summary.rejected,
            error=summary.error,
        )
        log.info(
            "run.finished",
            status=summary.status,
            records_in=summary.records_in,
            records_out=summary.records_out,
            rejected=summary.rejected,
            seconds=round(summary.seconds, 3),
            error=summary.error,
        )
        if self.metrics is not None:
            self.metrics.run_duration.labels(self.name, summary.status).observe(summary.seconds)
            if summary.status == "succeeded":
                self.metrics.last_success.labels(self.name).set(time.time())
        return summary
