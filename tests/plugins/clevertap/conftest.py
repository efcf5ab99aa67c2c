"""Fixtures for the CleverTap plugin: the emulator over a small generated data set."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import ClientResponse

from tests.emulators.clevertap import CleverTapEmulator, Dataset
from tests.plugins.clevertap.common import postgres_database


class _MockedResponse(ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp
    3.14 requires; give it a stand-in that reports nothing written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture(autouse=True)
def _aioresponses_on_new_aiohttp(monkeypatch):
    if "stream_writer" not in inspect.signature(ClientResponse.__init__).parameters:
        return
    from aioresponses.core import RequestMatch

    build = RequestMatch._build_response

    def build_response(self, *args, response_class=None, **kwargs):
        return build(self, *args, response_class=response_class or _MockedResponse, **kwargs)

    monkeypatch.setattr(RequestMatch, "_build_response", build_response)


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
