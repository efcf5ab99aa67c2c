"""mParticle → Pushwoosh end to end: the real daemon, real SQLite, the official
``mparticle`` package and mParticle's Firehose/Webhook messages on one side, the
Pushwoosh emulator on the other."""

from __future__ import annotations

import base64
import uuid

import mparticle
import orjson
import pytest

from tests.plugins.pushwoosh.emulator import PushwooshEmulator

from .conftest import (
    FIREHOSE_SECRET,
    custom_event,
    events_batch,
    firehose_events,
    membership_change,
    profile,
)
from .conftest import audience as audience_entry

pytestmark = pytest.mark.e2e

CONNECTOR = "mparticle_to_pushwoosh"
APPLICATION = "ABCDE-12345"
ENV = {
    "MPARTICLE_API_KEY": "e2e-key",
    "MPARTICLE_API_SECRET": "e2e-secret",
    "MPARTICLE_FIREHOSE_SECRET": FIREHOSE_SECRET,
    "MPARTICLE_WEBHOOK_AUTHORIZATION": "Bearer e2e-webhook",
    "MPARTICLE_KINESIS_ACCESS_KEY": "e2e-kinesis-key",
    "PUSHWOOSH_API_TOKEN": "server-token-for-tests",
    "PUSHWOOSH_DEVICE_TOKEN": "device-token-for-tests",
}
SEGMENT = "High value (mParticle)"
# Pushwoosh tag type ids
INTEGER, STRING, LIST, DATE, BOOLEAN, DECIMAL = 1, 2, 3, 4, 5, 6


def config(pushwoosh_url: str) -> str:
    return f"""
[connectors.{CONNECTOR}]
mapping = [{{ type = "mparticle.to_pushwoosh" }}]
delivery = {{ retry_initial = 0.2, retry_max = 2 }}

[connectors.{CONNECTOR}.source]
type = "mparticle.http"
api_key = "${{MPARTICLE_API_KEY}}"
api_secret = "${{MPARTICLE_API_SECRET}}"
firehose_secret = "${{MPARTICLE_FIREHOSE_SECRET}}"
webhook_authorization = "${{MPARTICLE_WEBHOOK_AUTHORIZATION}}"
kinesis_access_key = "${{MPARTICLE_KINESIS_ACCESS_KEY}}"

[connectors.{CONNECTOR}.destination]
type = "pushwoosh"
application = "{APPLICATION}"
api_token = "${{PUSHWOOSH_API_TOKEN}}"
device_token = "${{PUSHWOOSH_DEVICE_TOKEN}}"
base_url = "{pushwoosh_url}"
events_url = "{pushwoosh_url}"
poll_interval = 0.05
"""


@pytest.fixture
def pushwoosh(emulator_server) -> PushwooshEmulator:
    emulator = PushwooshEmulator(
        application=APPLICATION,
        api_token=ENV["PUSHWOOSH_API_TOKEN"],
        device_token=ENV["PUSHWOOSH_DEVICE_TOKEN"],
        require_known_events=True,
    )
    emulator.define_events("Hello World", "Screen Viewed", "eCommerce - purchase", "click")
    emulator.url = emulator_server(emulator).url
    return emulator


@pytest.fixture
def daemon(connectord_daemon, pushwoosh):
    return connectord_daemon(config(pushwoosh.url), env=ENV)


def sdk(daemon) -> mparticle.EventsApi:
    configuration = mparticle.Configuration()
    configuration.host = f"{daemon.url}/ingest/{CONNECTOR}/v2"
    configuration.api_key = ENV["MPARTICLE_API_KEY"]
    configuration.api_secret = ENV["MPARTICLE_API_SECRET"]
    return mparticle.EventsApi(configuration)


