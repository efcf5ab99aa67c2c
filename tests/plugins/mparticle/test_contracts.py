"""The ``mparticle.http`` source answers the samples in ``tests/contracts/mparticle/``
(each naming the mParticle or AWS page, or official repository, it comes from) as
those sources say mParticle, or Amazon Data Firehose, expects."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from .conftest import OPTIONS, basic

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "mparticle"
KINESIS_KEY = "kinesis-access-key-for-tests"


def contract(name: str) -> dict[str, Any]:
    return orjson.loads((CONTRACTS / name).read_bytes())


def test_every_contract_names_its_source():
    files = sorted(CONTRACTS.glob("*.json"))
    assert len(files) >= 8
    for path in files:
        source = orjson.loads(path.read_bytes())["source"]
        assert source.startswith(("https://", "mParticle/")), path.name


# --- Events API -----------------------------------------------------------------------------


def test_events_api_auth_example_and_statuses(source_server):
    events = contract("events-api.json")
    example = events["auth_example"]
    server = source_server({"api_key": example["key"], "api_secret": example["secret"]})
    batch = {"environment": "production", "mpid": 1, "events": []}
    status, _, body = server.post("v2/events", batch, {"Authorization": example["header"]})
    assert (str(status), body) == ("202", None)
    status, _, body = server.post("v2/events", batch)
    assert str(status) in events["responses"] and status == 401
    status, _, body = server.post("v2/events", batch, {"Authorization": "Basic eDp5"})
    assert status == 403
    assert set(body) == set(events["error_body"])
    assert set(body["errors"][0]) == set(events["error_body"]["errors"][0])


def test_events_api_placeholder_example_is_a_400_in_the_documented_error_body(source_server):
    server = source_server()
    sample = contract("events-api-bulk-example.json")["body"]
    status, _, body = server.post("v2/bulkevents", sample, basic())
    assert status == 400
    assert body["errors"][0] == {
        "code": "BAD_REQUEST",
        "message": "batch 0: the batch names no user: set user_identities.customer_id, mpid "
        "or a device id (device_info.ios_idfv / android_uuid, mp_deviceid)",
    }
    assert server.records == []


def test_events_api_bulk_partial_failure_is_accepted(source_server):
    server = source_server()
    documented = contract("events-api.json")["bulk_partial_failure"]
    assert '"Accepted"' in documented
    good = {"environment": "production", "mpid": 7, "user_attributes": {"plan": "gold"}}
    sample = contract("events-api-bulk-example.json")["body"]
    status, _, body = server.post("v2/bulkevents", [good, *sample], basic())
    assert (status, body) == (202, None)
    assert [r["type"] for r in server.accepted] == ["identify"]
    assert [d["part"] for d in server.dead] == sample


# --- Webhook ------------------------------------------------------------------------------


def test_webhook_basic_authorization_header_as_documented(source_server):
    example = contract("webhook-event-output.json")["authorization_header_example"]
    assert example.startswith("Basic ")
    header = "Basic " + base64.b64encode(b"username:password").decode()
    server = source_server({"webhook_authorization": header})
    batch = {"mpid": 3, "user_identities": [{"identity_type": "customer_id", "identity": "w"}]}
    status, _, _ = server.post(
        "webhook", {**batch, "user_attributes": {"a": "b"}}, {"Authorization": header}
    )
    assert status == 202
    assert server.accepted[0]["userId"] == "w"


# --- Amazon Data Firehose HTTP endpoint (mParticle's Kinesis audience output) ------------------


def kinesis_options() -> dict[str, Any]:
    return {**OPTIONS, "kinesis_access_key": KINESIS_KEY}


def delivery(
    *messages: Any, request_id: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """An HTTP endpoint delivery as AWS documents it, one record per message."""
    aws = contract("aws-firehose-http-endpoint.json")
    envelope = dict(aws["request_body"])
    envelope["requestId"] = request_id or envelope["requestId"]
    envelope["records"] = [{"data": base64.b64encode(orjson.dumps(m)).decode()} for m in messages]
    headers = {
        "X-Amz-Firehose-Protocol-Version": "1.0",
        "X-Amz-Firehose-Request-Id": envelope["requestId"],
        "X-Amz-Firehose-Access-Key": KINESIS_KEY,
    }
    return envelope, headers


def test_kinesis_audience_added_and_removed(source_server):
    server = source_server(kinesis_options())
    added = contract("kinesis-audience-member-added.json")["body"]
    removed = contract("kinesis-audience-member-removed.json")["body"]
    envelope, headers = delivery(added["Record"]["Data"], removed)  # bare and as printed
    status, response_headers, body = server.post("kinesis", envelope, headers)
    success = contract("aws-firehose-http-endpoint.json")["success"]
    assert status == success["status"]
    assert response_headers["Content-Type"].startswith(success["content_type"])
    assert set(body) == set(success["body"]) and body["requestId"] == envelope["requestId"]
    assert [(r["type"], r["action"], r["userId"], r["audience"]) for r in server.accepted] == [
        (
            "audience",
            "add",
            "p.fogg138",
            {"id": "123123", "name": "LowEngagement", "source": "mparticle"},
        ),
        (
            "audience",
            "remove",
            "p.fogg138",
            {"id": "123123", "name": "LowEngagement", "source": "mparticle"},
        ),
    ]
    first = server.accepted[0]
    assert first["timestamp"] == "2009-02-13T22:56:28.000Z"  # 1234565788 s
    assert first["context"]["device"] == {"advertisingId": "phileas83"}
    assert first["context"]["mparticle"]["identities"]["email"] == "phileas@travelers.com"


def test_kinesis_compressed_delivery_and_a_bad_record(source_server):
    server = source_server(kinesis_options())
    added = contract("kinesis-audience-member-added.json")["body"]
    envelope, headers = delivery(added)
    envelope["records"].append({"data": "not base64!"})
    data = gzip.compress(orjson.dumps(envelope))
    status, _, body = server.post("kinesis", data, {**headers, "Content-Encoding": "gzip"})
    assert (status, body["requestId"]) == (200, envelope["requestId"])
    assert [r["action"] for r in server.accepted] == ["add"]
    (dead,) = server.dead
    assert dead["reason"].startswith('records[1]: "data" is not base64-encoded JSON')
    assert dead["part"] == {"data": "not base64!"}


def test_kinesis_event_output_sample(source_server):
    """The page's sample names no user, so it is a dead letter; with the mpid every real
    batch carries, its event is delivered."""
    server = source_server(kinesis_options())
    sample = contract("kinesis-event-output.json")["body"]
    batch = sample["Record"]["Data"]
    envelope, headers = delivery(sample, {**batch, "mpid": 8})
    status, _, _ = server.post("kinesis", envelope, headers)
    assert status == 200
    assert [(r["type"], r["event"], r["userId"]) for r in server.accepted] == [
        ("track", "Level_Achieved", "8")
    ]
    (dead,) = server.dead
    assert dead["reason"].startswith("records[0]: the batch names no user")


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("wrong", 403)])
def test_kinesis_refusals_in_the_aws_error_format(source_server, key, status):
    server = source_server(kinesis_options())
    envelope, headers = delivery(
        {"IsMember": True}, request_id="43b8e724-dbac-4510-adb7-ef211c6044b9"
    )
    if key is None:
        del headers["X-Amz-Firehose-Access-Key"]
    else:
        headers["X-Amz-Firehose-Access-Key"] = key
    got, _, body = server.post("kinesis", envelope, headers)
    error = contract("aws-firehose-http-endpoint.json")["error"]["body"]
    assert got == status
    assert set(body) == set(error)
    assert body["requestId"] == "43b8e724-dbac-4510-adb7-ef211c6044b9"
    assert server.records == []


# --- Firehose (partner onboarding) -------------------------------------------------------------


def test_firehose_event_processing_sample(source_server):
    server = source_server()
    message = contract("firehose-event-processing-request.json")["body"]
    status, _, body = server.post(
        "firehose", message, {"Authorization": f"Bearer {OPTIONS['firehose_secret']}"}
    )
    assert (status, body["type"], body["id"]) == (
        200,
        "event_processing_response",
        message["id"],
    )
    assert [(r["type"], r.get("event")) for r in server.accepted] == [
        ("identify", None),
        ("track", "customEvent"),
        ("track", "eCommerce - add_to_cart"),
    ]
    assert {r["userId"] for r in server.accepted} == {"12345"}  # hashed customer id: the mpid
    assert server.dead == []


def test_firehose_audience_membership_sample(source_server):
    server = source_server()
    message = contract("firehose-audience-membership-change-request.json")["body"]
    status, _, body = server.post(
        "firehose", message, {"Authorization": f"Bearer {OPTIONS['firehose_secret']}"}
    )
    assert (status, body["type"]) == (200, "audience_membership_change_response")
    assert [
        (r["type"], r.get("action"), r.get("audience", {}).get("id")) for r in server.accepted
    ] == [
        ("audience", "add", "456"),
        ("identify", None, None),
        ("audience", "remove", "654"),
    ]
    assert server.accepted[1]["traits"] == {"Some Key": "9999999", "Churned": None}
    assert server.dead == []
