"""Benchmark: push ingest on one process, ``workers = 2``, and PostgreSQL state.

Two push scenarios, each on every configuration, one after the other in one run:

- **webhook → warehouse**: the ``http.webhook`` source into the ``warehouse``
  destination on an SQLite file; delivered = rows in its ``tracks`` table.
- **Segment → Pendo**: ``segment.http`` → ``segment.to_pendo`` → ``pendo`` against the
  sink of ``segment_pendo.py`` (one POST per message); delivered = what the sink counted.

Configurations (each starts the real ``connectord run`` processes on fresh state):

- ``sqlite-1``: one process on an SQLite state file (the default; the baseline);
- ``sqlite-w2``: ``[daemon] workers = 2`` on the same kind of file;
- ``pg-1``: one process on a PostgreSQL state (a new database per run, dropped after);
- ``pg-2d``: two daemons (``node`` a and b, two ports) on one PostgreSQL state, the
  senders spread over both addresses;
- ``pg-w2``: one daemon with ``workers = 2`` on a PostgreSQL state.

For each, a closed-loop client posts batches of 100 messages over several connections
for a fixed time, then waits until the destination has every accepted message (bounded
by ``--drain-cap``). Figures are absolute and as ratios to ``sqlite-1`` of the same
scenario; the two targets of issue #12 are checked at the end.

    .venv/bin/python bench/push_scale.py [--seconds 10] [--senders 8] [--only sqlite-1,pg-1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pushload  # noqa: E402 - found through the line above
import segment_pendo as sp  # noqa: E402
from benchkit import free_port, percentile, stop, wait_port  # noqa: E402
from messages import BATCH_SIZE, WRITE_KEY, batch_bodies  # noqa: E402
from pendo_sink import TRACK_SECRET  # noqa: E402

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECTOR = "bench"
WEBHOOK_TOKEN = "bench-webhook-token"
SCALE_TARGET = 1.5
"""``workers = 2`` on SQLite accepts at least this many times one process."""
PG_TARGET = 0.5
"""One process on PostgreSQL delivers at least this share of one on SQLite."""


@dataclass(frozen=True)
class Setup:
    name: str
    label: str
    postgres: bool
    workers: int = 1
    daemons: int = 1

    @property
    def processes(self) -> int:
        return self.workers * self.daemons


SETUPS = [
    Setup("sqlite-1", "1 process, SQLite state", postgres=False),
    Setup("sqlite-w2", "workers = 2, SQLite state", postgres=False, workers=2),
    Setup("pg-1", "1 process, PostgreSQL state", postgres=True),
    Setup("pg-2d", "2 daemons (node a, b; 2 ports), PostgreSQL", postgres=True, daemons=2),
    Setup("pg-w2", "workers = 2, PostgreSQL state", postgres=True, workers=2),
]


@dataclass
class Settings:
    seconds: float = 10.0
    """How long the client offers load per configuration."""
    senders: int = 8
    """Connections, each with one batch request in flight (closed loop)."""
    drain_cap: float = 120.0
    """Longest wait for the destination to catch up after the load stops."""
    pg_url: str = PG_URL
    rounds: int = 1
    """Passes over every configuration, each reported and checked on its own."""


@dataclass
class Row:
    round: int
    scenario: str
    setup: str
    processes: int
    accepted: int
    accepted_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_percent: float
    """CPU time of the daemon processes during the load ÷ its wall time (100 = a core)."""
    driver_cpu_percent: float
    """The same for the load generator and the sink, which share the machine's cores."""
    delivered: int
    delivered_per_second: float
    backlog_at_load_end: int
    drained: bool
    left_in_queue: int | None
    lost: int | None
    """Accepted but neither delivered nor still queued; None when not known."""


# --- scenarios ---------------------------------------------------------------------------------


def warehouse_connector(directory: Path, _sink: str) -> str:
    return f"""[connectors.{CONNECTOR}]
source = {{ type = "http.webhook", token = "{WEBHOOK_TOKEN}" }}
destination = {{ type = "warehouse", url = "sqlite:///{directory / "warehouse.db"}" }}
"""


