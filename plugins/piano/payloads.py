"""Records → Piano Analytics events: pure functions, no I/O.

- ``track`` becomes an event named after ``event``; ``page`` and ``screen`` become
  ``page.display`` with ``page``/``page_chapter1``/``page_url``/``previous_url``.
- What an SDK adds is added the way ``piano-analytics-js`` 6.17 adds it (its
  ``metadata`` and ``user`` steps): ``device_timestamp_utc`` in epoch **seconds** with
  millisecond decimals, ``user_id`` with ``user_category`` and ``user_recognition``.
- Property keys are sent as given by default, as the JS SDK does; Piano documents only
  that a key is at most 40 characters. ``keys = "normalise"`` instead makes them the way
  the Android SDK wants them: lowercase, letters, digits and ``_``, starting with a
  letter, never ``m_``/``visit_`` (``"Order Total"`` → ``order_total``). A key that
  cannot be sent is reported as a `KeyProblem`, so that the destination rejects the
  record or drops the key.
- The privacy mode decides the visitor id sent and which events and properties go.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import orjson

from connectord import Record, RecordRejected
from connectord.records import epoch_ms

from .const import (
    ALWAYS_ALLOWED,
    ALWAYS_ALLOWED_PREFIXES,
    COLLECTION_PLATFORM,
    EXEMPT_EVENTS,
    EXEMPT_PROPERTIES,
    MAX_ARRAY_ITEMS,
    MAX_KEY_LENGTH,
    MAX_NESTING,
    MAX_STRING_LENGTH,
    PAGE_DISPLAY,
    PRIVACY_MODES,
    PROPERTY_KEY,
    RESERVED_KEY_PREFIXES,
    VISITOR_ID_BY_MODE,
)

_NOT_KEY_CHARS = re.compile(r"[^a-z0-9_]+")
_UNDERSCORES = re.compile(r"_+")
_INT64 = 2**63
CAMPAIGN_KEYS = {
    "name": "src_campaign",
    "source": "src_source",
    "medium": "src_medium",
    "term": "src_term",
    "content": "src_content",
}


@dataclass(frozen=True)
class KeyProblem:
    """A property key that cannot be made valid, and why."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"property {self.key!r} {self.reason}"


@dataclass
class Outgoing:
    """One Piano event ready to send, with what the request needs around it."""

    visitor_id: str
    event: dict[str, Any]
    user_agent: str | None = None
    ip: str | None = None
    dropped_keys: list[KeyProblem] = field(default_factory=list)

    @property
    def request_key(self) -> tuple[str, str | None, str | None]:
        """Events with the same key can share one request."""
        return (self.visitor_id, self.user_agent, self.ip)


# --- property keys -------------------------------------------------------------------


def given_key(key: Any) -> str | KeyProblem:
    """``key`` unchanged, as ``piano-analytics-js`` sends it, unless Piano's documented
    limit refuses it (at most 40 characters, support.piano.io article 4465980791314)."""
    text = str(key)
    if not text.strip():
        return KeyProblem(text, "is empty")
    if len(text) > MAX_KEY_LENGTH:
        return KeyProblem(text, f"is longer than {MAX_KEY_LENGTH} characters")
    return text


