"""Fixtures for the Pushwoosh plugin tests: the emulator on 127.0.0.1 and options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.plugins.pushwoosh.emulator import PushwooshEmulator

APPLICATION = "ABCDE-12345"
API_TOKEN = "server-token-for-tests"
DEVICE_TOKEN = "device-token-for-tests"


@pytest.fixture
def pushwoosh(emulator_server) -> PushwooshEmulator:
    """A running emulator; its address is ``pushwoosh.url``."""
    emulator = PushwooshEmulator(
        application=APPLICATION, api_token=API_TOKEN, device_token=DEVICE_TOKEN
    )
    emulator.url = emulator_server(emulator).url
    return emulator


@pytest.fixture
def destination_options(pushwoosh) -> Callable[..., dict[str, Any]]:
    """Options of the ``pushwoosh`` destination pointed at the emulator."""

    def build(**overrides: Any) -> dict[str, Any]:
        return {
            "application": pushwoosh.application,
            "api_token": pushwoosh.api_token,
            "device_token": pushwoosh.device_token,
            "base_url": pushwoosh.url,
            "events_url": pushwoosh.url,
            "poll_interval": 0.01,
            "max_wait": 5,
            **overrides,
        }

    return build
