"""The reliability suite prints what it measured in the pytest terminal summary, with or
without ``-s``: cycles survived, records acknowledged and delivered, duplicates, bad
inputs tried, secrets found in output."""

from __future__ import annotations

from tests.chaos.support import spawn_daemon, write_summary

__all__ = ["spawn_daemon"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    write_summary(terminalreporter)
