"""State backends: the one interface the daemon's state lives behind.

`StateBackend` is what the daemon needs from its state database, as async methods whose
names and meanings follow the SQLite `connectord.state.Store`, so that a SQLite backend
can wrap `Store` thinly and a PostgreSQL backend (`connectord.backends.postgres`) can be
shared by several daemons.

Sharing adds two things the single-file store never needed:

- **leases**: a connector's pull runs and queue draining belong to one daemon at a time.
  A lease is a row (name, holder node, epoch, expiry) kept on the database's clock; every
  acquisition increases the epoch.
- **fencing**: the epoch is a fencing token. `complete` and `commit_pull_batch` take the
  epoch their caller acquired and raise `StaleEpoch` (changing nothing) once another node
  has acquired the lease since, so a paused daemon that wakes up after losing its lease
  cannot move a checkpoint or drop queue rows behind the new holder's back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from connectord.errors import StateError
from connectord.state import DeadLetter, QueueRow, RunInfo

Json = Any

__all__ = [
    "DeadLetter",
    "LeaseInfo",
    "QueueRow",
    "RunInfo",
    "StaleEpoch",
    "StateBackend",
    "StateUnavailable",
    "connector_lease",
]


class StaleEpoch(StateError):
    """Another node holds this lease now: the write was refused and nothing changed."""


class StateUnavailable(StateError):
    """The state database cannot be reached right now; nothing was committed. Retry."""


@dataclass(frozen=True)
class LeaseInfo:
    """Who holds a lease, under which epoch, and for how many more seconds."""

    name: str
    node: str
    epoch: int
    expires_in: float


def connector_lease(connector: str) -> str:
    """The lease that owns a connector's pull runs and queue draining (the fencing name)."""
    return f"connector:{connector}"


@runtime_checkable
class StateBackend(Protocol):
    """Everything the daemon keeps: queue, dead letters, checkpoints, runs, state, leases.

    Ids returned by `read_queue` are delivered in id order; a backend guarantees that once
    a row is returned, no row of the same connector with a lower id can become visible
    later, so the caller may keep ``after`` as a cursor.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # --- queue -----------------------------------------------------------------------
    async def enqueue_many(self, items: Sequence[tuple[str, Sequence[bytes]]]) -> None:
        """Append records for one or more connectors in one transaction (durable on return)."""

    async def read_queue(self, connector: str, after: int, limit: int) -> list[QueueRow]: ...

    async def read_rows(self, connector: str, ids: Sequence[int]) -> list[QueueRow]:
        """The rows of these ids still queued for ``connector``, in id order."""

    async def queue_depth(self, connector: str | None = None) -> int | dict[str, int]: ...

    async def list_queue(self, connector: str, limit: int | None = 50) -> list[dict[str, Any]]:
        """Queued records, oldest first: ``{"id", "enqueued_at", "record"}`` (operators'
        ``connectord queue list``)."""

    async def drop_queue(self, connector: str, ids: Sequence[int] | None = None) -> int:
        """Delete queued records for good (all of the connector's when ``ids`` is None)."""

    async def complete(
        self,
        connector: str,
        ids: Sequence[int],
        dead: Sequence[DeadLetter],
        delivered: int,
        *,
        epoch: int,
    ) -> int:
        """Drop exactly the acknowledged rows ``ids``, keep ``dead``, bump counters.

        Raises `StaleEpoch` (nothing changed) when ``epoch`` is no longer the connector
        lease's epoch. Returns how many queue rows were removed.
        """

    # --- dead letters ------------------------------------------------------------------
    async def add_dead_letters(self, connector: str, dead: Sequence[DeadLetter]) -> None:
        """Dead letters refused at ingest (never queued): counted received and rejected."""

    async def dead_letters(
        self, connector: str, limit: int | None = None, after: int = 0
    ) -> list[dict[str, Any]]: ...

    async def dead_letter_count(self, connector: str | None = None) -> int | dict[str, int]: ...

    async def replay_dead_letters(self, connector: str, ids: Iterable[int] | None = None) -> int:
        """Move dead letters back into the connector's queue; return how many moved."""

    async def purge_dead_letters(self, connector: str, ids: Iterable[int] | None = None) -> int: ...

    # --- checkpoints -------------------------------------------------------------------
    async def checkpoint(self, connector: str) -> Json: ...

    async def checkpoints(self) -> dict[str, Json]: ...

    async def commit_pull_batch(
        self,
        connector: str,
        *,
        epoch: int,
        checkpoint: Json,
        state_namespace: str,
        state: dict[str, Any] | None,
        dead: Sequence[DeadLetter],
        delivered: int,
        received: int,
        run_id: int | None = None,
    ) -> None:
        """Checkpoint + plugin state + dead letters + counters in one transaction;
        `StaleEpoch` (nothing changed) when ``epoch`` is stale."""

    async def reset_checkpoint(self, connector: str) -> None: ...

    # --- runs and run requests ---------------------------------------------------------
    async def start_run(self, connector: str, kind: str) -> int: ...

    async def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        records_in: int,
        records_out: int,
        rejected: int,
        error: str | None = None,
    ) -> None: ...

    async def abandon_running(self, connector: str) -> int: ...

    async def run(self, run_id: int) -> RunInfo | None: ...

    async def last_runs(self, connector: str, limit: int = 1) -> list[RunInfo]: ...

    async def last_success(self, connector: str) -> float | None: ...

    async def request_run(self, connector: str, *, full_refresh: bool = False) -> int: ...

    async def pending_run_requests(self, connectors: Iterable[str]) -> bool: ...

    async def take_run_requests(self, connectors: Iterable[str]) -> list[tuple[int, str, bool]]: ...

    async def serve_run_request(self, request_id: int, run_id: int) -> None: ...

    async def run_request(self, request_id: int) -> dict[str, Any] | None: ...

    # --- counters and plugin state -----------------------------------------------------
    async def counters(self, connector: str) -> dict[str, Any]: ...

    async def get_state(self, namespace: str, keys: Iterable[str]) -> dict[str, Any]: ...

    async def scan_state(self, namespace: str, prefix: str = "") -> dict[str, Any]: ...

    async def set_state(self, namespace: str, items: dict[str, Any]) -> None:
        """Upsert ``items``; a value of None deletes its key."""

    async def clear_state(self, namespace_prefix: str) -> int: ...

    async def compare_and_set(self, namespace: str, key: str, expected: Any, new: Any) -> bool:
        """Set ``key`` to ``new`` only if it still holds ``expected`` (None: absent);
        ``new`` None deletes. True when the write happened (read-modify-write safely)."""

    # --- leases and nodes --------------------------------------------------------------
    async def acquire(self, name: str, node: str, ttl: float) -> int | None:
        """Take the lease if free, expired or already ours; the new epoch, else None."""

    async def renew(self, name: str, node: str, epoch: int, ttl: float) -> bool:
        """Extend our lease; False when another node acquired it since (stop working)."""

    async def release(self, name: str, node: str, epoch: int) -> None: ...

    async def holder(self, name: str) -> LeaseInfo | None:
        """The live holder of the lease, if any."""

    async def heartbeat(self, node: str, ttl: float) -> None:
        """Say this node is alive for ``ttl`` more seconds."""

    async def live_nodes(self) -> list[str]: ...

    async def leave(self, node: str) -> None:
        """This node stops cleanly: it is no longer alive for placement, at once. Unless
        another process heartbeated under the same name since this one last did (a
        worker or a daemon restarted with a fixed ``node`` name while this one stops):
        that one is alive."""
