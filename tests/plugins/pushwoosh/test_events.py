"""Records as Pushwoosh events (pure)."""

from __future__ import annotations

from connectord.plugins.pushwoosh.events import attributes_of, device_type_of, event_of


def test_track_screen_and_page_events():
    track = event_of(
        {"type": "track", "userId": "u", "event": "Buy", "timestamp": "1970-01-01T00:01:00Z"},
        "Screen Viewed",
        "Page Viewed",
    )
    assert (track.name, track.user, track.attributes, track.timestamp) == ("Buy", "u", {}, 60)
    page = event_of(
        {"type": "page", "userId": "u", "name": "Home", "category": "Docs", "properties": {}},
        "Screen Viewed",
        "Page Viewed",
    )
    assert (page.name, page.attributes) == ("Page Viewed", {"name": "Home", "category": "Docs"})


def test_attributes_are_flat_values():
    assert attributes_of(
        {"a": 1, "b": None, "c": {"y": 2, "x": 1}, "d": [1, None, {"k": True}], "e": "s"}
    ) == {"a": 1, "c": '{"x":1,"y":2}', "d": [1, '{"k":true}'], "e": "s"}
    assert attributes_of(None) == {}


def test_platform_from_the_context():
    assert device_type_of({"pushwoosh": {"platform_id": 17}}) == 17
    assert device_type_of({"os": {"name": "iOS"}}) == 1
    assert device_type_of({"device": {"type": "android"}}) == 3
    assert device_type_of({"device": {"type": "toaster"}}) is None


def test_batch_items():
    event = event_of(
        {
            "type": "track",
            "userId": "u",
            "event": "Buy",
            "timestamp": "2026-11-20T10:00:00Z",
            "context": {"device": {"id": "h", "type": "ios"}},
        },
        "S",
        "P",
    )
    assert event.batch_item("ABCDE-12345") == {
        "user_id": "u",
        "app_code": "ABCDE-12345",
        "name": "Buy",
        "attributes": {},
        "device_id": "h",
        "device_platform": "ios",
        "timestamp": "2026-11-20T10:00:00.000Z",
    }
