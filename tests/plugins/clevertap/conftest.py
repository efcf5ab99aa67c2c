"""Fixtures for the CleverTap plugin: the emulator over a small generated data set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.plugins.clevertap.common import postgres_database
from tests.plugins.clevertap.emulator import CleverTapEmulator, Dataset


@pytest.fixture
def small_data() -> Dataset:
    """3 days, 4 events, ~1,500 events a day: fast, still several pages a day."""
    return Dataset(days=3, events_per_day=1_500, users=300)


@pytest.fixture
def emulator(small_data: Dataset) -> CleverTapEmulator:
    return CleverTapEmulator(small_data)


@pytest.fixture
def served(emulator: CleverTapEmulator, emulator_server) -> Any:
    return emulator_server(emulator)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url
