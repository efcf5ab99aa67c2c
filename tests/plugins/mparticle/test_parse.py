"""Pure parsing of Events API and Webhook batches into records."""

from __future__ import annotations

import copy

import pytest

from connectord import IngestError
from connectord.plugins.mparticle.common import Settings
from connectord.plugins.mparticle.parse import parse_events_request, parse_webhook_request
from connectord.records import problem, stable_message_id

from .conftest import custom_event, events_batch


def parse(batch, **settings):
    return parse_events_request(batch, Settings(**settings), bulk=False)


def test_batch_becomes_identify_then_events_in_order():
    parsed = parse(events_batch())
    assert parsed.errors == []
    kinds = [r["type"] for r in parsed.records]
    assert kinds == ["identify", "track", "screen"]
    for record in parsed.records:
        assert problem(record) is None
        assert record["userId"] == "u-1234"
    identify, track, screen = parsed.records
    assert identify["traits"] == {"$firstname": "Jane", "$age": "31", "plan": "gold"}
    assert track["event"] == "click"
    assert track["properties"] == {"button_name": "home"}
    assert track["timestamp"] == "2023-11-14T22:13:20.000Z"
    assert screen["name"] == "Checkout"
    assert screen["timestamp"] == "2023-11-14T22:13:21.000Z"


def test_context_carries_device_app_and_mparticle_ids():
    track = parse(events_batch()).records[1]
    context = track["context"]
    assert context["device"] == {
        "id": "6b1cd5d6-0a3c-4b41-9e6c-0d2bf7c3a1f1",
        "advertisingId": "613ff528-afd1-4c1b-9628-e6ac02ccbfff",
        "token": "abcdef0123",
        "model": "iPhone15,2",
        "type": "ios",
    }
    assert context["os"] == {"name": "iOS", "version": "17.2"}
    assert context["app"] == {"name": "Shop", "version": "1.0.1"}
    assert context["ip"] == "172.217.12.142"
    assert context["locale"] == "en-US"
    assert context["mparticle"]["mpid"] == "7346244611012968789"
    assert context["mparticle"]["identities"] == {
        "customer_id": "u-1234",
        "email": "jane@example.com",
    }
    assert context["mparticle"]["custom_event_type"] == "navigation"


def test_message_ids_are_stable_and_come_from_mparticle_ids():
    first = parse(events_batch()).records
    again = parse(events_batch()).records
    assert [r["messageId"] for r in first] == [r["messageId"] for r in again]
    assert first[1]["messageId"] == stable_message_id(
        "mparticle", "event", "e8335d31-2031-4bff-afec-17ffc1784697"
    )
    # the screen view has no id of its own: the batch's source_request_id and its index
    assert first[2]["messageId"] == stable_message_id(
        "mparticle", "source_request_id:7fa67be4-f83a-429f-9d73-38b660c50825", "event", 1
    )
    assert len({r["messageId"] for r in first}) == 3


def test_without_any_mparticle_id_the_framework_assigns_message_ids():
    batch = events_batch(source_request_id=None)
    for event in batch["events"]:
        event["data"].pop("source_message_id", None)
    assert all("messageId" not in r for r in parse(batch).records)


@pytest.mark.parametrize("key", ["customer_id", "customerid", "CustomerID"])
def test_customer_id_is_accepted_in_every_spelling(key):
    batch = events_batch(user_identities={key: "c-9"})
    assert {r["userId"] for r in parse(batch).records} == {"c-9"}


def test_user_id_falls_back_to_mpid_then_to_the_device():
    batch = events_batch(user_identities={"email": "x@example.com"})
    assert parse(batch).records[0]["userId"] == "7346244611012968789"
    batch["mpid"] = None
    record = parse(batch).records[0]
    assert "userId" not in record
    assert record["anonymousId"] == "6b1cd5d6-0a3c-4b41-9e6c-0d2bf7c3a1f1"
    assert problem(record) is None


def test_user_id_identity_is_configurable():
    assert parse(events_batch(), user_id="email").records[0]["userId"] == "jane@example.com"
    assert parse(events_batch(), user_id="mpid").records[0]["userId"] == "7346244611012968789"
    without = parse(
        events_batch(user_identities={"customer_id": "u"}, mpid=None), mpid_fallback=False
    )
    assert without.records[0]["userId"] == "u"


def test_a_batch_that_names_nobody_is_refused_with_a_reason():
    batch = events_batch(user_identities={}, mpid=None, device_info={})
    parsed = parse(batch)
    assert parsed.records == []
    assert parsed.errors == [
        "batch: the batch names no user: set user_identities.customer_id, mpid or a device id "
        "(device_info.ios_idfv / android_uuid, mp_deviceid)"
    ]


