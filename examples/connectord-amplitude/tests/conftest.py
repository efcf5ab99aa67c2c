"""Fixtures: the Amplitude emulator over real HTTP, options pointing at it, fast retries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from connectord.http import Backoff
from emulator import API_KEY, SECRET_KEY, AmplitudeEmulator

from connectord_amplitude.source import AmplitudeExportSource

NOW = datetime(2026, 1, 10, 12, 30, tzinfo=UTC)
"""The source's clock in unit tests: hours up to 09:00 are exportable."""


@pytest.fixture(autouse=True)
def only_this_plugin(monkeypatch):
    """Load only this plugin, whatever else is installed (also in the daemons started)."""
    monkeypatch.setenv("CONNECTORD_LOAD_PLUGINS", "amplitude")


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(AmplitudeExportSource, "retry_backoff", Backoff(0.01, 0.05))


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(AmplitudeExportSource, "now", staticmethod(lambda: NOW))
    return NOW


@pytest.fixture
def emulator() -> AmplitudeEmulator:
    return AmplitudeEmulator()


@pytest.fixture
def server(emulator, emulator_server):
    return emulator_server(emulator)


@pytest.fixture
def destination_options(server) -> dict[str, str]:
    return {"api_key": API_KEY, "base_url": server.url}


@pytest.fixture
def export_options(server) -> dict[str, str]:
    return {
        "api_key": API_KEY,
        "secret_key": SECRET_KEY,
        "base_url": server.url,
        "start": "20260110T00",
    }
