"""A pull connector's runs: read the source from its checkpoint, deliver batch by batch.

`PullRuns` is the part of `connectord.connector.ConnectorRuntime` that runs a pull
source. The checkpoint moves in the same transaction as the batch's dead letters and
counters, only after the destination acknowledged the batch, and only under the epoch
of the lease this process holds: a run that lost its connector to another daemon stops
at its next batch without moving anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from .api import PullSource, Source
from .backends import StaleEpoch, StateBackend
from .delivery import Pipeline, Stopping
from .errors import ConnectordError, describe_error
from .pull import units_of
from .records import normalise_pulled
from .run_summary import Progress, RunSummary
from .state import state_namespace

if TYPE_CHECKING:
    import structlog

    from .config import ConnectorConfig
    from .delivery import Outcome
    from .metrics import Metrics


UNITS_KEY = "units"
UNITS_EVERY = 1.0


def run_namespace(connector: str) -> str:
    """Where a run's unit progress is published (no plugin type starts with a dot)."""
    return f"{connector}/.run"


class PullRuns:
    """Pull runs for `ConnectorRuntime`, which sets these attributes."""

    name: str
    config: ConnectorConfig
    state: StateBackend
    epoch: int | None
    source: Source
    pipeline: Pipeline
    metrics: Metrics | None
    log: structlog.typing.FilteringBoundLogger
    stop_event: asyncio.Event
    _run_lock: asyncio.Lock
    _tasks: set[asyncio.Task[Any]]

    if TYPE_CHECKING:  # provided by the class this is mixed into

        def _lease_lost(self) -> None: ...

        def _count(self, outcome: Outcome) -> None: ...

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
        published = [0.0]
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
                    await self._publish_units(run_id, published)
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

    async def _publish_units(self, run_id: int, last: list[float]) -> None:
        """Days done/total of a source that plans them, at most once a second, for a
        ``connectord sync`` that follows this run from another process."""
        units = units_of(self.source)
        if units is None or time.monotonic() - last[0] < UNITS_EVERY:
            return
        last[0] = time.monotonic()
        with contextlib.suppress(Exception):  # progress only: never fail the run
            await self.state.set_state(run_namespace(self.name), {UNITS_KEY: [run_id, *units]})
