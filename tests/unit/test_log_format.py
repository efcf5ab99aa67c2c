"""Log format: readable on a terminal, JSON lines under systemd or when piped."""

from __future__ import annotations

import io
import os
import pty

import orjson
import pytest
import structlog

from connectord.log import configure, set_secrets, wants_console


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_structlog():
    yield
    structlog.reset_defaults()
    set_secrets([])


def test_auto_is_console_only_on_a_terminal_outside_systemd():
    assert wants_console("auto", Terminal(), environ={}) is True
    assert wants_console("auto", io.StringIO(), environ={}) is False  # piped
    assert wants_console("auto", Terminal(), environ={"JOURNAL_STREAM": "8:12345"}) is False
    assert wants_console("json", Terminal(), environ={}) is False
    assert wants_console("console", io.StringIO(), environ={"JOURNAL_STREAM": "8:1"}) is True


def test_a_real_terminal_gets_readable_lines(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w", closefd=True) as stream:
        configure("info", "auto", stream=stream)
        set_secrets(["s3cret-value"])
        structlog.get_logger().info("sync.started", connector="crm", token="s3cret-value")
        stream.flush()
        text = os.read(leader, 4096).decode()
    os.close(leader)
    assert "sync.started" in text and "connector" in text and "crm" in text
    assert not text.lstrip().startswith("{")  # ConsoleRenderer, not JSON
    assert "s3cret-value" not in text


@pytest.mark.parametrize("environ", [{}, {"JOURNAL_STREAM": "8:12345"}])
def test_piped_or_journald_output_is_one_json_object_per_line(monkeypatch, environ):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    stream = Terminal() if environ else io.StringIO()  # journald wins even on a terminal
    configure("info", "auto", stream=stream)
    set_secrets(["s3cret-value"])
    structlog.get_logger().info("sync.started", connector="crm", token="s3cret-value")
    event = orjson.loads(stream.getvalue().splitlines()[0])
    assert event["event"] == "sync.started" and event["connector"] == "crm"
    assert event["token"] == "**********" and event["level"] == "info"
