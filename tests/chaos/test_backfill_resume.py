"""A concurrent CleverTap backfill killed with SIGKILL again and again resumes exactly.

The real daemon reads a sparse CleverTap backfill (three event names, queries read
concurrently up to the account's limit) from the emulator, which answers every call
after a delay and 429 beyond three calls in flight, into a SQLite warehouse. It is
killed at random moments and started again. At the end every event is in the
warehouse exactly once with no day missing, the emulator saw up to the limit in flight
and never more, the stored checkpoint only ever moved forward, and the only events
read twice are those of queries after the last stored checkpoint when a kill came.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from datetime import date, timedelta

import orjson
import pytest

from tests.chaos.support import report, wait_until
from tests.plugins.clevertap.emulator import CleverTapEmulator, Dataset

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NAMES = ["App Launched", "Product Viewed", "Added To Cart"]
DAYS = 60
KILLS = 4
LIMIT = 3


class SparseData(Dataset):
    """Events on every third day; the others are empty."""

    def count(self, day: date, event: str) -> int:
        index = self.day_index(day)
        if index is None or index % 3:
            return 0
        return super().count(day, event)


def position(checkpoint: dict) -> tuple:
    """Where a checkpoint stands; later positions compare greater (a cursor is mid-query,
    past its start; cursors of one query are not comparable, so they tie)."""
    done = date.fromisoformat(checkpoint["done"]) if checkpoint.get("done") else date.min
    day = date.fromisoformat(checkpoint["day"])
    return done, day, NAMES.index(checkpoint["event"]), checkpoint["cursor"] is not None


class CheckpointWatch(threading.Thread):
    """Read the stored checkpoint every 20 ms, across kills and restarts."""

    def __init__(self, state) -> None:
        super().__init__(daemon=True)
        self.state = state
        self.seen: list[tuple] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with sqlite3.connect(f"file:{self.state}?mode=ro", uri=True, timeout=1) as db:
                    row = db.execute("SELECT value FROM checkpoints").fetchone()
                if row and (not self.seen or self.seen[-1][1] != row[0]):
                    self.seen.append((position(orjson.loads(row[0])), row[0]))
            except sqlite3.Error:
                pass
            time.sleep(0.02)


def table(name: str) -> str:
    return f'FROM "{name.lower().replace(" ", "_")}" GROUP BY 1'


def warehouse_ids(path) -> dict[str, tuple[int, int]]:
    """Per event table: (rows, distinct ids); empty while the tables do not exist."""
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return {
                name: db.execute(
                    f'SELECT count(*), count(DISTINCT id) FROM "{name.lower().replace(" ", "_")}"'
                ).fetchone()
                for name in NAMES
            }
    except sqlite3.Error:
        return {}


def test_concurrent_backfill_killed_repeatedly_resumes_exactly(
    tmp_path, emulator_server, spawn_daemon
):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    data = SparseData(days=DAYS, events_per_day=600, users=200)
    emulator = CleverTapEmulator(data, concurrency=LIMIT, latency=0.05)
    server = emulator_server(emulator)
    last = data.start + timedelta(days=DAYS - 1)
    warehouse = tmp_path / "bi.db"
    daemon = spawn_daemon(
        f"""
[connectors.backfill]
schedule = "every 1h"
destination = {{ type = "warehouse", url = "sqlite:///bi.db", tracks_table = false }}

[connectors.backfill.source]
type = "clevertap.events"
account_id = "{emulator.account_id}"
passcode = "{emulator.passcode}"
base_url = "{server.url}"
start = "{data.start:%Y%m%d}"
end = "{last:%Y%m%d}"
events = {orjson.dumps(NAMES).decode()}
batch_size = 100
max_concurrency = {LIMIT}
retry_initial = 0.05
"""
    )
    watch = CheckpointWatch(tmp_path / "state.db")
    watch.start()
    served_before_kill = []
    for kill in range(KILLS):
        if kill:
            daemon.start()
        start = emulator.records_served
        wait_until(lambda start=start: emulator.records_served > start, 20, "the resumed run reads")
        time.sleep(rng.uniform(0.2, 1.2))
        daemon.kill()
        served_before_kill.append(emulator.records_served)
    daemon.start()
    expected = {name: data.total(name) for name in NAMES}

    def complete() -> bool:
        found = warehouse_ids(warehouse)
        return all(found.get(n, (0, 0))[1] == total for n, total in expected.items())

    wait_until(complete, 120, "every event in the warehouse")
    wait_until(
        lambda: watch.seen and watch.seen[-1][0][0] == last,
        30,
        "the checkpoint reaches the last day",
    )
    assert daemon.stop() == 0
    watch.stop.set()
    watch.join()

    found = warehouse_ids(warehouse)
    with sqlite3.connect(warehouse) as db:
        days = {
            name: dict(db.execute(f"SELECT substr(timestamp, 1, 10), count(*) {table(name)}"))
            for name in NAMES
        }
    reread = emulator.records_served - sum(expected.values())
    positions = [p for p, _ in watch.seen]
    report(
        "concurrent backfill resume (kill -9 mid-backfill)",
        seed=seed,
        kills=KILLS,
        days=DAYS,
        events=sum(expected.values()),
        served_at_kills=served_before_kill,
        records_read_again=reread,
        checkpoints_seen=len(positions),
        peak_in_flight=emulator.peak_in_flight,
        rejected_429=emulator.rejected_429,
    )
    # Every event exactly once (the warehouse upserts on id: rows == distinct ids), no gap.
    assert found == {name: (total, total) for name, total in expected.items()}
    for name in NAMES:
        assert days[name] == {
            day.isoformat(): data.count(day, name)
            for day in data.day_list()
            if data.count(day, name)
        }
    # Up to the account's limit in flight, never more.
    assert emulator.peak_in_flight == LIMIT
    assert emulator.rejected_429 == 0
    # The stored checkpoint only moves forward, through every kill and restart.
    assert positions == sorted(positions)
    assert len(positions) > KILLS
    # At least once, bounded: each kill re-reads at most the queries in flight past the
    # stored checkpoint (the window of 2 x limit queries, plus up to 64 held empty pages,
    # which here hold no records) - never the whole backfill again.
    busiest_query = max(data.count(d, n) for d in data.day_list() for n in NAMES)
    assert 0 <= reread <= KILLS * 2 * LIMIT * busiest_query