def test_one_bad_event_does_not_take_its_neighbours_down():
    batch = events_batch()
    batch["events"].insert(1, {"data": {"event_name": "oops"}})
    batch["events"].append(custom_event("after"))
    parsed = parse(batch)
    assert parsed.errors == [
        'batch, event 1: Required event field "event_type" is missing or empty.'
    ]
    assert [r.get("event") or r.get("name") for r in parsed.records[1:]] == [
        "click",
        "Checkout",
        "after",
    ]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            {"event_type": "custom_event", "data": {"custom_event_type": "other"}},
            'Required event field "event_name" is missing or empty.',
        ),
        (
            {"event_type": "custom_event", "data": {"event_name": "x"}},
            'Required event field "custom_event_type" is missing or empty.',
        ),
        (
            {"event_type": "custom_event", "data": {"event_name": "x", "custom_event_type": "bad"}},
            "\"custom_event_type\" 'bad' is not one of mParticle's types.",
        ),
        (
            {"event_type": "screen_view", "data": {}},
            'Required event field "screen_name" is missing or empty.',
        ),
        ({"event_type": "teleport", "data": {}}, 'Unknown event_type "teleport".'),
        (
            {"event_type": "commerce_event", "data": {}},
            'A commerce_event needs "product_action", "promotion_action" or "product_impressions".',
        ),
        ("click", "an event must be a JSON object; found a string"),
        (
            custom_event(timestamp_unixtime_ms="yesterday"),
            '"timestamp_unixtime_ms" must be a Unix time in milliseconds',
        ),
        (
            custom_event(custom_attributes={"a": {"nested": 1}}),
            'custom_attributes "a" must be a string, number or boolean',
        ),
    ],
)
def test_invalid_events_are_explained(event, message):
    parsed = parse(events_batch(events=[event]))
    assert len(parsed.errors) == 1
    assert parsed.errors[0].endswith(message), parsed.errors[0]
    assert [r["type"] for r in parsed.records] == ["identify"]


def test_limits_long_names_are_truncated_long_values_refused():
    long_name = "n" * 300
    batch = events_batch(
        events=[
            custom_event(long_name, custom_attributes={"k" * 300: "v"}),
            custom_event("big", custom_attributes={"k": "v" * 4097}),
            custom_event("many", custom_attributes={f"a{i}": i for i in range(101)}),
        ]
    )
    parsed = parse(batch)
    track = parsed.records[1]
    assert track["event"] == "n" * 256
    assert list(track["properties"]) == ["k" * 256]
    assert len(parsed.errors) == 2
    assert "is 4097 characters long; the limit is 4096" in parsed.errors[0]
    assert "101 custom_attributes; an event may carry at most 100" in parsed.errors[1]


def test_user_attribute_limits_refuse_the_identify_but_keep_the_events():
    batch = events_batch(user_attributes={f"a{i}": "x" for i in range(101)})
    parsed = parse(batch)
    assert parsed.errors == [
        "batch, user_attributes: 101 user attributes; a batch may carry at most 100"
    ]
    assert [r["type"] for r in parsed.records] == ["track", "screen"]
    too_long = parse(events_batch(user_attributes={"list": ["x" * 513]}))
    assert "longer than 512 characters" in too_long.errors[0]
    too_many = parse(events_batch(user_attributes={"list": ["x"] * 1001}))
    assert "has 1001 entries; the limit is 1000" in too_many.errors[0]


def test_deleted_attributes_and_user_tags():
    batch = events_batch(
        user_attributes={"vip": None, "colors": ["red", 2]},
        deleted_user_attributes=["old_plan"],
        events=[],
    )
    (identify,) = parse(batch).records
    assert identify["traits"] == {"vip": True, "colors": ["red", "2"], "old_plan": None}


def test_user_attribute_change_events_become_identify():
    batch = events_batch(
        user_attributes={},
        events=[
            {
                "event_type": "user_attribute_change",
                "data": {"user_attribute_name": "plan", "new": "pro", "old": "free"},
            },
            {
                "event_type": "user_attribute_change",
                "data": {"user_attribute_name": "coupon", "new": None, "old": "X", "deleted": True},
            },
        ],
    )
    records = parse(batch).records
    assert [(r["type"], r["traits"]) for r in records] == [
        ("identify", {"plan": "pro"}),
        ("identify", {"coupon": None}),
    ]


