"""Pure handling of Firehose partner messages: records and response messages."""

from __future__ import annotations

import pytest

from connectord import IngestError
from connectord.plugins.mparticle.common import Settings
from connectord.plugins.mparticle.firehose import account_secret, handle_message
from connectord.records import problem, stable_message_id

from .conftest import audience, firehose_events, membership_change, profile


def handle(message, **settings):
    return handle_message(message, Settings(**settings), setting_id="connectord_secret")


def test_event_processing_request_becomes_records_and_a_matching_response():
    result = handle(firehose_events())
    response = result.response
    assert response["type"] == "event_processing_response"
    assert response["id"] == "549c81be-ada5-468e-9f14-a5ace3919bab"
    assert response["firehose_version"] == "3.2.0"
    assert isinstance(response["timestamp_ms"], int)
    identify, track = result.parsed.records
    assert result.parsed.errors == []
    assert identify["type"] == "identify"
    assert identify["traits"] == {"$FirstName": "Brian", "$City": "Boca Raton", "visits": "12"}
    assert track == {
        "type": "track",
        "event": "Level_Achieved",
        "properties": {"level": "7"},
        "userId": "u-77",
        "context": {
            "device": {"id": "a0504a8cfa15ce2c", "token": "fcm-1", "type": "android"},
            "os": {"name": "android", "version": "14"},
            "app": {"name": "Shop"},
            "ip": "192.168.1.15",
            "mparticle": {
                "mpid": "-8190395463409384821",
                "identities": {"customer_id": "u-77"},
                "event_type": "custom_event",
                "custom_event_type": "other",
            },
        },
        "messageId": stable_message_id(
            "mparticle", "event", "687efc6c-f4bc-4016-bf10-1419308d4797"
        ),
        "timestamp": "2023-11-14T22:13:20.500Z",
    }
    assert all(problem(r) is None for r in result.parsed.records)


def test_hashed_identities_never_become_user_ids():
    message = firehose_events(
        user_identities=[{"type": "customer", "encoding": "sha256", "value": "ab" * 32}]
    )
    records = handle(message).parsed.records
    assert {r["userId"] for r in records} == {"-8190395463409384821"}  # mpid fallback
    assert "identities" not in records[0]["context"]["mparticle"]


@pytest.mark.parametrize(
    "message",
    [
        firehose_events(events=[]),
        firehose_events(events=None),
        {"type": "event_processing_request", "id": "v-1", "timestamp_ms": 1},
    ],
)
def test_verification_requests_are_answered_and_produce_nothing(message):
    result = handle(message)
    assert result.response["type"] == "event_processing_response"
    assert result.response["id"] == message["id"]
    assert result.parsed.records == [] and result.parsed.errors == []


def test_membership_verification_request():
    result = handle(membership_change([]))
    assert result.response == {
        "type": "audience_membership_change_response",
        "id": "1317071d-3342-4e1e-a691-84bd7e762bda",
        "timestamp_ms": result.response["timestamp_ms"],
        "firehose_version": "3.2.0",
        "suspend_subscription": False,
    }
    assert result.parsed.records == []


def test_firehose_event_types():
    message = firehose_events(
        user_attributes=None,
        user_attribute_lists={"tags": ["a", "b"]},
        events=[
            {"type": "screen_view", "id": "s1", "timestamp_ms": 1, "screen_name": "Home"},
            {
                "type": "product_action",
                "id": "p1",
                "timestamp_ms": 2,
                "action": "add_to_cart",
                "total_amount": 11,
                "currency_code": "USD",
                "products": [{"id": "id", "name": "name", "price": 10, "quantity": 1}],
                "attributes": {"event_attribute": "value"},
            },
            {
                "type": "promotion_action",
                "id": "pr1",
                "timestamp_ms": 3,
                "action": "view",
                "promotions": [{"id": "P", "name": "Promo", "creative": "c", "position": "top"}],
            },
            {
                "type": "impression",
                "id": "i1",
                "timestamp_ms": 4,
                "impressions": [{"impression_list_name": "search", "products": [{"id": "x"}]}],
            },
            {
                "type": "user_attribute_change",
                "id": "u1",
                "timestamp_ms": 5,
                "added": {"plan": "pro"},
                "removed": {"trial": "yes"},
            },
            {"type": "session_start", "id": "ss", "timestamp_ms": 6},
        ],
    )
    result = handle(message)
    assert result.parsed.errors == []
    assert result.parsed.ignored == 1
    records = result.parsed.records
    assert [(r["type"], r.get("event") or r.get("name")) for r in records] == [
        ("identify", None),
        ("screen", "Home"),
        ("track", "eCommerce - add_to_cart"),
        ("track", "eCommerce - promotion_view"),
        ("track", "eCommerce - impression"),
        ("identify", None),
    ]
    assert records[0]["traits"] == {"tags": ["a", "b"]}
    assert records[2]["properties"]["revenue"] == 11
    assert records[2]["properties"]["currency"] == "USD"
    assert records[2]["properties"]["event_attribute"] == "value"
    assert records[3]["properties"]["promotion_names"] == ["Promo"]
    assert records[4]["properties"]["impression_lists"] == ["search"]
    assert records[5]["traits"] == {"trial": None, "plan": "pro"}


