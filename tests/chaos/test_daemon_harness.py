"""Regression test for the daemon test harness found by the reliability suite (it runs a
real daemon; the in-process regressions are in tests/unit/test_reliability_regressions.py)."""

from __future__ import annotations

import os

from connectord.testing import DaemonProcess, write_config
from tests.fixtures.numbers_plugin import install_plugin


def test_daemon_process_restart_waits_for_the_new_process(tmp_path):
    # Before: readiness looked for "daemon.ready" anywhere in the log file, which a
    # restarted daemon shares with the killed one, so start() returned as soon as the
    # new process answered /healthz, before its connectors were up.
    env = {**os.environ, **install_plugin(tmp_path / "site")}
    config = write_config(
        tmp_path,
        '[connectors.slow]\nschedule = "manual"\n'
        'source = { type = "test.numbers", count = 1, start_delay = 1.5 }\n'
        'destination = { type = "warehouse", url = "sqlite:///w.db" }\n',
    )
    daemon = DaemonProcess(config, env=env)
    daemon.start()
    try:
        daemon.restart()
        log = daemon.logs()
        assert log.count('"daemon.ready"') == 2, "start() returned before the new process was ready"
    finally:
        daemon.stop()
