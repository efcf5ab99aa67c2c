"""``mparticle.to_pushwoosh``: what mParticle's Pushwoosh integration does, as a mapping.

Pushwoosh documents the integration as: user attributes become tags whose type is
detected automatically; events keep their name and attributes; audiences become
segments that follow the audience's membership. This mapping renames and types the
record fields accordingly and keeps the record shape; the ``pushwoosh`` destination
builds the API calls.

- ``identify``: each trait becomes a tag. mParticle's reserved ``$``-attributes get
  readable tag names (``$firstname`` and ``$FirstName`` → ``First Name``, ``$age`` →
  ``Age``; see `const.RESERVED_ATTRIBUTES`). String values that look like numbers,
  booleans or dates become those types (mParticle sends most attributes as strings),
  except for reserved attributes that must stay text (zip codes, phone numbers).
  ``None`` (a deleted attribute) is kept: it removes the tag.
- ``track`` / ``screen``: the name is kept (screen views stay ``screen`` records, or
  become events named after the screen with ``screen_views = "track"``); properties are
  typed the same way. Nested
  objects become JSON text, lists of objects (``products``) are dropped — their ids
  and names travel as ``product_ids`` / ``product_names``.
- ``audience``: ``audience.id`` and ``audience.name`` are kept, ``audience.source`` is
  ``mparticle``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator

from connectord import Mapping, Options, Record
from connectord.records import iso, parse_time

from . import const

_INTEGER = re.compile(r"^-?(?:0|[1-9][0-9]{0,17})$")
_DECIMAL = re.compile(r"^-?(?:0|[1-9][0-9]{0,14})\.[0-9]{1,8}$")
_DATE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|z|[+-][0-9]{2}:?[0-9]{2})?)?$"
)

ReservedNames = Literal["title", "strip", "keep"]


def tag_name(attribute: str, reserved: ReservedNames = "title", prefix: str = "") -> str:
    """The Pushwoosh tag name of an mParticle user attribute.

    ``title``: ``$firstname`` → ``First Name``; ``strip``: → ``firstname``; ``keep``:
    unchanged. Unknown ``$``-names lose the ``$`` (except with ``keep``).
    """
    if not attribute.startswith("$") or reserved == "keep" or len(attribute) == 1:
        return f"{prefix}{attribute}"
    bare = attribute[1:]
    known = const.RESERVED_ATTRIBUTES.get(bare.lower())
    if known is None:
        return f"{prefix}{bare}"
    return f"{prefix}{known if reserved == 'title' else bare.lower()}"


def detect_type(value: Any, *, keep_text: bool = False) -> Any:
    """The typed value of an attribute: ``"18"`` → 18, ``"19.95"`` → 19.95, ``"true"``
    → True, ``"2024-03-01"`` → ``"2024-03-01T00:00:00.000Z"``; other text unchanged.

    Integers with leading zeros or a ``+`` stay text (zip codes, phone numbers).
    """
    if keep_text or not isinstance(value, str):
        return value
    text = value.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.match(text):
        return int(text)
    if _DECIMAL.match(text):
        return float(text)
    if _DATE.match(text):
        moment = parse_time(text)
        if moment is not None:
            return iso(moment)
    return value


def flat_value(value: Any) -> tuple[bool, Any]:
    """``(keep, value)``: scalars and lists of scalars as they are, objects as JSON
    text; lists holding objects are not kept (a tag or event attribute cannot hold
    them)."""
    if isinstance(value, dict):
        return True, orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, list):
        if any(isinstance(v, (dict, list)) for v in value):
            return False, None
        return True, value
    return True, value


class MparticleToPushwoosh(Mapping):
    """mParticle records → Pushwoosh vocabulary: attributes → typed tags, events keep
    their names, audiences become "<name> (mParticle)" segments downstream."""

    type = "mparticle.to_pushwoosh"

    class Options(Options):
        reserved_names: ReservedNames = Field(
            "title",
            description='Tag names for mParticle\'s reserved $-attributes: "title" '
            '($firstname → "First Name"), "strip" ("firstname") or "keep" ("$firstname").',
        )
        tag_prefix: str = Field(
            "",
            max_length=40,
            description='Prefix for every tag name, e.g. "mp_" to keep mParticle tags apart.',
        )
        screen_views: Literal["screen", "track"] = Field(
            "screen",
            description='Screen views: "screen" keeps them as screen records (the pushwoosh '
            'destination posts its `screen_event`, "Screen Viewed", with the screen name as '
            'attribute `name`); "track" makes each an event named after the screen.',
        )
        detect_types: bool = Field(
            True,
            description="Turn text that looks like a number, boolean or date into that type "
            "(tags and event attributes); off keeps values exactly as mParticle sent them.",
        )

        @field_validator("tag_prefix")
        @classmethod
        def _prefix(cls, value: str) -> str:
            if value != value.strip():
                raise ValueError("tag_prefix must not start or end with spaces")
            return value

    def map(self, record: Record) -> Record:
        return to_pushwoosh(
            record,
            reserved=self.options.reserved_names,
            prefix=self.options.tag_prefix,
            detect=self.options.detect_types,
            screens=self.options.screen_views,
        )


def to_pushwoosh(
    record: Record,
    *,
    reserved: ReservedNames = "title",
    prefix: str = "",
    detect: bool = True,
    screens: Literal["screen", "track"] = "screen",
) -> Record:
    """The pure mapping; see the module docstring."""
    kind = record.get("type")
    if kind == "screen" and screens == "track" and record.get("name") not in (None, ""):
        name = str(record["name"])
        record = {k: v for k, v in record.items() if k not in ("name", "category")}
        record = {**record, "type": "track", "event": name}
        kind = "track"
    if kind == "identify":
        return {**record, "traits": tags(record.get("traits"), reserved, prefix, detect)}
    if kind in ("track", "screen"):
        return {**record, "properties": event_attributes(record.get("properties"), detect)}
    if kind == "audience" and isinstance(record.get("audience"), dict):
        audience = dict(record["audience"])
        audience["id"] = str(audience.get("id"))
        audience["source"] = "mparticle"
        return {**record, "audience": audience}
    return record


def tags(traits: Any, reserved: ReservedNames, prefix: str, detect: bool) -> dict[str, Any]:
    if not isinstance(traits, dict):
        return {}
    out: dict[str, Any] = {}
    for name, value in traits.items():
        keep, flat = flat_value(value)
        if not keep:
            continue
        bare = name[1:].lower() if name.startswith("$") else None
        keep_text = (
            bare is not None
            and bare in const.RESERVED_ATTRIBUTES
            and (bare not in const.NUMERIC_RESERVED)
        )
        out[tag_name(name, reserved, prefix)] = (
            detect_type(flat, keep_text=keep_text) if detect else flat
        )
    return out


def event_attributes(properties: Any, detect: bool) -> dict[str, Any]:
    if not isinstance(properties, dict):
        return {}
    out: dict[str, Any] = {}
    for name, value in properties.items():
        keep, flat = flat_value(value)
        if keep:
            out[name] = detect_type(flat) if detect else flat
    return out
