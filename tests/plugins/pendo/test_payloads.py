"""Records → Pendo payloads, and Pendo's name and size rules (pure functions)."""

from __future__ import annotations

import pytest

from connectord import RecordRejected
from connectord.plugins.pendo.payloads import (
    Fixes,
    event_name,
    metadata_target,
    metadata_values,
    name_problem,
    pendo_name,
    split_fields,
    track_payload,
)

from .conftest import track


@pytest.mark.parametrize("name", ["plan", "Plan_2", "_private", "a" * 32, "orderId"])
def test_valid_property_names(name):
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Order ID", "letters, digits and underscores"),
        ("product-id", "letters, digits and underscores"),
        ("2fa", "not starting with a digit"),
        ("", "letters, digits and underscores"),
        ("__x__", "reserved"),
        ("a" * 33, "33 characters; the limit is 32"),
        ("prix_€", "letters, digits and underscores"),
    ],
)
def test_invalid_property_names(name, why):
    assert why in name_problem(name)


def test_metadata_names_have_no_length_limit():
    assert name_problem("a" * 40, max_length=None) is None
    assert name_problem("a b", max_length=None) is not None


@pytest.mark.parametrize(
    ("name", "fixed"),
    [
        ("plan", "plan"),
        ("Order ID", "Order_ID"),
        ("product-id", "product_id"),
        ("300", "_300"),  # Pendo's own advice (support.pendo.io 360031832072)
        ("2fa", "_2fa"),
        ("__x__", "x"),
        ("prix_€", "prix__"),
        ("", "_"),
        ("a" * 33, None),  # no rename keeps the meaning: dropped
    ],
)
def test_pendo_names(name, fixed):
    assert pendo_name(name) == fixed


def test_oversized_properties_are_sent_and_reported():
    """Pendo keeps the event and shows "event properties JSON too large"."""
    fixes = Fixes()
    payload = track_payload(track(properties={"k": "x" * 505}), fixes=fixes)
    assert payload["properties"] == {"k": "x" * 505}
    assert fixes.too_large == 513 and fixes.names == []
    fixes = Fixes()
    track_payload(track(properties={"k": "x" * 504}), fixes=fixes)
    assert fixes.too_large is None


def test_property_names_pendo_cannot_display_are_renamed_or_dropped():
    fixes = Fixes()
    properties = {"Order ID": 1, "Order_ID": 2, "ok": 3, "b" * 40: 4, "2fa": True}
    payload = track_payload(track(properties=properties), fixes=fixes)
    assert payload["properties"] == {"Order_ID": 2, "ok": 3, "_2fa": True}
    assert fixes.names == [
        ("event property", "Order ID", None),  # Order_ID is taken: never overwritten
        ("event property", "b" * 40, None),
        ("event property", "2fa", "_2fa"),
    ]


def test_track_payload_follows_pendos_contract():
    record = track(
        context={
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0",
            "page": {"url": "https://example.com/signup", "title": "Sign Up"},
            "groupId": "acme",
            "library": {"name": "analytics-python"},
        }
    )
    assert track_payload(record) == {
        "type": "track",
        "event": "Signed Up",
        "visitorId": "u1",
        "accountId": "acme",
        "timestamp": 1795428000000,
        "properties": {"plan": "pro"},
        "context": {
            "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0",
            "url": "https://example.com/signup",
            "title": "Sign Up",
        },
    }


def test_track_payload_without_account_or_context():
    payload = track_payload(track(properties=None))
    assert "accountId" not in payload
    assert payload["context"] == {}
    assert payload["properties"] == {}


def test_track_payload_needs_a_visitor_and_a_readable_timestamp():
    with pytest.raises(RecordRejected, match="no userId"):
        track_payload({"type": "track", "anonymousId": "a1", "event": "X"})
    with pytest.raises(RecordRejected, match="is not a date"):
        track_payload(track(timestamp="yesterday"))
    assert track_payload(track(timestamp=None), now_ms=1_800_000_000_000)["timestamp"] == (
        1_800_000_000_000
    )


def test_pages_and_screens_are_named_like_segment_does():
    assert event_name({"type": "page", "name": "Pricing"}) == "Viewed Pricing Page"
    assert event_name({"type": "page"}) == "Loaded a Page"
    assert event_name({"type": "screen", "name": "Home"}) == "Viewed Home Screen"
    assert event_name({"type": "screen", "name": " "}) == "Loaded a Screen"


def test_page_url_and_title_come_from_page_properties():
    payload = track_payload(
        {
            "type": "page",
            "userId": "u1",
            "name": "Pricing",
            "properties": {"url": "https://example.com/pricing", "title": "Pricing"},
            "context": {"page": {"url": "https://example.com/old", "referrer": "x"}},
            "timestamp": "2026-11-23T10:00:00Z",
        }
    )
    assert payload["event"] == "Viewed Pricing Page"
    assert payload["context"] == {"url": "https://example.com/pricing", "title": "Pricing"}


def test_metadata_values_flatten_nested_traits():
    traits = {
        "id": "u1",
        "email": "a@example.com",
        "address": {"city": "Lyon", "geo": {"lat": 45.7}},
        "roles": ["admin", "billing"],
        "nickname": None,
        "active": True,
    }
    assert metadata_values(traits) == {
        "email": "a@example.com",
        "address_city": "Lyon",
        "address_geo_lat": 45.7,
        "roles": ["admin", "billing"],
        "active": True,
    }
    assert metadata_values(None) == {}


def test_metadata_names_are_fixed_and_unstorable_values_dropped():
    fixes = Fixes()
    values = metadata_values({"First Name": "Ada", "items": [{"a": 1}], "300": 1}, fixes)
    assert values == {"First_Name": "Ada", "_300": 1}
    assert fixes.names == [
        ("metadata value", "items", None),
        ("metadata field", "First Name", "First_Name"),
        ("metadata field", "300", "_300"),
    ]
    with pytest.raises(RecordRejected, match="traits must be an object"):
        metadata_values("plain")


def test_metadata_target():
    assert metadata_target({"type": "identify", "userId": "u1"}) == ("visitor", "u1")
    assert metadata_target({"type": "group", "userId": "u1", "groupId": 7}) == ("account", "7")
    with pytest.raises(RecordRejected, match="groupId"):
        metadata_target({"type": "group", "userId": "u1"})


def test_split_fields_by_group():
    assert split_fields({"a": 1, "crm_tier": "gold"}, frozenset({"crm_tier"})) == {
        "agent": {"a": 1},
        "custom": {"crm_tier": "gold"},
    }
    assert split_fields({}, frozenset()) == {}