def sdk_batch(customer_id: str, idfv: str, **attributes) -> mparticle.Batch:
    batch = mparticle.Batch()
    batch.environment = "production"
    identities = mparticle.UserIdentities()
    identities.customerid = customer_id
    identities.email = f"{customer_id}@example.com"
    batch.user_identities = identities
    device = mparticle.DeviceInformation()
    device.platform = "iOS"
    device.ios_idfv = idfv
    batch.device_info = device
    batch.user_attributes = attributes
    screen = mparticle.ScreenViewEvent()
    screen.screen_name = "Home"
    purchase = mparticle.CommerceEvent(mparticle.ProductAction("purchase"))
    purchase.product_action.transaction_id = "T-1"
    purchase.product_action.total_amount = 25.5
    purchase.product_action.products = [
        mparticle.Product(id="sku-1", name="Shoe", price=12.75, quantity=2)
    ]
    purchase.currency_code = "EUR"
    batch.events = [
        mparticle.SessionStartEvent(),
        mparticle.AppEvent("Hello World", "navigation", custom_attributes={"k": "v", "n": "3"}),
        screen,
        purchase,
    ]
    return batch


def test_official_sdk_batches_reach_pushwoosh_as_typed_tags_and_events(daemon, pushwoosh):
    api = sdk(daemon)
    idfv = str(uuid.uuid4())
    attributes = {
        "$firstname": "Ann",
        "$age": "31",
        "plan": "trial",
        "score": 7,
        "vip": "true",
        "ltv": "99.5",
        "signup": "2021-06-01",
        "colors": ["red", "blue"],
    }
    _, status, _ = api.upload_events_with_http_info(sdk_batch("c-1", idfv, **attributes))
    assert status == 202
    _, status, _ = api.bulk_upload_events_with_http_info(
        [sdk_batch("c-2", str(uuid.uuid4()), plan="pro"), sdk_batch("c-3", str(uuid.uuid4()))]
    )
    assert status == 202

    daemon.wait_for(lambda: len(pushwoosh.events_of("c-3")) == 3, message="c-3's events")
    daemon.wait_for(lambda: len(pushwoosh.events_of("c-1")) == 3, message="c-1's events")
    daemon.wait_for(lambda: pushwoosh.tags_of("c-1"), message="c-1's tags")
    assert pushwoosh.tags_of("c-1") == {
        "First Name": "Ann",
        "Age": 31,
        "plan": "trial",
        "score": 7,
        "vip": True,
        "ltv": 99.5,
        "signup": "2021-06-01 00:00",
        "colors": ["red", "blue"],
    }
    assert {name: pushwoosh.tag_type(name) for name in pushwoosh.tags_of("c-1")} == {
        "First Name": STRING,
        "Age": INTEGER,
        "plan": STRING,
        "score": INTEGER,
        "vip": BOOLEAN,
        "ltv": DECIMAL,
        "signup": DATE,
        "colors": LIST,
    }
    daemon.wait_for(lambda: pushwoosh.tags_of("c-2"), message="c-2's tags")
    assert pushwoosh.tags_of("c-2") == {"plan": "pro"}

    events = {e["event"]: e for e in pushwoosh.events_of("c-1")}
    assert set(events) == {"Hello World", "Screen Viewed", "eCommerce - purchase"}
    hello = events["Hello World"]
    assert hello["attributes"] == {"k": "v", "n": 3}
    assert hello["hwid"] == idfv
    assert hello["device_type"] == 1  # iOS
    assert isinstance(hello["timestampUTC"], int)
    assert events["Screen Viewed"]["attributes"] == {"name": "Home"}
    assert events["eCommerce - purchase"]["attributes"] == {
        "action": "purchase",
        "transaction_id": "T-1",
        "revenue": 25.5,
        "currency": "EUR",
        "product_count": 1,
        "product_quantity": 2,
        "product_ids": ["sku-1"],
        "product_names": ["Shoe"],
    }
    assert daemon.stop() == 0


def post_firehose(daemon, message):
    return daemon.post(f"/ingest/{CONNECTOR}/firehose", message)


def members(pushwoosh) -> set[str] | None:
    return pushwoosh.members_of(SEGMENT) if SEGMENT in pushwoosh.filter_names() else None


