"""Schedules: a cron expression or ``every <n><unit>``, turned into APScheduler triggers."""

from __future__ import annotations

import re
from datetime import timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

MANUAL = "manual"
_EVERY = re.compile(
    r"^every\s+(\d+)\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|"
    r"h|hr|hrs|hour|hours|d|day|days)$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScheduleError(ValueError):
    """The schedule is neither a cron expression nor ``every <n><unit>``."""


def parse_interval(text: str) -> timedelta | None:
    """``"every 15m"`` → 15 minutes; ``None`` when the text is not an interval."""
    match = _EVERY.match(text.strip())
    if not match:
        return None
    count = int(match.group(1))
    if count <= 0:
        raise ScheduleError(f"interval must be positive, found {text!r}")
    return timedelta(seconds=count * _UNIT_SECONDS[match.group(2)[0].lower()])


def make_trigger(text: str, timezone: str = "UTC") -> BaseTrigger | None:
    """The APScheduler trigger for a schedule; ``None`` for ``"manual"``.

    :raises ScheduleError: with a message that shows both accepted forms.
    """
    text = text.strip()
    if text == MANUAL:
        return None
    interval = parse_interval(text)
    if interval is not None:
        return IntervalTrigger(seconds=interval.total_seconds(), timezone=timezone)
    if text.lower().startswith("every"):
        raise ScheduleError(
            f'cannot read interval {text!r}: write e.g. "every 30s", "every 15m", '
            '"every 6h" or "every 1d"'
        )
    fields = text.split()
    if len(fields) != 5:
        raise ScheduleError(
            f"cron expression {text!r} has {len(fields)} fields, expected 5 "
            '(minute hour day month weekday), e.g. "0 2 * * *"; or write "every 15m"'
        )
    try:
        return CronTrigger.from_crontab(text, timezone=timezone)
    except ValueError as err:
        raise ScheduleError(f"invalid cron expression {text!r}: {err}") from err
