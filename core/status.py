"""``connectord status``: what each connector did, read from the state file."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .config import Config
from .state import Store, state_namespace

NOTICE_PREFIX = "notice:"
"""Plugin state keys under this prefix are what the operator must act on; status shows them."""


def collect_status(config: Config) -> dict[str, Any]:
    """Status of every configured connector; secrets never appear (none are stored)."""
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
            entries.append(
                {
                    "name": name,
                    "enabled": connector.enabled,
                    "mode": "push" if connector.is_push else "pull",
                    "source": connector.source.type,
                    "mappings": [m.type for m in connector.mappings],
                    "destination": connector.destination.type,
                    "schedule": connector.schedule,
                    "running_in_pid": holder,
                    "last_run": asdict(runs[0]) if runs else None,
                    "last_success_at": store.last_success(name) if store else None,
                    "counts": store.counters(name)
                    if store
                    else {
                        "received": 0,
                        "delivered": 0,
                        "rejected": 0,
                        "last_received_at": None,
                        "last_delivered_at": None,
                    },
                    "checkpoint": checkpoints.get(name),
                    "queue_depth": depths.get(name, 0),
                    "dead_letters": dead.get(name, 0),
                    "notices": _notices(store, name, connector) if store else {},
                }
            )
    finally:
        if store is not None:
            store.close()
    return {
        "config": str(config.path),
        "state": str(config.state_path),
        "daemon_pid": daemon_pid,
        "connectors": entries,
    }


def _notices(store: Store, name: str, connector: Any) -> dict[str, Any]:
    """Every plugin's ``notice:*`` state keys, as ``"<plugin type> <key>": value``."""
    found: dict[str, Any] = {}
    for spec in (connector.source, *connector.mappings, connector.destination):
        stored = store.scan_state(state_namespace(name, spec.type), NOTICE_PREFIX)
        for key, value in sorted(stored.items()):
            found[f"{spec.type} {key[len(NOTICE_PREFIX) :]}"] = value
    return found
