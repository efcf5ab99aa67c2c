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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from . import __version__, cors, heap, systemd
from .backends import StateBackend
from .config import Config, ConfigError, load_config
from .connector import ConnectorRuntime
from .daemon_loops import DaemonLoops
from .errors import StateError
from .log import configure as configure_logging
from .log import redact, set_secrets
from .metrics import Metrics
from .ownership import Ownership
from .registry import Registry
from .server import CappedRunner, create_app, parse_listen
from .supervision import ConnectorSupervision, Supervised
from .ui import install as install_ui
from .workers import Workers, follow_supervisor, is_worker


class Daemon(ConnectorSupervision, DaemonLoops):
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
        self.connectors: dict[str, Supervised] = {}
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
        heap.tune()
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
            self.state,
            self.node,
            daemon.lease_ttl,
            self._live_runtimes,
            self._owned,
            metrics=self.metrics,
        )
        self.metrics.node_info.labels(self.node).set(1)
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
            if self.config.shared_state or daemon.workers > 1 or is_worker():
                self._spawn(self._follow_shared_depths(), "shared-depths")
            systemd.notify("READY=1", self._status_line())
            self._spawn(self._watchdog(), "watchdog")
            self._spawn(self._serve_run_requests(), "run-requests")
            self._spawn(self._watch_orphans(), "orphans")
            if is_worker() and self.workers is None:  # a worker, not the supervisor
                self._spawn(follow_supervisor(self.stop_event, self.request_stop), "supervisor")
            frozen = heap.settle()  # what startup built is never garbage: freeze it
            self.log.info(
                "daemon.ready",
                listen=daemon.listen,
                connectors=sorted(c.name for c in self.config.enabled()),
                frozen_objects=frozen,
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
        await self.ownership.leave()
        await self.state.close()
        self.log.info("daemon.stopped", timeout=timeout)


def run_daemon(config_path: Path, registry: Registry) -> int:
    """Run until stopped; the process exit code."""
    return asyncio.run(Daemon(config_path, registry).run())