def test_commerce_events_are_flattened():
    batch = events_batch(
        events=[
            {
                "event_type": "commerce_event",
                "data": {
                    "currency_code": "EUR",
                    "custom_attributes": {"channel": "app"},
                    "product_action": {
                        "action": "purchase",
                        "transaction_id": "T-1",
                        "total_amount": 31.5,
                        "tax_amount": "1.5",
                        "products": [
                            {"id": "sku-1", "name": "Shoe", "price": 10, "quantity": 2},
                            {
                                "id": "sku-2",
                                "name": "Sock",
                                "price": 11.5,
                                "quantity": 1,
                                "custom_attributes": {"size": "M"},
                            },
                        ],
                    },
                    "promotion_action": {
                        "action": "click",
                        "promotions": [{"id": "P1", "name": "Spring"}],
                    },
                },
            }
        ]
    )
    parsed = parse(batch)
    assert parsed.errors == []
    purchase, promotion = parsed.records[1:]
    assert purchase["event"] == "eCommerce - purchase"
    assert purchase["properties"] == {
        "action": "purchase",
        "transaction_id": "T-1",
        "revenue": 31.5,
        "currency": "EUR",
        "tax_amount": 1.5,
        "product_count": 2,
        "product_quantity": 3,
        "product_ids": ["sku-1", "sku-2"],
        "product_names": ["Shoe", "Sock"],
        "products": [
            {"id": "sku-1", "name": "Shoe", "price": 10, "quantity": 2},
            {
                "id": "sku-2",
                "name": "Sock",
                "price": 11.5,
                "quantity": 1,
                "attributes": {"size": "M"},
            },
        ],
        "channel": "app",
    }
    assert promotion["event"] == "eCommerce - promotion_click"
    assert promotion["properties"]["promotion_ids"] == ["P1"]
    assert purchase["messageId"] != promotion["messageId"]


def test_other_events_are_dropped_or_tracked_by_type():
    batch = events_batch(
        events=[
            {"event_type": "session_start", "data": {"session_uuid": "s-1"}},
            {
                "event_type": "application_state_transition",
                "data": {"application_transition_type": "application_foreground"},
            },
        ]
    )
    dropped = parse(batch)
    assert (dropped.ignored, [r["type"] for r in dropped.records]) == (2, ["identify"])
    tracked = parse(batch, other_events="track")
    assert [(r["event"], r["properties"]) for r in tracked.records[1:]] == [
        ("session_start", {}),
        ("application_state_transition", {"application_transition_type": "application_foreground"}),
    ]


def test_bulk_requests_keep_good_batches_next_to_bad_ones():
    good = events_batch()
    other = events_batch(user_identities={"customer_id": "u-2"}, source_request_id="r-2")
    parsed = parse_events_request(
        [good, "nonsense", {"environment": "staging"}, other], Settings(), bulk=True
    )
    assert parsed.errors == [
        "batch 1: a batch must be a JSON object; found a string",
        'batch 2: "environment" must be "production" or "development"; found \'staging\'',
    ]
    assert {r["userId"] for r in parsed.records} == {"u-1234", "u-2"}
    assert len(parsed.records) == 6


def test_request_shape_errors_raise():
    with pytest.raises(IngestError) as err:
        parse_events_request([events_batch()], Settings(), bulk=False)
    assert err.value.status == 400 and "v2/bulkevents" in err.value.message
    with pytest.raises(IngestError) as err:
        parse_events_request(events_batch(), Settings(), bulk=True)
    assert "array of batches" in err.value.message
    with pytest.raises(IngestError) as err:
        parse_events_request([{}] * 101, Settings(), bulk=True)
    assert err.value.message == "101 batches in one request; the limit is 100"


def test_batches_without_events_or_attributes_are_fine():
    assert parse({"environment": "development", "mpid": 1}).records == []
    assert parse({"mpid": 1}).errors == []


def test_webhook_output_with_identity_array():
    outbound = copy.deepcopy(events_batch())
    outbound["user_identities"] = [
        {"identity_type": "customer_id", "identity": "h.jekyll.md", "timestamp_unixtime_ms": 1},
        {"identity_type": "email", "identity": "h@example.com"},
    ]
    outbound["batch_id"] = 9182736
    outbound["timestamp_unixtime_ms"] = 1700000005000
    outbound["mp_deviceid"] = "c7ba-22"
    outbound["events"][1]["data"]["message_id"] = "521e0ae1-d4b3-45c4-9e53-2fe8f6d2a3ab"
    outbound["user_attributes"] = {"k": "v" * 5000}  # limits are the Events API's, not ours
    parsed = parse_webhook_request(outbound, Settings())
    assert parsed.errors == []
    identify, track, screen = parsed.records
    assert {r["userId"] for r in parsed.records} == {"h.jekyll.md"}
    assert identify["timestamp"] == "2023-11-14T22:13:25.000Z"
    assert screen["messageId"] == stable_message_id(
        "mparticle", "event", "521e0ae1-d4b3-45c4-9e53-2fe8f6d2a3ab"
    )
    assert identify["messageId"] == stable_message_id(
        "mparticle", "source_request_id:7fa67be4-f83a-429f-9d73-38b660c50825", "user_attributes"
    )
    assert track["context"]["mparticle"]["device_id"] == "c7ba-22"


def test_webhook_identity_array_errors_are_per_batch():
    parsed = parse_webhook_request(
        [
            {"user_identities": [{"identity": "x"}], "mpid": 1},
            {"mpid": 2, "user_attributes": {"a": 1}},
        ],
        Settings(),
    )
    assert parsed.errors == ['batch 0: user_identities[0] needs an "identity_type"']
    assert [r["userId"] for r in parsed.records] == ["2"]
