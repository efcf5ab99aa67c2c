"""Schedules: cron expressions, ``every <n><unit>`` and ``manual``."""

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connectord.schedule import ScheduleError, make_trigger, parse_interval


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("every 30s", 30),
        ("every 15m", 900),
        ("every 6h", 21600),
        ("every 1d", 86400),
        ("every 2 hours", 7200),
        ("EVERY 5 Minutes", 300),
    ],
)
def test_intervals(text, seconds):
    assert parse_interval(text) == timedelta(seconds=seconds)
    assert isinstance(make_trigger(text), IntervalTrigger)


def test_cron_fires_when_expected():
    trigger = make_trigger("0 2 * * *")
    assert isinstance(trigger, CronTrigger)
    after = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, after) == datetime(2026, 1, 2, 2, 0, tzinfo=UTC)


def test_cron_in_a_time_zone():
    trigger = make_trigger("0 2 * * *", "Europe/Paris")
    fire = trigger.get_next_fire_time(None, datetime(2026, 1, 1, 12, tzinfo=UTC))
    assert fire.astimezone(UTC).hour == 1  # 02:00 in Paris in winter


def test_manual_has_no_trigger():
    assert make_trigger("manual") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("every 0m", "must be positive"),
        ("every five minutes", "cannot read interval"),
        ("0 2 * *", "has 4 fields, expected 5"),
        ("61 * * * *", "invalid cron expression"),
        ("daily", "has 1 fields"),
    ],
)
def test_bad_schedules_explain_themselves(text, message):
    with pytest.raises(ScheduleError, match=message):
        make_trigger(text)
