"""``connectord status``: what each connector did, read from the state.

The SQLite file is read in place, read-only (no daemon needs to run); a PostgreSQL
state is read through the `StateBackend` interface, which adds the daemons sharing it
(``nodes``) and which of them owns each connector (``owner``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import asdict
from typing import Any

from .backends import LeaseInfo, connector_lease
from .config import Config
from .state import Store, state_namespace

NOTICE_PREFIX = "notice:"
"""Plugin state keys under this prefix are what the operator must act on; status shows them."""


EMPTY_COUNTS = {
    "received": 0,
    "delivered": 0,
    "rejected": 0,
    "last_received_at": None,
    "last_delivered_at": None,
}


def collect_status(config: Config) -> dict[str, Any]:
    """Status of every configured connector; secrets never appear (none are stored)."""
    if config.shared_state:
        return asyncio.run(_collect_shared(config))
    entries = []
    if not config.state_path.exists():
        store = None
    else:
        store = Store(config.state_path, create=False, readonly=True)
    try:
        depths = store.queue_depth() if store else {}
        dead = store.dead_letter_count() if store else {}
        checkpoints = store.checkpoints() if store else {}
        daemon_pid = None
        for name, connector in config.connectors.items():
            runs = store.last_runs(name, 1) if store else []
            holder = store.lock_holder(f"connector:{name}") if store else None
            daemon_pid = daemon_pid or holder
            entry = _entry(name, connector, checkpoints, depths, dead)
            entry.update(
                running_in_pid=holder,
                owner=_owner(_sqlite_holder(store, name)) if store else None,
                last_run=asdict(runs[0]) if runs else None,
                last_success_at=store.last_success(name) if store else None,
                counts=store.counters(name) if store else dict(EMPTY_COUNTS),
                notices=_notices(store, name, connector) if store else {},
            )
            entries.append(entry)
        orphaned = _orphaned(store, config) if store else []
        nodes = _sqlite_nodes(store) if store else []
    finally:
        if store is not None:
            store.close()
    return {
        "config": str(config.path),
        "state": str(config.state_path),
        "daemon_pid": daemon_pid,
        "nodes": nodes,
        "connectors": entries,
        "orphaned": orphaned,
    }


def _entry(
    name: str, connector: Any, checkpoints: dict, depths: dict, dead: dict
) -> dict[str, Any]:
    return {
        "name": name,
        "enabled": connector.enabled,
        "mode": "push" if connector.is_push else "pull",
        "source": connector.source.type,
        "mappings": [m.type for m in connector.mappings],
        "destination": connector.destination.type,
        "schedule": connector.schedule,
        "checkpoint": checkpoints.get(name),
        "queue_depth": depths.get(name, 0),
        "dead_letters": dead.get(name, 0),
    }


def _owner(info: LeaseInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"node": info.node, "epoch": info.epoch, "expires_in": round(info.expires_in, 1)}


def _sqlite_holder(store: Store, name: str) -> LeaseInfo | None:
    from .backends import sqlite_ops

    try:
        return sqlite_ops.holder(store, connector_lease(name))
    except sqlite3.OperationalError:  # a state file from before leases
        return None


def _sqlite_nodes(store: Store) -> list[str]:
    from .backends import sqlite_ops

    try:
        return sqlite_ops.live_nodes(store)
    except sqlite3.OperationalError:
        return []


async def _collect_shared(config: Config) -> dict[str, Any]:
    state = config.state_backend()
    await state.open()
    try:
        depths, dead = await state.queue_depth(), await state.dead_letter_count()
        checkpoints = await state.checkpoints()
        entries = []
        for name, connector in config.connectors.items():
            runs = await state.last_runs(name, 1)
            entry = _entry(name, connector, checkpoints, depths, dead)
            entry.update(
                running_in_pid=None,
                owner=_owner(await state.holder(connector_lease(name))),
                last_run=asdict(runs[0]) if runs else None,
                last_success_at=await state.last_success(name),
                counts=await state.counters(name),
                notices=await _shared_notices(state, name, connector),
            )
            entries.append(entry)
        orphaned = [
            {"name": n, "queue_depth": q, "dead_letters": dead.get(n, 0)}
            for n, q in sorted(depths.items())
            if n not in config.connectors
        ]
        nodes = await state.live_nodes()
    finally:
        await state.close()
    return {
        "config": str(config.path),
        "state": config.state_shown,
        "daemon_pid": None,
        "nodes": nodes,
        "connectors": entries,
        "orphaned": orphaned,
    }


async def _shared_notices(state: Any, name: str, connector: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for spec in _plugins(connector):
        stored = await state.scan_state(state_namespace(name, spec.type), NOTICE_PREFIX)
        found.update(_labelled(spec.type, stored))
    return found


def _plugins(connector: Any) -> tuple[Any, ...]:
    return (connector.source, *connector.mappings, connector.destination)


def _labelled(plugin: str, stored: dict[str, Any]) -> dict[str, Any]:
    """``notice:<key>`` state keys as ``"<plugin type> <key>": value``."""
    return {f"{plugin} {key[len(NOTICE_PREFIX) :]}": v for key, v in sorted(stored.items())}


def _notices(store: Store, name: str, connector: Any) -> dict[str, Any]:
    """Every plugin's ``notice:*`` state keys, as ``"<plugin type> <key>": value``."""
    found: dict[str, Any] = {}
    for spec in _plugins(connector):
        stored = store.scan_state(state_namespace(name, spec.type), NOTICE_PREFIX)
        found.update(_labelled(spec.type, stored))
    return found


def _orphaned(store: Store, config: Config) -> list[dict[str, Any]]:
    """Connectors gone from the configuration whose records are still in the state file."""
    from .queue import known_names

    depths, dead = store.queue_depth(), store.dead_letter_count()
    return [
        {"name": name, "queue_depth": depths.get(name, 0), "dead_letters": dead.get(name, 0)}
        for name in sorted(known_names(store) - set(config.connectors))
    ]