def pendo_connector(_directory: Path, sink: str) -> str:
    return f"""[connectors.{CONNECTOR}]
source = {{ type = "segment.http", write_key = "{WRITE_KEY}" }}
mapping = [{{ type = "segment.to_pendo" }}]

[connectors.{CONNECTOR}.destination]
type = "pendo"
track_secret = "{TRACK_SECRET}"
integration_key = "{sp.INTEGRATION_KEY}"
base_url = "{sink}"
"""


def warehouse_rows(directory: Path, _sink: str) -> int:
    path = directory / "warehouse.db"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM tracks").fetchone()[0])
    except sqlite3.OperationalError:  # no such table yet
        return 0
    finally:
        db.close()


def sink_messages(_directory: Path, sink: str) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{sink}/_count", timeout=5) as response:
        return int(response.read().split()[0])


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    path: str
    headers: dict[str, str]
    connector: Callable[[Path, str], str]
    delivered: Callable[[Path, str], int]


BASIC = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
SCENARIOS = [
    Scenario(
        "webhook_warehouse",
        "webhook -> warehouse (SQLite file)",
        f"/ingest/{CONNECTOR}/",
        {"Content-Type": "application/json", "Authorization": f"Bearer {WEBHOOK_TOKEN}"},
        warehouse_connector,
        warehouse_rows,
    ),
    Scenario(
        "segment_pendo",
        "Segment -> Pendo (sink, one POST per message)",
        f"/ingest/{CONNECTOR}/v1/batch",
        {"Content-Type": "application/json", "Authorization": BASIC},
        pendo_connector,
        sink_messages,
    ),
]


# --- processes ---------------------------------------------------------------------------------


def daemon_configs(setup: Setup, scenario: Scenario, directory: Path, state: str, sink: str):
    """One config file per daemon, each in its own directory (its log goes there)."""
    paths = []
    for index in range(setup.daemons):
        home = directory / f"daemon-{index}"
        home.mkdir()
        node = f'node = "{"ab"[index]}"\n' if setup.daemons > 1 else ""
        workers = f"workers = {setup.workers}\n" if setup.workers > 1 else ""
        path = home / "connectors.toml"
        path.write_text(
            f'[daemon]\nstate = "{state}"\nlisten = "127.0.0.1:{free_port()}"\n'
            f'log_format = "json"\nlog_level = "info"\n{node}{workers}\n'
            + scenario.connector(directory, sink),
            encoding="utf-8",
        )
        paths.append(path)
    return paths


async def drain(
    scenario: Scenario, directory: Path, sink: str, target: int, started: float, cap: float
) -> tuple[int, float]:
    """Poll the destination until it holds ``target`` messages or ``cap`` seconds pass;
    the count and when it last grew."""
    count = scenario.delivered(directory, sink)
    last = time.monotonic()
    deadline = time.monotonic() + cap
    while count < target and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = scenario.delivered(directory, sink)
        if now != count:
            count, last = now, time.monotonic()
    return count, last - started


async def measure(
    setup: Setup,
    scenario: Scenario,
    state: str,
    directory: Path,
    sink: str,
    bodies: pushload.Bodies,
    settings: Settings,
) -> Row:
    from connectord.testing import DaemonProcess

    daemons = [DaemonProcess(p) for p in daemon_configs(setup, scenario, directory, state, sink)]
    try:
        for daemon in daemons:
            daemon.start(wait=False)
        for daemon in daemons:
            daemon.wait_ready()
        urls = [d.url for d in daemons]
        pushload.wait_serving(urls, setup.processes, CONNECTOR)
        pids = [p for d in daemons for p in pushload.process_tree(d.pid)]
        driver = [p for p in pushload.process_tree(os.getpid()) if p not in pids]
        cpu, driver_cpu = pushload.cpu_seconds(pids), pushload.cpu_seconds(driver)
        before = scenario.delivered(directory, sink)
        started = time.monotonic()
        load = await pushload.timed_load(
            [u + scenario.path for u in urls],
            bodies,
            BATCH_SIZE,
            scenario.headers,
            settings.senders,
            settings.seconds,
        )
        cpu = pushload.cpu_seconds(pids) - cpu
        driver_cpu = pushload.cpu_seconds(driver) - driver_cpu
        at_end = scenario.delivered(directory, sink) - before
        count, elapsed = await drain(
            scenario, directory, sink, before + load.accepted, started, settings.drain_cap
        )
        delivered = count - before
        drained = delivered >= load.accepted
        left = None if drained else pushload.queued(urls, CONNECTOR)
    finally:
        for daemon in daemons:
            with contextlib.suppress(Exception):
                daemon.stop()
    lost = 0 if drained else (None if left is None else load.accepted - delivered - left)
    return Row(
        round=0,
        scenario=scenario.name,
        setup=setup.name,
        processes=setup.processes,
        accepted=load.accepted,
        accepted_per_second=pushload.per_second(load.accepted, load.seconds),
        p50_ms=round(percentile(load.latencies, 0.50) * 1000, 1),
        p99_ms=round(percentile(load.latencies, 0.99) * 1000, 1),
        errors=load.errors,
        cpu_percent=round(100 * cpu / load.seconds),
        driver_cpu_percent=round(100 * driver_cpu / load.seconds),
        delivered=delivered,
        delivered_per_second=pushload.per_second(delivered, elapsed),
        backlog_at_load_end=load.accepted - at_end,
        drained=drained,
        left_in_queue=0 if drained else left,
        lost=lost,
    )


