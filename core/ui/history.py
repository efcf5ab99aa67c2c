"""Per-minute history of each connector's counters, for the status page's charts.

The counters in the state file are cumulative and written by whichever process
delivers (the daemon, or `connectord sync` while it is stopped). Every `SAMPLE_SECONDS`
the daemon copies them into ``ui_history``, one row per connector per minute (the latest
sample of a minute wins, so the current minute fills up as it goes); the page turns
consecutive rows into records per minute. Rows older than
`KEEP_HOURS` are deleted as new ones are written, so the table stays small (one row per
connector per minute: under 3,000 per connector).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from ..state import AsyncStore, Store

KEEP_HOURS = 48
SAMPLE_SECONDS = 10.0

log = structlog.get_logger()


def minute_of(moment: float) -> int:
    return int(moment // 60)


def record_sample(store: Store, connectors: Iterable[str], now: float | None = None) -> None:
    """Copy the connectors' counters and queue depths into this minute's row; prune."""
    minute = minute_of(time.time() if now is None else now)
    names = list(connectors)
    depths = store.queue_depth()
    assert isinstance(depths, dict)
    with store.db.atomic():
        for name in names:
            counts = store.counters(name)
            _baseline(store, name, minute - 1, counts)
            store.conn.execute(
                "INSERT INTO ui_history (connector, minute, received, delivered, rejected, "
                "queue_depth) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (connector, minute) DO "
                "UPDATE SET received = excluded.received, delivered = excluded.delivered, "
                "rejected = excluded.rejected, queue_depth = excluded.queue_depth",
                [
                    name,
                    minute,
                    counts["received"],
                    counts["delivered"],
                    counts["rejected"],
                    depths.get(name, 0),
                ],
            )
        store.conn.execute("DELETE FROM ui_history WHERE minute < ?", [minute - KEEP_HOURS * 60])


def _baseline(store: Store, name: str, minute: int, counts: dict[str, Any]) -> None:
    """The first time a connector is sampled, record where its counters stood, so that
    what flows in this first (partial) minute shows at once rather than a minute later."""
    seen = store.conn.execute(
        "SELECT 1 FROM ui_history WHERE connector = ? LIMIT 1", [name]
    ).fetchone()
    if seen is None:
        store.conn.execute(
            "INSERT INTO ui_history (connector, minute, received, delivered, rejected, "
            "queue_depth) VALUES (?, ?, ?, ?, ?, 0)",
            [name, minute, counts["received"], counts["delivered"], counts["rejected"]],
        )


def series(store: Store, connector: str, hours: float, now: float | None = None) -> list[dict]:
    """Records in/out per minute over the last ``hours``: one point per sampled minute.

    A point counts what the counters grew by since the previous sample (so the first
    minute after the daemon was down also holds what other processes did meanwhile).
    """
    last = minute_of(time.time() if now is None else now)
    first = last - int(hours * 60)
    rows = store.conn.execute(
        "SELECT minute, received, delivered, rejected, queue_depth FROM ui_history "
        "WHERE connector = ? AND minute >= ? ORDER BY minute",
        [connector, first - 1],
    ).fetchall()
    points = []
    for previous, row in itertools.pairwise(rows):
        points.append(
            {
                "minute": row[0],
                "in": max(0, row[1] - previous[1]),
                "out": max(0, row[2] - previous[2]),
                "rejected": max(0, row[3] - previous[3]),
                "queue": row[4],
            }
        )
    return [p for p in points if p["minute"] >= first]


async def sample_forever(
    store: AsyncStore, connectors: Callable[[], Iterable[str]], every: float = SAMPLE_SECONDS
) -> None:
    """The daemon's sampler; a failed sample is logged and the next one tried."""
    while True:
        try:
            await store.write(record_sample, list(connectors()))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.warning("ui.history.sample_failed", error=repr(err))
        await asyncio.sleep(every)


def sampler_context(
    store: AsyncStore, connectors: Callable[[], Iterable[str]]
) -> Callable[[Any], Any]:
    """An aiohttp ``cleanup_ctx`` running the sampler while the listener is up."""

    async def context(_app: Any) -> Any:
        task = asyncio.create_task(sample_forever(store, connectors), name="ui-history")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
