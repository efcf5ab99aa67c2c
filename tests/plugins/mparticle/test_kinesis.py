"""Amazon Data Firehose deliveries of mParticle's Kinesis outputs → records (pure)."""

from __future__ import annotations

import base64

import orjson
import pytest

from connectord import IngestError
from connectord.plugins.mparticle.common import Settings
from connectord.plugins.mparticle.kinesis import parse_delivery, request_id
from connectord.records import problem


def envelope(*messages, raw=None):
    records = [{"data": base64.b64encode(orjson.dumps(m)).decode()} for m in messages]
    return {"requestId": "r-1", "timestamp": 1, "records": records + (raw or [])}


def member(**fields):
    return {
        "MembershipChangedTimestamp": "1700000000",
        "AudienceId": 7,
        "AudienceName": "Churn risk",
        "IsMember": True,
        "UserIdentities": {"CustomerId": "c-1"},
        **fields,
    }


def test_membership_messages_become_audience_records():
    parsed = parse_delivery(
        envelope(member(), member(IsMember=False, MembershipChangedTimestamp=1700000000123)),
        Settings(),
    )
    assert parsed.errors == []
    added, removed = parsed.records
    assert (added["action"], removed["action"]) == ("add", "remove")
    assert added["audience"] == {"id": "7", "name": "Churn risk", "source": "mparticle"}
    assert added["timestamp"] == "2023-11-14T22:13:20.000Z"  # seconds
    assert removed["timestamp"] == "2023-11-14T22:13:20.123Z"  # milliseconds
    assert added["messageId"] != removed["messageId"]
    assert all(problem(r) is None for r in parsed.records)


def test_the_same_message_twice_has_the_same_message_id():
    first = parse_delivery(envelope(member()), Settings()).records[0]
    again = parse_delivery(envelope(member()), Settings()).records[0]
    assert first["messageId"] == again["messageId"]


def test_users_from_other_identities_and_the_mpid():
    message = member(UserIdentities={"Other2": "o-2", "MPID": "42"})
    (record,) = parse_delivery(envelope(message), Settings(user_id="other_id_2")).records
    assert record["userId"] == "o-2"
    assert record["context"]["mparticle"] == {"mpid": "42", "identities": {"other_id_2": "o-2"}}
    (by_mpid,) = parse_delivery(envelope(message), Settings()).records
    assert by_mpid["userId"] == "42"  # no customer id: the mpid fallback


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (member(IsMember="yes"), '"IsMember" must be true or false'),
        (member(AudienceId=None), '"AudienceId" is missing'),
        (member(UserIdentities=["c-1"]), '"UserIdentities" must be an object'),
        (member(UserIdentities={}), "the batch names no user"),
        ({"hello": "world"}, "neither an mParticle audience message"),
    ],
)
def test_invalid_messages_are_parts_with_a_reason(message, error):
    parsed = parse_delivery(envelope(member(), message), Settings())
    assert len(parsed.records) == 1
    (reason,) = parsed.errors
    assert reason.startswith("records[1]: ") and error in reason
    assert parsed.parts == [message]


def test_undecodable_records_are_parts_with_a_reason():
    parsed = parse_delivery(envelope(raw=[{"data": "!!"}, {"nodata": 1}, "x"]), Settings())
    assert [e.split(":")[0] for e in parsed.errors] == ["records[0]", "records[1]", "records[2]"]
    assert parsed.parts == [{"data": "!!"}, {"nodata": 1}, "x"]


@pytest.mark.parametrize("payload", [[], {"records": {}}, {"requestId": "r"}, "x"])
def test_an_envelope_that_is_not_aws_is_a_400(payload):
    with pytest.raises(IngestError) as caught:
        parse_delivery(payload, Settings())
    assert caught.value.status == 400


def test_request_id_is_read_from_the_envelope():
    assert request_id({"requestId": "r-9", "records": []}) == "r-9"
    assert request_id({"requestId": 9}) is None
    assert request_id([]) is None
