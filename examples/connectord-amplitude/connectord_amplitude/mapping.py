"""Between connectord records (docs/records.md) and Amplitude events: pure functions.

Records → Amplitude (destination):

- ``track`` → ``event_type`` = event, ``event_properties`` = properties, revenue
  fields from ``revenue``/``price``/``quantity``/``productId``/``revenueType``.
- ``identify`` → ``$identify`` with ``user_properties = {"$set": traits}``.
- ``page``/``screen`` → ``Viewed <name> Page``/``Viewed <name> Screen`` (``Loaded a
  Page``/``Loaded a Screen`` without a name), properties as event properties.
- ``userId`` → ``user_id``; ``anonymousId`` (or ``context.device.id``) → ``device_id``;
  ``messageId`` → ``insert_id`` (Amplitude drops repeats for 7 days, so the
  framework's at-least-once retries never double-count); ``timestamp`` → ``time``.
- Segment ``context`` fields → Amplitude's device, location and app fields.

Amplitude events → records (Export API source): ``$identify`` → ``identify``,
everything else → ``track``, with a ``messageId`` stable per Amplitude event.
"""

from __future__ import annotations

from typing import Any

from connectord import Record, RecordRejected
from connectord.records import epoch_ms, iso, parse_time, stable_message_id

from .const import (
    DEFAULT_MIN_ID_LENGTH,
    INVALID_IDS,
    MAX_STRING_LENGTH,
    RESERVED_EVENT_TYPES,
    VENDOR,
)

SUPPORTED = ("track", "identify", "page", "screen")
_REVENUE_FIELDS = {
    "revenue": "revenue",
    "price": "price",
    "quantity": "quantity",
    "productId": "productId",
    "revenueType": "revenueType",
}
# Segment context path → Amplitude event field.
_CONTEXT_FIELDS = (
    (("ip",), "ip"),
    (("locale",), "language"),
    (("app", "version"), "app_version"),
    (("os", "name"), "os_name"),
    (("os", "version"), "os_version"),
    (("device", "model"), "device_model"),
    (("device", "manufacturer"), "device_manufacturer"),
    (("device", "brand"), "device_brand"),
    (("device", "advertisingId"), "adid"),
    (("network", "carrier"), "carrier"),
    (("location", "country"), "country"),
    (("location", "region"), "region"),
    (("location", "city"), "city"),
    (("location", "latitude"), "location_lat"),
    (("location", "longitude"), "location_lng"),
)


def to_amplitude_event(
    record: Record, *, min_id_length: int = DEFAULT_MIN_ID_LENGTH
) -> dict[str, Any]:
    """The Amplitude event for a record; `RecordRejected` says why it cannot be sent."""
    kind = record["type"]
    if kind not in SUPPORTED:
        raise RecordRejected(
            f"amplitude takes {', '.join(SUPPORTED)} records; found {kind!r} "
            "(group needs Amplitude's Accounts add-on and is not sent)"
        )
    context = record.get("context") or {}
    event: dict[str, Any] = {}
    user_id = _usable_id(record.get("userId"), min_id_length)
    device_id = _usable_id(record.get("anonymousId"), min_id_length) or _usable_id(
        _dig(context, ("device", "id")), min_id_length
    )
    if user_id is None and device_id is None:
        raise RecordRejected(
            f"amplitude needs a user_id or device_id of at least {min_id_length} characters "
            f"that is not a placeholder such as 'anonymous'; found userId="
            f"{record.get('userId')!r}, anonymousId={record.get('anonymousId')!r}"
        )
    if user_id is not None:
        event["user_id"] = user_id
    if device_id is not None:
        event["device_id"] = device_id
    event["event_type"] = _event_type(record)
    if event["event_type"] in RESERVED_EVENT_TYPES:
        raise RecordRejected(f"{event['event_type']!r} is reserved by Amplitude")
    moment = epoch_ms(record.get("timestamp"))
    if moment is not None:
        event["time"] = moment
    if record.get("messageId"):
        event["insert_id"] = str(record["messageId"])
    if kind == "identify":
        event["user_properties"] = {"$set": _clip(record.get("traits") or {})}
    else:
        properties = dict(record.get("properties") or {})
        if kind in ("page", "screen") and record.get("name"):
            properties.setdefault("name", record["name"])
        event["event_properties"] = _clip(properties)
        if kind == "track":
            for source, target in _REVENUE_FIELDS.items():
                if properties.get(source) is not None:
                    event[target] = properties[source]
        traits = context.get("traits")
        if isinstance(traits, dict) and traits:
            event["user_properties"] = _clip(traits)
    for path, target in _CONTEXT_FIELDS:
        value = _dig(context, path)
        if value is not None and value != "":
            event[target] = value
    return event


