"""Fixtures for the plugin's tests.

connectord's own pytest plugin adds ``emulator_server`` (run an emulator on
127.0.0.1), ``connectord_daemon`` (run the real daemon) and ``register_plugin``.
"""

from __future__ import annotations

import pytest
from connectord.http import Backoff
from emulator import API_KEY, MyVendorEmulator

from connectord_myvendor.source import MyVendorEventsSource


@pytest.fixture(autouse=True)
def only_this_plugin(monkeypatch):
    """Load only this plugin, whatever else is installed (also in the daemons started)."""
    monkeypatch.setenv("CONNECTORD_LOAD_PLUGINS", "myvendor")


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    """Retry in milliseconds, not seconds, so failure tests stay fast."""
    monkeypatch.setattr(MyVendorEventsSource, "retry_backoff", Backoff(0.01, 0.05))


@pytest.fixture
def emulator() -> MyVendorEmulator:
    return MyVendorEmulator()


@pytest.fixture
def server(emulator, emulator_server):
    """The emulator, served over real HTTP on 127.0.0.1."""
    return emulator_server(emulator)


@pytest.fixture
def options(server) -> dict[str, str]:
    """Options pointing a source or destination at the emulator."""
    return {"api_key": API_KEY, "base_url": server.url}
