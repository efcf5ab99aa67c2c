"""Benchmark: Segment batches → the real connectord daemon → a Pendo stand-in that discards.

Each run measures two systems under the same load, one after the other:

1. **connectord**: ``connectord run`` with the ``segment.http`` source, the
   ``segment.to_pendo`` mapping and the ``pendo`` destination (its own process).
2. **minimal**: a hand-written pipeline doing the same I/O (its own process): an aiohttp
   server that parses the batch with orjson and inserts the messages into SQLite (WAL,
   the same ``synchronous`` setting) in one transaction, and a reader loop that reads 500
   rows, POSTs one Pendo track event per row to the same sink (16 at a time, two batches
   in flight, like the daemon's defaults) and deletes the rows.

The load generator posts a fixed number of messages in Segment batches of 100 ``track``
messages (closed loop, a few requests in flight), then waits until the sink has received
every accepted message (bounded by a cap). Accepted/s is over the sending time,
delivered/s over the time from the first request to the last delivery. Everything runs
on 127.0.0.1.

Run it through ``bench/run.py`` (``make bench``); ``python bench/segment_pendo.py --role
sink|minimal`` are the other processes it starts.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from benchkit import free_port, peak_rss_kib, percentile, stop, wait_port
from messages import BATCH_SIZE, WRITE_KEY, batch_bodies, pendo_event
from paced import measure_paced
from pendo_sink import TRACK_SECRET, serve_sink

INTEGRATION_KEY = "bench-integration-key"
SYNCHRONOUS = "NORMAL"  # what connectord's default durability ("process") uses
BUDGET_SECONDS = 55.0
"""The whole benchmark stays under a minute: no round starts that would not fit."""
SUT_CPU = 0
"""The system under test (the daemon, or the minimal pipeline) runs on this CPU..."""
DRIVER_CPU = 1
"""...and the load generator and the sink on this one."""


@dataclass
class Settings:
    messages: int = 10_000
    """Messages each system moves per round (in batches of 100)."""
    rounds: int = 2
    """Rounds, each running connectord and then minimal."""
    senders: int = 4
    """Batch requests in flight at once (closed loop)."""
    cap_seconds: float = 12.0
    """Longest time one system gets in a round, from the first request to the last
    delivery."""
    pin: bool = True
    """Pin the system under test to CPU 0 and the load generator and sink to CPU 1."""
    offered: int = 5_000
    """Messages per second offered in the paced phase (see ``paced.py``); 0 skips it."""
    paced_seconds: float = 3.0
    """Length of the paced phase."""


@dataclass
class Measurement:
    system: str
    accepted: int
    delivered: int
    accept_seconds: float
    deliver_seconds: float
    accepted_per_second: float
    delivered_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mib: float
    complete: bool
    paced_p50_ms: float = float("nan")
    """Accept latency in the paced phase: ``offered`` msg/s while the backlog delivers."""
    paced_p99_ms: float = float("nan")
    paced_delivered_per_second: float = float("nan")


# --- the minimal pipeline --------------------------------------------------------------------


async def serve_minimal(port: int, database: str, sink: str) -> None:
    from aiohttp import web

    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
    db.execute("CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB)")
    wake = asyncio.Event()

    async def batch(request: web.Request) -> web.Response:
        payload = orjson.loads(await request.read())
        if payload.get("writeKey") != WRITE_KEY:
            return web.json_response({"success": False}, status=401)
        rows = [(orjson.dumps(message),) for message in payload["batch"]]
        db.execute("BEGIN")
        db.executemany("INSERT INTO queue (body) VALUES (?)", rows)
        db.execute("COMMIT")
        wake.set()
        return web.Response(body=b'{"success":true}', content_type="application/json")

    async def reader() -> None:
        """Read 500 rows, POST one event per row (16 at a time), delete the rows; two
        such batches in flight, as the daemon delivers by default."""
        cursor = 0
        url = f"{sink}/data/track"
        headers = {"x-pendo-integration-key": TRACK_SECRET, "Content-Type": "application/json"}
        in_flight = asyncio.Semaphore(2)
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession() as session:

            async def deliver(rows: list[tuple[int, bytes]]) -> None:
                pending = iter(rows)

                async def worker() -> None:
                    for _, body in pending:
                        event = pendo_event(orjson.loads(body))
                        async with session.post(url, data=event, headers=headers) as response:
                            await response.read()

                await asyncio.gather(*(worker() for _ in range(16)))
                db.execute("DELETE FROM queue WHERE id BETWEEN ? AND ?", [rows[0][0], rows[-1][0]])

            while True:
                await in_flight.acquire()
                rows = db.execute(
                    "SELECT id, body FROM queue WHERE id > ? ORDER BY id LIMIT 500", [cursor]
                ).fetchall()
                if not rows:
                    in_flight.release()
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), 0.05)
                    continue
                cursor = rows[-1][0]
                task = asyncio.create_task(deliver(rows))
                tasks.add(task)
                task.add_done_callback(lambda done: (tasks.discard(done), in_flight.release()))

    app = web.Application()
    app.router.add_post("/v1/batch", batch)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await reader()


async def load(
    url: str, bodies: list[bytes], settings: Settings, deadline: float
) -> tuple[int, list[float], int]:
    """Post ``settings.messages`` in batches; return accepted messages, latencies, errors."""
    latencies: list[float] = []
    accepted = 0
    errors = 0
    batches = iter(range(settings.messages // BATCH_SIZE))
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": auth}

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal accepted, errors
        for index in batches:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            async with session.post(url, data=bodies[index], headers=headers) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            if response.status == 200:
                accepted += BATCH_SIZE
            else:
                errors += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(sender(session) for _ in range(settings.senders)))
    return accepted, latencies, errors


async def sink_count(session: aiohttp.ClientSession, sink: str) -> int:
    async with session.get(f"{sink}/_count") as response:
        return int((await response.text()).split()[0])


async def measure(
    system: str, url: str, sink: str, pid: int, bodies: list[bytes], settings: Settings
) -> Measurement:
    """Send the messages, then wait until the sink has them all (or the cap)."""
    async with aiohttp.ClientSession() as session:
        before = await sink_count(session, sink)
        started = time.monotonic()
        deadline = started + settings.cap_seconds
        accepted, latencies, errors = await load(url, bodies, settings, deadline)
        accept_seconds = time.monotonic() - started
        delivered = await sink_count(session, sink) - before
        finished = time.monotonic()
        while delivered < accepted and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            count = await sink_count(session, sink) - before
            if count != delivered:
                finished = time.monotonic()
            delivered = count
    latencies.sort()
    deliver_seconds = finished - started
    return Measurement(
        system=system,
        accepted=accepted,
        delivered=delivered,
        accept_seconds=round(accept_seconds, 2),
        deliver_seconds=round(deliver_seconds, 2),
        accepted_per_second=round(accepted / accept_seconds),
        delivered_per_second=round(delivered / deliver_seconds),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 2),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
        errors=errors,
        peak_rss_mib=round(peak_rss_kib(pid) / 1024, 1),
        complete=delivered >= accepted == settings.messages,
    )


def can_pin(settings: Settings) -> bool:
    return settings.pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1


@contextlib.contextmanager
def on_cpu(cpu: int, settings: Settings) -> Any:
    """Run the block on one CPU: processes started in it (and all their threads)
    inherit that affinity; this process then goes back to the driver's CPU."""
    if not can_pin(settings):
        yield
        return
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, {DRIVER_CPU})


