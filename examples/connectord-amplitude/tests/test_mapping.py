"""Records ↔ Amplitude events: pure functions."""

from __future__ import annotations

import pytest
from connectord import RecordRejected
from connectord.records import problem
from connectord.testing import identify, page, track

from connectord_amplitude.mapping import from_export_event, to_amplitude_event


def test_track_maps_ids_time_properties_revenue_and_context():
    record = track(
        "Order Completed",
        "user-42",
        {"revenue": 19.99, "quantity": 2, "productId": "sku-1", "coupon": "X"},
        anonymousId="device-abc",
        context={
            "ip": "192.0.2.1",
            "locale": "fr-FR",
            "os": {"name": "iOS", "version": "17.4"},
            "device": {"model": "iPhone15,2", "manufacturer": "Apple"},
            "location": {"country": "France", "city": "Paris"},
            "traits": {"plan": "pro"},
        },
    )
    assert to_amplitude_event(record) == {
        "user_id": "user-42",
        "device_id": "device-abc",
        "event_type": "Order Completed",
        "time": 1768471200000,
        "insert_id": record["messageId"],
        "event_properties": {"revenue": 19.99, "quantity": 2, "productId": "sku-1", "coupon": "X"},
        "revenue": 19.99,
        "quantity": 2,
        "productId": "sku-1",
        "user_properties": {"plan": "pro"},
        "ip": "192.0.2.1",
        "language": "fr-FR",
        "os_name": "iOS",
        "os_version": "17.4",
        "device_model": "iPhone15,2",
        "device_manufacturer": "Apple",
        "country": "France",
        "city": "Paris",
    }


def test_identify_sets_user_properties():
    event = to_amplitude_event(identify("user-42", {"email": "a@example.com"}))
    assert event["event_type"] == "$identify"
    assert event["user_properties"] == {"$set": {"email": "a@example.com"}}
    assert "event_properties" not in event


def test_page_and_screen_names():
    assert to_amplitude_event(page("Pricing", "user-42"))["event_type"] == "Viewed Pricing Page"
    nameless = {"type": "screen", "userId": "user-42"}
    assert to_amplitude_event(nameless)["event_type"] == "Loaded a Screen"


def test_device_id_can_come_from_context():
    event = to_amplitude_event(
        {
            "type": "track",
            "event": "E",
            "anonymousId": "a",
            "context": {"device": {"id": "dev-123"}},
        },
    )
    assert "user_id" not in event and event["device_id"] == "dev-123"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": "group", "userId": "user-1", "groupId": "g"}, "found 'group'"),
        ({"type": "alias", "userId": "user-1", "previousId": "p"}, "found 'alias'"),
        ({"type": "track", "event": "E", "userId": "abc"}, "at least 5 characters"),
        ({"type": "track", "event": "E", "anonymousId": "anonymous"}, "placeholder"),
        ({"type": "track", "event": "[Amplitude] Revenue", "userId": "user-1"}, "reserved"),
    ],
)
def test_records_amplitude_would_refuse_are_rejected_before_sending(record, reason):
    with pytest.raises(RecordRejected, match=reason):
        to_amplitude_event(record)


def test_a_lower_min_id_length_accepts_short_ids():
    assert (
        to_amplitude_event({"type": "track", "event": "E", "userId": "abc"}, min_id_length=3)[
            "user_id"
        ]
        == "abc"
    )


def test_long_strings_are_clipped_to_1024_characters():
    event = to_amplitude_event(track(properties={"note": "x" * 5000}))
    assert len(event["event_properties"]["note"]) == 1024


def test_export_events_become_valid_track_records_with_stable_ids():
    event = {
        "$insert_id": "ins-1",
        "amplitude_id": 123,
        "event_type": "Song Played",
        "event_time": "2026-01-10 05:59:30.123000",
        "server_upload_time": "2026-01-10 06:00:00.000000",
        "user_id": "user-1",
        "device_id": "device-1",
        "event_properties": {"song": "A"},
        "user_properties": {"plan": "pro"},
        "os_name": "ios",
        "country": "France",
        "session_id": 99,
    }
    record = from_export_event(event)
    assert problem(record) is None
    assert record["event"] == "Song Played"
    assert (record["userId"], record["anonymousId"]) == ("user-1", "device-1")
    assert record["timestamp"] == "2026-01-10T05:59:30.123Z"
    assert record["receivedAt"] == "2026-01-10T06:00:00.000Z"
    assert record["properties"] == {"song": "A"}
    assert record["context"]["traits"] == {"plan": "pro"}
    assert record["context"]["location"] == {"country": "France"}
    assert record["context"]["amplitude"] == {"amplitude_id": 123, "session_id": 99}
    assert record["messageId"] == from_export_event(dict(event))["messageId"]


def test_export_identify_becomes_identify_with_the_traits_it_sets():
    record = from_export_event(
        {
            "uuid": "u-1",
            "event_type": "$identify",
            "user_id": "user-1",
            "user_properties": {"$set": {"plan": "pro"}, "$setOnce": {"first": "2026"}},
        }
    )
    assert record["type"] == "identify"
    assert record["traits"] == {"plan": "pro", "first": "2026"}
    assert problem(record) is None
