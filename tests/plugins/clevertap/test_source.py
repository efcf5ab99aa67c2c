"""CleverTap sources against the emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from connectord import AuthError
from connectord.plugins.clevertap.reports import CampaignsSource, CountsSource
from connectord.plugins.clevertap.source import EventsSource, ProfilesSource
from connectord.records import problem
from connectord.testing import run_source
from tests.plugins.clevertap.common import source_options
from tests.plugins.clevertap.emulator import EVENT_NAMES, CleverTapEmulator, Dataset


def by_event(records):
    return Counter(r["event"] for r in records)


def expected_by_event(data: Dataset, names=EVENT_NAMES):
    return Counter({name: data.total(name) for name in names})


async def test_events_export_every_event_once_with_stable_ids(emulator, served):
    options = source_options(
        emulator, served.url, events=["Charged", "App Launched"], batch_size=500
    )
    records, batches = await run_source(EventsSource, options)
    assert by_event(records) == expected_by_event(emulator.data, ["Charged", "App Launched"])
    assert len({r["messageId"] for r in records}) == len(records)
    assert all(problem(r) is None for r in records)
    assert batches[-1].checkpoint == {
        "done": "2024-01-03",
        "day": "2024-01-04",
        "event": "Charged",
        "cursor": None,
    }
    again, _ = await run_source(EventsSource, options)
    assert [r["messageId"] for r in again] == [r["messageId"] for r in records]


async def test_event_values_match_the_data_set(emulator, served):
    data = emulator.data
    records, _ = await run_source(
        EventsSource, source_options(emulator, served.url, events=["Charged"])
    )
    day = data.day_list()[1]
    raw = data.event(day, "Charged", 17)
    ts = str(raw["ts"])
    found = [
        r
        for r in records
        if r["timestamp"].startswith(
            f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}"
        )
        and r["anonymousId"] == raw["profile"]["objectId"]
    ]
    assert len(found) == 1
    record = found[0]
    assert record["userId"] == raw["profile"].get("identity")
    assert record["properties"]["Amount"] == raw["event_props"]["Amount"]
    assert record["properties"]["Delivery Date"] == "2024-01-05T00:00:00.000Z"
    assert record["context"]["session_source"] == raw["session_props"]["session_source"]


async def test_every_query_names_its_event_as_get_events_requires(emulator, served):
    """developer.clevertap.com/docs/get-events-api: ``event_name``, ``from`` and ``to``
    are required; the records do not name their event, the query does."""
    names = ["Charged", "App Launched"]
    records, _ = await run_source(EventsSource, source_options(emulator, served.url, events=names))
    assert by_event(records) == expected_by_event(emulator.data, names)
    bodies = [r.json() for r in emulator.requests_to("/1/events.json") if r.method == "POST"]
    assert sorted({b["event_name"] for b in bodies}) == sorted(names)
    assert len(bodies) == emulator.data.days * len(names)


async def test_the_emulator_refuses_a_query_without_event_name(emulator, served):
    from connectord.http import new_session

    headers = {
        "X-CleverTap-Account-Id": emulator.account_id,
        "X-CleverTap-Passcode": emulator.passcode,
        "Content-Type": "application/json",
    }
    async with (
        new_session() as http,
        http.post(
            f"{served.url}/1/events.json?batch_size=10",
            json={"from": 20240101, "to": 20240101},
            headers=headers,
        ) as response,
    ):
        assert response.status == 400
        assert await response.json() == {
            "status": "fail",
            "error": "event_name is required",
            "code": 400,
        }


def test_events_are_required_with_a_message_naming_file_key_expected_and_found(tmp_path):
    from connectord.config import ConfigError, load_config
    from connectord.registry import load_registry

    config = tmp_path / "connectors.toml"
    source = (
        'type = "clevertap.events", account_id = "W9R-486-4W5Z", passcode = "p", region = "eu1"'
    )
    config.write_text(
        "[connectors.no_events]\n"
        f"source = {{ {source} }}\n"
        'destination = { type = "warehouse", url = "sqlite:///w.db" }\n'
        "[connectors.empty_events]\n"
        f"source = {{ {source}, events = [] }}\n"
        'destination = { type = "warehouse", url = "sqlite:///w.db" }\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(config, load_registry(), environ={})
    text = str(err.value)
    assert f"{config}:2: connectors.no_events.source.events: required option is missing" in text
    assert "CleverTap requires `event_name`" in text and "found nothing" in text
    assert f"{config}:5: connectors.empty_events.source.events: expected at least one" in text
    assert "requires event_name and has no query for all events, found [] (array)" in text


async def test_resume_from_a_mid_day_checkpoint_reads_the_rest_only(emulator, served):
    options = source_options(emulator, served.url, events=list(EVENT_NAMES), batch_size=100)
    first, batches = await run_source(EventsSource, options, max_batches=3)
    checkpoint = batches[-1].checkpoint
    assert checkpoint["cursor"] is not None and checkpoint["done"] is None
    rest, _ = await run_source(EventsSource, options, checkpoint=checkpoint)
    ids = [r["messageId"] for r in first + rest]
    assert len(ids) == len(set(ids)) == emulator.data.total()


async def test_an_expired_cursor_reads_the_day_again(emulator, served):
    options = source_options(emulator, served.url, events=["App Launched"], batch_size=100)
    first, batches = await run_source(EventsSource, options, max_batches=3)
    emulator.expire_cursors()
    rest, _ = await run_source(EventsSource, options, checkpoint=batches[-1].checkpoint)
    ids = {r["messageId"] for r in first + rest}
    assert len(ids) == emulator.data.total("App Launched")
    assert len(rest) == emulator.data.total("App Launched")  # day 1 read again from its start


async def test_in_progress_queries_partial_pages_and_a_trailing_empty_page(
    small_data, emulator_server
):
    emulator = CleverTapEmulator(
        small_data, in_progress=2, page_style="partial", trailing_empty_page=True
    )
    server = emulator_server(emulator)
    records, _ = await run_source(
        EventsSource, source_options(emulator, server.url, events=["Charged"], batch_size=200)
    )
    assert len(records) == small_data.total("Charged")
    assert len({r["messageId"] for r in records}) == len(records)


async def test_concurrency_limit_answers_429_and_the_source_retries(small_data, emulator_server):
    emulator = CleverTapEmulator(small_data, concurrency=1, latency=0.02, count_polls=2)
    server = emulator_server(emulator)
    options = source_options(emulator, server.url, events=list(EVENT_NAMES), max_concurrency=3)
    records, _ = await run_source(CountsSource, options)
    assert emulator.rejected_429 > 0
    assert {
        (r["dimensions"]["event"], r["timestamp"][:10]): r["values"]["count"] for r in records
    } == {
        (name, day.isoformat()): small_data.count(day, name)
        for day in small_data.day_list()
        for name in EVENT_NAMES
    }


async def test_the_client_keeps_under_the_concurrency_limit(small_data, emulator_server):
    emulator = CleverTapEmulator(small_data, concurrency=3, latency=0.02, count_polls=1)
    server = emulator_server(emulator)
    options = source_options(emulator, server.url, events=list(EVENT_NAMES), max_concurrency=3)
    await run_source(CountsSource, options)
    assert emulator.rejected_429 == 0
    assert emulator.peak_in_flight == 3


async def test_counts_poll_req_ids_and_one_batch_per_day(small_data, emulator_server):
    emulator = CleverTapEmulator(small_data, count_polls=3)
    server = emulator_server(emulator)
    records, batches = await run_source(
        CountsSource, source_options(emulator, server.url, events=["Charged"])
    )
    assert [b.checkpoint for b in batches] == [
        {"done": "2024-01-01"},
        {"done": "2024-01-02"},
        {"done": "2024-01-03"},
    ]
    assert [r["values"]["count"] for r in records] == [
        small_data.count(day, "Charged") for day in small_data.day_list()
    ]
    polls = [r for r in emulator.requests_to("/1/counts/events.json") if "req_id" in r.query]
    assert len(polls) == 3 * 3  # two more "partial" answers, then the count, each day


async def test_counts_look_back_over_recent_days(emulator, served):
    options = source_options(emulator, served.url, events=["Charged"], lookback_days=2)
    records, _ = await run_source(CountsSource, options, checkpoint={"done": "2024-01-03"})
    assert [r["timestamp"][:10] for r in records] == ["2024-01-02", "2024-01-03"]


async def test_profiles_of_users_who_did_the_event(emulator, served):
    records, _batches = await run_source(
        ProfilesSource, source_options(emulator, served.url, batch_size=46)
    )
    data = emulator.data
    expected = sum(len(data.users_with("App Launched", [day])) for day in data.day_list())
    assert len(records) == expected
    assert all(r["type"] == "identify" and problem(r) is None for r in records)
    identified = [r for r in records if "userId" in r]
    assert identified and all(r["traits"]["email"].endswith("@example.com") for r in identified)
    assert any("userId" not in r for r in records)  # anonymous users keep their CleverTap ID
    flags = [r.query for r in emulator.requests_to("/1/profiles.json") if r.method == "POST"]
    assert flags[0]["batch_size"] == "46"


def test_profile_batch_size_must_be_a_multiple_of_23(emulator):
    with pytest.raises(ValueError, match="multiples of 23"):
        ProfilesSource.Options.model_validate(
            source_options(emulator, "http://127.0.0.1:1", batch_size=50)
        )


async def test_campaigns_and_their_reports(emulator, served):
    options = source_options(emulator, served.url)
    del options["end"]
    records, batches = await run_source(CampaignsSource, options)
    assert len(records) == emulator.data.campaigns
    completed = [r for r in records if r["dimensions"]["status"] == "completed"]
    running = [r for r in records if r["dimensions"]["status"] == "running"]
    assert len(running) == 1 and running[0]["values"] == {}
    first = next(r for r in completed if r["dimensions"]["campaign_id"] == 1_700_000_000)
    assert first["values"]["sent"] == 1000 and first["values"]["platform_ios_sent"] == 500
    assert batches[-1].checkpoint["done"] < date.today().isoformat()


async def test_wrong_passcode_is_an_auth_error(emulator, served):
    options = source_options(emulator, served.url, passcode="wrong", events=["Charged"])
    with pytest.raises(AuthError):
        await run_source(EventsSource, options)


def test_options_are_validated(emulator):
    base = source_options(emulator, "http://127.0.0.1:1", events=["Charged"])
    with pytest.raises(ValueError, match="account id"):
        EventsSource.Options.model_validate({**base, "account_id": "not an id"})
    with pytest.raises(ValueError, match="unknown region"):
        EventsSource.Options.model_validate({**base, "region": "mars1"})
    with pytest.raises(ValueError, match="time zone"):
        EventsSource.Options.model_validate({**base, "timezone": "Mars/Base"})
    with pytest.raises(ValueError, match="5000"):
        EventsSource.Options.model_validate({**base, "batch_size": 6000})
    parsed = EventsSource.Options.model_validate({**base, "start": "2024-01-01", "region": "in1"})
    assert parsed.start == date(2024, 1, 1)


async def test_profile_counts_are_the_profiles_that_did_the_event_each_day(
    small_data, emulator_server
):
    emulator = CleverTapEmulator(small_data, count_polls=2)
    server = emulator_server(emulator)
    options = source_options(emulator, server.url, events=["Charged"], profiles=True)
    records, batches = await run_source(CountsSource, options)
    profiles = [r for r in records if r["metric"] == "profile_count"]
    assert [r["values"]["count"] for r in profiles] == [
        len(small_data.users_with("Charged", [day])) for day in small_data.day_list()
    ]
    assert all(
        0 < r["values"]["count"] <= small_data.count(day, "Charged")
        for r, day in zip(profiles, small_data.day_list(), strict=True)
    )
    assert len(batches) == len(small_data.day_list())  # still one batch per day
    polls = [r for r in emulator.requests_to("/1/counts/profiles.json") if "req_id" in r.query]
    assert len(polls) == 2 * len(small_data.day_list())


async def test_profile_counts_are_off_unless_asked_for(emulator, served):
    await run_source(CountsSource, source_options(emulator, served.url, events=["Charged"]))
    assert emulator.requests_to("/1/counts/profiles.json") == []
