"""Shared pieces for push benchmarks: a timed closed-loop sender, waiting for every
process of a daemon (or of several daemons) to serve, and rates.

``segment_pendo.py`` sends a fixed number of batches; ``push_scale.py`` sends for a
fixed time to one or several addresses, so that configurations with more processes get
the chance to accept more. Both use the sink, bodies and percentiles of
``segment_pendo.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson


@dataclass
class LoadResult:
    """What a timed load achieved; latencies are per request, in seconds."""

    accepted: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


class Bodies:
    """Distinct batch bodies made from one template: each copy replaces ``marker`` (in
    every message id) with the next number of the same width, so ids stay unique and
    making a body costs one bytes.replace, nothing the load generator would notice."""

    def __init__(self, template: bytes, marker: bytes) -> None:
        self.template = template
        self.marker = marker
        self.count = 0

    def next(self) -> bytes:
        self.count += 1
        return self.template.replace(self.marker, b"%0*d" % (len(self.marker), self.count))


async def timed_load(
    urls: Sequence[str],
    bodies: Bodies,
    records_per_body: int,
    headers: dict[str, str],
    senders: int,
    seconds: float,
) -> LoadResult:
    """Closed loop: ``senders`` connections, each posting one body at a time until
    ``seconds`` have passed. Sender ``i`` talks to ``urls[i % len(urls)]`` over its own
    connection, so that the kernel's SO_REUSEPORT spreading and several daemons'
    addresses both see several connections. Every body is new: records keep unique
    ids, so that the destination can count them."""
    result = LoadResult()
    deadline = time.monotonic() + seconds

    async def sender(url: str) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while time.monotonic() < deadline:
                body = bodies.next()
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if 200 <= status < 300:
                    result.accepted += records_per_body
                else:
                    result.errors += 1

    started = time.monotonic()
    await asyncio.gather(*(sender(urls[i % len(urls)]) for i in range(senders)))
    result.seconds = time.monotonic() - started
    result.latencies.sort()
    return result


def health(url: str) -> dict:
    """``GET /healthz`` on a new connection (so that SO_REUSEPORT may pick any process);
    an empty dict when nothing answers."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as err:  # 503 still describes the daemon
        return orjson.loads(err.read())
    except (OSError, orjson.JSONDecodeError):
        return {}


def wait_serving(urls: Sequence[str], processes: int, connector: str, timeout: float = 60) -> None:
    """Wait until ``processes`` distinct nodes have answered ``/healthz`` with
    ``connector`` running, and one of them holds its lease: a worker that is still
    starting would otherwise answer push requests 404 during the measurement."""
    seen: set[str] = set()
    owned = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for url in urls:
            detail = health(url)
            cluster = detail.get("cluster", {})
            if detail.get("connectors", {}).get(connector, {}).get("running"):
                seen.add(cluster.get("node", url))
            owned = owned or connector in cluster.get("owners", {})
        if len(seen) >= processes and owned:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{len(seen)} of {processes} processes serving, lease held: {owned}")


def queued(urls: Sequence[str], connector: str) -> int | None:
    """The connector's queue depth as its lease holder reports it (others say 0 or
    nothing): the largest answer of a few ``/healthz`` calls per address."""
    depths = [
        health(url).get("connectors", {}).get(connector, {}).get("queued")
        for url in urls
        for _ in range(4)
    ]
    known = [d for d in depths if isinstance(d, int)]
    return max(known) if known else None


def per_second(count: int, seconds: float) -> float:
    return round(count / seconds) if seconds > 0 else 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a daemon's workers are its children)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += process_tree(int(child))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time the processes used so far (all their threads): with the
    wall time, it tells whether a configuration got the cores it could use."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@contextlib.contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    """A new database for one run, dropped afterwards (its daemons stopped by then):
    every configuration starts from empty state."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_available(admin_url: str) -> str | None:
    """Why PostgreSQL configurations cannot run here, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        with psycopg.connect(admin_url, connect_timeout=3):
            return None
    except psycopg.OperationalError as err:
        return f"cannot connect to {admin_url}: {str(err).strip()}"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: other work on the machine moves figures."""
    with contextlib.suppress(OSError):
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    return []
