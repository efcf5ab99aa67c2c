"""Shared by the CleverTap tests: options for the emulator, a throw-away
PostgreSQL database, and ``connectord sync`` as a real process."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from tests.plugins.clevertap.emulator import CleverTapEmulator

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def source_options(emulator: CleverTapEmulator, url: str, **extra: Any) -> dict[str, Any]:
    """Options of a CleverTap source reading every day of the emulator's data set."""
    days = emulator.data.day_list()
    return {
        "account_id": emulator.account_id,
        "passcode": emulator.passcode,
        "base_url": url,
        "start": days[0].strftime("%Y%m%d"),
        "end": days[-1].strftime("%Y%m%d"),
        "poll_interval": 0.01,
        "retry_initial": 0.05,
        **extra,
    }


def toml_inline(options: dict[str, Any]) -> str:
    """``{ key = value, ... }`` for a connectors.toml plugin table."""
    import json

    parts = []
    for key, value in options.items():
        parts.append(f"{key} = {json.dumps(value)}")
    return "{ " + ", ".join(parts) + " }"


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, uniquely named database on the local server, dropped afterwards."""
    name = f"connectord_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sync_command(config: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "connectord", "sync", name, "-c", str(config)]


def sync(config: Path, name: str, *, timeout: float = 240) -> subprocess.CompletedProcess:
    """``connectord sync NAME`` as a real process; its result."""
    return subprocess.run(
        sync_command(config, name),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=config.parent,
    )