def property_key(key: Any) -> str | KeyProblem:
    """The key made valid by the Android SDK's rules, or the reason it cannot be."""
    original = str(key)
    text = unicodedata.normalize("NFKD", original.strip().lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = _UNDERSCORES.sub("_", _NOT_KEY_CHARS.sub("_", text)).strip("_")
    if not text:
        return KeyProblem(original, "has no letters or digits")
    if not text[0].isalpha():
        return KeyProblem(original, "must start with a letter")
    if len(text) > MAX_KEY_LENGTH:
        return KeyProblem(original, f"is longer than {MAX_KEY_LENGTH} characters")
    for prefix in RESERVED_KEY_PREFIXES:
        if text.startswith(prefix):
            return KeyProblem(
                original, f"starts with {prefix!r}, which Piano reserves for its own properties"
            )
    assert PROPERTY_KEY.match(text), text
    return text


# --- property values -----------------------------------------------------------------


def scalar(value: Any) -> Any:
    """A value Piano can store, or ``None`` to leave the property out."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:MAX_STRING_LENGTH]
    return orjson.dumps(value, default=str).decode()[:MAX_STRING_LENGTH]


def array(values: list[Any] | tuple[Any, ...]) -> list[Any]:
    """Piano arrays hold at most 20 scalars; objects inside become JSON text."""
    items = [scalar(v) for v in values]
    return [v for v in items if v is not None][:MAX_ARRAY_ITEMS]


def flatten(properties: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """``{"cart": {"total": 3}}`` → ``{"cart_total": 3}``; deeper than 3 levels is JSON."""
    out: dict[str, Any] = {}
    for key, value in properties.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, dict) and not value:
            continue
        if isinstance(value, dict) and depth + 1 < MAX_NESTING:
            out.update(flatten(value, name, depth + 1))
        else:
            out[name] = value
    return out


def event_data(
    properties: Any, *, normalise: bool = True
) -> tuple[dict[str, Any], list[KeyProblem]]:
    """Valid Piano ``data`` from record properties, and the keys that could not be kept.

    With ``normalise``, two keys that become the same Piano key (``"Plan"`` and
    ``"plan"``) are a problem too: one value would silently replace the other.
    """
    make_key = property_key if normalise else given_key
    if not isinstance(properties, dict):
        return {}, []
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    problems: list[KeyProblem] = []
    for key, value in flatten(properties).items():
        fixed = make_key(key)
        if isinstance(fixed, KeyProblem):
            problems.append(fixed)
            continue
        if fixed in origin:
            problems.append(KeyProblem(key, f"and {origin[fixed]!r} would both become {fixed!r}"))
            continue
        kept = array(value) if isinstance(value, (list, tuple)) else scalar(value)
        if kept is None:
            continue
        data[fixed] = kept
        origin[fixed] = key
    return data, problems


# --- records -------------------------------------------------------------------------


def piano_context(record: Record) -> dict[str, Any]:
    context = record.get("context")
    piano = context.get("piano") if isinstance(context, dict) else None
    return piano if isinstance(piano, dict) else {}


def privacy_mode(record: Record, default: str) -> str:
    """``context.piano.privacy_mode`` when the record carries one, else the default."""
    mode = piano_context(record).get("privacy_mode")
    if mode is None or mode == "":
        return default
    if mode not in PRIVACY_MODES:
        raise RecordRejected(
            f"context.piano.privacy_mode {mode!r} is not a Piano privacy mode; "
            f"expected one of {', '.join(PRIVACY_MODES)}"
        )
    return str(mode)


def visitor_id(record: Record, mode: str) -> str:
    """``context.piano.idclient``, else ``userId``, else ``anonymousId`` — unless the
    privacy mode replaces the visitor id (``OPT-OUT``, ``no-consent``, ``no-storage``)."""
    fixed = VISITOR_ID_BY_MODE.get(mode)
    if fixed is not None:
        return fixed
    for value in (piano_context(record).get("idclient"), record.get("userId")):
        if value not in (None, ""):
            return str(value)
    return str(record.get("anonymousId"))


def event_name_and_properties(record: Record) -> tuple[str, dict[str, Any]]:
    """The Piano event name and the raw properties for a record type we can send."""
    kind = record.get("type")
    properties = record.get("properties")
    properties = dict(properties) if isinstance(properties, dict) else {}
    if kind == "track":
        return str(record["event"]), properties
    if kind in ("page", "screen"):
        return PAGE_DISPLAY, page_properties(record, properties)
    raise RecordRejected(
        f"Piano Analytics collection takes track, page and screen records, not {kind!r}; "
        "map it to a track record first (e.g. with the fields mapping) or route it elsewhere"
    )


def page_properties(record: Record, properties: dict[str, Any]) -> dict[str, Any]:
    """Segment page/screen fields in Piano's page vocabulary."""
    context = record.get("context") if isinstance(record.get("context"), dict) else {}
    page_context = context.get("page") if isinstance(context.get("page"), dict) else {}
    out = dict(properties)
    name = (
        record.get("name")
        or properties.get("name")
        or properties.get("title")
        or page_context.get("title")
        or properties.get("path")
        or page_context.get("path")
    )
    out.pop("name", None)
    if name:
        out["page"] = name
    if record.get("category"):
        out.setdefault("page_chapter1", record["category"])
    url = out.pop("url", None) or page_context.get("url")
    if url:
        out.setdefault("page_url", url)
    referrer = out.pop("referrer", None) or page_context.get("referrer")
    if referrer:
        out.setdefault("previous_url", referrer)
    return out


def device_timestamp(record: Record) -> float | None:
    """The event time as ``piano-analytics-js`` 6.17 sends ``device_timestamp_utc``:
    epoch seconds with the milliseconds as decimals (``Date.getTime() / 1000``)."""
    moment = epoch_ms(record.get("timestamp") or record.get("originalTimestamp"))
    return None if moment is None else moment / 1000


def user_properties(record: Record) -> dict[str, Any]:
    """``user_id``, ``user_category`` and ``user_recognition`` as the JS SDK's
    ``setUser`` sets them: recognition is ``false`` for a user named with the event
    (``true`` only when the SDK read the user back from its own storage)."""
    if record.get("userId") in (None, ""):
        return {}
    out: dict[str, Any] = {"user_id": str(record["userId"])}
    category = scalar(piano_context(record).get("user_category"))
    if category not in (None, ""):
        out["user_category"] = category
    out["user_recognition"] = False
    return out


def standard_properties(record: Record, version: str) -> dict[str, Any]:
    """What the JS SDK would add: platform, version, device time, user, campaign."""
    out: dict[str, Any] = {
        "event_collection_platform": COLLECTION_PLATFORM,
        "event_collection_version": version,
    }
    moment = device_timestamp(record)
    if moment is not None:
        out["device_timestamp_utc"] = moment
    out.update(user_properties(record))
    context = record.get("context") if isinstance(record.get("context"), dict) else {}
    campaign = context.get("campaign")
    if isinstance(campaign, dict):
        for field_name, key in CAMPAIGN_KEYS.items():
            value = scalar(campaign.get(field_name))
            if value not in (None, ""):
                out[key] = value
    return out


def allowed_in_mode(key: str, mode: str) -> bool:
    if key in ALWAYS_ALLOWED or key.startswith(ALWAYS_ALLOWED_PREFIXES):
        return True
    if mode in ("optin", "no-storage"):
        return True
    if mode == "exempt":
        return key in EXEMPT_PROPERTIES
    return False  # optout, no-consent: only the always-allowed properties


def apply_privacy(name: str, data: dict[str, Any], mode: str) -> dict[str, Any] | None:
    """The data this mode lets through, with the privacy properties; ``None`` when the
    mode does not send this event at all (exempt mode sends only page and click events)."""
    if mode == "exempt" and name not in EXEMPT_EVENTS:
        return None
    kept = {k: v for k, v in data.items() if allowed_in_mode(k, mode)}
    kept["visitor_privacy_mode"] = mode
    kept["visitor_privacy_consent"] = mode == "optin"
    return kept


def to_outgoing(
    record: Record,
    *,
    default_mode: str,
    version: str,
    drop_invalid_keys: bool,
    normalise_keys: bool = False,
) -> Outgoing | None:
    """The Piano event for a record; ``None`` when the privacy mode withholds it.

    :raises RecordRejected: the type has no Piano event, or (unless
        ``drop_invalid_keys``) a property key cannot be made valid.
    """
    mode = privacy_mode(record, default_mode)
    name, properties = event_name_and_properties(record)
    data, problems = event_data(properties, normalise=normalise_keys)
    if problems and not drop_invalid_keys:
        rule = (
            "keys are letters, digits and '_', start with a letter, at most "
            f"{MAX_KEY_LENGTH} characters, not m_/visit_"
            if normalise_keys
            else f"keys are at most {MAX_KEY_LENGTH} characters"
        )
        raise RecordRejected(
            "Piano Analytics cannot take "
            + "; ".join(str(p) for p in problems)
            + f" ({rule}); rename them with a mapping, "
            'or set invalid_keys = "drop"'
        )
    for key, value in standard_properties(record, version).items():
        data.setdefault(key, value)
    filtered = apply_privacy(name, data, mode)
    if filtered is None:
        return None
    context = record.get("context") if isinstance(record.get("context"), dict) else {}
    return Outgoing(
        visitor_id=visitor_id(record, mode),
        event={"name": name, "data": filtered},
        user_agent=context.get("userAgent") if isinstance(context.get("userAgent"), str) else None,
        ip=context.get("ip") if isinstance(context.get("ip"), str) else None,
        dropped_keys=problems,
    )
