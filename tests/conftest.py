"""Shared fixtures. The connectord pytest plugin (connectord.testing.pytest_plugin)
provides ``connectord_daemon`` and ``emulator_server``."""

from __future__ import annotations

import os

import pytest

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