def test_firehose_audience_flow_keeps_the_segment_in_step(daemon, pushwoosh):
    # mParticle's periodic verification calls and module registration
    for message in (firehose_events(events=[]), membership_change([])):
        status, body = post_firehose(daemon, message)
        assert status == 200
        assert body["type"] == message["type"].replace("_request", "_response")
        assert body["id"] == message["id"]
    status, body = daemon.post(
        f"/ingest/{CONNECTOR}/firehose",
        {"type": "module_registration_request", "id": "reg-1", "timestamp_ms": 1},
        {"Authorization": f"Bearer {FIREHOSE_SECRET}"},
    )
    assert (status, body["type"], body["id"]) == (200, "module_registration_response", "reg-1")

    # 1. the customer connects the audience: no members yet
    subscription = {
        "type": "audience_subscription_request",
        "id": "a0000000-0000-4000-8000-000000000001",
        "timestamp_ms": 1700000000000,
        "firehose_version": "3.2.0",
        "account": {"account_id": 1, "account_settings": {"connectord_secret": FIREHOSE_SECRET}},
        "audience_id": 456,
        "audience_name": "High value",
        "action": "add",
    }
    status, body = post_firehose(daemon, subscription)
    assert (status, body["type"]) == (200, "audience_subscription_response")
    assert body["audience_subscription_settings"] == {}
    assert members(pushwoosh) is None

    # 2. two users join
    status, body = post_firehose(
        daemon,
        membership_change(
            [
                profile("u-1", "101", audience_entry("add")),
                profile("u-2", "102", audience_entry("add")),
            ],
            message_id="b0000000-0000-4000-8000-000000000002",
        ),
    )
    assert (status, body["type"], body["suspend_subscription"]) == (
        200,
        "audience_membership_change_response",
        False,
    )
    daemon.wait_for(lambda: members(pushwoosh) == {"u-1", "u-2"}, message="both members")

    # 3. an attribute update for a member: tags change, membership does not
    update = audience_entry(
        "attribute_update",
        user_attributes=[
            {"key": "Some Key", "value": "9999999", "action": "upsert"},
            {"key": "Churned", "action": "delete"},
        ],
    )
    status, _ = post_firehose(
        daemon,
        membership_change(
            [profile("u-1", "101", update)], message_id="c0000000-0000-4000-8000-000000000003"
        ),
    )
    assert status == 200
    daemon.wait_for(
        lambda: pushwoosh.tags_of("u-1").get("Some Key") == 9999999, message="attribute update"
    )
    assert pushwoosh.tag_type("Some Key") == INTEGER
    assert members(pushwoosh) == {"u-1", "u-2"}

    # 4. one user leaves
    status, _ = post_firehose(
        daemon,
        membership_change(
            [profile("u-2", "102", audience_entry("delete"))],
            message_id="d0000000-0000-4000-8000-000000000004",
        ),
    )
    assert status == 200
    daemon.wait_for(lambda: members(pushwoosh) == {"u-1"}, message="u-2 left")
    assert pushwoosh.filter_names().count(SEGMENT) == 1
    assert daemon.stop() == 0


def test_firehose_events_and_webhook_output_reach_pushwoosh(daemon, pushwoosh):
    pushwoosh.define_events("Level_Achieved")
    status, body = post_firehose(daemon, firehose_events())
    assert (status, body["type"]) == (200, "event_processing_response")
    outbound = events_batch(
        user_identities=[{"identity_type": "customer_id", "identity": "w-1"}],
        user_attributes={"$FirstName": "Wanda"},
    )
    status, _ = daemon.post(
        f"/ingest/{CONNECTOR}/webhook", outbound, {"Authorization": "Bearer e2e-webhook"}
    )
    assert status == 202
    daemon.wait_for(lambda: pushwoosh.events_of("u-77"), message="firehose event")
    (event,) = pushwoosh.events_of("u-77")
    assert (event["event"], event["attributes"], event["hwid"]) == (
        "Level_Achieved",
        {"level": 7},
        "a0504a8cfa15ce2c",
    )
    daemon.wait_for(lambda: pushwoosh.tags_of("u-77"), message="firehose user attributes")
    assert pushwoosh.tags_of("u-77") == {"First Name": "Brian", "City": "Boca Raton", "visits": 12}
    daemon.wait_for(lambda: len(pushwoosh.events_of("w-1")) == 2, message="webhook events")
    assert pushwoosh.tags_of("w-1") == {"First Name": "Wanda"}


