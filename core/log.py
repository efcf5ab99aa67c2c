"""Structured logging: JSON lines for journald, readable output on a terminal.

Event names are stable, dotted and lowercase (``delivery.batch.failed``); context such
as ``connector=`` is bound, not formatted into the message. A redaction processor
removes every configured secret from every field, whatever a plugin logs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

import orjson
import structlog

REDACTED = "**********"
_secrets: list[str] = []


def set_secrets(values: Iterable[str]) -> None:
    """Replace the set of strings the logs must never show (longest first)."""
    _secrets[:] = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


def redact(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, BaseException):
        return redact(repr(value))
    return value


def _redact_processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    if not _secrets:
        return event
    return {k: redact(v) for k, v in event.items()}


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode()


def wants_console(fmt: str, stream: Any, environ: dict[str, str] | None = None) -> bool:
    """Whether ``fmt`` means human-readable output on ``stream``.

    ``auto`` is readable only on a terminal that is not the journal; pipes, files and
    journald get JSON lines.
    """
    if fmt != "auto":
        return fmt == "console"
    if on_journal(stream, os.environ if environ is None else environ):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def on_journal(stream: Any, environ: dict[str, str]) -> bool:
    """Whether ``stream`` is connected to journald.

    systemd sets ``JOURNAL_STREAM=<device>:<inode>`` for a service whose stdout or
    stderr goes to the journal, and says to compare it with the stream's own numbers
    (systemd.exec(5)): the variable is inherited by children whose output goes
    elsewhere, e.g. a terminal started from a user service. A stream without a file
    descriptor cannot be compared; then the variable is believed.
    """
    value = environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return True
    return value.strip() == f"{stat.st_dev}:{stat.st_ino}"


def configure(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog for the process. ``fmt``: auto, json or console."""
    stream = stream or sys.stdout
    console = wants_console(fmt, stream)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if console:
        processors += [_redact_processor, structlog.dev.ConsoleRenderer()]
    else:
        processors += [
            structlog.processors.dict_tracebacks,
            _redact_processor,
            structlog.processors.JSONRenderer(serializer=_orjson_dumps),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Libraries that use stdlib logging (aiohttp, apscheduler) stay quiet below WARNING.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def get_logger(**context: Any) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger().bind(**context)
