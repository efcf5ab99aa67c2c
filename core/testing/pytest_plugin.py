"""pytest fixtures for connectord plugins (loaded automatically once connectord is
installed; disable with ``-p no:connectord``).

- ``connectord_daemon``: factory ``(connectors_toml, env=None, daemon="", wait=True,
  python=None) -> DaemonProcess``, started on a free port in ``tmp_path``, stopped at
  teardown.
- ``emulator_server``: factory ``(app_or_emulator) -> EmulatorServer``, started,
  stopped at teardown.
- ``register_plugin``: factory ``(*classes, name=None) -> Registry`` that registers
  throwaway plugin classes into a fresh plugin manager (built-ins only) for one test;
  they are unregistered at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .daemon import DaemonProcess, write_config
from .emulator import EmulatorServer, VendorEmulator
from .plugins import PluginRegistrar, plugin_manager


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
        connectors: str,
        *,
        env: dict[str, str | None] | None = None,
        daemon: str = "",
        wait: bool = True,
        python: str | None = None,
    ) -> DaemonProcess:
        directory = tmp_path / f"daemon{len(daemons)}"
        directory.mkdir()
        process = DaemonProcess(
            write_config(directory, connectors, daemon=daemon),
            env=env,  # type: ignore[arg-type]
            python=python,
        )
        daemons.append(process)
        return process.start(wait=wait)

    yield start
    for process in daemons:
        try:
            process.stop(timeout=15)
        except Exception:
            process.kill()


@pytest.fixture
def register_plugin() -> Iterator[PluginRegistrar]:
    registrar = PluginRegistrar(plugin_manager())
    try:
        yield registrar
    finally:
        registrar.unregister_all()
