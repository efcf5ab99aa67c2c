"""``connectord top``: a live terminal view of every connector, like ``vector top``.

It polls the daemon's ``/ui/api/status`` (the figures of the status page) and redraws
a table with `rich`: rates in and out (from the counters' growth between two polls),
queue depth, dead letters, health and the last run. `render` builds one frame from two
snapshots, so it can be tested without a terminal.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .config import Config
from .ui.client import DaemonUnreachable, get_json

HEALTH_STYLE = {"ok": "green", "disabled": "dim", "starting": "yellow", "retrying": "yellow"}


def _rates(entry: dict[str, Any], previous: dict[str, Any] | None, seconds: float) -> tuple:
    """Records per second in and out since the previous poll; on the first poll, the
    last minute of history."""
    counts = entry.get("counts") or {}
    before = (previous or {}).get("counts")
    if before is not None and seconds > 0:
        return tuple(
            max(0, counts.get(k, 0) - before.get(k, 0)) / seconds for k in ("received", "delivered")
        )
    history = entry.get("history") or []
    last = history[-1] if history else {"in": 0, "out": 0}
    return last["in"] / 60, last["out"] / 60


def _ago(moment: float | None, now: float) -> str:
    if not moment:
        return "never"
    ago = max(0, now - moment)
    return (
        f"{ago:.0f}s ago"
        if ago < 120
        else f"{ago / 60:.0f}m ago"
        if ago < 7200
        else (f"{ago / 3600:.0f}h ago")
    )


def _last_run(entry: dict[str, Any], now: float) -> Text:
    runs = entry.get("runs") or []
    if entry.get("mode") == "push":
        delivered = (entry.get("counts") or {}).get("last_delivered_at")
        return Text(f"delivered {_ago(delivered, now)}", style="dim")
    if not runs:
        return Text("never", style="dim")
    run = runs[0]
    style = (
        "green"
        if run["status"] == "succeeded"
        else "red"
        if run["status"]
        in (
            "failed",
            "interrupted",
        )
        else "yellow"
    )
    return Text(f"{run['status']} {_ago(run['started_at'], now)} ({run['seconds']:.1f}s)", style)


def render(
    current: dict[str, Any],
    previous: dict[str, Any] | None = None,
    *,
    source: str = "",
    error: str | None = None,
) -> Group:
    """One frame: the table of connectors, and a status line."""
    now = current.get("generated_at") or time.time()
    seconds = now - previous["generated_at"] if previous else 0.0
    before = {c["name"]: c for c in (previous or {}).get("connectors", [])}
    table = Table(expand=True, header_style="bold", title="connectord top", title_justify="left")
    for column, justify in (
        ("connector", "left"),
        ("health", "left"),
        ("mode", "left"),
        ("in/s", "right"),
        ("out/s", "right"),
        ("queued", "right"),
        ("dead", "right"),
        ("last run", "left"),
        ("last error", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")
    for entry in current.get("connectors", []):
        rate_in, rate_out = _rates(entry, before.get(entry["name"]), seconds)
        health = entry.get("health", "?")
        dead = entry.get("dead_letter_count", 0)
        table.add_row(
            Text(entry["name"], style="bold"),
            Text(health, style=HEALTH_STYLE.get(health, "red")),
            entry.get("mode", ""),
            f"{rate_in:,.1f}",
            f"{rate_out:,.1f}",
            f"{entry.get('queue_depth', 0):,}",
            Text(f"{dead:,}", style="red" if dead else ""),
            _last_run(entry, now),
            Text((entry.get("last_error") or "")[:120], style="red"),
        )
    footer = Text(f"{source}  refreshed {time.strftime('%H:%M:%S')}  (Ctrl-C quits)", "dim")
    if error:
        footer = Text(error, style="bold red")
    return Group(table, footer)


def run_top(config: Config, interval: float = 1.0, frames: int | None = None) -> None:
    """Redraw until interrupted (or for ``frames`` frames); a daemon that goes away is
    reported in the view and polled again."""
    from .ui.client import base_url

    source = base_url(config)
    previous: dict[str, Any] | None = None
    current: dict[str, Any] = {"connectors": []}
    with Live(render(current, source=source), auto_refresh=False, screen=frames is None) as live:
        shown = 0
        while frames is None or shown < frames:
            error = None
            try:
                fresh = get_json(config, "/ui/api/status?hours=1")
                previous = current if current.get("generated_at") else None
                current = fresh
            except DaemonUnreachable as err:
                error = str(err)
            live.update(render(current, previous, source=source, error=error), refresh=True)
            shown += 1
            if frames is None or shown < frames:
                time.sleep(interval)