def start_role(role: str, *args: str, cpu: int, settings: Settings) -> subprocess.Popen[bytes]:
    with on_cpu(cpu, settings):
        return subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--role", role, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def daemon_config(directory: Path, port: int, sink: str) -> Path:
    path = directory / "connectors.toml"
    path.write_text(
        f"""[daemon]
state = "state.db"
listen = "127.0.0.1:{port}"
log_format = "json"
log_level = "info"
durability = "process"

[connectors.bench]
source = {{ type = "segment.http", write_key = "{WRITE_KEY}" }}
mapping = [{{ type = "segment.to_pendo" }}]

[connectors.bench.destination]
type = "pendo"
track_secret = "{TRACK_SECRET}"
integration_key = "{INTEGRATION_KEY}"
base_url = "{sink}"
""",
        encoding="utf-8",
    )
    return path


async def with_paced(
    result: Measurement, url: str, sink: str, bodies: list[bytes], settings: Settings
) -> Measurement:
    """Add the paced phase's figures: ``offered`` msg/s into the same running system,
    right after the closed-loop phase, while it delivers what the paced phase queues."""
    if not settings.offered or not bodies:
        return result
    async with aiohttp.ClientSession() as session:
        paced = await measure_paced(
            url,
            lambda: sink_count(session, sink),
            bodies,
            write_key=WRITE_KEY,
            rate=settings.offered,
            batch_size=BATCH_SIZE,
        )
    result.paced_p50_ms = paced.p50_ms
    result.paced_p99_ms = paced.p99_ms
    result.paced_delivered_per_second = paced.delivered_per_second
    result.errors += paced.errors
    return result