async def run_one(setup, scenario, sink, bodies, settings: Settings) -> Row:
    with tempfile.TemporaryDirectory(prefix="connectord-scale-") as tmp:
        directory = Path(tmp)
        if not setup.postgres:
            return await measure(setup, scenario, "state.db", directory, sink, bodies, settings)
        with pushload.pg_database(settings.pg_url) as url:
            return await measure(setup, scenario, url, directory, sink, bodies, settings)


def template_bodies() -> pushload.Bodies:
    """Batches of ``segment_pendo``'s track messages (valid for the webhook source as
    well), their message ids numbered per batch."""
    marker = b"BATCHNUMBER0"
    batch = orjson.loads(batch_bodies(1)[0])
    for index, message in enumerate(batch["batch"]):
        message["messageId"] = f"{marker.decode()}-{index:03d}"
    return pushload.Bodies(orjson.dumps(batch), marker)


async def run(settings: Settings, setups: list[Setup], scenarios: list[Scenario]) -> dict:
    skipped = (
        pushload.postgres_available(settings.pg_url) if any(s.postgres for s in setups) else None
    )
    if skipped:
        print(f"PostgreSQL configurations skipped: {skipped}", flush=True)
        setups = [s for s in setups if not s.postgres]
    bodies = template_bodies()
    sink_port = free_port()
    sink_process = subprocess.Popen(
        [sys.executable, sp.__file__, "--role", "sink", str(sink_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sink = f"http://127.0.0.1:{sink_port}"
    rows: list[Row] = []
    started = time.monotonic()
    try:
        wait_port(sink_port)
        for index in range(settings.rounds):
            for scenario in scenarios:
                for setup in setups:
                    row = await run_one(setup, scenario, sink, bodies, settings)
                    row.round = index + 1
                    print(
                        f"  {index + 1} {scenario.name:18} {setup.name:10} {row_summary(row)}",
                        flush=True,
                    )
                    rows.append(row)
    finally:
        stop(sink_process)
    return {
        "benchmark": "push_scale",
        "settings": asdict(settings),
        "message_bytes": len(bodies.template) // BATCH_SIZE,
        "postgres_skipped": skipped,
        "load_average": pushload.load_average(),
        "rows": [asdict(r) for r in rows],
        "targets": [targets([r for r in rows if r.round == i + 1]) for i in range(settings.rounds)],
        "seconds": round(time.monotonic() - started, 1),
    }


# --- report ------------------------------------------------------------------------------------


def row_summary(row: Row) -> str:
    return (
        f"accepted {row.accepted_per_second:>7,.0f}/s  "
        f"delivered {row.delivered_per_second:>7,.0f}/s"
        f"  {'drained' if row.drained else 'NOT drained'}"
    )


def find(rows: list[Row], scenario: str, setup: str) -> Row | None:
    return next((r for r in rows if r.scenario == scenario and r.setup == setup), None)


def targets(rows: list[Row]) -> list[dict[str, Any]]:
    """The two targets of issue #12, per scenario; ``passed`` is None when a
    configuration was not measured."""
    checks = []
    for scenario in SCENARIOS:
        if not any(r.scenario == scenario.name for r in rows):
            continue
        base = find(rows, scenario.name, "sqlite-1")
        pairs = [
            ("sqlite-w2 accepted >= 1.5x sqlite-1", "sqlite-w2", "accepted", SCALE_TARGET),
            ("pg-1 delivered >= 0.5x sqlite-1", "pg-1", "delivered", PG_TARGET),
        ]
        for text, name, kind, target in pairs:
            other = find(rows, scenario.name, name)
            ratio = None
            if base is not None and other is not None:
                key = f"{kind}_per_second"
                ratio = round(getattr(other, key) / max(getattr(base, key), 1), 2)
            passed = None if ratio is None else ratio >= target
            checks.append(
                {"scenario": scenario.name, "target": text, "ratio": ratio, "passed": passed}
            )
    return checks


def report(result: dict[str, Any]) -> str:
    settings = result["settings"]
    rows = [Row(**r) for r in result["rows"]]
    out = [
        f"push for {settings['seconds']:g} s per configuration, {settings['senders']} "
        f"connections, batches of {BATCH_SIZE} messages (~{result['message_bytes']} "
        f"bytes each); load average at the end {result['load_average']}",
    ]
    for index, checks in enumerate(result["targets"]):
        mine = [r for r in rows if r.round == index + 1]
        out += round_table(mine, f" (round {index + 1})" if len(result["targets"]) > 1 else "")
        for check in checks:
            verdict = {True: "PASS", False: "FAIL", None: "not measured"}[check["passed"]]
            out.append(f"{verdict:12} {check['scenario']:18} {check['target']}: {check['ratio']}")
    if result["postgres_skipped"]:
        out.append(f"PostgreSQL configurations skipped: {result['postgres_skipped']}")
    out.append(f"(benchmark took {result['seconds']} s)")
    return "\n".join(out)


def round_table(rows: list[Row], title: str) -> list[str]:
    header = (
        f"{'configuration':11}{'procs':>6}{'accepted/s':>12}{'x':>6}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'CPU %':>7}{'drv %':>7}{'delivered/s':>13}{'x':>6}{'backlog':>9}{'lost':>7}"
        f"{'errors':>7}"
    )
    out = []
    for scenario in SCENARIOS:
        mine = [r for r in rows if r.scenario == scenario.name]
        if not mine:
            continue
        base = find(rows, scenario.name, "sqlite-1")
        out += ["", scenario.label + title, header]
        for r in mine:
            acc = r.accepted_per_second / base.accepted_per_second if base else float("nan")
            dlv = r.delivered_per_second / base.delivered_per_second if base else float("nan")
            lost = "0" if r.drained else ("?" if r.lost is None else str(r.lost))
            out.append(
                f"{r.setup:11}{r.processes:>6}{r.accepted_per_second:>12,.0f}{acc:>6.2f}"
                f"{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}{r.cpu_percent:>7.0f}{r.driver_cpu_percent:>7.0f}"
                f"{r.delivered_per_second:>13,.0f}{dlv:>6.2f}"
                f"{r.backlog_at_load_end:>9,}{lost:>7}{r.errors:>7}"
            )
            if not r.drained:
                out.append(f"{'':11}not drained within the cap: {r.left_in_queue} still queued")
    out.append("")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=Settings.seconds)
    parser.add_argument("--senders", type=int, default=Settings.senders)
    parser.add_argument("--drain-cap", type=float, default=Settings.drain_cap)
    parser.add_argument("--rounds", type=int, default=Settings.rounds)
    parser.add_argument("--pg-url", default=PG_URL, help="an administrative connection")
    parser.add_argument("--only", help="configurations, comma-separated, e.g. sqlite-1,pg-1")
    parser.add_argument("--scenario", choices=[s.name for s in SCENARIOS], action="append")
    options = parser.parse_args(argv)
    settings = Settings(
        seconds=options.seconds,
        senders=max(1, options.senders),
        drain_cap=options.drain_cap,
        pg_url=options.pg_url,
        rounds=max(1, options.rounds),
    )
    wanted = set(options.only.split(",")) if options.only else {s.name for s in SETUPS}
    setups = [s for s in SETUPS if s.name in wanted]
    scenarios = [s for s in SCENARIOS if not options.scenario or s.name in options.scenario]
    result = asyncio.run(run(settings, setups, scenarios))
    print(report(result), flush=True)
    return result


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
