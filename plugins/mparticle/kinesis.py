"""Amazon Data Firehose HTTP endpoint deliveries of mParticle output → records. Pure.

mParticle's *Amazon Kinesis Firehose* outputs are ordinary integrations any customer can
connect: the audience output puts one message per membership change into the
customer's delivery stream, the event output one event batch per record. A delivery
stream whose destination is an *HTTP endpoint* then posts those records here, in
AWS's documented envelope (docs.aws.amazon.com/firehose/latest/dev/
httpdeliveryrequestresponse.html)::

    {"requestId": "…", "timestamp": 1700000000000, "records": [{"data": "<base64>"}]}

Each ``data`` is one message as mParticle put it (docs.mparticle.com/integrations/
amazon-kinesis-firehose/audience/)::

    {"MembershipChangedTimestamp": "1234565788", "AudienceId": 123123,
     "AudienceName": "LowEngagement", "IsMember": true,
     "UserIdentities": {"CustomerId": "p.fogg138", "Email": "phileas@travelers.com"}}

or an outbound event batch (the JSON reference format, as the Webhook output sends).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from connectord import IngestError, Record
from connectord.records import stable_message_id

from .common import (
    SOURCE,
    Invalid,
    Parsed,
    Settings,
    as_text,
    drop_empty,
    epoch_ms_to_iso,
    kind_of,
    parse_mpid,
    resolve_user,
    segment_context,
)
from .parse import parse_batch

USER_IDENTITY_KEYS = {
    "CustomerId": "customer_id",
    "Email": "email",
    "Other": "other",
    **{f"Other{n}": f"other_id_{n}" for n in range(2, 11)},
    "FacebookId": "facebook",
    "GoogleId": "google",
    "MicrosoftId": "microsoft",
    "TwitterId": "twitter",
    "YahooId": "yahoo",
}
"""``UserIdentities`` keys → Events API identity names. mParticle's page shows
CustomerId, Email, Other and FacebookId; the other spellings follow that pattern and are
an assumption."""
MPID_KEYS = ("MPID", "Mpid", "MParticleId")
DEVICE_ID_KEYS = ("AndroidId", "AppleVendorIdentifier", "IosVendorId")
ADVERTISING_ID_KEYS = (
    "GoogleAdvertisingIdentifier",
    "AppleAdvertisingIdentifier",
    "RokuAdvertisingIdentifier",
)
SECONDS_BEFORE = 100_000_000_000
"""``MembershipChangedTimestamp`` is a "Unix timestamp"; mParticle's sample has ten
digits (seconds). A value this large or larger is taken as milliseconds."""


def request_id(payload: Any) -> str | None:
    """The envelope's ``requestId``, which the answer must repeat."""
    value = payload.get("requestId") if isinstance(payload, dict) else None
    return value if isinstance(value, str) and value else None


def parse_delivery(payload: Any, settings: Settings) -> Parsed:
    """Every record of one delivery; a record that cannot be read is an invalid part."""
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
        raise IngestError(
            400,
            "invalid_body",
            'expected Amazon Data Firehose\'s {"requestId", "timestamp", "records": [...]}',
        )
    outbound = Settings(settings.user_id, settings.mpid_fallback, settings.other_events, False)
    parsed = Parsed()
    for index, entry in enumerate(payload["records"]):
        label = f"records[{index}]"
        try:
            message = decode_record(entry)
        except Invalid as err:
            parsed.reject(f"{label}: {err}", entry)
            continue
        if isinstance(message, dict) and "IsMember" in message:
            try:
                parsed.records.append(audience_record(message, settings))
            except Invalid as err:
                parsed.reject(f"{label}: {err}", message)
        elif isinstance(message, dict) and "events" in message:
            parsed.add(parse_batch(message, outbound, label, identities="array"))
        else:
            parsed.reject(
                f"{label}: neither an mParticle audience message (IsMember) nor an event "
                "batch (events)",
                message,
            )
    return parsed


def decode_record(entry: Any) -> Any:
    """``{"data": base64}`` → the JSON mParticle put. mParticle's page prints messages
    wrapped as ``{"DeliveryStreamName", "Record": {"Data": …}}`` (a PutRecord call,
    "left unencoded for clarity"); that wrapper is unwrapped too."""
    if not isinstance(entry, dict) or not isinstance(entry.get("data"), str):
        raise Invalid(f'a record is an object with base64 "data"; found {kind_of(entry)}')
    try:
        message = orjson.loads(base64.b64decode(entry["data"], validate=True))
    except (binascii.Error, ValueError) as err:
        raise Invalid(f'"data" is not base64-encoded JSON: {err}') from None
    wrapped = message.get("Record") if isinstance(message, dict) else None
    if isinstance(wrapped, dict) and "Data" in wrapped:
        message = wrapped["Data"]
    return message


def audience_record(message: dict[str, Any], settings: Settings) -> Record:
    """One membership change: ``IsMember`` true → ``add``, false → ``remove``."""
    is_member = message.get("IsMember")
    if not isinstance(is_member, bool):
        raise Invalid(f'"IsMember" must be true or false; found {is_member!r:.40}')
    audience_id = as_text(message.get("AudienceId"))
    if audience_id is None or isinstance(message.get("AudienceId"), bool):
        raise Invalid('"AudienceId" is missing')
    identities = message.get("UserIdentities") or {}
    if not isinstance(identities, dict):
        raise Invalid(f'"UserIdentities" must be an object; found {kind_of(identities)}')
    ids = {
        USER_IDENTITY_KEYS[k]: str(v)
        for k, v in identities.items()
        if k in USER_IDENTITY_KEYS and as_text(v)
    }
    mpid = parse_mpid(next((identities[k] for k in MPID_KEYS if k in identities), None))
    context = segment_context(
        device={
            "id": _first(identities, DEVICE_ID_KEYS),
            "advertisingId": _first(identities, ADVERTISING_ID_KEYS),
        },
        os={},
        app={},
        ip=None,
        user_agent=None,
        locale=None,
        mparticle={"mpid": mpid, "identities": dict(ids) or None},
    )
    user = resolve_user(ids, mpid, context, settings)
    changed = message.get("MembershipChangedTimestamp")
    record = user.stamp(
        {
            "type": "audience",
            "action": "add" if is_member else "remove",
            "audience": drop_empty(
                {"id": audience_id, "name": as_text(message.get("AudienceName")), "source": SOURCE}
            ),
        }
    )
    who = mpid or user.user_id or user.anonymous_id
    record["messageId"] = stable_message_id(
        SOURCE, "kinesis", audience_id, is_member, as_text(changed), who
    )
    timestamp = _changed_at(changed)
    if timestamp is not None:
        record["timestamp"] = timestamp
    return record


def _changed_at(value: Any) -> str | None:
    number = int(value) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return None
    return epoch_ms_to_iso(number if number >= SECONDS_BEFORE else number * 1000)


def _first(values: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        text = as_text(values.get(key))
        if text is not None:
            return text
    return None
