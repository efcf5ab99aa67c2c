"""Records → Piano events: keys, values, visitor ids, page fields, privacy modes."""

from __future__ import annotations

import pytest

from connectord import RecordRejected
from connectord.plugins.piano.payloads import (
    KeyProblem,
    apply_privacy,
    event_data,
    property_key,
    to_outgoing,
    visitor_id,
)


def outgoing(record, mode="optin", drop=False, normalise=False):
    return to_outgoing(
        record, default_mode=mode, version="9.9", drop_invalid_keys=drop, normalise_keys=normalise
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("plan", "plan"),
        ("Order Total", "order_total"),
        ("userId", "userid"),
        ("page-url", "page_url"),
        ("prénom", "prenom"),
        ("  spaced  out ", "spaced_out"),
        ("a__b", "a_b"),
        ("_private", "private"),
        ("x" * 40, "x" * 40),
    ],
)
def test_keys_are_fixed_where_a_fix_is_unambiguous(key, expected):
    assert property_key(key) == expected


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("1st_purchase", "must start with a letter"),
        ("!!!", "has no letters or digits"),
        ("x" * 41, "longer than 40 characters"),
        ("m_revenue", "'m_'"),
        ("Visit_Count", "'visit_'"),
    ],
)
def test_keys_that_cannot_be_fixed_say_why(key, reason):
    problem = property_key(key)
    assert isinstance(problem, KeyProblem)
    assert reason in problem.reason
    assert problem.key == key


def test_values_are_kept_within_piano_limits():
    data, problems = event_data(
        {
            "s": "x" * 300,
            "n": 3,
            "f": 1.5,
            "b": False,
            "none": None,
            "nan": float("nan"),
            "big": 2**70,
            "arr": list(range(25)),
            "mixed": ["a", {"k": 1}, None],
            "cart": {"total": 9.5, "items": {"count": 2, "deep": {"x": 1}}},
            "empty": {},
        }
    )
    assert problems == []
    assert data["s"] == "x" * 255
    assert (data["n"], data["f"], data["b"]) == (3, 1.5, False)
    assert "none" not in data and "nan" not in data and "empty" not in data
    assert data["big"] == str(2**70)
    assert data["arr"] == list(range(20))
    assert data["mixed"] == ["a", '{"k":1}']
    assert data["cart_total"] == 9.5
    assert data["cart_items_count"] == 2
    assert data["cart_items_deep"] == '{"x":1}'


def test_two_keys_that_become_one_are_a_problem():
    data, problems = event_data({"Plan": "a", "plan": "b"})
    assert data == {"plan": "a"}
    assert len(problems) == 1
    assert "'Plan' would both become 'plan'" in str(problems[0])


def test_track_becomes_a_named_event_with_sdk_properties():
    record = {
        "type": "track",
        "event": "pw_siteopened",
        "userId": "u-1",
        "anonymousId": "anon",
        "timestamp": "2026-11-23T10:00:00.000Z",
        "properties": {"Src Medium": "push", "pushwooshid": "u-1"},
        "context": {
            "piano": {"idclient": "visitor-9"},
            "ip": "203.0.113.7",
            "userAgent": "Mozilla/5.0",
            "campaign": {"name": "spring", "medium": "email"},
        },
    }
    out = outgoing(record)
    assert out.visitor_id == "visitor-9"
    assert out.user_agent == "Mozilla/5.0" and out.ip == "203.0.113.7"
    assert out.event["name"] == "pw_siteopened"
    # As piano-analytics-js 6.17 sends them: keys as given, device time in epoch
    # seconds (tests/contracts/piano/collect-piano-analytics-js-6.17.0.json).
    assert out.event["data"] == {
        "Src Medium": "push",
        "pushwooshid": "u-1",
        "event_collection_platform": "connectord",
        "event_collection_version": "9.9",
        "device_timestamp_utc": 1795428000.0,
        "user_id": "u-1",
        "user_recognition": False,
        "src_medium": "email",
        "src_campaign": "spring",
        "visitor_privacy_mode": "optin",
        "visitor_privacy_consent": True,
    }
    normalised = outgoing(record, normalise=True).event["data"]
    assert normalised["src_medium"] == "push" and "Src Medium" not in normalised


def test_device_time_is_epoch_seconds_with_milliseconds_and_user_fields_follow_the_sdk():
    record = {
        "type": "track",
        "event": "buy",
        "userId": "user-42",
        "timestamp": "2026-12-07T01:49:07.068Z",
        "context": {"piano": {"user_category": "premium"}},
    }
    data = outgoing(record).event["data"]
    assert data["device_timestamp_utc"] == 1796608147.068
    assert isinstance(data["device_timestamp_utc"], float)
    assert (data["user_id"], data["user_category"], data["user_recognition"]) == (
        "user-42",
        "premium",
        False,
    )
    anonymous = outgoing({"type": "track", "event": "buy", "anonymousId": "a"}).event["data"]
    assert not {"user_id", "user_category", "user_recognition"} & set(anonymous)


