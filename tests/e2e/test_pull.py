"""Pull connectors: `connectord sync`, checkpoints, resume after failure and kill -9,
the scheduler and `connectord status`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import orjson
import pytest

from connectord.testing import DaemonProcess, write_config
from tests.fixtures.numbers_plugin import install_plugin

pytestmark = pytest.mark.e2e


def setup(tmp_path, source_options: str, schedule: str = "manual"):
    env = {**os.environ, **install_plugin(tmp_path / "site")}
    config = write_config(
        tmp_path,
        f"""
[connectors.numbers]
schedule = "{schedule}"
source = {{ type = "test.numbers", {source_options} }}
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}
delivery = {{ retry_initial = 0.1, retry_max = 0.5, pull_retry_budget = 5 }}
""",
    )
    return config, env


def cli(config, env, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "connectord", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def numbers_in(warehouse) -> list[int]:
    try:
        with sqlite3.connect(warehouse) as db:
            return [r[0] for r in db.execute("select n from number order by n")]
    except sqlite3.Error:
        return []


def test_sync_runs_once_and_resumes_from_the_checkpoint(tmp_path):
    config, env = setup(tmp_path, "count = 95, batch = 10")
    result = cli(config, env, "sync", "numbers")
    assert result.returncode == 0, result.stderr
    assert "numbers: succeeded — 95 read, 95 delivered, 0 rejected" in result.stderr
    assert numbers_in(tmp_path / "warehouse.db") == list(range(95))
    status = orjson.loads(cli(config, env, "status", "--json").stdout)
    [entry] = status["connectors"]
    assert entry["checkpoint"] == {"last": 94}
    assert entry["last_run"]["status"] == "succeeded"
    assert entry["counts"]["delivered"] == 95
    again = cli(config, env, "sync", "numbers")
    assert "0 read" in again.stderr


def test_a_failed_run_resumes_without_gaps_or_duplicates(tmp_path):
    config, env = setup(tmp_path, "count = 60, batch = 10, fail_after = 3")
    failed = cli(config, env, "sync", "numbers")
    assert failed.returncode == 1
    assert "the vendor went away" in failed.stderr
    assert numbers_in(tmp_path / "warehouse.db") == list(range(30))
    status = orjson.loads(cli(config, env, "status", "--json").stdout)
    assert status["connectors"][0]["checkpoint"] == {"last": 29}
    assert status["connectors"][0]["last_run"]["status"] == "failed"
    resumed = cli(config, env, "sync", "numbers")
    assert resumed.returncode == 0, resumed.stderr
    assert "30 read" in resumed.stderr
    assert numbers_in(tmp_path / "warehouse.db") == list(range(60))


def test_kill_9_mid_run_then_resume(tmp_path):
    config, env = setup(tmp_path, "count = 50, batch = 10, stall_after = 2")
    process = subprocess.Popen(
        [sys.executable, "-m", "connectord", "sync", "numbers", "-c", str(config)],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while numbers_in(tmp_path / "warehouse.db") != list(range(20)):
        assert time.monotonic() < deadline, "first two batches never landed"
        time.sleep(0.05)
    time.sleep(0.3)
    process.kill()
    process.wait()
    config.write_text(config.read_text().replace(", stall_after = 2", ""))
    result = cli(config, env, "sync", "numbers")
    assert result.returncode == 0, result.stderr
    assert "30 read" in result.stderr, "resumed after the last acknowledged batch"
    assert numbers_in(tmp_path / "warehouse.db") == list(range(50))


def test_sync_asks_the_daemon_when_it_runs_the_connector(tmp_path):
    config, env = setup(tmp_path, "count = 30, batch = 10", schedule="every 1h")
    with DaemonProcess(config, env=env) as daemon:
        daemon.wait_for(
            lambda: numbers_in(tmp_path / "warehouse.db") == list(range(30)),
            message="the first (catch-up) run",
        )
        result = cli(config, env, "sync", "numbers")
        assert result.returncode == 0, result.stderr
        assert f"is run by the daemon (pid {daemon.pid}): asked it to run now" in result.stderr
        assert "numbers: succeeded — 0 read" in result.stderr, "resumes at the checkpoint"
        result = cli(config, env, "sync", "numbers", "--full-refresh")
        assert result.returncode == 0, result.stderr
        assert "numbers: succeeded — 30 read, 30 delivered" in result.stderr
        assert numbers_in(tmp_path / "warehouse.db") == list(range(30)), "upserted, no copies"
        assert "run.requested" in daemon.logs()
        status = cli(config, env, "status")
        assert f"daemon running (pid {daemon.pid})" in status.stdout


def test_sync_through_the_daemon_reports_a_failed_run(tmp_path):
    config, env = setup(tmp_path, "count = 40, batch = 10, fail_after = 1", schedule="0 0 1 1 *")
    (tmp_path / "failed-once").write_text("1")  # the catch-up run must not fail
    with DaemonProcess(config, env=env) as daemon:
        daemon.wait_for(lambda: numbers_in(tmp_path / "warehouse.db") == list(range(40)))
        (tmp_path / "failed-once").unlink()
        result = cli(config, env, "sync", "numbers", "--full-refresh")
        assert result.returncode == 1
        assert "numbers: failed — 10 read, 10 delivered" in result.stderr
        assert "the vendor went away" in result.stderr


def test_sync_of_a_push_connector_waits_for_its_queue(tmp_path):
    env = {**os.environ}
    config = write_config(
        tmp_path,
        """
[connectors.hook]
source = { type = "http.webhook", token = "tok-12345" }
destination = { type = "warehouse", url = "sqlite:///warehouse.db" }
""",
    )
    with DaemonProcess(config, env=env) as daemon:
        daemon.post(
            "/ingest/hook/",
            [{"type": "track", "userId": "u", "event": "E"}],
            headers={"Authorization": "Bearer tok-12345"},
        )
        result = cli(config, env, "sync", "hook")
        assert result.returncode == 0, result.stderr
        assert "delivered continuously by the daemon" in result.stderr


def test_the_scheduler_runs_pull_connectors_repeatedly(tmp_path):
    config, env = setup(tmp_path, "count = 12, batch = 3", schedule="every 1s")
    with DaemonProcess(config, env=env) as daemon:
        daemon.wait_for(lambda: numbers_in(tmp_path / "warehouse.db") == list(range(12)))

        def runs() -> int:
            with sqlite3.connect(config.parent / "state.db") as db:
                return db.execute(
                    "select count(*) from runs where status = 'succeeded'"
                ).fetchone()[0]

        daemon.wait_for(lambda: runs() >= 3, timeout=15, message="three scheduled runs")
        assert daemon.stop() == 0
