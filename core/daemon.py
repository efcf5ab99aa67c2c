"""The long-running daemon: connectors, scheduler, HTTP server, signals, reload.

Start-up validates everything first; then the state file, the HTTP listener, the
connectors and the schedules come up, and systemd is told ``READY=1``. SIGTERM/SIGINT
stop gracefully (stop accepting, finish in-flight work within ``shutdown_timeout``,
cancel the rest, which stays queued), SIGHUP reloads ``connectors.toml``: an invalid
new file is reported and the running configuration stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from . import __version__, cors, systemd
from .backends import StateBackend
from .backends.sqlite import SqliteBackend
from .config import Config, ConfigError, ConnectorConfig, load_config
from .connector import ConnectorRuntime
from .errors import StateError
from .log import configure as configure_logging
from .log import redact, set_secrets
from .metrics import Metrics
from .ownership import Ownership, default_node
from .registry import Registry
from .schedule import make_trigger
from .server import CappedRunner, create_app, parse_listen
from .ui import install as install_ui
from .workers import WORKER_ENV, Workers, follow_supervisor, is_worker

RESTART_DELAYS = (5, 15, 30, 60, 120, 300)
ORPHAN_CHECK_SECONDS = 15.0
UNFINISHED_RUNS = frozenset({"interrupted", "cancelled"})
"""Run states that mean the process died or stopped mid-run: resumed at the next start."""


@dataclass
class _Supervised:
    """A connector the daemon keeps running, restarting it with backoff if it fails."""

    config: ConnectorConfig
    runtime: ConnectorRuntime | None = None
    failures: int = 0
    error: str | None = None
    task: asyncio.Task[None] | None = None
    first_attempt: asyncio.Event = field(default_factory=asyncio.Event)


class Daemon:
    def __init__(self, config_path: Path, registry: Registry) -> None:
        self.config_path = config_path
        self.registry = registry
        self.log = structlog.get_logger()
        self.config: Config
        self.state: StateBackend
        self.ownership: Ownership
        self.metrics = Metrics()
        self.scheduler: AsyncIOScheduler | None = None
        self.runner: web.AppRunner | None = None
        self.connectors: dict[str, _Supervised] = {}
        self.orphans: dict[str, int] = {}
        """Queued records of connectors this daemon does not run (removed, disabled)."""
        self.stop_event = asyncio.Event()
        self.stopping = False
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self._leasing = False
        self.workers: Workers | None = None

    # --- entry point ------------------------------------------------------------------

    async def run(self) -> int:
        try:
            self.config = load_config(self.config_path, self.registry)
        except ConfigError as err:
            configure_logging()
            self.log.error(
                "config.invalid",
                path=str(err.path),
                errors=[i.render(str(err.path)) for i in err.issues],
            )
            return 1
        daemon = self.config.daemon
        configure_logging(daemon.log_level, daemon.log_format)
        set_secrets(self.config.secrets)
        self.log = structlog.get_logger()
        self.log.info(
            "daemon.starting",
            version=__version__,
            config=str(self.config_path),
            state=self.config.state_shown,
            node=self.node,
            pid=os.getpid(),
        )
        try:
            self.state = self.config.state_backend()
            await self.state.open()
        except StateError as err:
            self.log.error("state.unusable", error=str(err))
            return 1
        try:
            await self._start_http()
        except OSError as err:
            self.log.error("http.listen_failed", listen=daemon.listen, error=str(err))
            await self.state.close()
            return 1
        self.ownership = Ownership(
            self.state, self.node, daemon.lease_ttl, self._live_runtimes, self._owned
        )
        if daemon.workers > 1 and not is_worker():
            self.workers = Workers(self.config_path, daemon.workers)
            self.workers.start()
        self.scheduler = AsyncIOScheduler(timezone=daemon.timezone)
        self.scheduler.start()
        for connector in self.config.enabled():
            self._supervise(connector)
        # Ready means serving: wait until every connector has had its first start.
        await asyncio.gather(*(s.first_attempt.wait() for s in self.connectors.values()))
        await self.ownership.step()  # alone, a daemon owns everything before it is ready
        self._leasing = True
        with self._signals():
            self._spawn(self.ownership.run(self.stop_event), "leases")
            if self.config.shared_state:
                self._spawn(self._follow_shared_depths(), "shared-depths")
            systemd.notify("READY=1", self._status_line())
            self._spawn(self._watchdog(), "watchdog")
            self._spawn(self._serve_run_requests(), "run-requests")
            self._spawn(self._watch_orphans(), "orphans")
            if is_worker() and self.workers is None:  # a worker, not the supervisor
                self._spawn(follow_supervisor(self.stop_event, self.request_stop), "supervisor")
            self.log.info(
                "daemon.ready",
                listen=daemon.listen,
                connectors=sorted(c.name for c in self.config.enabled()),
            )
            await self.stop_event.wait()
        await self._shutdown()
        return 0

    # --- signals ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT stop, SIGHUP reloads; previous handlers restored on exit."""
        loop = asyncio.get_running_loop()
        installed = []
        handlers = {
            signal.SIGTERM: self.request_stop,
            signal.SIGINT: self.request_stop,
            signal.SIGHUP: self.request_reload,
        }
        for sig, handler in handlers.items():
            try:
                loop.add_signal_handler(sig, handler, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                self.log.warning("daemon.signal_unavailable", signal=sig.name)
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def request_stop(self, sig: signal.Signals | None = None) -> None:
        if self.stop_event.is_set():
            return
        self.log.info("daemon.stopping", signal=sig.name if sig else None)
        systemd.notify("STOPPING=1")
        self.stop_event.set()

    def request_reload(self, sig: signal.Signals | None = None) -> None:
        if self.workers is not None:
            self.workers.signal(signal.SIGHUP)
        self._spawn(self.reload(), "reload")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- HTTP ---------------------------------------------------------------------------

    async def _start_http(self) -> None:
        app = create_app(
            self._live_runtimes,
            self.metrics,
            self._health,
            self._expected,
            max_body_bytes=self.config.daemon.max_body_bytes,
            body_timeout=self.config.daemon.body_timeout,
        )
        cors.install(app, lambda: self.config)
        install_ui(app, lambda: self.config, self.state, lambda: self._health(errors=True))
        self.runner = CappedRunner(
            app,
            max_connections=self.config.daemon.max_connections,
            access_log=None,
            auto_decompress=False,
            handle_signals=False,
            shutdown_timeout=self.config.daemon.shutdown_timeout,
            # aiohttp closes a connection whose next request has not fully arrived this
            # long after it opened or after the previous answer: the header deadline.
            keepalive_timeout=self.config.daemon.header_timeout,
            # After an early answer (401, 408, 413) the unread rest of a body is read and
            # ignored this long at most, so the client sees the answer; then it is cut.
            lingering_time=1.0,
        )
        await self.runner.setup()
        host, port = parse_listen(self.config.daemon.listen)
        shared = self.config.daemon.workers > 1 or is_worker()
        site = web.TCPSite(self.runner, host, port, reuse_address=True, reuse_port=shared or None)
        await site.start()

    def _expected(self, name: str) -> bool:
        connector = self.config.connectors.get(name)
        return bool(connector and connector.enabled and connector.is_push)

    def _live_runtimes(self) -> dict[str, ConnectorRuntime]:
        return {
            name: s.runtime
            for name, s in self.connectors.items()
            if s.runtime is not None and s.runtime.started
        }

    def _health(self, *, errors: bool = False) -> tuple[bool, dict[str, Any]]:
        """What ``/healthz`` answers, to anyone who can reach it: states and counts, never
        error text (vendor answers may echo credentials; the log has the details).
        Not ok while stopping or while an enabled connector cannot start. ``errors``
        adds the (redacted) error texts, for the status page behind its admin token."""
        connectors = {}
        failing = []
        for name, sup in self.connectors.items():
            runtime = sup.runtime
            entry: dict[str, Any] = {"running": bool(runtime and runtime.started)}
            if runtime is not None:
                entry.update(queued=runtime.depth, healthy=runtime.throttle.healthy)
                if runtime.throttle.auth_failing:
                    entry["auth_failing"] = True
                if errors and runtime.throttle.last_error:
                    entry["last_error"] = runtime.throttle.last_error
            if sup.error:
                entry.update(start_failed=True, start_attempts=sup.failures)
                if errors:
                    entry["start_error"] = redact(sup.error)
                failing.append(name)
            connectors[name] = entry
        detail: dict[str, Any] = {"connectors": connectors}
        if hasattr(self, "ownership"):
            detail["cluster"] = self.ownership.describe()
        if failing:
            detail["reason"] = f"connectors cannot start: {', '.join(sorted(failing))}"
        if self.orphans:
            detail["orphaned"] = dict(self.orphans)
        return not self.stopping and not failing, detail

    # --- connectors -----------------------------------------------------------------------

    def _supervise(self, config: ConnectorConfig) -> None:
        sup = _Supervised(config)
        self.connectors[config.name] = sup
        sup.task = asyncio.create_task(self._keep_started(sup), name=f"supervise:{config.name}")

    async def _keep_started(self, sup: _Supervised) -> None:
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
            await self.state.expire_lease(name)  # a killed predecessor's lease
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

    async def _follow_shared_depths(self) -> None:
        """Other daemons enqueue into the same queues: follow the shared depth each
        second, so that ``max_queue`` bounds the queue, not this daemon's share of it."""
        while not self.stop_event.is_set():
            try:
                depths = await self.state.queue_depth()
            except Exception as err:
                self.log.warning("queue.depth_unreadable", error=repr(err))
            else:
                assert isinstance(depths, dict)
                for name, runtime in self._live_runtimes().items():
                    runtime.depth = depths.get(name, 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=1.0)

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
            self.log.info("config.reloaded", added=added, removed=removed, changed=changed)
            await self._check_orphans()
            systemd.notify("READY=1", self._status_line())

    # --- shutdown -----------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self.stopping = True
        timeout = self.config.daemon.shutdown_timeout
        if self.runner is not None:
            await self.runner.cleanup()  # stop accepting; in-flight requests finish
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(
            *[self._stop_connector(n) for n in list(self.connectors)], return_exceptions=True
        )
        if self.workers is not None:
            await self.workers.stop(timeout)
        await self.state.close()
        self.log.info("daemon.stopped", timeout=timeout)

    async def _serve_run_requests(self) -> None:
        """Start the runs `connectord sync NAME` asks for through the state file."""
        while not self.stop_event.is_set():
            names = [
                name
                for name, sup in self.connectors.items()
                if sup.runtime is not None
                and sup.runtime.started
                and sup.runtime.epoch is not None
                and not sup.config.is_push
            ]
            try:
                pending = names and await self.state.pending_run_requests(names)
                taken = await self.state.take_run_requests(names) if pending else []
            except Exception as err:
                self.log.warning("run.requests_unreadable", error=repr(err))
                taken = []
            for request, name, full_refresh in taken:
                runtime = self.connectors[name].runtime
                if runtime is None:
                    continue
                self.log.info(
                    "run.requested", connector=name, request=request, full_refresh=full_refresh
                )
                self._spawn(
                    runtime.run_pull(kind="manual", request=request, full_refresh=full_refresh),
                    f"requested:{name}",
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=1.0)

    async def _check_orphans(self) -> None:
        """Find queued records no connector of this daemon delivers and warn once per
        change: they stay in the state file (``connectord queue list|drop NAME``)."""
        try:
            depths = await self.state.queue_depth()
            assert isinstance(depths, dict)
            found = {n: q for n, q in depths.items() if n not in self.connectors}
        except Exception as err:
            self.log.warning("queue.orphan_check_failed", error=repr(err))
            return
        for name, queued in sorted(found.items()):
            if self.orphans.get(name) != queued:
                self.log.warning(
                    "queue.orphaned",
                    connector=name,
                    queued=queued,
                    hint=f"no enabled connector named {name!r} delivers these records: "
                    f"configure it again, or see `connectord queue list {name}` and "
                    f"`connectord queue drop {name} --all`",
                )
        self.orphans = found

    async def _watch_orphans(self) -> None:
        while not self.stop_event.is_set():
            await self._check_orphans()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=ORPHAN_CHECK_SECONDS)

    async def _watchdog(self) -> None:
        interval = systemd.watchdog_interval()
        while interval and not self.stop_event.is_set():
            systemd.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    def _status_line(self) -> str:
        from .cli_text import plural

        connectors = plural(len(self.config.enabled()), "connector")
        return f"STATUS=serving {connectors} on {self.config.daemon.listen}"


def run_daemon(config_path: Path, registry: Registry) -> int:
    """Run until stopped; the process exit code."""
    return asyncio.run(Daemon(config_path, registry).run())
