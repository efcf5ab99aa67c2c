"""Tools shared by the reliability and security suites.

- `Daemon`: the real ``connectord run`` process that can be killed with SIGKILL and
  started again on the same state file and port, any number of times.
- `Loader`: a background thread posting batches to a push endpoint over loopback and
  remembering every record id that was answered 2xx (what the daemon promised to keep).
- `rss_bytes`, `disk_bytes`, `state_counts`: what the process and the state file hold.
- `report`: record a measured figure; figures are printed as they are measured and again
  in the pytest terminal summary (`write_summary`, hooked in the suites' conftest files).
"""

from __future__ import annotations

import asyncio
import http.client
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectord.testing import DaemonProcess, wait_for, write_config

# --- figures ----------------------------------------------------------------------------

FIGURES: dict[str, dict[str, Any]] = {}
_summary_written = False


def report(section: str, **values: Any) -> None:
    """Keep measured figures for the summary and print them now (seen with ``-s``)."""
    FIGURES.setdefault(section, {}).update(values)
    shown = ", ".join(f"{key}={_fmt(value)}" for key, value in values.items())
    print(f"\n[{section}] {shown}")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write_summary(terminalreporter: Any) -> None:
    """The figures of this session in the terminal summary, once per session."""
    global _summary_written
    if _summary_written or not FIGURES:
        return
    _summary_written = True
    terminalreporter.section("connectord reliability and security figures")
    for section, values in FIGURES.items():
        shown = ", ".join(f"{key}={_fmt(value)}" for key, value in values.items())
        terminalreporter.write_line(f"{section}: {shown}")


# --- the daemon ---------------------------------------------------------------------------


class Daemon(DaemonProcess):
    """`DaemonProcess` (which already judges readiness on the current process's part of
    the log) plus what crash tests ask of it: that part of the log, and liveness."""

    def current_logs(self) -> str:
        """The log written by the current process (since the last `start`)."""
        return self._own_log().decode(errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture
def spawn_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Factory ``(connectors_toml, daemon="", env=None, directory=None, state=None,
    wait=True) -> Daemon``, started; every daemon it made is stopped (or killed) at
    teardown. ``state`` puts the state file elsewhere than ``state.db`` beside the config.

    Like ``connectord_daemon``, on `DaemonProcess` and `write_config`; it adds what that
    fixture does not offer: a chosen directory, a shared state file, `Daemon`."""
    made: list[Daemon] = []

    def spawn(
        connectors: str,
        *,
        daemon: str = "",
        env: dict[str, str] | None = None,
        directory: Path | None = None,
        state: Path | None = None,
        wait: bool = True,
    ) -> Daemon:
        where = directory or tmp_path
        where.mkdir(parents=True, exist_ok=True)
        config = write_config(where, connectors, daemon=daemon)
        if state is not None:
            text = config.read_text().replace('state = "state.db"', f'state = "{state}"', 1)
            config.write_text(text)
        process = Daemon(config, env=env)
        made.append(process)
        return process.start(wait=wait)

    yield spawn
    for process in made:
        try:
            process.stop(timeout=20)
        except Exception:
            process.kill()


# --- load -----------------------------------------------------------------------------------


class Loader(threading.Thread):
    """Post batches of records to one push endpoint until stopped.

    Bounded by ``max_seconds`` and ``max_requests`` so it always stops by itself. Every
    record of a request answered 2xx goes into ``acked`` (with the wall-clock moment of
    the answer in ``acked_at``); refused or failed requests are only counted.
    """

    def __init__(
        self,
        address: str,
        path: str,
        make_request: Callable[[list[str]], tuple[bytes, dict[str, str]]],
        *,
        prefix: str = "m",
        batch: int = 10,
        interval: float = 0.01,
        max_seconds: float = 120.0,
        max_requests: int = 100_000,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(name=f"loader-{prefix}", daemon=True)
        self.host, _, port = address.rpartition(":")
        self.port = int(port)
        self.path = path
        self.make_request = make_request
        self.prefix = prefix
        self.batch = batch
        self.interval = interval
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.timeout = timeout
        self.acked: list[str] = []
        self.acked_at: dict[str, float] = {}
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.retry_after: list[str | None] = []
        self.error_bodies: dict[int, bytes] = {}
        """The last answer body seen for each error status."""
        self.sent = 0
        self._halt = threading.Event()
        self._conn: http.client.HTTPConnection | None = None

    def stop(self) -> None:
        self._halt.set()
        self.join(self.timeout + 5)

    def run(self) -> None:
        started = time.monotonic()
        while (
            not self._halt.is_set()
            and time.monotonic() - started < self.max_seconds
            and self.sent < self.max_requests
        ):
            ids = [f"{self.prefix}-{self.sent}-{i}" for i in range(self.batch)]
            self.sent += 1
            body, headers = self.make_request(ids)
            try:
                status, retry_after, answer = self._post(body, headers)
            except (OSError, http.client.HTTPException) as err:
                self.errors[type(err).__name__] += 1
                self._close()
                self._halt.wait(0.05)
                continue
            self.statuses[status] += 1
            if 200 <= status < 300:
                now = time.time()
                self.acked.extend(ids)
                self.acked_at.update(dict.fromkeys(ids, now))
            else:
                self.error_bodies[status] = answer
            if status in (429, 503):
                self.retry_after.append(retry_after)
            if self.interval:
                self._halt.wait(self.interval)
        self._close()

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._conn.request("POST", self.path, body=body, headers=headers)
        response = self._conn.getresponse()
        answer = response.read()
        if response.getheader("Connection", "").lower() == "close":
            self._close()
        return response.status, response.getheader("Retry-After"), answer

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- measurements -----------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def disk_bytes(state: Path) -> int:
    """Bytes the state database takes on disk, WAL included."""
    return sum(
        p.stat().st_size for p in (state, state.with_name(state.name + "-wal")) if p.exists()
    )


def state_counts(state: Path, connector: str) -> dict[str, int]:
    """Queue depth, dead letters and counters of one connector, read from the state file."""
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=30) as db:
        queued = db.execute("select count(*) from queue where connector = ?", [connector])
        dead = db.execute("select count(*) from dead_letters where connector = ?", [connector])
        counters = db.execute(
            "select received, delivered, rejected from counters where connector = ?", [connector]
        ).fetchone() or (0, 0, 0)
        return {
            "queued": queued.fetchone()[0],
            "dead": dead.fetchone()[0],
            "received": counters[0],
            "delivered": counters[1],
            "rejected": counters[2],
        }


def dead_letters(state: Path, connector: str) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=30) as db:
        rows = db.execute(
            "select record, reason from dead_letters where connector = ? order by id", [connector]
        ).fetchall()
    return [{"record": orjson.loads(r), "reason": reason} for r, reason in rows]


def wait_until(
    predicate: Callable[[], Any], timeout: float, message: str, interval: float = 0.05
) -> Any:
    """`connectord.testing.wait_for` for synchronous tests; a miss fails the test."""
    try:
        return asyncio.run(wait_for(predicate, timeout=timeout, interval=interval, message=message))
    except TimeoutError as err:
        raise AssertionError(str(err)) from None


def duplicates(ids: Iterable[str]) -> int:
    ids = list(ids)
    return len(ids) - len(set(ids))


# --- records -----------------------------------------------------------------------------------


def track(message_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"user-{message_id}",
        "event": "Chaos Tested",
        "messageId": message_id,
        "properties": properties,
    }