def test_visitor_id_falls_back_to_user_then_anonymous_id():
    assert visitor_id({"userId": "u", "anonymousId": "a"}, "optin") == "u"
    assert visitor_id({"anonymousId": "a", "context": {"piano": {}}}, "optin") == "a"
    assert visitor_id({"userId": "u", "context": {"piano": {"idclient": ""}}}, "optin") == "u"
    assert visitor_id({"userId": "u"}, "optout") == "OPT-OUT"
    assert visitor_id({"userId": "u"}, "no-consent") == "no-consent"
    assert visitor_id({"userId": "u"}, "no-storage") == "no-storage"
    assert visitor_id({"userId": "u"}, "exempt") == "u"


def test_page_and_screen_become_page_display():
    out = outgoing(
        {
            "type": "page",
            "anonymousId": "a",
            "name": "Pricing",
            "category": "Docs",
            "properties": {"url": "https://x.test/p", "referrer": "https://x.test/", "plan": 1},
        }
    )
    assert out.event["name"] == "page.display"
    data = out.event["data"]
    assert data["page"] == "Pricing"
    assert data["page_chapter1"] == "Docs"
    assert data["page_url"] == "https://x.test/p"
    assert data["previous_url"] == "https://x.test/"
    assert data["plan"] == 1
    assert "url" not in data and "referrer" not in data
    screen = outgoing({"type": "screen", "userId": "u", "name": "Home"})
    assert screen.event["name"] == "page.display"
    assert screen.event["data"]["page"] == "Home"


def test_page_name_falls_back_to_context_title():
    out = outgoing({"type": "page", "userId": "u", "context": {"page": {"title": "T", "url": "U"}}})
    assert out.event["data"]["page"] == "T"
    assert out.event["data"]["page_url"] == "U"


@pytest.mark.parametrize("kind", ["identify", "group", "alias", "audience", "metric"])
def test_other_types_are_rejected_with_a_reason(kind):
    with pytest.raises(RecordRejected, match=f"not '{kind}'"):
        outgoing({"type": kind, "userId": "u"})


def test_invalid_keys_reject_the_record_or_are_dropped():
    record = {"type": "track", "event": "buy", "userId": "u", "properties": {"m_x": 1, "ok": 2}}
    with pytest.raises(RecordRejected) as err:
        outgoing(record, normalise=True)
    assert "property 'm_x' starts with 'm_'" in str(err.value)
    assert 'invalid_keys = "drop"' in str(err.value)
    out = outgoing(record, drop=True, normalise=True)
    assert out.event["data"]["ok"] == 2
    assert "m_x" not in out.event["data"]
    assert [p.key for p in out.dropped_keys] == ["m_x"]


def test_keys_as_given_are_refused_only_beyond_forty_characters():
    long = "K" * 41
    record = {"type": "track", "event": "buy", "properties": {"m_x": 1, "Nice Key": 2, long: 3}}
    with pytest.raises(RecordRejected, match="longer than 40 characters"):
        outgoing(record)
    data = outgoing(record, drop=True).event["data"]
    assert data["m_x"] == 1 and data["Nice Key"] == 2 and long not in data


def test_optout_keeps_only_privacy_and_timing_properties():
    data = {"device_timestamp_utc": 1, "connection_type": "wifi", "user_id": "u", "plan": "p"}
    assert apply_privacy("buy", data, "optout") == {
        "device_timestamp_utc": 1,
        "connection_type": "wifi",
        "visitor_privacy_mode": "optout",
        "visitor_privacy_consent": False,
    }
    assert apply_privacy("buy", {"ch_ua_platform": "x", "plan": 1}, "no-consent") == {
        "ch_ua_platform": "x",
        "visitor_privacy_mode": "no-consent",
        "visitor_privacy_consent": False,
    }


def test_exempt_sends_page_and_click_events_with_its_allow_list():
    assert apply_privacy("buy", {"page": "x"}, "exempt") is None
    kept = apply_privacy(
        "page.display", {"page": "x", "user_id": "u", "geo_city": "Oslo"}, "exempt"
    )
    assert kept == {
        "page": "x",
        "geo_city": "Oslo",
        "visitor_privacy_mode": "exempt",
        "visitor_privacy_consent": False,
    }
    assert apply_privacy("click.action", {"click": "b"}, "exempt")["click"] == "b"


def test_no_storage_keeps_everything_without_consent():
    kept = apply_privacy("buy", {"plan": "p"}, "no-storage")
    assert kept == {
        "plan": "p",
        "visitor_privacy_mode": "no-storage",
        "visitor_privacy_consent": False,
    }


def test_record_can_carry_its_own_privacy_mode():
    record = {
        "type": "track",
        "event": "buy",
        "userId": "u",
        "properties": {"plan": "p"},
        "context": {"piano": {"privacy_mode": "optout", "idclient": "v"}},
    }
    out = outgoing(record)
    assert out.visitor_id == "OPT-OUT"
    assert "plan" not in out.event["data"]
    assert outgoing({**record, "event": "buy"}, mode="optout").visitor_id == "OPT-OUT"
    record["context"]["piano"]["privacy_mode"] = "exempt"
    assert outgoing(record) is None
    record["context"]["piano"]["privacy_mode"] = "sometimes"
    with pytest.raises(RecordRejected, match="not a Piano privacy mode"):
        outgoing(record)
