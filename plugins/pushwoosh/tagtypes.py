"""Pushwoosh tag typing: which tag type a value gets, and whether it fits an existing tag.

Pure functions, no I/O. The rules, in order (``parse_strings`` on):

- ``null`` clears the tag's value for that user (Pushwoosh's ``setTags`` with ``null``);
  a null for a tag that does not exist yet is skipped — there is nothing to clear;
- ``true``/``false`` → Boolean; a JSON integer → Integer (beyond 64 bits: String);
- a JSON decimal → Decimal; a list → List of strings; an object → String (its JSON);
- a string: ``"true"``/``"false"`` → Boolean, a canonical integer (``"42"``, not ``"042"``)
  → Integer, a canonical decimal (``"19.95"``) → Decimal, three or four dotted numbers of
  at most four digits (``"1.2.3"``) → Version, an ISO 8601 date or date-time → Date
  (sent as ``YYYY-MM-DD HH:mm`` in UTC), anything else → String.

Detection only decides the type of a tag that does not exist yet. Once a tag has a type,
a value must fit it (`fit`): an integer fits Decimal, any string fits String, numeric
strings fit Integer/Decimal, dotted numbers fit Version; anything else is a
`TagConflict`, never a silent conversion.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from .const import TagType

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_INTEGER = re.compile(r"^-?(0|[1-9][0-9]{0,18})$")
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)\.[0-9]+$")
_VERSION = re.compile(r"^[0-9]{1,4}(\.[0-9]{1,4}){2,3}$")
_VERSION_LOOSE = re.compile(r"^[0-9]{1,4}(\.[0-9]{1,4}){0,3}$")
_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})?)?$"
)
DATE_FORMAT = "%Y-%m-%d %H:%M"
"""How Pushwoosh takes Date tag values: UTC, to the minute."""


class TagConflict(ValueError):
    """A value does not fit the type its tag already has (or fits no tag type)."""


@dataclass(frozen=True)
class TagValue:
    """A value ready for Pushwoosh: its tag type and what goes on the wire."""

    type: TagType
    wire: Any


def detect(value: Any, *, parse_strings: bool = True) -> TagValue | None:
    """The tag type and wire value for ``value``; ``None`` for ``null``.

    :raises TagConflict: for a number that is not finite.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return TagValue(TagType.BOOLEAN, value)
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return TagValue(TagType.INTEGER, value)
        return TagValue(TagType.STRING, str(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TagConflict(f"{value!r} is not a finite number")
        return TagValue(TagType.DECIMAL, value)
    if isinstance(value, (list, tuple)):
        return TagValue(TagType.LIST, [_list_item(v) for v in value if v is not None])
    if isinstance(value, dict):
        return TagValue(TagType.STRING, json_text(value))
    if isinstance(value, str):
        return _detect_string(value) if parse_strings else TagValue(TagType.STRING, value)
    return TagValue(TagType.STRING, str(value))


def _detect_string(text: str) -> TagValue:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return TagValue(TagType.BOOLEAN, lowered == "true")
    if _INTEGER.match(text):
        number = int(text)
        if INT64_MIN <= number <= INT64_MAX:
            return TagValue(TagType.INTEGER, number)
        return TagValue(TagType.STRING, text)
    if _DECIMAL.match(text):
        decimal = float(text)
        if math.isfinite(decimal):
            return TagValue(TagType.DECIMAL, decimal)
        return TagValue(TagType.STRING, text)
    if _VERSION.match(text):
        return TagValue(TagType.VERSION, text)
    moment = parse_date(text)
    if moment is not None:
        return TagValue(TagType.DATE, moment.strftime(DATE_FORMAT))
    return TagValue(TagType.STRING, text)


def parse_date(text: str) -> datetime | None:
    """An ISO 8601 date or date-time (naive means UTC), in UTC; ``None`` otherwise."""
    if not _DATE.match(text):
        return None
    cleaned = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _list_item(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json_text(value)


def json_text(value: Any) -> str:
    """Compact JSON with sorted keys (integers beyond 64 bits included)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def fit(value: Any, tag_type: TagType, *, parse_strings: bool = True) -> TagValue | None:
    """The wire value of ``value`` for a tag that already has ``tag_type``.

    :raises TagConflict: the value does not fit; the message says why.
    """
    detected = detect(value, parse_strings=parse_strings)
    if detected is None or detected.type == tag_type:
        return detected
    if tag_type == TagType.DECIMAL and detected.type == TagType.INTEGER:
        return TagValue(TagType.DECIMAL, detected.wire)
    if tag_type == TagType.STRING and isinstance(value, str):
        return TagValue(TagType.STRING, value)
    if tag_type == TagType.VERSION and isinstance(value, str) and _VERSION_LOOSE.match(value):
        return TagValue(TagType.VERSION, value)
    raise TagConflict(
        f"value {_shown(value)} is {detected.type.label}, but the tag is {tag_type.label}"
    )


def _shown(value: Any) -> str:
    text = json_text(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class TypedTags:
    """Tags of one record, typed: what to send, which tags are new, what conflicts."""

    wire: dict[str, Any]
    new_types: dict[str, TagType]
    conflicts: list[str]


def type_tags(
    tags: Mapping[str, Any],
    known: Mapping[str, TagType],
    *,
    parse_strings: bool = True,
    text_tags: frozenset[str] = frozenset(),
) -> TypedTags:
    """Type every tag of one record against the tag types already ``known``.

    Unknown tags get their detected type (reported in ``new_types``); known tags must
    fit theirs (a mismatch is reported in ``conflicts``, one readable line per tag).
    Strings in ``text_tags`` (zip codes, phone numbers) are never parsed as numbers.
    """
    out = TypedTags({}, {}, [])
    for name, value in tags.items():
        existing = known.get(name)
        parse = parse_strings and name not in text_tags
        if value is None:
            if existing is not None:
                out.wire[name] = None  # an explicit null clears the user's value
            continue
        try:
            typed = (
                detect(value, parse_strings=parse)
                if existing is None
                else fit(value, existing, parse_strings=parse)
            )
        except TagConflict as conflict:
            out.conflicts.append(f"tag {name!r}: {conflict}")
            continue
        if typed is None:
            continue
        if existing is None:
            out.new_types[name] = typed.type
        out.wire[name] = typed.wire
    return out
