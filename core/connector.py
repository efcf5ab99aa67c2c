"""One connector at run time: its plugins, their lifecycle, ownership and push ingest.

Queue delivery is in `connectord.draining`, pull runs in `connectord.pull_runs`; both
are mixed into `ConnectorRuntime`, which holds the state they share.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import aiohttp
import structlog

from . import records as record_model
from .api import Destination, Mapping, PluginContext, PushSource, Record, Source
from .backends import StateBackend
from .backends.namespace import BackendNamespace
from .backoff import Backoff
from .config import ConnectorConfig, PluginSpec
from .delivery import Pipeline, Strikes, Throttle
from .delivery_loop import DeliveryLoop, MainLoopState
from .draining import STATE_ERRORS, QueueDraining
from .errors import IngestError, QueueFull
from .http import new_session
from .metrics import Metrics
from .pull_runs import PullRuns
from .records import encode, serialize
from .run_summary import Progress, RunSummary
from .state import DeadLetter, state_namespace

__all__ = ["ConnectorRuntime", "Progress", "RunSummary", "serialize"]


class ConnectorRuntime(QueueDraining, PullRuns):
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
        self._delivery = DeliveryLoop(self.name)
        """Push connectors deliver their queue on a loop of their own (see
        `connectord.delivery_loop`); pull connectors deliver on the main loop."""
        self.state = cast(StateBackend, MainLoopState(state, self._delivery))
        """The backend, used from the delivery thread through the main loop."""
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
        self._drainer: asyncio.Future[None] | None = None
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
        if self._delivery.on_delivery_thread():
            return self._delivery.session(self._new_session)
        if self._session is None or self._session.closed:
            self._session = self._new_session()
        return self._session

    def _new_session(self) -> aiohttp.ClientSession:
        timeout = self.config.delivery.request_timeout
        extra = self.pipeline.http_middlewares() if hasattr(self, "pipeline") else ()
        return new_session(timeout=timeout, connect_timeout=min(10.0, timeout), middlewares=extra)

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
            self._start_drainer()
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
        # A delivery loop's in-flight deliveries are waited for (and cancelled) there.
        await self._delivery.stop(grace, self._signal_stop)
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

    def _signal_stop(self) -> None:
        self.stop_event.set()
        self._wake.set()

    async def _close_session(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    # --- ownership ----------------------------------------------------------------------

    def _lease_lost(self, epoch: int | None = None) -> None:
        """A write was refused under a stale epoch (``epoch``, else the current one):
        another process owns the connector. `Ownership` is the main loop's, so from the
        delivery thread this hops there; a newer epoch owned meanwhile is kept."""
        if self._delivery.on_delivery_thread():
            self._delivery.call_main(self._lease_lost, self.epoch if epoch is None else epoch)
            return
        if self.epoch is None or (epoch is not None and epoch != self.epoch):
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
                # a full disk takes an operator; a database restart or failover, seconds
                retry_after=30 if full else 5,
            ) from err
        if self.metrics is not None:
            self.metrics.records_in.labels(self.name).inc(len(bodies))
        self._gauge_depth()
        self._delivery.call(self._wake.set)
