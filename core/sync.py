"""``connectord sync NAME``: run one connector once now, with progress.

When no daemon runs the connector, it runs here, in this process. When the daemon runs
it, the daemon is asked through the state file (the only channel that needs no network
access or extra credentials) and this process follows the run it starts.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import click

from .config import Config
from .connector import ConnectorRuntime, RunSummary
from .errors import ConnectordError
from .metrics import Metrics
from .pull import units_of
from .state import AsyncStore, Store


class _Progress:
    """One line, rewritten in place on a terminal; a line per 5 s otherwise. The rate
    is the current one (since the previous line, at least a second), not the average;
    a source that plans units (a backfill's days) adds ``days done/total``."""

    def __init__(self, source: Any = None) -> None:
        self.source = source
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.mark = (time.monotonic(), 0)  # (when, records read then)
        self.rate = 0.0

    def __call__(self, summary: RunSummary) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last < 5:
            return
        self.last = now
        since, count = self.mark
        if now - since >= 1.0:
            self.rate = (summary.records_in - count) / (now - since)
            self.mark = (now, summary.records_in)
        elif not self.rate:
            self.rate = (summary.records_in - count) / max(now - since, 1e-6)
        text = line(summary, self.rate, units_of(self.source))
        click.echo(f"\r{text}\033[K" if self.tty else text, err=True, nl=not self.tty)

    def done(self) -> None:
        if self.tty:
            click.echo("", err=True)


def line(summary: RunSummary, rate: float, units: tuple[int, int] | None = None) -> str:
    """The progress line: days (when the source plans them), records, current rate."""
    days = ""
    if units is not None:
        done, total = units
        days = f"{done}/{total} days, "
    return (
        f"{days}{summary.records_in} read, {summary.records_out} delivered, "
        f"{summary.rejected} rejected  ({rate:,.0f} records/s)"
    )


async def run_sync(config: Config, name: str, *, full_refresh: bool = False) -> RunSummary:
    connector = config.connectors[name]
    if not connector.enabled:
        click.echo(f"note: {name} is disabled in {config.path}; running it anyway", err=True)
    store = AsyncStore(config.state_path, durability=config.daemon.durability)
    await store.open()
    lock = f"connector:{name}"
    try:
        if not await store.write(Store.acquire_lock, lock):
            holder = await store.read(Store.lock_holder, lock)
            return await _through_daemon(config, connector, store, holder, full_refresh)
        try:
            return await _run(config, connector, store, full_refresh)
        finally:
            await store.write(Store.release_lock, lock)
    finally:
        await store.close()


PICKUP_SECONDS = 30.0
POLL_SECONDS = 0.25


async def _through_daemon(
    config: Config, connector, store: AsyncStore, holder: int | None, full_refresh: bool
) -> RunSummary:
    """Have the daemon that runs the connector do it, and follow along."""
    name = connector.name
    if connector.is_push:
        return await _wait_for_queue(config, connector, store, holder)
    request = await store.write(Store.request_run, name, full_refresh=full_refresh)
    click.echo(
        f"{name} is run by the daemon (pid {holder}): asked it to run now (request {request})",
        err=True,
    )
    started = time.monotonic()
    while True:
        taken = await store.read(Store.run_request, request)
        if taken and taken["run_id"]:
            break
        if time.monotonic() - started > PICKUP_SECONDS:
            raise ConnectordError(
                f"the daemon (pid {holder}) did not take the request within "
                f"{PICKUP_SECONDS:.0f}s; is it an older connectord? Check its log"
            )
        await asyncio.sleep(POLL_SECONDS)
    progress = _Progress()
    try:
        while True:
            info = await store.read(Store.run, taken["run_id"])
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
    _report(summary)
    return summary


async def _wait_for_queue(
    config: Config, connector, store: AsyncStore, holder: int | None
) -> RunSummary:
    """A push connector the daemon runs delivers continuously: wait until its queue is
    empty, or until it stops shrinking for the connector's retry budget."""
    name = connector.name
    click.echo(
        f"{name} is delivered continuously by the daemon (pid {holder}); "
        "waiting until its queue is empty",
        err=True,
    )
    budget = connector.delivery.pull_retry_budget
    started = last_change = time.monotonic()
    depth = first = await store.read(Store.queue_depth, name)
    while depth:
        await asyncio.sleep(POLL_SECONDS)
        now_depth = await store.read(Store.queue_depth, name)
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
    _report(summary)
    return summary


def _report(summary: RunSummary) -> None:
    rate = summary.records_in / summary.seconds if summary.seconds else 0
    click.echo(
        f"{summary.connector}: {summary.status} — {summary.records_in} read, "
        f"{summary.records_out} delivered, {summary.rejected} rejected in "
        f"{summary.seconds:.1f}s ({rate:,.0f} records/s)",
        err=True,
    )
    if summary.error:
        click.echo(f"error: {summary.error}", err=True)


async def _run(config: Config, connector, store: AsyncStore, full_refresh: bool) -> RunSummary:
    runtime = ConnectorRuntime(connector, store, base_dir=config.base_dir, metrics=Metrics())
    await store.write(Store.abandon_running, connector.name)
    if full_refresh:
        await store.write(Store.reset_checkpoint, connector.name)
    await runtime.start(drain=False)
    progress = _Progress(runtime.source)
    try:
        if connector.is_push:
            summary = await runtime.drain_once(progress)
        else:
            summary = await runtime.run_pull(kind="manual", progress=progress)
    finally:
        progress.done()
        await runtime.stop(config.daemon.shutdown_timeout)
    _report(summary)
    return summary
