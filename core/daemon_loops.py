"""The daemon's background loops: run requests, orphaned queues, shared depths, watchdog.

`DaemonLoops` is the part of `connectord.daemon.Daemon` that runs beside the
connectors until the daemon stops; each loop survives a failed round (the state may be
unreachable for a while) and tries again at its next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from . import systemd

if TYPE_CHECKING:
    import structlog

    from .backends import StateBackend
    from .config import Config
    from .connector import ConnectorRuntime
    from .supervision import Supervised

ORPHAN_CHECK_SECONDS = 15.0


class DaemonLoops:
    """Background loops for `Daemon`, which sets these attributes."""

    config: Config
    state: StateBackend
    connectors: dict[str, Supervised]
    orphans: dict[str, int]
    stop_event: asyncio.Event
    log: structlog.typing.FilteringBoundLogger

    if TYPE_CHECKING:  # provided by the class this is mixed into

        def _spawn(self, coro: Any, name: str) -> None: ...

        def _live_runtimes(self) -> dict[str, ConnectorRuntime]: ...

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
