"""Delivery guarantees of the real daemon: outages, rejects, dead letters, crashes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import orjson
import pytest

from tests.emulators.sink import SinkEmulator

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def connector(sink_url: str, delivery: str = "") -> str:
    return f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{sink_url}/hook", batch_size = 20 }}
delivery = {{ retry_initial = 0.2, retry_max = 1.0 {delivery} }}
"""


def events(count: int, start: int = 0, **extra) -> list[dict]:
    return [
        {
            "type": "track",
            "userId": f"u{i}",
            "event": "Tested",
            "messageId": f"m-{i}",
            "properties": {"n": i, **extra},
        }
        for i in range(start, start + count)
    ]


def cli(daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "connectord", *args, "-c", str(daemon.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_destination_outage_loses_nothing_and_is_not_hammered(connectord_daemon, emulator_server):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = connectord_daemon(connector(server.url))
    outage_end = time.time() + 4
    sink.fail_until(outage_end, status=503, headers={"Retry-After": "1"})
    for chunk in range(5):
        status, body = daemon.post("/ingest/relay/", events(20, chunk * 20), headers=AUTH)
        assert status == 200, body
    daemon.wait_for(
        lambda: len(set(sink.message_ids())) == 100,
        timeout=30,
        message="all 100 records delivered after the outage",
    )
    during = [r for r in sink.requests if r.at < outage_end]
    # Backoff with one probe at a time: a handful of attempts in 4 s, not a storm.
    assert len(during) <= 8, f"{len(during)} requests during a 4 s outage"
    assert daemon.health()["connectors"]["relay"]["healthy"] is True
    assert "delivery.retry" in daemon.logs()


def test_rejected_records_become_dead_letters_and_replay(connectord_daemon, emulator_server):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = connectord_daemon(connector(server.url))
    batch = events(10)
    batch[3]["properties"]["poison"] = True
    batch[7]["properties"]["poison"] = True
    status, _ = daemon.post("/ingest/relay/", batch, headers=AUTH)
    assert status == 200
    daemon.wait_for(lambda: len(sink.received) == 8, message="8 good records delivered")

    def dead() -> dict:
        result = cli(daemon, "dlq", "list", "relay", "--json")
        assert result.returncode == 0, result.stderr
        return orjson.loads(result.stdout)

    listed = daemon.wait_for(lambda: dead()["total"] == 2 and dead(), message="2 dead letters")
    assert sorted(d["record"]["messageId"] for d in listed["dead_letters"]) == ["m-3", "m-7"]
    assert all("HTTP 400" in d["reason"] for d in listed["dead_letters"])
    assert sorted(sink.message_ids()) == sorted(f"m-{i}" for i in range(10) if i not in (3, 7))

    # Replayed while the receiver still refuses them, they come back as dead letters.
    sink.received.clear()
    result = cli(daemon, "dlq", "replay", "relay")
    assert result.returncode == 0, result.stderr
    assert "queued 2 records" in result.stdout
    daemon.wait_for(lambda: dead()["total"] == 2, message="poisoned records dead again")
    assert sink.received == []
    result = cli(daemon, "dlq", "purge", "relay", "--yes")
    assert "deleted 2" in result.stdout
    assert dead()["total"] == 0


def test_replay_delivers_once_the_destination_accepts(connectord_daemon, emulator_server):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = connectord_daemon(connector(server.url))
    sink.fail_next(1, status=422, body={"error": "unprocessable"})
    status, _ = daemon.post("/ingest/relay/", events(1), headers=AUTH)
    assert status == 200
    daemon.wait_for(
        lambda: '"total": 1' in cli(daemon, "dlq", "list", "relay", "--json").stdout,
        message="one dead letter",
    )
    assert sink.received == []
    result = cli(daemon, "dlq", "replay", "relay")
    assert "queued 1 record of relay" in result.stdout
    daemon.wait_for(lambda: sink.message_ids() == ["m-0"], message="replayed record delivered")


def test_kill_9_during_backlog_loses_nothing(connectord_daemon, emulator_server):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = connectord_daemon(connector(server.url, ", concurrency = 1, batch_size = 10"))
    sink.fail_until(time.time() + 3600, status=0, delay=0.15)  # a slow destination
    accepted = []
    for chunk in range(10):
        batch = events(30, chunk * 30)
        status, _ = daemon.post("/ingest/relay/", batch, headers=AUTH)
        assert status == 200
        accepted += [e["messageId"] for e in batch]
    time.sleep(0.5)
    daemon.kill()
    delivered_before = set(sink.message_ids())
    assert len(delivered_before) < len(accepted), "the crash should hit a backlog"
    sink.clear_faults()
    daemon.start()
    daemon.wait_for(
        lambda: set(sink.message_ids()) >= set(accepted),
        timeout=60,
        message="every acknowledged record delivered after kill -9",
    )
    duplicates = len(sink.message_ids()) - len(set(sink.message_ids()))
    assert duplicates <= 30, f"{duplicates} duplicates: more than one in-flight batch re-sent"


def test_queue_bound_answers_503_and_recovers(connectord_daemon, emulator_server):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = connectord_daemon(connector(server.url, ", max_queue = 25"))
    sink.fail_until(time.time() + 3600, status=500)
    status, _ = daemon.post("/ingest/relay/", events(20), headers=AUTH)
    assert status == 200
    status, body = daemon.post("/ingest/relay/", events(10, 20), headers=AUTH)
    assert status == 503
    assert body["error"] == "queue_full"
    sink.clear_faults()
    daemon.wait_for(lambda: len(sink.received) == 20, timeout=30)
    daemon.wait_for(
        lambda: daemon.post("/ingest/relay/", events(10, 20), headers=AUTH)[0] == 200,
        message="accepting again after recovery",
    )
    daemon.wait_for(lambda: len(set(sink.message_ids())) == 30)


def test_sigterm_finishes_cleanly(connectord_daemon, emulator_server):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = connectord_daemon(connector(server.url))
    daemon.post("/ingest/relay/", events(5), headers=AUTH)
    daemon.wait_for(lambda: len(sink.received) == 5)
    assert daemon.stop() == 0
    logged = [e.get("event") for e in daemon.log_events()]
    assert "daemon.stopping" in logged and "daemon.stopped" in logged


def test_sighup_with_broken_config_keeps_running_then_applies_a_good_one(
    connectord_daemon, emulator_server
):
    sink = SinkEmulator()
    server = emulator_server(sink)
    daemon = connectord_daemon(connector(server.url))
    good = daemon.config.read_text()
    daemon.config.write_text(good + '\n[connectors.broken]\nsource = { type = "nope" }\n')
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda: "config.reload_failed" in daemon.logs(), message="reload refused")
    status, _ = daemon.post("/ingest/relay/", events(1), headers=AUTH)
    assert status == 200
    daemon.wait_for(lambda: len(sink.received) == 1)

    daemon.config.write_text(
        good
        + f"""
[connectors.second]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{server.url}/hook" }}
"""
    )
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda: "config.reloaded" in daemon.logs(), message="reload applied")
    daemon.wait_for(
        lambda: daemon.post("/ingest/second/", events(1, 1), headers=AUTH)[0] == 200,
        message="new connector serving",
    )
    daemon.wait_for(lambda: len(sink.received) == 2)
    assert daemon.process.poll() is None
    settled = [
        e["frozen_objects"]
        for e in daemon.log_events()
        if e.get("event") in ("daemon.ready", "config.reloaded")
    ]
    assert len(settled) == 2 and min(settled) > 10_000, "startup heap frozen at ready and reload"


def test_secrets_never_reach_the_logs(connectord_daemon, emulator_server):
    sink = SinkEmulator(token="sink-bearer-secret-value")
    server = emulator_server(sink)
    daemon = connectord_daemon(f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{server.url}/hook", bearer_token = "wrong-bearer-value" }}
delivery = {{ retry_initial = 0.1, retry_max = 0.2 }}
""")
    daemon.post("/ingest/relay/", events(1), headers=AUTH)
    daemon.post("/ingest/relay/", events(1), headers={"Authorization": "Bearer guess"})
    daemon.wait_for(lambda: "delivery.auth_failed" in daemon.logs(), message="auth failure logged")
    status = cli(daemon, "status", "--json").stdout
    for secret in (TOKEN, "wrong-bearer-value"):
        assert secret not in daemon.logs()
        assert secret not in status