def _event_type(record: Record) -> str:
    kind = record["type"]
    if kind == "track":
        return str(record["event"])
    if kind == "identify":
        return "$identify"
    noun = "Page" if kind == "page" else "Screen"
    name = record.get("name")
    return f"Viewed {name} {noun}" if name else f"Loaded a {noun}"


def _usable_id(value: Any, min_length: int) -> str | None:
    if value is None:
        return None
    text = str(value)
    if len(text) < min_length or text.lower() in INVALID_IDS:
        return None
    return text[:MAX_STRING_LENGTH]


def _dig(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _clip(value: Any) -> Any:
    """Amplitude keeps at most 1024 characters of a string value."""
    if isinstance(value, str):
        return value[:MAX_STRING_LENGTH]
    if isinstance(value, dict):
        return {k: _clip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v) for v in value]
    return value


def from_export_event(event: dict[str, Any]) -> Record:
    """The record for one event of an Export API file."""
    identity = (
        event.get("$insert_id")
        or event.get("uuid")
        or [
            event.get("amplitude_id"),
            event.get("event_id"),
            event.get("event_time"),
            event.get("event_type"),
        ]
    )
    record: Record = {"messageId": stable_message_id(VENDOR, identity)}
    if event.get("event_type") == "$identify":
        record["type"] = "identify"
        record["traits"] = _flatten_operations(event.get("user_properties") or {})
    else:
        record["type"] = "track"
        record["event"] = event.get("event_type") or "(unnamed)"
        record["properties"] = dict(event.get("event_properties") or {})
    if event.get("user_id"):
        record["userId"] = str(event["user_id"])
    if event.get("device_id"):
        record["anonymousId"] = str(event["device_id"])
    if "userId" not in record and "anonymousId" not in record and event.get("amplitude_id"):
        record["anonymousId"] = f"amplitude:{event['amplitude_id']}"
    moment = parse_time(event.get("event_time") or event.get("client_event_time"))
    if moment is not None:
        record["timestamp"] = iso(moment)
    received = parse_time(event.get("server_upload_time"))
    if received is not None:
        record["receivedAt"] = iso(received)
    record["context"] = _export_context(event)
    return record


def _flatten_operations(properties: dict[str, Any]) -> dict[str, Any]:
    """``{"$set": {...}, "$setOnce": {...}}`` → the traits they set."""
    if not any(key.startswith("$") for key in properties):
        return dict(properties)
    traits: dict[str, Any] = {}
    for operation in ("$setOnce", "$set"):
        traits.update(properties.get(operation) or {})
    return traits


def _export_context(event: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if event.get("ip_address"):
        context["ip"] = event["ip_address"]
    if event.get("language"):
        context["locale"] = event["language"]
    pairs = {
        "app": {"version": event.get("version_name")},
        "os": {"name": event.get("os_name"), "version": event.get("os_version")},
        "device": {
            "id": event.get("device_id"),
            "model": event.get("device_model"),
            "manufacturer": event.get("device_manufacturer"),
            "brand": event.get("device_brand"),
            "type": event.get("device_type"),
        },
        "location": {
            "country": event.get("country"),
            "region": event.get("region"),
            "city": event.get("city"),
            "latitude": event.get("location_lat"),
            "longitude": event.get("location_lng"),
        },
    }
    for key, values in pairs.items():
        kept = {k: v for k, v in values.items() if v not in (None, "")}
        if kept:
            context[key] = kept
    user_properties = event.get("user_properties")
    if (
        isinstance(user_properties, dict)
        and user_properties
        and event.get("event_type") != "$identify"
    ):
        context["traits"] = dict(user_properties)
    context["amplitude"] = {
        k: event[k]
        for k in ("amplitude_id", "session_id", "event_id", "uuid", "platform")
        if event.get(k) not in (None, "")
    }
    return context