def test_one_bad_firehose_event_keeps_the_others():
    message = firehose_events()
    message["events"].insert(0, {"type": "custom_event", "id": "x", "timestamp_ms": 1})
    message["events"].append({"type": "nope"})
    result = handle(message)
    assert result.parsed.errors == [
        'event 0 (custom_event): Required event field "name" is missing or empty.',
        "event 2 (nope): event \"type\" 'nope' is not a Firehose event type",
    ]
    assert [r["type"] for r in result.parsed.records] == ["identify", "track"]


def test_audience_subscription_is_answered_with_settings():
    message = {
        "type": "audience_subscription_request",
        "id": "416d5ae0-0000-4000-8000-000000000001",
        "timestamp_ms": 1,
        "firehose_version": "3.2.0",
        "audience_id": 1234,
        "audience_name": "New Users Low Engagement",
        "action": "add",
    }
    result = handle(message)
    assert result.response["type"] == "audience_subscription_response"
    assert result.response["audience_subscription_settings"] == {}
    assert result.subscription == {
        "audience_id": "1234",
        "name": "New Users Low Engagement",
        "action": "add",
    }
    assert result.parsed.records == []


def test_membership_changes_become_audience_records():
    message = membership_change(
        [
            profile("u-1", "11", audience("add"), audience("delete", 789, "Churn risk")),
            profile(
                "u-2",
                "22",
                audience(
                    "attribute_update",
                    user_attributes=[
                        {"key": "Some Key", "value": "9999999", "action": "upsert"},
                        {"key": "Churned", "action": "delete"},
                    ],
                ),
            ),
        ]
    )
    result = handle(message)
    assert result.parsed.errors == []
    add, remove, update = result.parsed.records
    assert add["type"] == "audience" and add["action"] == "add"
    assert add["audience"] == {"id": "456", "name": "High value", "source": "mparticle"}
    assert add["userId"] == "u-1"
    assert add["context"]["device"] == {"id": "hw-11"}
    assert add["timestamp"] == "2023-11-14T22:15:00.000Z"
    assert remove["action"] == "remove"
    assert remove["audience"]["id"] == "789"
    assert update["type"] == "identify"
    assert update["userId"] == "u-2"
    assert update["traits"] == {"Some Key": "9999999", "Churned": None}
    assert len({r["messageId"] for r in result.parsed.records}) == 3
    assert all(problem(r) is None for r in result.parsed.records)
    again = handle(message).parsed.records
    assert [r["messageId"] for r in again] == [r["messageId"] for r in result.parsed.records]


def test_bad_profiles_and_audiences_are_refused_one_by_one():
    message = membership_change(
        [
            {"mpid": None, "user_identities": [], "audiences": [audience("add")]},
            profile("u-1", "11", audience("add"), audience("explode"), {"audience_name": "x"}),
        ]
    )
    result = handle(message)
    assert result.parsed.errors == [
        "user_profiles[0]: the batch names no user: set user_identities.customer_id, mpid or a "
        "device id (device_info.ios_idfv / android_uuid, mp_deviceid)",
        'user_profiles[1].audiences[1]: "action" must be add, delete or attribute_update; '
        "found 'explode'",
        'user_profiles[1].audiences[2]: "audience_id" is missing',
    ]
    assert [(r["userId"], r["action"]) for r in result.parsed.records] == [("u-1", "add")]


def test_module_registration_declares_what_we_need():
    result = handle(
        {
            "type": "module_registration_request",
            "id": "r-1",
            "timestamp_ms": 1,
            "firehose_version": "3.2.0",
        }
    )
    response = result.response
    assert response["type"] == "module_registration_response"
    assert response["id"] == "r-1"
    assert response["permissions"]["allow_user_attributes"] is True
    assert {"type": "customer", "encoding": "raw", "required": False} in response["permissions"][
        "user_identities"
    ]
    setting = response["audience_processing_registration"]["account_settings"][0]
    assert setting["id"] == "connectord_secret" and setting["confidential"] is True
    assert "custom_event" in response["event_processing_registration"]["supported_event_types"]


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ([], "a Firehose message is a JSON object; found an array"),
        ({"type": "dsr_processing_request", "id": "x"}, "unsupported Firehose message type"),
        ({"type": "event_processing_request"}, 'a Firehose message needs an "id"'),
    ],
)
def test_unreadable_messages_raise(message, text):
    with pytest.raises(IngestError) as err:
        handle(message)
    assert err.value.status == 400
    assert text in err.value.message


def test_account_secret_is_read_from_account_settings():
    assert account_secret(firehose_events(), "connectord_secret") == "firehose-shared-secret"
    assert account_secret(firehose_events(), "other") is None
    assert account_secret({"account": "x"}, "connectord_secret") is None
    assert account_secret([], "connectord_secret") is None
