"""The cluster suite prints what it measured in the pytest terminal summary, with or
without ``-s`` (the figures live in `tests.chaos.support`)."""

from __future__ import annotations

from tests.chaos.support import spawn_daemon, write_summary

__all__ = ["spawn_daemon"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    write_summary(terminalreporter)
