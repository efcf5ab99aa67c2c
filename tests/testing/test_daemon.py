"""DaemonProcess: the real daemon, its metrics, its CLI and its interpreter."""

from __future__ import annotations

import sys

import orjson
import pytest

from connectord.testing import DaemonProcess, free_port, write_config

pytestmark = pytest.mark.e2e

WEBHOOK_TO_WAREHOUSE = """
[connectors.demo]
source = { type = "http.webhook", token = "t0ken" }
destination = { type = "warehouse", url = "sqlite:///warehouse.db" }
"""


def test_fixture_daemon_metrics_and_cli(connectord_daemon):
    daemon = connectord_daemon(WEBHOOK_TO_WAREHOUSE)
    status, body = daemon.post(
        "/ingest/demo/",
        [{"type": "track", "userId": "u1", "event": "Paid"}],
        headers={"Authorization": "Bearer t0ken"},
    )
    assert (status, body["accepted"]) == (200, 1)
    daemon.wait_for(
        lambda: daemon.metric("connectord_records_out", connector="demo") == 1.0,
        message="one record delivered",
    )
    assert daemon.metric("connectord_records_in", connector="demo") == 1.0
    assert daemon.metric("connectord_records_in", connector="other") is None
    report = orjson.loads(daemon.cli("status", "--json", "-c", str(daemon.config)).stdout)
    assert report["connectors"][0]["counts"]["delivered"] == 1
    assert daemon.health()["status"] == "ok"
    assert daemon.stop() == 0


def test_python_and_env_removal(tmp_path, monkeypatch):
    monkeypatch.setenv("CONNECTORD_TEST_SHOULD_VANISH", "1")
    config = write_config(tmp_path, WEBHOOK_TO_WAREHOUSE, port=free_port())
    daemon = DaemonProcess(
        config, python=sys.executable, env={"CONNECTORD_TEST_SHOULD_VANISH": None}
    )
    assert "CONNECTORD_TEST_SHOULD_VANISH" not in daemon.env
    assert daemon.python == sys.executable
    failed = daemon.cli("check", "-c", str(tmp_path / "missing.toml"), check=False)
    assert failed.returncode == 1
    assert "config file not found" in failed.stderr
    with pytest.raises(AssertionError, match="exited with 1"):
        daemon.cli("check", "-c", str(tmp_path / "missing.toml"))
