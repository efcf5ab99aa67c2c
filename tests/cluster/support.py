"""Tools of the cluster suite: daemons sharing one state, a client spreading push
requests over them, and a watcher of the checkpoints stored in PostgreSQL.

- `Cluster`: N real ``connectord run`` processes with fixed ``[daemon] node`` names, one
  directory (config and log) each, all on the same ``state``.
- `Pusher`: a thread posting single-record requests, each with a unique ``messageId``,
  round-robin over the daemons and retried on the next one until one answers; a record
  counts as acknowledged only when a daemon answered 2xx.
- `CheckpointWatch`: polls the ``checkpoints`` table and keeps every value it saw, so a
  test can show checkpoints only ever moved forward.
- `owners_seen`, `new_owner_after`: who owns what, as ``/healthz`` reports it.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import psycopg

from connectord.testing import write_config
from tests.chaos.support import Daemon, track

TTL = 3.0
"""``lease_ttl`` of every daemon in the suite, seconds."""


class Cluster:
    """Daemons named ``names`` on one ``state`` (a PostgreSQL URL or an SQLite path)."""

    def __init__(
        self,
        root: Path,
        connectors: str,
        *,
        state: str,
        names: list[str],
        env: dict[str, str] | None = None,
        daemon: str = "",
    ) -> None:
        self.nodes: dict[str, Daemon] = {}
        for name in names:
            directory = root / name
            directory.mkdir(parents=True, exist_ok=True)
            settings = f'node = "{name}"\nlease_ttl = {TTL}\n{daemon}'
            config = write_config(directory, connectors, daemon=settings)
            text = config.read_text().replace('state = "state.db"', f'state = "{state}"', 1)
            config.write_text(text)
            self.nodes[name] = Daemon(config, env=env, ready_timeout=40)

    def start(self) -> Cluster:
        for node in self.nodes.values():
            node.start(wait=False)
        for node in self.nodes.values():
            node.wait_ready()
        return self

    @property
    def addresses(self) -> list[str]:
        return [node.listen for node in self.nodes.values()]

    def alive(self) -> list[str]:
        return [name for name, node in self.nodes.items() if node.alive()]

    def close(self) -> None:
        for node in self.nodes.values():
            try:
                node.stop(timeout=20)
            except Exception:
                node.kill()


def healthz(node: Daemon, timeout: float = 2.0) -> dict[str, Any] | None:
    """``/healthz`` of a node, or None when it does not answer in time."""
    try:
        _, body = node.request("GET", "/healthz", timeout=timeout)
        return orjson.loads(body)
    except (OSError, orjson.JSONDecodeError):
        return None


def owners_seen(node: Daemon) -> dict[str, dict[str, Any]]:
    """``cluster.owners`` as ``node`` reports it (empty when it does not answer)."""
    health = healthz(node) or {}
    return health.get("cluster", {}).get("owners", {})


def new_owner_after(
    cluster: Cluster, connector: str, epoch: int, *, exclude: str, timeout: float
) -> tuple[float, dict[str, Any]] | None:
    """Poll the live nodes but ``exclude`` until one reports ``connector`` owned under an
    epoch above ``epoch``; (seconds it took, the owner entry), or None at ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for name in cluster.alive():
            if name == exclude:
                continue
            owner = owners_seen(cluster.nodes[name]).get(connector)
            if owner and owner["epoch"] > epoch:
                return time.monotonic() - started, owner
        time.sleep(0.05)
    return None


class Pusher(threading.Thread):
    """Post one record per request to ``/ingest/<connector>/`` of the given addresses,
    round-robin over connectors and addresses; a request that fails or is refused is
    sent again to the next address (with the same ``messageId``) until one takes it."""

    def __init__(
        self,
        addresses: list[str],
        connectors: list[str],
        token: str,
        *,
        interval: float = 0.01,
        max_seconds: float = 300.0,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(name="pusher", daemon=True)
        self.addresses = addresses
        self.connectors = connectors
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.interval = interval
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.acked: dict[str, set[str]] = {c: set() for c in connectors}
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.retry_after: list[str | None] = []
        self.retries = 0
        self._halt = threading.Event()
        self._next = itertools.cycle(range(len(addresses)))
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._halt.set()
        self.join(self.timeout * len(self.addresses) + 10)

    def acknowledged(self) -> int:
        with self._lock:
            return sum(len(ids) for ids in self.acked.values())

    def run(self) -> None:
        started = time.monotonic()
        for n in itertools.count():
            if self._halt.is_set() or time.monotonic() - started > self.max_seconds:
                return
            connector = self.connectors[n % len(self.connectors)]
            message_id = f"{connector}-{n}"
            while not self._halt.is_set() and not self._send(connector, message_id):
                self.retries += 1
                self._halt.wait(0.05)
            self._halt.wait(self.interval)

    def _send(self, connector: str, message_id: str) -> bool:
        host, _, port = self.addresses[next(self._next)].rpartition(":")
        body = orjson.dumps([track(message_id)])
        conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        try:
            conn.request("POST", f"/ingest/{connector}/", body=body, headers=self.headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as err:
            self.errors[type(err).__name__] += 1
            return False
        finally:
            conn.close()
        self.statuses[response.status] += 1
        if response.status in (429, 503):
            self.retry_after.append(response.getheader("Retry-After"))
        if 200 <= response.status < 300:
            with self._lock:
                self.acked[connector].add(message_id)
            return True
        return False


class CheckpointWatch(threading.Thread):
    """Read the ``checkpoints`` table every ``interval`` and keep, per connector, every
    distinct value seen in order (``seen``); `backwards` lists any step back."""

    def __init__(self, url: str, interval: float = 0.1) -> None:
        super().__init__(name="checkpoints", daemon=True)
        self.url = url
        self.interval = interval
        self.seen: dict[str, list[int]] = {}
        self.failed_reads = 0
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                with psycopg.connect(self.url, connect_timeout=2) as db:
                    while not self._halt.is_set():
                        for connector, value in db.execute(
                            "SELECT connector, value FROM checkpoints"
                        ).fetchall():
                            if isinstance(value, (str, bytes)):
                                value = orjson.loads(value)
                            last = value["last"]
                            values = self.seen.setdefault(connector, [])
                            if not values or values[-1] != last:
                                values.append(last)
                        self._halt.wait(self.interval)
            except psycopg.Error:
                self.failed_reads += 1
                self._halt.wait(self.interval)

    def backwards(self) -> dict[str, list[tuple[int, int]]]:
        return {
            connector: [(a, b) for a, b in itertools.pairwise(values) if b < a]
            for connector, values in self.seen.items()
            if any(b < a for a, b in itertools.pairwise(values))
        }


def overlaps(reads_dir: Path) -> dict[str, int]:
    """Reads of a connector that began while another process was reading it."""
    return {path.stem: len(path.read_text().splitlines()) for path in reads_dir.glob("*.overlaps")}
