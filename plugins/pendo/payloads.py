"""Records → Pendo payloads, with Pendo's name and size rules checked before sending.

Pure functions: they raise `RecordRejected` with a reason an operator can act on, so a
record Pendo would refuse (or mangle) becomes a dead letter instead of a failed call.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from connectord import Record, RecordRejected
from connectord.records import epoch_ms

from . import const

SCALARS = (str, int, float, bool)


def name_problem(name: str, *, max_length: int | None = const.MAX_PROPERTY_NAME) -> str | None:
    """Why ``name`` is not a valid Pendo property/field name, or ``None`` if it is."""
    if not const.PROPERTY_NAME.fullmatch(name):
        return "use letters, digits and underscores only, not starting with a digit"
    if name.startswith("__") and name.endswith("__"):
        return "names wrapped in double underscores are reserved by Pendo"
    if max_length is not None and len(name) > max_length:
        return f"it has {len(name)} characters; the limit is {max_length}"
    return None


_GOOD_NAMES: set[str] = set()
"""Property names already found valid (they repeat from event to event)."""


def check_properties(properties: dict[str, Any]) -> bytes:
    """Check a track event's properties; return their JSON (for the size rule)."""
    for name in properties:
        if name in _GOOD_NAMES:
            continue
        problem = name_problem(str(name))
        if problem is not None:
            raise RecordRejected(f"pendo: event property name {str(name)[:60]!r}: {problem}")
        if len(_GOOD_NAMES) < 100_000:
            _GOOD_NAMES.add(name)
    encoded = orjson.dumps(properties)
    if len(encoded) > const.MAX_PROPERTIES_BYTES:
        raise RecordRejected(
            f"pendo: event properties are {len(encoded)} bytes of JSON; Pendo keeps at most "
            f"{const.MAX_PROPERTIES_BYTES} (drop or shorten properties with a `fields` mapping)"
        )
    return encoded


def visitor_of(record: Record) -> str:
    visitor = record.get("userId")
    if visitor in (None, ""):
        raise RecordRejected(
            "pendo: the record has no userId to use as visitor id (map anonymous users with "
            "segment.to_pendo's anonymous_visitors option)"
        )
    return str(visitor)


def event_name(record: Record) -> str:
    """The track event name; pages and screens follow Segment's ``Viewed <name> Page``."""
    kind = record.get("type")
    if kind == "track":
        event = record.get("event")
        if not isinstance(event, str) or not event.strip():
            raise RecordRejected("pendo: a track event needs a name")
        return event
    noun = "Page" if kind == "page" else "Screen"
    name = record.get("name")
    if isinstance(name, str) and name.strip():
        return f"Viewed {name.strip()} {noun}"
    return f"Loaded a {noun}"


def track_payload(record: Record, *, now_ms: int | None = None) -> dict[str, Any]:
    """The ``POST /data/track`` body for a track, page or screen record."""
    properties = record.get("properties") or {}
    if not isinstance(properties, dict):
        raise RecordRejected("pendo: properties must be an object")
    check_properties(properties)
    timestamp = record.get("timestamp")
    if timestamp in (None, ""):
        millis = now_ms if now_ms is not None else int(time.time() * 1000)
    else:
        millis = epoch_ms(timestamp)
        if millis is None:
            raise RecordRejected(f"pendo: timestamp {str(timestamp)[:40]!r} is not a date")
    payload: dict[str, Any] = {
        "type": "track",
        "event": event_name(record),
        "visitorId": visitor_of(record),
        "timestamp": millis,
        "properties": properties,
        "context": track_context(record),
    }
    account = account_of(record)
    if account is not None:
        payload["accountId"] = account
    return payload


def account_of(record: Record) -> str | None:
    context = record.get("context")
    if isinstance(context, dict):
        account = context.get("groupId")
        if account not in (None, ""):
            return str(account)
    return None


def track_context(record: Record) -> dict[str, Any]:
    """Pendo's event context: ``ip``, ``userAgent``, ``url``, ``title`` when known."""
    context = record.get("context")
    context = context if isinstance(context, dict) else {}
    page = context.get("page")
    page = page if isinstance(page, dict) else {}
    out: dict[str, Any] = {}
    if record.get("type") == "page":
        properties = record.get("properties")
        if isinstance(properties, dict):
            page = {**page, **{k: properties[k] for k in ("url", "title") if k in properties}}
    for key, value in (
        ("ip", context.get("ip")),
        ("userAgent", context.get("userAgent")),
        ("url", page.get("url")),
        ("title", page.get("title")),
    ):
        if isinstance(value, str) and value:
            out[key] = value
    return out


# --- metadata -----------------------------------------------------------------------


def metadata_target(record: Record) -> tuple[str, str]:
    """``(kind, id)``: an identify sets visitor metadata, a group account metadata."""
    if record.get("type") == "identify":
        return const.VISITOR, visitor_of(record)
    account = record.get("groupId")
    if account in (None, ""):
        raise RecordRejected("pendo: a group record needs a groupId (the account id)")
    return const.ACCOUNT, str(account)


def metadata_values(traits: Any) -> dict[str, Any]:
    """Traits as Pendo metadata: nested objects flattened (``address_city``), nulls
    skipped, the ``id`` trait left out (the visitor/account id is the id)."""
    if traits is None:
        return {}
    if not isinstance(traits, dict):
        raise RecordRejected("pendo: traits must be an object")
    values: dict[str, Any] = {}
    _flatten(traits, "", values)
    values.pop("id", None)
    return values


def _flatten(traits: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in traits.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, dict):
            _flatten(value, f"{name}{const.METADATA_SEPARATOR}", out)
            continue
        problem = name_problem(name, max_length=None)
        if problem is not None:
            raise RecordRejected(f"pendo: metadata field name {name[:60]!r}: {problem}")
        if isinstance(value, list):
            if not all(isinstance(item, SCALARS) for item in value):
                raise RecordRejected(
                    f"pendo: metadata field {name!r} is a list of objects; Pendo metadata "
                    "values are text, numbers, booleans, dates or lists of those"
                )
        elif not isinstance(value, SCALARS):
            raise RecordRejected(f"pendo: metadata field {name!r} has an unsupported value")
        out[name] = value


def split_fields(values: dict[str, Any], custom: frozenset[str]) -> dict[str, dict[str, Any]]:
    """Values by field group: ``custom`` for the fields named in ``custom``, else
    ``agent``. Groups without values are left out."""
    groups: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        group = const.CUSTOM if name in custom else const.AGENT
        groups.setdefault(group, {})[name] = value
    return groups