async def run_connectord(
    directory: Path, sink: str, bodies: list[bytes], paced_bodies: list[bytes], settings: Settings
):
    from connectord.testing import DaemonProcess

    port = free_port()
    daemon = DaemonProcess(daemon_config(directory, port, sink))
    with on_cpu(SUT_CPU, settings):
        daemon.start(wait=False)
    daemon.wait_ready()
    try:
        url = f"{daemon.url}/ingest/bench/v1/batch"
        result = await measure("connectord", url, sink, daemon.pid, bodies, settings)
        return await with_paced(result, url, sink, paced_bodies, settings)
    finally:
        daemon.stop()


async def run_minimal(
    directory: Path, sink: str, bodies: list[bytes], paced_bodies: list[bytes], settings: Settings
):
    port = free_port()
    database = str(directory / "minimal.db")
    process = start_role("minimal", str(port), database, sink, cpu=SUT_CPU, settings=settings)
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/v1/batch"
        result = await measure("minimal", url, sink, process.pid, bodies, settings)
        return await with_paced(result, url, sink, paced_bodies, settings)
    finally:
        stop(process)


async def run(settings: Settings) -> dict[str, Any]:
    """Both systems against one sink, alternating for ``rounds`` rounds; each system's
    best round counts (other load on the machine only ever slows a round down). The
    ratio is connectord ÷ minimal."""
    if can_pin(settings):
        os.sched_setaffinity(0, {DRIVER_CPU})
    bodies = batch_bodies(settings.messages // BATCH_SIZE)
    paced_bodies = batch_bodies(round(settings.offered * settings.paced_seconds / BATCH_SIZE))
    sink_port = free_port()
    sink_process = start_role("sink", str(sink_port), cpu=DRIVER_CPU, settings=settings)
    sink = f"http://127.0.0.1:{sink_port}"
    started = time.monotonic()
    rounds: dict[str, list[Measurement]] = {"connectord": [], "minimal": []}
    try:
        wait_port(sink_port)
        for index in range(settings.rounds):
            with tempfile.TemporaryDirectory(prefix="connectord-bench-") as tmp:
                directory = Path(tmp)
                rounds["connectord"].append(
                    await run_connectord(directory, sink, bodies, paced_bodies, settings)
                )
                rounds["minimal"].append(
                    await run_minimal(directory, sink, bodies, paced_bodies, settings)
                )
            elapsed = time.monotonic() - started
            if elapsed / (index + 1) * (index + 2) > BUDGET_SECONDS:
                break  # another round would not fit: keep the whole run bounded
    finally:
        stop(sink_process)
    daemon = best(rounds["connectord"])
    minimal = best(rounds["minimal"])
    return {
        "benchmark": "segment_pendo",
        "message_bytes": len(bodies[0]) // BATCH_SIZE,
        "batch_messages": BATCH_SIZE,
        "settings": asdict(settings),
        "connectord": asdict(daemon),
        "minimal": asdict(minimal),
        "rounds": {name: [asdict(m) for m in runs] for name, runs in rounds.items()},
        "ratio_delivered": round(daemon.delivered_per_second / minimal.delivered_per_second, 3),
        "ratio_accepted": round(daemon.accepted_per_second / minimal.accepted_per_second, 3),
        "seconds": round(time.monotonic() - started, 1),
    }


def best(runs: list[Measurement]) -> Measurement:
    """The round with the highest delivered rate, with the highest peak RSS of all."""
    top = max(runs, key=lambda m: m.delivered_per_second)
    top.peak_rss_mib = max(m.peak_rss_mib for m in runs)
    return top


def report(result: dict[str, Any]) -> str:
    rows = [
        ("accepted msg/s", "accepted_per_second"),
        ("delivered msg/s", "delivered_per_second"),
        ("accept p50 ms", "p50_ms"),
        ("accept p99 ms", "p99_ms"),
        ("paced p50 ms", "paced_p50_ms"),
        ("paced p99 ms", "paced_p99_ms"),
        ("delivered/s paced", "paced_delivered_per_second"),
        ("peak RSS MiB", "peak_rss_mib"),
        ("accepted", "accepted"),
        ("delivered", "delivered"),
        ("seconds to accept", "accept_seconds"),
        ("seconds to deliver", "deliver_seconds"),
        ("all delivered", "complete"),
        ("request errors", "errors"),
    ]
    settings = result["settings"]
    out = [
        f"{settings['messages']} track messages (~{result['message_bytes']} bytes each) in "
        f"Segment batches of {result['batch_messages']}, {settings['senders']} requests in "
        "flight -> system -> Pendo sink (one POST /data/track per message); best of "
        f"{len(result['rounds']['connectord'])} round(s) per system",
        f"{'':20}{'connectord':>12}{'minimal':>12}",
    ]
    for label, key in rows:
        a, b = result["connectord"][key], result["minimal"][key]
        out.append(f"{label:20}{a!s:>12}{b!s:>12}")
    out.append(
        f"ratio connectord/minimal: delivered {result['ratio_delivered']:.2f}, "
        f"accepted {result['ratio_accepted']:.2f}   (benchmark took {result['seconds']} s)"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["bench", "sink", "minimal"], default="bench")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--messages", type=int, default=Settings.messages)
    parser.add_argument("--rounds", type=int, default=Settings.rounds)
    parser.add_argument("--senders", type=int, default=Settings.senders)
    parser.add_argument("--cap-seconds", type=float, default=Settings.cap_seconds)
    parser.add_argument("--offered", type=int, default=Settings.offered)
    parser.add_argument("--paced-seconds", type=float, default=Settings.paced_seconds)
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    options = parser.parse_args(argv)
    if options.role == "sink":
        asyncio.run(serve_sink(int(options.args[0])))
        return {}
    if options.role == "minimal":
        port, database, sink = options.args
        asyncio.run(serve_minimal(int(port), database, sink))
        return {}
    settings = Settings(
        messages=max(BATCH_SIZE, options.messages),
        rounds=max(1, options.rounds),
        senders=options.senders,
        cap_seconds=options.cap_seconds,
        pin=not options.no_pin,
        offered=max(0, options.offered),
        paced_seconds=options.paced_seconds,
    )
    result = asyncio.run(run(settings))
    print(report(result), flush=True)
    return result


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
