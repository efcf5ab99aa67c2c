"""Shared fixtures. The connectord pytest plugin (connectord.testing.pytest_plugin)
provides ``connectord_daemon`` and ``emulator_server``."""

from __future__ import annotations

import inspect
import os
from types import SimpleNamespace

import pytest
from aiohttp import ClientResponse

# Installed third-party plugins must not leak into the suite: only built-ins load,
# unless a test asks for a plugin explicitly.
os.environ.setdefault("CONNECTORD_LOAD_PLUGINS", "")


@pytest.fixture
def registry():
    from connectord.registry import load_registry

    return load_registry()


def pytest_report_header(config):
    import sqlite3
    from importlib.metadata import version

    return [f"SQLite {sqlite3.sqlite_version}, sqlite-utils {version('sqlite-utils')}"]


class _MockedResponse(ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp
    3.14 requires; give it a stand-in that reports nothing written."""

    def __init__(self, *args, **kwargs):
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
