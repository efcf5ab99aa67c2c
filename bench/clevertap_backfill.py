"""Benchmark: a sparse CleverTap backfill at the account's concurrency vs one at a time.

Not part of ``make test``. ``make bench-backfill`` runs the default; a quicker run:

    .venv/bin/python bench/clevertap_backfill.py --days 120

Options: ``--days D`` (default 1096: three years), ``--latency S`` (default 0.1),
``--limit N`` (the account's concurrent-request limit, default 3), ``--every K`` (one
day in K has events, default 7), ``--only concurrent|sequential``, ``--json FILE``.

What it measures:

1. The CleverTap emulator (``tests/plugins/clevertap/emulator.py``) in a thread of this
   process, answering every call after ``--latency`` seconds and 429 beyond ``--limit``
   calls in flight, over a data set where one day in ``--every`` has events (300 a
   day over three event names: one page each) and the others are empty.
2. ``connectord sync`` as a real process, ``clevertap.events`` for three event names
   over ``--days`` days into the ``warehouse`` destination on a SQLite file, twice:
   with ``max_concurrency = --limit`` (this code) and with ``max_concurrency = 1``
   (one call at a time: what the export did before it read queries concurrently).
3. The floor: every call the run made x latency / limit, i.e. the wall time if the
   limit were always full and nothing else cost time. Reported: wall time, the ratio to
   the floor (target: within 1.3x), calls, peak calls in flight, 429s. The warehouse is
   checked to hold every event exactly once before figures are printed.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.plugins.clevertap.emulator import CleverTapEmulator, Dataset  # noqa: E402

NAMES = ["App Launched", "Product Viewed", "Added To Cart"]


class SparseData(Dataset):
    """Events on one day in ``every``; the others are empty, as in most backfills."""

    def __init__(self, *, every: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.every = every

    def count(self, day: date, event: str) -> int:
        index = self.day_index(day)
        if index is None or index % self.every:
            return 0
        return super().count(day, event)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(emulator: CleverTapEmulator, url: str, work: Path, concurrency: int) -> dict:
    """One ``connectord sync`` of the whole backfill; its figures."""
    work.mkdir(parents=True)
    data = emulator.data
    last = data.start + timedelta(days=data.days - 1)
    (work / "connectors.toml").write_text(
        f"""
[daemon]
state = "state.db"
listen = "127.0.0.1:{free_port()}"

[connectors.backfill]
schedule = "manual"
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db", tracks_table = false }}

[connectors.backfill.source]
type = "clevertap.events"
account_id = "{emulator.account_id}"
passcode = "{emulator.passcode}"
base_url = "{url}"
start = "{data.start:%Y%m%d}"
end = "{last:%Y%m%d}"
events = {json.dumps(NAMES)}
max_concurrency = {concurrency}
"""
    )
    emulator.reset()
    emulator.peak_in_flight = emulator.rejected_429 = 0
    before = len(emulator.requests_to("/1/"))
    started = time.monotonic()
    command = [sys.executable, "-m", "connectord", "sync", "backfill", "-c", "connectors.toml"]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=7200)
    seconds = time.monotonic() - started
    if done.returncode:
        raise RuntimeError(f"sync failed ({done.returncode}): {done.stderr[-2000:]}")
    calls = len(emulator.requests_to("/1/")) - before
    run_seconds = re.search(r" in ([0-9.]+)s \(", done.stderr)
    return {
        "concurrency": concurrency,
        "process_seconds": round(seconds, 2),
        "seconds": float(run_seconds.group(1)) if run_seconds else round(seconds, 2),
        "calls": calls,
        "peak_in_flight": emulator.peak_in_flight,
        "rejected_429": emulator.rejected_429,
        "events": count_events(work / "warehouse.db", data),
    }


def count_events(path: Path, data: Dataset) -> int:
    """Events in the warehouse; fails unless each is there exactly once."""
    expected = sum(data.total(name) for name in NAMES)
    with sqlite3.connect(path) as db:
        tables = {name: name.lower().replace(" ", "_") for name in NAMES}
        rows = distinct = 0
        for table in tables.values():
            found = db.execute(f'SELECT count(*), count(DISTINCT id) FROM "{table}"').fetchone()
            rows, distinct = rows + found[0], distinct + found[1]
    if not rows == distinct == expected:
        raise AssertionError(f"{rows} rows, {distinct} distinct ids, {expected} expected")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1096)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--every", type=int, default=7)
    parser.add_argument("--only", choices=("concurrent", "sequential"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # the backfill ends yesterday: the source never reads today or later
    start = datetime.now(UTC).date() - timedelta(days=args.days)
    data = SparseData(every=args.every, days=args.days, start=start, events_per_day=300, users=200)
    emulator = CleverTapEmulator(data, concurrency=args.limit, latency=args.latency)
    runs = {"concurrent": args.limit, "sequential": 1}
    if args.only:
        runs = {args.only: runs[args.only]}
    results = {}
    with emulator.serve() as server, tempfile.TemporaryDirectory() as tmp:
        for label, concurrency in runs.items():
            result = run(emulator, server.url, Path(tmp) / label, concurrency)
            result["floor"] = round(result["calls"] * args.latency / args.limit, 2)
            result["vs_floor"] = round(result["seconds"] / result["floor"], 2)
            results[label] = result
    print(
        f"CleverTap backfill: {args.days} days x {len(NAMES)} event names, one day in "
        f"{args.every} with events, latency {args.latency * 1000:.0f} ms, "
        f"{args.limit} concurrent calls allowed per account"
    )
    print(
        f"{'':12} {'wall s':>8} {'floor s':>8} {'x floor':>8} {'calls':>7} {'peak':>5} "
        f"{'429s':>5} {'events':>7} {'days/s':>7}"
    )
    for label, r in results.items():
        print(
            f"{label:12} {r['seconds']:8.1f} {r['floor']:8.1f} {r['vs_floor']:8.2f} "
            f"{r['calls']:7d} {r['peak_in_flight']:5d} {r['rejected_429']:5d} "
            f"{r['events']:7d} {args.days / r['seconds']:7.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": None}, **results}))


if __name__ == "__main__":
    main()
