"""The figures behind the status page, ``/ui/api/status`` and ``connectord top``.

One function reads the state file (on the store's reader thread) and merges in what
only the running daemon knows (is the connector started, is its destination healthy,
the last delivery error). Everything that leaves here went through the log redaction,
and plugin options are dumped with secrets masked, so no configured secret is shown.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from ..config import Config, ConnectorConfig, PluginSpec
from ..log import redact
from ..state import Store
from .history import series

DEAD_LETTERS_SHOWN = 20
RUNS_SHOWN = 10


def plugin_summary(spec: PluginSpec) -> dict[str, Any]:
    """A plugin's type and options, secrets masked (``**********``) and redacted."""
    try:
        options = spec.options.model_dump(mode="json")
    except Exception:  # an unresolved disabled connector holds unvalidated options
        options = {}
    return {"type": spec.type, "options": redact(options)}


def describe(connector: ConnectorConfig) -> dict[str, Any]:
    """What the config says about a connector."""
    return {
        "name": connector.name,
        "enabled": connector.enabled,
        "mode": "push" if connector.is_push else "pull",
        "schedule": connector.schedule,
        "source": plugin_summary(connector.source),
        "mappings": [plugin_summary(m) for m in connector.mappings],
        "destination": plugin_summary(connector.destination),
    }


def read_state(store: Store, names: list[str], hours: float) -> dict[str, dict[str, Any]]:
    """Per connector: counters, queue, dead letters, runs, checkpoint and history."""
    depths = store.queue_depth()
    dead = store.dead_letter_count()
    checkpoints = store.checkpoints()
    assert isinstance(depths, dict) and isinstance(dead, dict)
    out = {}
    for name in names:
        runs = [_run(asdict(r)) for r in store.last_runs(name, RUNS_SHOWN)]
        out[name] = {
            "counts": store.counters(name),
            "queue_depth": depths.get(name, 0),
            "dead_letter_count": dead.get(name, 0),
            "dead_letters": store.dead_letters(name, limit=DEAD_LETTERS_SHOWN),
            "checkpoint": checkpoints.get(name),
            "runs": runs,
            "last_success_at": store.last_success(name),
            "history": series(store, name, hours),
        }
    return out


async def read_shared_state(state: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """`read_state` through the `StateBackend` interface, for a PostgreSQL state. The
    per-minute history behind the charts is kept in SQLite state only: with a shared
    state, the Prometheus metrics of each daemon (``deploy/grafana``) draw them."""
    depths = await state.queue_depth()
    dead = await state.dead_letter_count()
    checkpoints = await state.checkpoints()
    out = {}
    for name in names:
        runs = [_run(asdict(r)) for r in await state.last_runs(name, RUNS_SHOWN)]
        out[name] = {
            "counts": await state.counters(name),
            "queue_depth": depths.get(name, 0),
            "dead_letter_count": dead.get(name, 0),
            "dead_letters": await state.dead_letters(name, limit=DEAD_LETTERS_SHOWN),
            "checkpoint": checkpoints.get(name),
            "runs": runs,
            "last_success_at": await state.last_success(name),
            "history": [],
        }
    return out


def _run(run: dict[str, Any]) -> dict[str, Any]:
    ended = run.get("ended_at") or time.time()
    run["seconds"] = round(max(0.0, ended - run["started_at"]), 3)
    return run


def snapshot(
    config: Config, state: dict[str, dict[str, Any]], health: dict[str, Any], hours: float
) -> dict[str, Any]:
    """The whole picture, redacted."""
    connectors = []
    for name, connector in config.connectors.items():
        live = health.get("connectors", {}).get(name, {})
        entry = describe(connector) | state.get(name, {})
        last_run = (entry.get("runs") or [None])[0]
        entry["running"] = bool(live.get("running"))
        entry["healthy"] = live.get("healthy", live.get("running", False))
        entry["auth_failing"] = bool(live.get("auth_failing"))
        entry["last_error"] = (
            live.get("last_error") or live.get("start_error") or (last_run or {}).get("error")
        )
        entry["health"] = _health_word(connector, live, entry)
        connectors.append(entry)
    return redact({"generated_at": time.time(), "hours": hours, "connectors": connectors})


def _health_word(connector: ConnectorConfig, live: dict[str, Any], entry: dict[str, Any]) -> str:
    if not connector.enabled:
        return "disabled"
    if live.get("start_error"):
        return "failed to start"
    if not live.get("running"):
        return "starting"
    if live.get("auth_failing"):
        return "credentials refused"
    if not live.get("healthy", True):
        return "retrying"
    return "ok"
