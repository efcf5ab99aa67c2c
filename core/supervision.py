"""Keeping the daemon's connectors started, owned and scheduled, and reloading them.

`ConnectorSupervision` is the part of `connectord.daemon.Daemon` that starts each
enabled connector (again and again, with growing delays, while it fails), claims it on
a lone SQLite daemon, schedules its pull runs, and, when this daemon takes a connector's
lease, ends the previous owner's runs and catches up from the stored checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import heap, systemd
from .backends import StateBackend
from .backends.sqlite import SqliteBackend
from .config import Config, ConfigError, ConnectorConfig, load_config
from .connector import ConnectorRuntime
from .log import set_secrets
from .ownership import Ownership, default_node
from .schedule import make_trigger
from .workers import WORKER_ENV, is_worker

if TYPE_CHECKING:
    from pathlib import Path

    import structlog
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from .metrics import Metrics
    from .registry import Registry

RESTART_DELAYS = (5, 15, 30, 60, 120, 300)
UNFINISHED_RUNS = frozenset({"interrupted", "cancelled"})
"""Run states that mean the process died or stopped mid-run: resumed at the next start."""


@dataclass
class Supervised:
    """A connector the daemon keeps running, restarting it with backoff if it fails."""

    config: ConnectorConfig
    runtime: ConnectorRuntime | None = None
    failures: int = 0
    error: str | None = None
    task: asyncio.Task[None] | None = None
    first_attempt: asyncio.Event = field(default_factory=asyncio.Event)

    if TYPE_CHECKING:  # provided by the class this is mixed into

        def _spawn(self, coro: Any, name: str) -> None: ...

        async def _check_orphans(self) -> None: ...

        def _status_line(self) -> str: ...


class ConnectorSupervision:
    """Connector supervision for `Daemon`, which sets these attributes."""

    config: Config
    state: StateBackend
    ownership: Ownership
    metrics: Metrics
    scheduler: AsyncIOScheduler | None
    connectors: dict[str, Supervised]
    stop_event: asyncio.Event
    log: structlog.typing.FilteringBoundLogger
    _leasing: bool
    config_path: Path
    registry: Registry
    _reload_lock: asyncio.Lock

    def _supervise(self, config: ConnectorConfig) -> None:
        sup = Supervised(config)
        self.connectors[config.name] = sup
        sup.task = asyncio.create_task(self._keep_started(sup), name=f"supervise:{config.name}")

    async def _keep_started(self, sup: Supervised) -> None:
        """Start the connector; if that fails, retry with growing delays."""
        name = sup.config.name
        log = self.log.bind(connector=name)
        while not self.stop_event.is_set():
            runtime = ConnectorRuntime(
                sup.config, self.state, base_dir=self.config.base_dir, metrics=self.metrics
            )
            try:
                await self._claim_alone(name)
                await runtime.start(drain=False)
            except Exception as err:
                sup.first_attempt.set()
                sup.failures += 1
                sup.error = str(err) or repr(err)
                delay = RESTART_DELAYS[min(sup.failures, len(RESTART_DELAYS)) - 1]
                log.error("connector.start_failed", error=sup.error, retry_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), timeout=delay)
                continue
            sup.runtime, sup.failures, sup.error = runtime, 0, None
            sup.first_attempt.set()
            self._schedule(sup.config, runtime)
            if self._leasing:  # started late (a reload, a retry): claim it now
                self._spawn(self.ownership.step(), f"lease:{name}")
            return

    @property
    def node(self) -> str:
        """``[daemon] node`` (``/worker`` added with several workers), else hostname:pid."""
        base = self.config.daemon.node
        if base is None:
            return default_node()
        worker = os.environ.get(WORKER_ENV) or ("0" if self.config.daemon.workers > 1 else "")
        return f"{base}/{worker}" if worker else base

    @property
    def _alone(self) -> bool:
        """One daemon on an SQLite file: a second one started on it by mistake must not
        share its connectors (workers of one daemon do share: they set WORKER_ENV)."""
        return isinstance(self.state, SqliteBackend) and not is_worker()

    async def _claim_alone(self, name: str) -> None:
        if not self._alone:
            return
        assert isinstance(self.state, SqliteBackend)
        if await self.state.lock_connector(name):
            return
        holder = await self.state.connector_locker(name)
        self.log.error(
            "connector.locked_elsewhere",
            connector=name,
            holder_pid=holder,
            state=self.config.state_shown,
            hint="another process runs this connector on the same state file; "
            "stop it, or give this daemon its own [daemon] state",
        )
        raise RuntimeError(f"connector is being run by another process (pid {holder})")

    async def _owned(self, name: str, runtime: ConnectorRuntime) -> None:
        """This daemon just took ``name`` over: runs left "running" by the previous owner
        ended with it; a pull connector catches up from the stored checkpoint."""
        await self.state.abandon_running(name)
        config = runtime.config
        if config.is_push or config.schedule is None or self.scheduler is None:
            return
        trigger = make_trigger(config.schedule, self.config.daemon.timezone)
        if trigger is not None:
            self._spawn(self._catch_up(config, runtime, trigger), f"catch-up:{name}")

    def _schedule(self, config: ConnectorConfig, runtime: ConnectorRuntime) -> None:
        if config.is_push or config.schedule is None or self.scheduler is None:
            return
        trigger = make_trigger(config.schedule, self.config.daemon.timezone)
        if trigger is None:
            return
        self.scheduler.add_job(
            runtime.run_pull,
            trigger,
            id=config.name,
            name=config.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            replace_existing=True,
        )
        if runtime.epoch is not None:  # owned already (a restart after a failed start)
            self._spawn(self._catch_up(config, runtime, trigger), f"catch-up:{config.name}")

    async def _catch_up(
        self, config: ConnectorConfig, runtime: ConnectorRuntime, trigger: Any
    ) -> None:
        """Run once now if a scheduled run was missed while the daemon was down, the last
        run was cut short by a crash or a stop, or the connector never ran: missed runs
        coalesce into this one, and a cut-short run resumes from its checkpoint."""
        last = await self.state.last_runs(config.name, 1)
        unfinished = bool(last) and last[0].status in UNFINISHED_RUNS
        if last and not unfinished:
            started = datetime.fromtimestamp(last[0].started_at, self.scheduler.timezone)
            due = trigger.get_next_fire_time(None, started)
            if due is None or due.timestamp() > time.time():
                return
        self.log.info(
            "run.catch_up",
            connector=config.name,
            reason=(
                f"last run {last[0].status}"
                if unfinished
                else "missed while stopped"
                if last
                else "first run"
            ),
        )
        await runtime.run_pull(kind="catch-up")

    async def _stop_connector(self, name: str) -> None:
        sup = self.connectors.pop(name, None)
        if sup is None:
            return
        if self.scheduler is not None and self.scheduler.get_job(name):
            self.scheduler.remove_job(name)
        if sup.task is not None and not sup.task.done():
            sup.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sup.task
        if sup.runtime is not None:
            await sup.runtime.stop(self.config.daemon.shutdown_timeout)
            await self.ownership.release(name)
            if self._alone:
                assert isinstance(self.state, SqliteBackend)
                await self.state.unlock_connector(name)
        self.metrics.forget(name)

    # --- reload -------------------------------------------------------------------------

    async def reload(self) -> None:
        async with self._reload_lock:
            systemd.reloading()
            try:
                new = await asyncio.to_thread(load_config, self.config_path, self.registry)
            except ConfigError as err:
                self.log.error(
                    "config.reload_failed",
                    path=str(err.path),
                    errors=[i.render(str(err.path)) for i in err.issues],
                    keeping="the running configuration",
                )
                systemd.notify("READY=1", self._status_line())
                return
            if new.daemon != self.config.daemon:
                self.log.warning(
                    "config.reload.daemon_changed",
                    message="[daemon] settings change on restart only",
                )
            old = {c.name: c for c in self.config.enabled()}
            wanted = {c.name: c for c in new.enabled()}
            removed = [n for n in old if n not in wanted]
            changed = [
                n for n in wanted if n in old and old[n].fingerprint != wanted[n].fingerprint
            ]
            added = [n for n in wanted if n not in old]
            set_secrets(self.config.secrets | new.secrets)
            for name in removed + changed:
                await self._stop_connector(name)
            daemon_settings = self.config.daemon
            self.config = new
            self.config.daemon = daemon_settings
            for name in changed + added:
                self._supervise(wanted[name])
            set_secrets(new.secrets)
            frozen = heap.settle()  # the new connectors' objects; the old ones' are freed
            self.log.info(
                "config.reloaded",
                added=added,
                removed=removed,
                changed=changed,
                frozen_objects=frozen,
            )
            await self._check_orphans()
            systemd.notify("READY=1", self._status_line())
