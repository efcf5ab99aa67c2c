"""``pushwoosh.to_piano``: pure unit tests of the glossary."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectord.plugins.pushwoosh.mapping import (
    PushwooshToPiano,
    piano_event,
    piano_key,
    visitor_id,
)
from connectord.records import problem
from connectord.state import MemoryKeyValue
from connectord.testing import map_records

PIANO_KEY = re.compile(r"^[a-z]\w*$")


def mapping(**options):
    return PushwooshToPiano(PushwooshToPiano.Options(**options), context=_Context())


class _Context:
    connector = "test"
    log = None
    state = MemoryKeyValue()


def relay_event(**overrides):
    record = {
        "type": "track",
        "userId": "u1",
        "event": "PW_SiteOpened",
        "properties": {"campaign_id": "CAMP-7", "Page Title": "Home", "meta": {"a": 1}},
        "context": {
            "traits": {
                "Country": "FR",
                "Device Model": "iPhone15,2",
                "OS Version": "17.1",
                "Browser Type": "Safari",
                "Level": 3,
            },
            "device": {"id": "hw-1", "type": "ios"},
            "pushwoosh": {"application": "ABCDE-12345", "hwid": "hw-1", "platform_id": 1},
            "ip": "203.0.113.9",
            "userAgent": "PushwooshSDK/6.7",
        },
        "messageId": "m-1",
        "timestamp": "2026-11-20T10:00:00.000Z",
    }
    record.update(overrides)
    return record


def test_an_event_in_piano_vocabulary():
    out = mapping().map(relay_event())
    assert out["type"] == "track"
    assert out["event"] == "pw_siteopened"
    assert out["userId"] == "u1"
    assert out["messageId"] == "m-1" and out["timestamp"] == "2026-11-20T10:00:00.000Z"
    assert out["properties"] == {
        "campaign_id": "CAMP-7",
        "page_title": "Home",
        "meta_a": 1,
        "country": "FR",
        "device_model": "iPhone15,2",
        "os_version": "17.1",
        "browser_type": "Safari",
        "pushwooshid": "u1",
        "src_medium": "CAMP-7",
        "device_type": "iOS",
    }
    assert out["context"]["piano"] == {"idclient": visitor_id("user", "u1")}
    assert out["context"]["ip"] == "203.0.113.9"
    assert out["context"]["userAgent"] == "PushwooshSDK/6.7"
    assert "traits" not in out["context"]
    assert problem(out) is None


@pytest.mark.parametrize("name", ["PW_SiteOpened", "pw_siteopened", "PW_SITEOPENED"])
def test_event_renames_match_case_insensitively(name):
    out = mapping(events={"pw_SiteOpened": "page.display"}).map(relay_event(event=name))
    assert out["event"] == "page.display"


def test_event_names_are_lowercased():
    assert piano_event("PW_SiteOpened") == "pw_siteopened"
    assert piano_event("Push Opened") == "push_opened"
    assert piano_event("Level Up!") == "level_up"
    assert piano_event("page.display") == "page.display"


def test_the_piano_visitor_id_tag_wins():
    record = relay_event()
    record["context"]["traits"]["piano visitor id"] = "pa-vid-42"
    out = mapping().map(record)
    assert out["context"]["piano"]["idclient"] == "pa-vid-42"
    assert "piano_visitor_id" not in out["properties"]


def test_without_a_user_the_visitor_is_derived_from_the_hwid():
    record = relay_event()
    del record["userId"]
    record["anonymousId"] = "hw-1"
    out = mapping().map(record)
    assert out["context"]["piano"]["idclient"] == visitor_id("hwid", "hw-1")
    assert "pushwooshid" not in out["properties"]
    assert out["anonymousId"] == "hw-1"
    # stable: the same device always gets the same visitor id, a GUID
    assert visitor_id("hwid", "hw-1") == visitor_id("hwid", "hw-1")
    assert re.match(r"^[0-9a-f-]{36}$", visitor_id("hwid", "hw-1"))


def test_tags_are_configurable_and_others_can_follow():
    out = mapping(tags={"Level": "user_level"}).map(relay_event())
    assert out["properties"]["user_level"] == 3
    assert "country" not in out["properties"]
    out = mapping(other_tags=True).map(relay_event())
    assert out["properties"]["level"] == 3 and out["properties"]["country"] == "FR"


def test_tag_targets_must_be_piano_keys():
    with pytest.raises(ValueError, match="not a Piano property key; use 'geo_country'"):
        PushwooshToPiano.Options(tags={"Country": "Geo Country"})


def test_tracking_log_events_map_platform_and_campaign():
    record = {
        "type": "track",
        "event": "Push Opened",
        "userId": "u9",
        "properties": {"tracking_code": "TC", "status": "opened", "platform_id": 3},
        "context": {"pushwoosh": {"campaign_id": "C-1", "hwid": "h9"}, "device": {"id": "h9"}},
    }
    out = mapping().map(record)
    assert out["event"] == "push_opened"
    assert out["properties"]["src_medium"] == "C-1"
    assert out["properties"]["device_type"] == "Android"


def test_push_stats_become_events():
    metric = {
        "type": "metric",
        "metric": "push_stats",
        "period": "total",
        "timestamp": "2026-11-20T10:00:00.000Z",
        "dimensions": {
            "application": "ABCDE-12345",
            "message_code": "M-1",
            "platform": "ios",
            "platform_id": 1,
            "campaign": "CAMP-1",
        },
        "values": {"sends": 10, "deliveries": 9, "opens": 3, "inbox_opens": 0, "errors": 1},
        "messageId": "s-1",
    }
    out = mapping().map(metric)
    assert out["event"] == "pw_push_stats"
    assert out["properties"] == {
        "application": "ABCDE-12345",
        "message_code": "M-1",
        "platform": "ios",
        "platform_id": 1,
        "campaign": "CAMP-1",
        "sends": 10,
        "deliveries": 9,
        "opens": 3,
        "inbox_opens": 0,
        "errors": 1,
        "metric": "push_stats",
        "period": "total",
        "src_medium": "CAMP-1",
        "device_type": "iOS",
    }
    assert out["context"]["piano"]["idclient"] == visitor_id("stats", "M-1")
    assert out["messageId"] == "s-1"
    assert problem(out) is None


@pytest.mark.parametrize("kind", ["identify", "audience", "group", "alias"])
def test_identify_and_other_user_records_are_dropped(kind):
    assert mapping().map({"type": kind, "userId": "u1", "traits": {"a": 1}}) is None


def test_pages_pass_through():
    page = {"type": "page", "userId": "u1", "name": "Home"}
    assert mapping().map(page) == page


async def test_in_a_batch_dropped_records_are_not_errors():
    results = await map_records(
        PushwooshToPiano, {}, [relay_event(), {"type": "identify", "userId": "u1"}]
    )
    assert results[0][0]["event"] == "pw_siteopened"
    assert results[1] == []


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Device Model", "device_model"),
        ("OS Version", "os_version"),
        ("m_revenue", "pw_m_revenue"),
        ("visit_count", "pw_visit_count"),
        ("42answers", "pw_42answers"),
        ("___", "pw"),
        ("Ünïcode tag", "unicode_tag"),
        ("x" * 50, "x" * 40),
    ],
)
def test_piano_keys(name, key):
    assert piano_key(name) == key


@given(st.text())
def test_every_key_is_piano_valid(name):
    key = piano_key(name)
    assert PIANO_KEY.match(key)
    assert len(key) <= 40
    assert not key.startswith(("m_", "visit_"))
    assert piano_key(key) == key  # stable
