"""The events export reads days and event names concurrently, up to the account's
limit and never beyond it (shared by every connector of the account), and still
checkpoints strictly in order."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import date, timedelta

from connectord.plugins.clevertap.source import EventsSource
from connectord.pull import units_of
from connectord.testing import DaemonProcess, make_context, run_source, write_config
from tests.plugins.clevertap.common import source_options, sync, toml_inline
from tests.plugins.clevertap.emulator import EVENT_NAMES, CleverTapEmulator, Dataset

LATENCY = 0.04
NAMES = list(EVENT_NAMES[:3])


class SparseData(Dataset):
    """Events on one day in ``every``; the other days are empty (a typical backfill)."""

    def __init__(self, *, every: int = 5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.every = every

    def count(self, day: date, event: str) -> int:
        index = self.day_index(day)
        if index is None or index % self.every:
            return 0
        return super().count(day, event)


def sparse(days: int = 40) -> SparseData:
    return SparseData(days=days, events_per_day=300, users=100)


def order_key(checkpoint: dict) -> tuple:
    """Where a checkpoint stands in the export, comparable across batches."""
    day = date.fromisoformat(checkpoint["day"])
    done = date.fromisoformat(checkpoint["done"]) if checkpoint["done"] else date.min
    return done, day, NAMES.index(checkpoint["event"]), checkpoint["cursor"] is not None


async def timed_export(data: Dataset, emulator_server, concurrency: int):
    emulator = CleverTapEmulator(data, concurrency=3, latency=LATENCY)
    server = emulator_server(emulator)
    options = source_options(emulator, server.url, events=NAMES, max_concurrency=concurrency)
    started = time.monotonic()
    records, _ = await run_source(EventsSource, options)
    return emulator, records, time.monotonic() - started


async def test_up_to_the_limit_in_flight_never_more_and_every_event_once(emulator_server):
    data = sparse(days=15)
    emulator, records, seconds = await timed_export(data, emulator_server, 3)
    assert emulator.peak_in_flight == 3
    assert emulator.rejected_429 == 0
    ids = [r["messageId"] for r in records]
    assert len(ids) == len(set(ids)) == sum(data.total(n) for n in NAMES)
    # one POST and one page per query and day here
    assert len(emulator.requests_to("/1/events.json")) == 2 * len(NAMES) * data.days
    alone, _, one_at_a_time = await timed_export(data, emulator_server, 1)
    assert alone.peak_in_flight == 1
    assert seconds < one_at_a_time * 0.6, f"{seconds:.2f}s vs {one_at_a_time:.2f}s one by one"


async def test_checkpoints_only_move_forward_and_each_day_completes_in_order(emulator_server):
    data = sparse(days=20)
    emulator = CleverTapEmulator(data, concurrency=3, latency=0.005)
    server = emulator_server(emulator)
    options = source_options(emulator, server.url, events=NAMES, batch_size=50)
    _, batches = await run_source(EventsSource, options)
    keys = [order_key(b.checkpoint) for b in batches]
    assert keys == sorted(keys)
    done = [b.checkpoint["done"] for b in batches]
    assert done[-1] == data.day_list()[-1].isoformat()
    with_records = [b for b in batches if b.records]
    pages = sum(-(-data.count(d, n) // 50) for d in data.day_list() for n in NAMES)
    assert len(with_records) == pages  # every page with records, none held back


async def test_a_mid_backfill_checkpoint_resumes_with_nothing_skipped(emulator_server):
    data = sparse(days=20)
    emulator = CleverTapEmulator(data, concurrency=3, latency=0.005)
    server = emulator_server(emulator)
    options = source_options(emulator, server.url, events=NAMES, batch_size=50)
    first, batches = await run_source(EventsSource, options, max_batches=17)
    rest, _ = await run_source(EventsSource, options, checkpoint=batches[-1].checkpoint)
    ids = [r["messageId"] for r in first + rest]
    assert len(ids) == len(set(ids)) == sum(data.total(n) for n in NAMES)


async def test_two_connectors_on_one_account_share_its_limit(emulator_server):
    data = sparse(days=30)
    emulator = CleverTapEmulator(data, concurrency=3, latency=LATENCY)
    server = emulator_server(emulator)
    first = source_options(emulator, server.url, events=NAMES[:2], max_concurrency=3)
    second = source_options(emulator, server.url, events=NAMES[2:], max_concurrency=3)
    runs = await asyncio.gather(run_source(EventsSource, first), run_source(EventsSource, second))
    assert emulator.peak_in_flight == 3
    assert emulator.rejected_429 == 0
    assert sum(len(r.records) for r in runs) == sum(data.total(n) for n in NAMES)


async def test_the_progress_counts_days_of_the_plan(emulator_server):
    data = sparse(days=10)
    emulator = CleverTapEmulator(data, concurrency=3)
    server = emulator_server(emulator)
    options = source_options(emulator, server.url, events=NAMES)
    options["end"] = (data.start + timedelta(days=9)).strftime("%Y%m%d")
    async with make_context() as context:
        source = EventsSource(EventsSource.Options(**options), context)
        await source.start()
        try:
            async for _ in source.read(None):
                pass
        finally:
            await source.close()
    assert units_of(source) == (10, 10)


def backfill_config(tmp_path, emulator_server, latency: float):
    """A manual 12-day sparse backfill into an SQLite warehouse, against the emulator."""
    emulator = CleverTapEmulator(sparse(days=12), concurrency=3, latency=latency)
    server = emulator_server(emulator)
    options = source_options(emulator, server.url, events=NAMES)
    return write_config(
        tmp_path,
        f"""
[connectors.backfill]
schedule = "manual"
source = {{ type = "clevertap.events", {toml_inline(options)[2:-2]} }}
destination = {{ type = "warehouse", url = "sqlite:///bi.db" }}
""",
    )


def test_connectord_sync_shows_days_done_of_total(tmp_path, emulator_server):
    config = backfill_config(tmp_path, emulator_server, latency=0.01)
    result = sync(config, "backfill")
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^\d+/12 days, \d+ read, \d+ delivered, 0 rejected", result.stderr, re.M)


def test_sync_through_the_running_daemon_shows_the_daemons_days(tmp_path, emulator_server):
    """The daemon owns the connector, so `sync` asks it to run and follows the run from
    another process: the days done/total come from what the daemon's run publishes."""
    config = backfill_config(tmp_path, emulator_server, latency=0.05)
    with DaemonProcess(config):
        result = sync(config, "backfill")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "is run by the daemon" in result.stderr
    days = re.findall(r"^(\d+)/12 days, \d+ read", result.stderr, re.M)
    assert days, result.stderr[-2000:]
