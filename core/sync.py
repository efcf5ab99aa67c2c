"""``connectord sync NAME``: run one connector once, in this process, with progress."""

from __future__ import annotations

import sys
import time

import click

from .config import Config
from .connector import ConnectorRuntime, RunSummary
from .errors import ConnectordError
from .metrics import Metrics
from .state import AsyncStore, Store


class _Progress:
    """One line, rewritten in place on a terminal; a line per 5 s otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, summary: RunSummary) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last < 5:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        line = (
            f"{summary.records_in} read, {summary.records_out} delivered, "
            f"{summary.rejected} rejected  ({summary.records_in / elapsed:,.0f} records/s)"
        )
        click.echo(f"\r{line}\033[K" if self.tty else line, err=True, nl=not self.tty)

    def done(self) -> None:
        if self.tty:
            click.echo("", err=True)


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
            raise ConnectordError(
                f"{name} is being run by another process (pid {holder}, probably the daemon); "
                "it delivers on its own schedule — stop it first to run this by hand"
            )
        try:
            return await _run(config, connector, store, full_refresh)
        finally:
            await store.write(Store.release_lock, lock)
    finally:
        await store.close()


async def _run(config: Config, connector, store: AsyncStore, full_refresh: bool) -> RunSummary:
    runtime = ConnectorRuntime(connector, store, base_dir=config.base_dir, metrics=Metrics())
    await store.write(Store.abandon_running, connector.name)
    if full_refresh:
        await store.write(Store.reset_checkpoint, connector.name)
    await runtime.start(drain=False)
    progress = _Progress()
    try:
        if connector.is_push:
            summary = await runtime.drain_once(progress)
        else:
            summary = await runtime.run_pull(kind="manual", progress=progress)
    finally:
        progress.done()
        await runtime.stop(config.daemon.shutdown_timeout)
    rate = summary.records_in / summary.seconds if summary.seconds else 0
    click.echo(
        f"{connector.name}: {summary.status} — {summary.records_in} read, "
        f"{summary.records_out} delivered, {summary.rejected} rejected in "
        f"{summary.seconds:.1f}s ({rate:,.0f} records/s)",
        err=True,
    )
    if summary.error:
        click.echo(f"error: {summary.error}", err=True)
    return summary
