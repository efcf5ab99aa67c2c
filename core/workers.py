"""``[daemon] workers = N``: N processes of one daemon on one machine.

Python runs one core per process. With ``workers = N`` the daemon started by the
operator (the one systemd watches) starts N - 1 more ``connectord run`` processes on
the same config. All of them listen on the same address with ``SO_REUSEPORT``, so the
kernel spreads incoming connections over them
(https://man7.org/linux/man-pages/man7/socket.7.html), and all of them share the state
the way separate daemons share a PostgreSQL state: connectors are owned through leases
(`connectord.ownership`), push requests are accepted by whichever process the kernel
picked, into the one queue.

The first process supervises the others: a worker that dies is started again after a
delay, SIGHUP is passed on (each process reloads the file itself) and on SIGTERM they
stop with it. A worker whose supervisor died (kill -9, OOM killer) stops by itself
(`follow_supervisor`): the supervisor started again starts new workers, and an orphan
left running would hold the port and the state with the same node name. Every process
sets `WORKER_ENV`, which tells a daemon on an SQLite file
that other processes sharing it are its own workers, not a second daemon started on
the same file by mistake.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import structlog

WORKER_ENV = "CONNECTORD_WORKER"
SUPERVISOR_ENV = "CONNECTORD_SUPERVISOR"
"""The supervisor's pid, given to each worker: it may die before the worker looks."""
RESTART_DELAY = 1.0
SUPERVISOR_CHECK_SECONDS = 0.5


def is_worker() -> bool:
    return bool(os.environ.get(WORKER_ENV))


async def follow_supervisor(stop: asyncio.Event, request_stop: Callable[[], None]) -> None:
    """In a worker: call ``request_stop`` once the process that started it is gone (the
    worker is then re-parented, so its parent pid changes)."""
    supervisor = int(os.environ.get(SUPERVISOR_ENV) or os.getppid())
    while not stop.is_set():
        if os.getppid() != supervisor:
            structlog.get_logger().warning("worker.orphaned", supervisor_pid=supervisor)
            request_stop()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=SUPERVISOR_CHECK_SECONDS)


class Workers:
    """The N - 1 extra processes, kept running until `stop`."""

    def __init__(self, config_path: Path, count: int) -> None:
        self.config_path = config_path
        self.count = count
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = False
        self.log = structlog.get_logger().bind(component="workers")
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        os.environ[WORKER_ENV] = "0"
        self._tasks = [
            asyncio.create_task(self._keep(i), name=f"worker:{i}") for i in range(1, self.count)
        ]

    async def _keep(self, index: int) -> None:
        while not self.stopping:
            env = {**os.environ, WORKER_ENV: str(index), SUPERVISOR_ENV: str(os.getpid())}
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "connectord", "run", "-c", str(self.config_path), env=env
            )
            self.processes[index] = process
            self.log.info("worker.started", worker=index, pid=process.pid)
            code = await process.wait()
            if self.stopping:
                return
            self.log.error("worker.exited", worker=index, pid=process.pid, code=code)
            await asyncio.sleep(RESTART_DELAY)

    def signal(self, sig: signal.Signals) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)

    async def stop(self, grace: float) -> None:
        """SIGTERM every worker; SIGKILL what is still running after ``grace`` + 5 s."""
        self.stopping = True
        self.signal(signal.SIGTERM)
        running = [p for p in self.processes.values() if p.returncode is None]
        if running:
            _, pending = await asyncio.wait(
                [asyncio.create_task(p.wait()) for p in running], timeout=grace + 5
            )
            if pending:
                self.signal(signal.SIGKILL)
                await asyncio.wait(pending, timeout=5)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
