"""The alert recipe (docs/integrations/clevertap-alerts.toml) as shipped: CleverTap
events and daily counts → filter → Slack-style messages at a webhook sink."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.emulators.sink import SinkEmulator
from tests.plugins.clevertap.common import sync
from tests.plugins.clevertap.emulator import CleverTapEmulator, Dataset

pytestmark = pytest.mark.e2e

RECIPE = Path(__file__).resolve().parents[3] / "docs" / "integrations" / "clevertap-alerts.toml"


@pytest.fixture
def recipe(tmp_path, emulator_server, monkeypatch):
    """The recipe in a fresh directory, its variables pointing at the emulators; the
    data set holds yesterday's events, which is what the recipe reads by default."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    data = Dataset(start=yesterday, days=1, events_per_day=3_000, users=200)
    clevertap = CleverTapEmulator(data, count_polls=0)  # counts answered at once
    sink = SinkEmulator()
    config = tmp_path / "clevertap-alerts.toml"
    shutil.copy(RECIPE, config)
    env = {
        "CLEVERTAP_ACCOUNT_ID": clevertap.account_id,
        "CLEVERTAP_PASSCODE": clevertap.passcode,
        "CLEVERTAP_API": emulator_server(clevertap).url,
        "SLACK_WEBHOOK_URL": emulator_server(sink).url + "/hook",
        "BIG_ORDER_AMOUNT": "480",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return config, data, sink


def test_big_orders_become_slack_messages(recipe):
    config, data, sink = recipe
    result = sync(config, "clevertap_big_orders")
    assert result.returncode == 0, result.stderr[-3000:]
    day = data.day_list()[0]
    expected = []
    for i in range(data.count(day, "Charged")):
        raw = data.event(day, "Charged", i)
        props = raw["event_props"]
        if props["Amount"] > 480:
            ts = str(raw["ts"])
            when = f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:]}.000Z"
            expected.append(
                f":moneybag: Big order: {raw['profile'].get('identity', '')} paid "
                f"{props['Amount']} {props['Currency']} by {props['Payment Mode']} at {when}"
            )
    assert expected, "the data set has big orders"
    assert [m["text"] for m in sink.received] == expected
    assert all(set(m) == {"text"} for m in sink.received)


def test_a_daily_count_over_the_threshold_posts_one_message(recipe, monkeypatch):
    config, data, sink = recipe
    count = data.count(data.day_list()[0], "Charged")
    monkeypatch.setenv("DAILY_CHARGED_THRESHOLD", str(count - 1))
    result = sync(config, "clevertap_daily_threshold")
    assert result.returncode == 0, result.stderr[-3000:]
    day = data.day_list()[0].isoformat()
    assert sink.received == [
        {
            "text": f":chart_with_upwards_trend: Charged: {count} events on "
            f"{day}T00:00:00.000Z (threshold {count - 1})"
        }
    ]


def test_a_daily_count_under_the_threshold_posts_nothing(recipe, monkeypatch):
    config, data, sink = recipe
    count = data.count(data.day_list()[0], "Charged")
    monkeypatch.setenv("DAILY_CHARGED_THRESHOLD", str(count))
    result = sync(config, "clevertap_daily_threshold")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sink.received == []


def test_the_recipe_is_valid_without_credentials(tmp_path):
    """Without its variables, `connectord check` complains only about them."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEVERTAP_", "SLACK_"))}
    result = subprocess.run(
        [sys.executable, "-m", "connectord", "check", "-c", str(RECIPE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    problems = [
        line
        for line in result.stdout.splitlines() + result.stderr.splitlines()
        if ": connectors." in line
    ]
    assert problems, result
    assert all("environment variable" in line or "${" in line for line in problems), problems
