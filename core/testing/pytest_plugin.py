"""pytest fixtures for connectord plugins (loaded automatically once connectord is
installed; disable with ``-p no:connectord``).

- ``connectord_daemon``: factory ``(connectors_toml, env=None, daemon="") ->
  DaemonProcess``, started on a free port in ``tmp_path``, stopped at teardown.
- ``emulator_server``: factory ``(app_or_emulator) -> EmulatorServer``, started,
  stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .daemon import DaemonProcess, write_config
from .emulator import EmulatorServer, VendorEmulator


@pytest.fixture
def emulator_server() -> Iterator[Callable[[Any], EmulatorServer]]:
    servers: list[EmulatorServer] = []

    def start(app: Any) -> EmulatorServer:
        server = app.serve() if isinstance(app, VendorEmulator) else EmulatorServer(app)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def connectord_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    daemons: list[DaemonProcess] = []

    def start(
        connectors: str, *, env: dict[str, str] | None = None, daemon: str = "", wait: bool = True
    ) -> DaemonProcess:
        directory = tmp_path / f"daemon{len(daemons)}"
        directory.mkdir()
        process = DaemonProcess(write_config(directory, connectors, daemon=daemon), env=env)
        daemons.append(process)
        return process.start(wait=wait)

    yield start
    for process in daemons:
        try:
            process.stop(timeout=15)
        except Exception:
            process.kill()
