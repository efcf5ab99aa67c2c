"""``connectord sync NAME``: run one connector once now, with progress.

When no daemon owns the connector, it runs here, in this process, under the connector's
lease like a daemon would. When a daemon owns it, that daemon is asked through the state
(the only channel that needs no network access or extra credentials) and this process
follows the run it starts. What happens is told to a `SyncOutput` (the terminal, for
the command line), so this module prints nothing itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from .backends import StateBackend, connector_lease
from .backends.sqlite import SqliteBackend
from .config import Config
from .connector import ConnectorRuntime, Progress, RunSummary
from .errors import ConnectordError
from .metrics import Metrics
from .ownership import default_node
from .pull_runs import UNITS_KEY, run_namespace

PICKUP_SECONDS = 30.0
POLL_SECONDS = 0.25


class ProgressLine(Progress, Protocol):
    def done(self) -> None: ...


class SyncOutput(Protocol):
    def note(self, text: str) -> None: ...

    def progress(
        self, source: Any = None, units: Callable[[], tuple[int, int] | None] | None = None
    ) -> ProgressLine: ...

    def report(self, summary: RunSummary) -> None: ...


async def run_sync(
    config: Config, name: str, out: SyncOutput, *, full_refresh: bool = False
) -> RunSummary:
    connector = config.connectors[name]
    if not connector.enabled:
        out.note(f"note: {name} is disabled in {config.path}; running it anyway")
    state = config.state_backend()
    await state.open()
    try:
        claim = await _claim(state, name, config.daemon.lease_ttl)
        if isinstance(claim, str):
            return await _through_daemon(connector, state, claim, full_refresh, out)
        ttl = config.daemon.lease_ttl
        keeper = asyncio.create_task(_keep_lease(state, name, claim, ttl), name="lease")
        try:
            return await _run(config, connector, state, claim, full_refresh, out)
        finally:
            keeper.cancel()
            await _unclaim(state, name, claim)
    finally:
        await state.close()


async def _claim(state: StateBackend, name: str, ttl: float) -> int | str:
    """The lease's epoch when this process may run the connector, else who runs it."""
    if isinstance(state, SqliteBackend) and not await state.lock_connector(name):
        return f"pid {await state.connector_locker(name)}"
    epoch = await state.acquire(connector_lease(name), _NODE, ttl)
    if epoch is not None:
        return epoch
    if isinstance(state, SqliteBackend):
        await state.unlock_connector(name)
    holder = await state.holder(connector_lease(name))
    return f"node {holder.node}" if holder else "another daemon"


async def _unclaim(state: StateBackend, name: str, epoch: int) -> None:
    await state.release(connector_lease(name), _NODE, epoch)
    if isinstance(state, SqliteBackend):
        await state.unlock_connector(name)


_NODE = f"sync:{default_node()}"


async def _keep_lease(state: StateBackend, name: str, epoch: int, ttl: float) -> None:
    """Renew the lease every third of its TTL while the run goes on; when it cannot be
    renewed, the run's next fenced write fails and the run stops there."""
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            if not await state.renew(connector_lease(name), _NODE, epoch, ttl):
                return
        except Exception:  # noqa: S112 - the state is down: try again next round
            continue


async def _through_daemon(
    connector: Any, state: StateBackend, holder: str, full_refresh: bool, out: SyncOutput
) -> RunSummary:
    """Have the daemon that runs the connector do it, and follow along."""
    name = connector.name
    if connector.is_push:
        return await _wait_for_queue(connector, state, holder, out)
    request = await state.request_run(name, full_refresh=full_refresh)
    out.note(f"{name} is run by the daemon ({holder}): asked it to run now (request {request})")
    started = time.monotonic()
    while True:
        taken = await state.run_request(request)
        if taken and taken["run_id"]:
            break
        if time.monotonic() - started > PICKUP_SECONDS:
            raise ConnectordError(
                f"the daemon ({holder}) did not take the request within "
                f"{PICKUP_SECONDS:.0f}s; is it an older connectord? Check its log"
            )
        await asyncio.sleep(POLL_SECONDS)
    units: list[tuple[int, int] | None] = [None]
    progress = out.progress(units=lambda: units[0])
    try:
        while True:
            units[0] = await _published_units(state, name, taken["run_id"]) or units[0]
            info = await state.run(taken["run_id"])
            assert info is not None
            summary = RunSummary(
                name,
                info.status,
                info.records_in,
                info.records_out,
                info.rejected,
                info.error,
                (info.ended_at or time.time()) - info.started_at,
            )
            progress(summary)
            if info.status != "running":
                break
            await asyncio.sleep(POLL_SECONDS)
    finally:
        progress.done()
    out.report(summary)
    return summary


async def _published_units(state: StateBackend, name: str, run_id: int) -> tuple[int, int] | None:
    """The days done/total the daemon's run published, if it plans days."""
    found = (await state.get_state(run_namespace(name), [UNITS_KEY])).get(UNITS_KEY)
    if isinstance(found, list) and len(found) == 3 and found[0] == run_id:
        return int(found[1]), int(found[2])
    return None


async def _wait_for_queue(
    connector: Any, state: StateBackend, holder: str, out: SyncOutput
) -> RunSummary:
    """A push connector the daemon runs delivers continuously: wait until its queue is
    empty, or until it stops shrinking for the connector's retry budget."""
    name = connector.name
    out.note(
        f"{name} is delivered continuously by the daemon ({holder}); "
        "waiting until its queue is empty"
    )
    budget = connector.delivery.pull_retry_budget
    started = last_change = time.monotonic()
    depth = first = int(await state.queue_depth(name))
    while depth:
        await asyncio.sleep(POLL_SECONDS)
        now_depth = int(await state.queue_depth(name))
        if now_depth < depth:
            last_change = time.monotonic()
        depth = now_depth
        if time.monotonic() - last_change > budget:
            break
    summary = RunSummary(
        name,
        "succeeded" if not depth else "failed",
        records_in=first,
        records_out=max(first - depth, 0),
        seconds=time.monotonic() - started,
    )
    if depth:
        summary.error = (
            f"{depth} records still queued after {budget:.0f}s without progress; "
            "see `connectord status` and the daemon's log"
        )
    out.report(summary)
    return summary


async def _run(
    config: Config,
    connector: Any,
    state: StateBackend,
    epoch: int,
    full_refresh: bool,
    out: SyncOutput,
) -> RunSummary:
    runtime = ConnectorRuntime(connector, state, base_dir=config.base_dir, metrics=Metrics())
    await state.abandon_running(connector.name)
    if full_refresh:
        await state.reset_checkpoint(connector.name)
    await runtime.start(drain=False)
    runtime.epoch = epoch
    progress = out.progress(runtime.source)
    try:
        if connector.is_push:
            summary = await runtime.drain_once(progress)
        else:
            summary = await runtime.run_pull(kind="manual", progress=progress)
    finally:
        progress.done()
        await runtime.stop(config.daemon.shutdown_timeout)
    out.report(summary)
    return summary
