"""Pure conversions between records and My Vendor events."""

from __future__ import annotations

import pytest
from connectord import RecordRejected
from connectord.records import problem
from connectord.testing import identify, map_records, page, track

from connectord_myvendor.mapping import MyVendorRenameEvents, from_vendor_event, to_vendor_event


def test_track_becomes_an_event():
    event = to_vendor_event(track("Order Completed", "u-1", {"total": 3}))
    assert event["user_id"] == "u-1"
    assert event["name"] == "Order Completed"
    assert event["properties"] == {"total": 3}
    assert event["time"] == 1768471200000  # 2026-01-15T10:00:00Z


def test_identify_and_page_have_their_own_names():
    assert to_vendor_event(identify(traits={"plan": "pro"}))["name"] == "identify"
    assert to_vendor_event(page("Pricing"))["name"] == "page: Pricing"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": "group", "userId": "u", "groupId": "g"}, "found 'group'"),
        ({"type": "track", "event": "x"}, "needs userId or anonymousId"),
    ],
)
def test_unsupported_records_are_rejected_with_a_reason(record, reason):
    with pytest.raises(RecordRejected, match=reason):
        to_vendor_event(record)


def test_vendor_events_become_valid_records_with_stable_ids():
    event = {"id": 7, "user_id": 42, "name": "Signed Up", "occurred_at": "2026-01-01T00:00:07Z"}
    record = from_vendor_event(event)
    assert problem(record) is None
    assert record["userId"] == "42"
    assert record["timestamp"] == "2026-01-01T00:00:07.000Z"
    assert record["messageId"] == from_vendor_event(dict(event))["messageId"]


async def test_rename_events_mapping():
    records = [track("Order Completed"), track("Other"), identify()]
    renamed = await map_records(
        MyVendorRenameEvents, {"events": {"Order Completed": "purchase"}}, records
    )
    assert [r[0]["event"] for r in renamed[:2]] == ["purchase", "Other"]
    assert renamed[2] == [records[2]]
    dropped = await map_records(
        MyVendorRenameEvents, {"events": {}, "drop_unlisted": True}, records[:1]
    )
    assert dropped == [[]]
