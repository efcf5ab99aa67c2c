"""Records → Pendo payloads, and Pendo's name and size rules (pure functions)."""

from __future__ import annotations

import pytest

from connectord import RecordRejected
from connectord.plugins.pendo.payloads import (
    check_properties,
    event_name,
    metadata_target,
    metadata_values,
    name_problem,
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


def test_properties_at_most_512_bytes_of_json():
    assert check_properties({"k": "x" * 504}) == b'{"k":"' + b"x" * 504 + b'"}'
    with pytest.raises(RecordRejected, match="513 bytes of JSON; Pendo keeps at most 512"):
        check_properties({"k": "x" * 505})


def test_property_name_rejection_names_the_property():
    with pytest.raises(RecordRejected, match="event property name 'Order ID'"):
        track_payload(track(properties={"Order ID": 1}))


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


@pytest.mark.parametrize(
    ("traits", "why"),
    [
        ({"First Name": "Ada"}, "metadata field name 'First Name'"),
        ({"items": [{"a": 1}]}, "list of objects"),
        ("plain", "traits must be an object"),
    ],
)
def test_metadata_values_refuse_what_pendo_cannot_store(traits, why):
    with pytest.raises(RecordRejected, match=why):
        metadata_values(traits)


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
