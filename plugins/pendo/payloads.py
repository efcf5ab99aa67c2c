"""Records → Pendo payloads, fitted to Pendo's name and size rules.

Pendo accepts events and metadata whose names it cannot display, and events whose
properties are too large to show (support.pendo.io 360032294291, 360031832072): it
refuses none of them. So neither do we: a name Pendo cannot use is renamed the way
Pendo's docs advise (``300`` → ``_300``, other characters → ``_``) or, when no name
fits, dropped, and the record is sent; every change is reported in `Fixes` so the
destination can count and log it. Pure functions; `RecordRejected` is left for records
Pendo has no place for at all (no visitor id, a value that is not JSON-like).
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field
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


_INVALID_CHARACTERS = re.compile(r"[^A-Za-z0-9_]")


def pendo_name(name: str, *, max_length: int | None = const.MAX_PROPERTY_NAME) -> str | None:
    """``name`` if Pendo can use it, else the closest name it can (other characters
    become ``_``, a leading digit gets ``_`` before it, ``__x__`` loses its double
    underscores), or ``None`` when even that breaks a rule (too long)."""
    if name_problem(name, max_length=max_length) is None:
        return name
    fixed = _INVALID_CHARACTERS.sub("_", name)
    if fixed.startswith("__") and fixed.endswith("__"):
        fixed = fixed.strip("_")
    if not fixed or fixed[0].isdigit():
        fixed = f"_{fixed}"
    return fixed if name_problem(fixed, max_length=max_length) is None else None


@dataclass
class Fixes:
    """What was changed to fit Pendo's rules: ``(what, original name, new name or None
    when dropped)``, and whether the properties were over Pendo's display size."""

    names: list[tuple[str, str, str | None]] = field(default_factory=list)
    too_large: int | None = None


@functools.lru_cache(maxsize=4096)
def usable_property_name(name: str) -> bool:
    """`name_problem` finds nothing; remembered, since every event of a kind repeats
    the same few property names (the check runs once per property of every event)."""
    return name_problem(name) is None


def fit_properties(properties: dict[str, Any], fixes: Fixes) -> dict[str, Any]:
    """Event properties with every name Pendo can display; over 512 bytes of JSON they
    are still sent (Pendo keeps the event and shows "event properties JSON too large")."""
    fitted = properties
    for name in properties:
        if not isinstance(name, str) or not usable_property_name(name):
            fitted = _renamed(properties, "event property", fixes, const.MAX_PROPERTY_NAME)
            break
    size = len(orjson.dumps(fitted))
    if size > const.MAX_PROPERTIES_BYTES:
        fixes.too_large = size
    return fitted


def _renamed(
    values: dict[str, Any], what: str, fixes: Fixes, max_length: int | None
) -> dict[str, Any]:
    """Valid names first, so that a renamed key never overwrites a valid one."""
    out = {k: v for k, v in values.items() if name_problem(str(k), max_length=max_length) is None}
    for name, value in values.items():
        if name in out:
            continue
        new = pendo_name(str(name), max_length=max_length)
        if new is not None and new in out:
            new = None  # the fixed name is taken: drop rather than overwrite
        fixes.names.append((what, str(name), new))
        if new is not None:
            out[new] = value
    return out


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


def track_payload(
    record: Record, *, now_ms: int | None = None, fixes: Fixes | None = None
) -> dict[str, Any]:
    """The ``POST /data/track`` body for a track, page or screen record; what had to be
    changed to fit Pendo's rules goes to ``fixes``."""
    properties = record.get("properties") or {}
    if not isinstance(properties, dict):
        raise RecordRejected("pendo: properties must be an object")
    properties = fit_properties(properties, fixes if fixes is not None else Fixes())
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
    if not isinstance(context, dict):
        context = {}
    page = context.get("page")
    if record.get("type") == "page":
        properties = record.get("properties")
        if isinstance(properties, dict):
            page = {
                **(page if isinstance(page, dict) else {}),
                **{k: properties[k] for k in ("url", "title") if k in properties},
            }
    out: dict[str, Any] = {}
    _put_text(out, "ip", context.get("ip"))
    _put_text(out, "userAgent", context.get("userAgent"))
    if isinstance(page, dict):
        _put_text(out, "url", page.get("url"))
        _put_text(out, "title", page.get("title"))
    return out


def _put_text(out: dict[str, Any], key: str, value: Any) -> None:
    if value and isinstance(value, str):
        out[key] = value


# --- metadata -----------------------------------------------------------------------


def metadata_target(record: Record) -> tuple[str, str]:
    """``(kind, id)``: an identify sets visitor metadata, a group account metadata."""
    if record.get("type") == "identify":
        return const.VISITOR, visitor_of(record)
    account = record.get("groupId")
    if account in (None, ""):
        raise RecordRejected("pendo: a group record needs a groupId (the account id)")
    return const.ACCOUNT, str(account)


def metadata_values(traits: Any, fixes: Fixes | None = None) -> dict[str, Any]:
    """Traits as Pendo metadata: nested objects flattened (``address_city``), nulls
    skipped, the ``id`` trait left out (the visitor/account id is the id). Names Pendo
    cannot use are renamed as its docs advise; values it cannot store (lists of
    objects) are dropped; both are reported in ``fixes``."""
    if traits is None:
        return {}
    if not isinstance(traits, dict):
        raise RecordRejected("pendo: traits must be an object")
    fixes = fixes if fixes is not None else Fixes()
    values: dict[str, Any] = {}
    _flatten(traits, "", values, fixes)
    values.pop("id", None)
    return _renamed(values, "metadata field", fixes, None)


def _flatten(traits: dict[str, Any], prefix: str, out: dict[str, Any], fixes: Fixes) -> None:
    for key, value in traits.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, dict):
            _flatten(value, f"{name}{const.METADATA_SEPARATOR}", out, fixes)
        elif isinstance(value, SCALARS) or (
            isinstance(value, list) and all(isinstance(item, SCALARS) for item in value)
        ):
            out[name] = value
        else:
            fixes.names.append(("metadata value", name, None))


def split_fields(values: dict[str, Any], custom: frozenset[str]) -> dict[str, dict[str, Any]]:
    """Values by field group: ``custom`` for the fields named in ``custom``, else
    ``agent``. Groups without values are left out."""
    groups: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        group = const.CUSTOM if name in custom else const.AGENT
        groups.setdefault(group, {})[name] = value
    return groups
