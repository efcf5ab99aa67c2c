"""What the state database hands out and takes in, shared by every part of `Store`.

The storage backends (`connectord.backends`) return the same types, so that the
delivery loop does not care which database holds the queue.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

Json = Any


@dataclass(frozen=True)
class QueueRow:
    id: int
    body: bytes


@dataclass(frozen=True)
class DeadLetter:
    """A record the destination (or a mapping) refused for good, with the reason."""

    connector: str
    record: bytes
    reason: str
    stage: str = "destination"


@dataclass(frozen=True)
class RunInfo:
    id: int
    connector: str
    kind: str
    started_at: float
    ended_at: float | None
    status: str
    records_in: int
    records_out: int
    rejected: int
    error: str | None


def now() -> float:
    return time.time()


class Connected:
    """The open state file every part of `Store` works on; `Store` sets it up."""

    path: Path
    db: Database

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn
