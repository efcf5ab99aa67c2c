"""Record builders make valid records; assert_valid_records names what is wrong."""

from __future__ import annotations

import pytest

from connectord.records import problem
from connectord.testing import assert_valid_records, audience, identify, metric, page, track


@pytest.mark.parametrize(
    "record",
    [
        track(),
        track("Signed Up", user_id=None, anonymousId="anon-1"),
        identify(traits={"email": "a@example.com"}),
        page("Pricing"),
        audience("aud-9", "remove", audience={"name": "VIP"}),
        metric("push_stats", {"sends": 3}, dimensions={"platform": "ios"}),
    ],
)
def test_builders_make_valid_records(record):
    assert problem(record) is None
    assert record["messageId"]
    assert record["timestamp"].endswith("Z")


def test_message_ids_differ_with_content_and_repeat_with_it():
    assert track(properties={"n": 1})["messageId"] == track(properties={"n": 1})["messageId"]
    assert track(properties={"n": 1})["messageId"] != track(properties={"n": 2})["messageId"]


def test_builders_keep_given_fields():
    record = track("Order Completed", "u-7", {"total": 9.5}, context={"ip": "192.0.2.1"})
    assert record == {
        "type": "track",
        "userId": "u-7",
        "event": "Order Completed",
        "properties": {"total": 9.5},
        "context": {"ip": "192.0.2.1"},
        "timestamp": "2026-01-15T10:00:00.000Z",
        "messageId": record["messageId"],
    }


def test_assert_valid_records_lists_every_problem_by_index():
    bad = [track(), {"type": "track", "userId": "u"}, {"type": "nope"}]
    with pytest.raises(AssertionError) as caught:
        assert_valid_records(bad)
    text = str(caught.value)
    assert "[1] track record needs an event name" in text
    assert "[2] unknown record type 'nope'" in text
    assert "[0]" not in text