def test_a_bulk_upload_with_a_bad_batch_is_accepted_and_the_bad_batch_dead_lettered(
    daemon, pushwoosh
):
    """mParticle answers 202 when some batches of a bulk request fail: the official
    client must not see an error (and retry, duplicating the good batches)."""
    bad = events_batch(user_identities={"customer_id": "b-2"}, source_request_id="r-bad")
    bad["events"].insert(1, {"event_type": "custom_event", "data": {"event_name": 42}})
    config = mparticle.Configuration()
    config.host = f"{daemon.url}/ingest/{CONNECTOR}/v2"
    config.api_key, config.api_secret = "e2e-key", "e2e-secret"
    api = mparticle.EventsApi(config)
    good = events_batch(user_identities={"customer_id": "b-1"})
    _, status, _ = api.bulk_upload_events_with_http_info([good, bad])  # type: ignore[list-item]
    assert status == 202
    daemon.wait_for(lambda: len(pushwoosh.events_of("b-1")) == 2, message="the good batch")
    daemon.wait_for(
        lambda: daemon.metric("connectord_dead_letters", connector=CONNECTOR) == 1,
        message="the bad batch in the dead letters",
    )
    listed = orjson.loads(daemon.cli("dlq", "list", CONNECTOR, "--json").stdout)
    (letter,) = listed["dead_letters"]
    assert letter["stage"] == "ingest"
    assert letter["reason"] == (
        'batch 1, event 1 (custom_event): Required event field "event_name" is missing or empty.'
    )
    assert letter["record"] == bad
    assert pushwoosh.events_of("b-2") == []


def kinesis_delivery(daemon, request_id: str, *messages) -> tuple[int, dict]:
    """What an Amazon Data Firehose stream fed by mParticle's Kinesis outputs posts."""
    envelope = {
        "requestId": request_id,
        "timestamp": 1700000000000,
        "records": [{"data": base64.b64encode(orjson.dumps(m)).decode()} for m in messages],
    }
    return daemon.post(
        f"/ingest/{CONNECTOR}/kinesis",
        envelope,
        {
            "X-Amz-Firehose-Protocol-Version": "1.0",
            "X-Amz-Firehose-Request-Id": request_id,
            "X-Amz-Firehose-Access-Key": ENV["MPARTICLE_KINESIS_ACCESS_KEY"],
        },
    )


def membership(customer: str, is_member: bool, at: int) -> dict:
    """A message of mParticle's Amazon Kinesis Firehose audience output."""
    return {
        "MembershipChangedTimestamp": str(at),
        "AudienceId": 456,
        "AudienceName": "High value",
        "IsMember": is_member,
        "UserIdentities": {"CustomerId": customer, "Email": f"{customer}@example.com"},
    }


def test_kinesis_audience_and_event_outputs_reach_pushwoosh(daemon, pushwoosh):
    """The path an ordinary mParticle customer can set up: the Amazon Kinesis Firehose
    audience and event outputs into a delivery stream whose HTTP endpoint is us."""
    outbound = events_batch(
        user_identities=[{"identity_type": "customer_id", "identity": "k-1"}],
        user_attributes={},
        events=[custom_event("click")],
    )
    status, body = kinesis_delivery(
        daemon,
        "e0000000-0000-4000-8000-000000000001",
        membership("k-1", True, 1700000000),
        membership("k-2", True, 1700000001),
        outbound,
    )
    assert (status, body["requestId"]) == (200, "e0000000-0000-4000-8000-000000000001")
    daemon.wait_for(lambda: members(pushwoosh) == {"k-1", "k-2"}, message="both members")
    daemon.wait_for(lambda: pushwoosh.events_of("k-1"), message="the event batch")
    assert [e["event"] for e in pushwoosh.events_of("k-1")] == ["click"]
    status, _ = kinesis_delivery(
        daemon, "e0000000-0000-4000-8000-000000000002", membership("k-2", False, 1700000100)
    )
    assert status == 200
    daemon.wait_for(lambda: members(pushwoosh) == {"k-1"}, message="k-2 left")
    assert pushwoosh.filter_names().count(SEGMENT) == 1
