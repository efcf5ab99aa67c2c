"""``workers = 2`` on SQLite: two processes of one daemon behind one port.

A client posts single-record requests with unique messageIds the whole time. First,
hostile requests (malformed JSON, an oversized body, a wrong token) are sent to each
worker in turn (a keep-alive connection stays with the process that accepted it, and
``/healthz`` on it names that process) and must be answered 4xx while the client keeps
being served. Then, for ``WORKERS_SECONDS``, the worker or the supervising process is
killed with SIGKILL every 2 to 4 s: the supervisor starts a killed worker again, the test
starts a killed supervisor again (its orphaned worker stops by itself). No record
answered 2xx may be missing from the sink, and no process may be left behind.
"""

from __future__ import annotations

import http.client
import os
import random
import time
from pathlib import Path

import orjson
import pytest

from tests.chaos.support import duplicates, report, track, wait_until
from tests.cluster.support import Pusher, healthz
from tests.emulators.sink import SinkEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKERS_SECONDS = 12.0
TOKEN = "workers-token-0123456789"
MAX_BODY = 100_000
BATCH_SIZE = 20


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def lease_history(daemon) -> list[str]:
    """Who held the connector when, from the log the supervisor and its workers share:
    what to read when a run counts too many duplicates."""
    kinds = ("lease.", "connector.owned", "worker.", "daemon.ready", "daemon.stopping")
    return [
        " ".join(
            str(e.get(k, ""))
            for k in ("timestamp", "event", "node", "connector", "epoch", "reason", "pid")
        )
        for e in daemon.log_events()
        if str(e.get("event", "")).startswith(kinds)
    ]


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return False
    return fields[0] != "Z"


def connection_to(address: str, node: str, tries: int = 200) -> http.client.HTTPConnection:
    """A keep-alive connection that the kernel gave to the process named ``node``."""
    host, _, port = address.rpartition(":")
    for _ in range(tries):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        body = orjson.loads(response.read())
        if body["cluster"]["node"] == node:
            return conn
        conn.close()
    raise AssertionError(f"no connection reached {node} in {tries} tries")


def hostile_answers(address: str, node: str) -> dict[str, int]:
    """Status of each hostile request, each sent on a connection held by ``node``."""
    good = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    requests = {
        "malformed_json": (b'[{"type": "track", "messageId": ', good),
        "oversized": (orjson.dumps([track("big", pad="x" * (2 * MAX_BODY))]), good),
        "bad_token": (
            orjson.dumps([track("intruder")]),
            {**good, "Authorization": "Bearer not-the-token-at-all"},
        ),
    }
    answers = {}
    for what, (body, headers) in requests.items():
        conn = connection_to(address, node)
        try:
            conn.request("POST", "/ingest/relay/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            answers[what] = response.status
        finally:
            conn.close()
    return answers


def test_two_workers_on_sqlite_survive_kills_and_refuse_hostile_input(
    tmp_path, emulator_server, spawn_daemon
):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = spawn_daemon(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{server.url}/hook", batch_size = {BATCH_SIZE} }}
delivery = {{ batch_size = {BATCH_SIZE}, retry_initial = 0.1, retry_max = 0.5 }}
""",
        daemon=f'node = "w"\nworkers = 2\nlease_ttl = 3\nmax_body_bytes = {MAX_BODY}',
    )
    wait_until(
        lambda: (healthz(daemon) or {}).get("cluster", {}).get("nodes") == ["w/0", "w/1"],
        40,
        "both workers up",
    )
    pusher = Pusher([daemon.listen], ["relay"], TOKEN, interval=0.005)
    pusher.start()
    kills = {"worker": 0, "supervisor": 0}
    seen: set[int] = set()
    try:
        hostile = {}
        for node in ("w/0", "w/1"):
            before = pusher.acknowledged()
            hostile[node] = hostile_answers(daemon.listen, node)
            wait_until(
                lambda before=before: pusher.acknowledged() > before + 20,
                10,
                f"the client served while {node} refuses hostile input",
            )
        started = time.monotonic()
        # At least two kills of each kind, whatever the machine's speed (a supervisor's
        # restart waits for it to be ready), and at least WORKERS_SECONDS of them.
        while time.monotonic() - started < WORKERS_SECONDS or min(kills.values()) < 2:
            time.sleep(rng.uniform(2, 4))
            workers = children(daemon.pid)
            seen.update([daemon.pid, *workers])
            want_worker = kills["worker"] <= kills["supervisor"] or rng.random() < 0.5
            if workers and want_worker and kills["worker"] < 2 + kills["supervisor"]:
                os.kill(rng.choice(workers), 9)
                kills["worker"] += 1
                continue
            daemon.kill()
            kills["supervisor"] += 1
            wait_until(
                lambda workers=workers: not any(alive(p) for p in workers),
                15,
                "the orphaned worker stops by itself",
            )
            daemon.start()
        loop_seconds = time.monotonic() - started
    finally:
        pusher.stop()
    acked = pusher.acked["relay"]
    wait_until(lambda: acked <= set(sink.message_ids()), 60, "every acknowledged record delivered")
    workers = children(daemon.pid)
    seen.update([daemon.pid, *workers])
    assert daemon.stop() == 0
    wait_until(lambda: not any(alive(p) for p in seen), 15, "no process left behind")
    dup = duplicates(sink.message_ids())
    report(
        "workers = 2 on SQLite (kill -9 of workers and supervisor)",
        seed=seed,
        seconds=round(loop_seconds, 1),
        worker_kills=kills["worker"],
        supervisor_kills=kills["supervisor"],
        acknowledged=len(acked),
        duplicates=dup,
        client_retries=pusher.retries,
        hostile=hostile,
    )
    for node, answers in hostile.items():
        assert all(400 <= s < 500 for s in answers.values()), f"{node}: {answers}"
    assert sum(kills.values()) >= 4
    assert len(acked) > 300, f"too little load: {pusher.statuses}"
    assert dup <= sum(kills.values()) * 2 * BATCH_SIZE, f"{dup} duplicates; leases:\n" + "\n".join(
        lease_history(daemon)
    )
