"""Hundreds of bad requests at every push endpoint of one running daemon.

Each bad request must get a 4xx with a message (or, for odd-but-valid input, a 2xx and
then a clean delivery or dead letter); valid requests interleaved with them must be
accepted and delivered; the daemon must still be alive and answering ``/healthz`` at the
end, with every accepted record accounted for (delivered or dead-lettered, none queued).
"""

from __future__ import annotations

import http.client
import time
from collections import Counter

import pytest

from connectord.testing import EmulatorServer, write_config
from tests.chaos.support import Daemon, dead_letters, report, state_counts, wait_until
from tests.emulators.sink import SinkEmulator
from tests.hostile.corpus import Case, corpus
from tests.hostile.endpoints import ENDPOINTS, PushEndpoint

pytestmark = [pytest.mark.e2e]

TRIED: Counter[str] = Counter()


@pytest.fixture(scope="module")
def sink():
    emulator = SinkEmulator()
    server = EmulatorServer(emulator.app).start()
    yield emulator, server
    server.stop()


@pytest.fixture(scope="module")
def upstreams():
    """The vendor emulators that forwarding sources talk to, by endpoint name."""
    servers = {e.name: e.upstream().serve().start() for e in ENDPOINTS if e.upstream}
    yield {name: server.url for name, server in servers.items()}
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, sink, upstreams):
    _, server = sink
    connectors = "\n".join(
        f"""
[connectors.{e.name}]
source = {e.source_table(upstreams.get(e.name))}
destination = {{ type = "webhook", url = "{server.url}/hook" }}
delivery = {{ retry_initial = 0.1, retry_max = 0.5 }}
"""
        for e in ENDPOINTS
    )
    process = Daemon(write_config(tmp_path_factory.mktemp("hostile"), connectors))
    process.start()
    yield process
    try:
        process.stop(timeout=20)
    except Exception:
        process.kill()


def send(daemon: Daemon, endpoint: PushEndpoint, case: Case) -> tuple[int, bytes]:
    host, _, port = daemon.listen.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    path = case.path or endpoint.url()
    try:
        if case.chunked:
            chunks = [case.body[i : i + 8192] for i in range(0, len(case.body), 8192)]
            conn.request(
                case.method,
                path,
                body=iter(chunks),
                headers={**case.headers, "Transfer-Encoding": "chunked"},
                encode_chunked=True,
            )
        else:
            conn.request(case.method, path, body=case.body, headers=case.headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def judge(endpoint: PushEndpoint, case: Case, status: int, body: bytes) -> str | None:
    """What is wrong with the answer to a case, or ``None``."""
    if case.name in endpoint.dead_lettered:
        return None if 200 <= status < 300 else f"refused ({status}) what the vendor accepts"
    if 200 <= status < 300:
        return None if case.expect == "either" else f"accepted ({status})"
    if not 400 <= status < 500:
        return f"answered {status}: {body[:200]!r}"
    if not endpoint.message(body):
        return f"{status} without a message: {body[:200]!r}"
    return None


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_bad_requests_get_4xx_and_valid_neighbours_are_delivered(endpoint, daemon, sink):
    emulator, _ = sink
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    valid_ids: list[str] = []
    for index, case in enumerate(corpus(endpoint)):
        status, body = send(daemon, endpoint, case)
        statuses[status] += 1
        TRIED[endpoint.name] += 1
        if (problem := judge(endpoint, case, status, body)) is not None:
            problems.append(f"{case.name}: {problem}")
        if index % 10 == 0:  # a valid neighbour every ten bad requests
            ids = [f"{endpoint.name}-ok-{index}-{k}" for k in range(endpoint.ids_per_request)]
            body, headers = endpoint.valid(ids)
            status, answer = send(daemon, endpoint, Case("valid", body, headers))
            assert 200 <= status < 300, f"valid request refused: {status} {answer[:300]!r}"
            valid_ids += ids
    poison = [f"{endpoint.name}-poison-{k}" for k in range(endpoint.ids_per_request)]
    body, headers = endpoint.valid(poison, poison=True)
    status, _ = send(daemon, endpoint, Case("poison", body, headers))
    assert 200 <= status < 300

    assert not problems, f"{len(problems)} bad answers:\n  " + "\n  ".join(problems)
    assert daemon.alive()
    assert daemon.get("/healthz")[0] == 200

    def delivered() -> set[str]:
        return {endpoint.delivered_id(r) for r in emulator.received}

    wait_until(lambda: set(valid_ids) <= delivered(), 30, "valid neighbours delivered")
    state = daemon.config.parent / "state.db"
    wait_until(
        lambda: (
            state_counts(state, endpoint.name)["queued"] == 0
            and state_counts(state, endpoint.name)["dead"]
            >= len(poison) + len(endpoint.dead_lettered)
        ),
        30,
        "every accepted record delivered or dead-lettered",
    )
    time.sleep(0.2)
    counts = state_counts(state, endpoint.name)
    assert counts["received"] == counts["delivered"] + counts["rejected"], counts
    dead = dead_letters(state, endpoint.name)
    assert all(d["reason"] for d in dead)
    assert {endpoint.delivered_id(d["record"]) for d in dead} >= set(poison)
    assert len(dead) >= len(poison) + len(endpoint.dead_lettered)
    report(
        f"hostile requests: {endpoint.name}",
        bad_requests=TRIED[endpoint.name],
        answered=dict(sorted(statuses.items())),
        valid_neighbours_delivered=len(valid_ids),
        dead_letters=len(dead),
    )
    report("hostile requests: total", bad_requests=sum(TRIED.values()))
