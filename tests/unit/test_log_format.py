"""Log format: readable on a terminal, JSON lines under journald or when piped.

journald's rule (systemd.exec(5), ``$JOURNAL_STREAM``): the variable holds the
``device:inode`` of the stream connected to the journal, to be compared with the
stream's own; a terminal that merely inherited the variable stays readable.
"""

from __future__ import annotations

import io
import os
import pty

import orjson
import pytest
import structlog

from connectord.log import configure, on_journal, set_secrets, wants_console


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_structlog():
    yield
    structlog.reset_defaults()
    set_secrets([])


@pytest.fixture
def terminal():
    """A real pseudo-terminal: (stream to write to, function reading what was written)."""
    leader, follower = pty.openpty()
    stream = os.fdopen(follower, "w", closefd=True)

    def read() -> str:
        stream.flush()
        return os.read(leader, 65536).decode()

    yield stream, read
    stream.close()
    os.close(leader)


def identity(stream) -> str:
    stat = os.fstat(stream.fileno())
    return f"{stat.st_dev}:{stat.st_ino}"


def test_explicit_formats_win():
    assert wants_console("json", Terminal(), environ={}) is False
    assert wants_console("console", io.StringIO(), environ={"JOURNAL_STREAM": "8:1"}) is True


def test_auto_is_console_on_a_terminal_and_json_when_piped():
    assert wants_console("auto", Terminal(), environ={}) is True
    assert wants_console("auto", io.StringIO(), environ={}) is False


def test_journal_stream_is_compared_with_the_streams_own_numbers(terminal):
    stream, _ = terminal
    assert on_journal(stream, {}) is False
    assert on_journal(stream, {"JOURNAL_STREAM": identity(stream)}) is True
    assert on_journal(stream, {"JOURNAL_STREAM": "8:1"}) is False  # inherited, not ours
    assert wants_console("auto", stream, environ={"JOURNAL_STREAM": identity(stream)}) is False
    assert wants_console("auto", stream, environ={"JOURNAL_STREAM": "8:1"}) is True
    # No descriptor to compare: the variable is believed.
    assert wants_console("auto", Terminal(), environ={"JOURNAL_STREAM": "8:1"}) is False


def test_a_real_terminal_gets_readable_lines(monkeypatch, terminal):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream, read = terminal
    configure("info", "auto", stream=stream)
    set_secrets(["s3cret-value"])
    structlog.get_logger().info("sync.started", connector="crm", token="s3cret-value")
    text = read()
    assert "sync.started" in text and "connector" in text and "crm" in text
    assert not text.lstrip().startswith("{")  # ConsoleRenderer, not JSON
    assert "s3cret-value" not in text


def test_the_journal_gets_json_even_on_a_terminal(monkeypatch, terminal):
    stream, read = terminal
    monkeypatch.setenv("JOURNAL_STREAM", identity(stream))
    configure("info", "auto", stream=stream)
    structlog.get_logger().info("sync.started", connector="crm")
    event = orjson.loads(read().splitlines()[0])
    assert event["event"] == "sync.started" and event["connector"] == "crm"


def test_piped_output_is_one_json_object_per_line(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    configure("info", "auto", stream=stream)
    set_secrets(["s3cret-value"])
    structlog.get_logger().info("sync.started", connector="crm", token="s3cret-value")
    event = orjson.loads(stream.getvalue().splitlines()[0])
    assert event["event"] == "sync.started" and event["connector"] == "crm"
    assert event["token"] == "**********" and event["level"] == "info"
