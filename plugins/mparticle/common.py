"""What the mParticle parsers share: settings, results, users and value checks. Pure.

Each parser works on *parts* of a request (a batch's user attributes, one event, one
audience entry). A part that is invalid raises `Invalid` with a message in mParticle's
words; the parser records it and carries on with the next part.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from connectord import Record
from connectord.records import iso

from . import const

SOURCE = "mparticle"

INTEGER_TEXT = re.compile(r"^-?[0-9]{1,20}$")


class Invalid(Exception):
    """One part of a request is invalid; the message says why, in mParticle's words."""


@dataclass(frozen=True)
class Settings:
    """How batches become records (from the source's options).

    :param user_id: the identity that becomes ``userId`` (an Events API identity name
        such as ``customer_id``, or ``mpid``).
    :param mpid_fallback: use the mpid as ``userId`` when that identity is absent.
    :param other_events: what to do with events that are not custom events, screen
        views, commerce events or attribute changes: drop them, or forward them as
        ``track`` records named after their mParticle type.
    :param enforce_limits: apply the Events API's name/value limits and its required
        ``custom_event_type`` (mParticle's own outputs were already checked by
        mParticle, and its samples of them leave ``custom_event_type`` out).
    """

    user_id: str = "customer_id"
    mpid_fallback: bool = True
    other_events: Literal["drop", "track"] = "drop"
    enforce_limits: bool = True


@dataclass
class Parsed:
    """What a request became: records, messages for the parts that were invalid (with
    the parts themselves, as received, at the same index), and how many events were
    deliberately not forwarded."""

    records: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    parts: list[Any] = field(default_factory=list)
    ignored: int = 0

    def reject(self, message: str, part: Any) -> None:
        """Note one invalid part: why, and what it was (kept for the dead letter)."""
        self.errors.append(message)
        self.parts.append(part)

    def add(self, other: Parsed) -> None:
        self.records.extend(other.records)
        self.errors.extend(other.errors)
        self.parts.extend(other.parts)
        self.ignored += other.ignored


@dataclass
class User:
    """Who a batch is about, and the context shared by all its records."""

    user_id: str | None
    anonymous_id: str | None
    context: dict[str, Any]

    def stamp(self, record: Record) -> Record:
        if self.user_id is not None:
            record["userId"] = self.user_id
        if self.anonymous_id is not None:
            record["anonymousId"] = self.anonymous_id
        record["context"] = copy_context(self.context)
        return record


def segment_context(
    *,
    device: dict[str, Any],
    os: dict[str, Any],
    app: dict[str, Any],
    ip: str | None,
    user_agent: str | None,
    locale: str | None,
    mparticle: dict[str, Any],
) -> dict[str, Any]:
    """The Segment ``context`` of a user's records, whichever mParticle format the facts
    came from: each format only says where its fields live (``device_info`` in batches,
    ``runtime_environment`` in Firehose messages), and this one function shapes them,
    so both formats give the same context for the same user."""
    context: dict[str, Any] = {}
    for key, values in (("device", device), ("os", os), ("app", app)):
        kept = drop_empty(values)
        if kept:
            context[key] = kept
    put_if(context, "ip", ip)
    put_if(context, "userAgent", user_agent)
    put_if(context, "locale", locale)
    context["mparticle"] = drop_empty(mparticle)
    return context


def copy_context(context: dict[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in context.items()}


def canonical_identity(name: str) -> str:
    """The Events API name of an identity, whichever way it was spelled."""
    lowered = name.strip().lower()
    return const.IDENTITY_ALIASES.get(lowered, lowered)


def parse_mpid(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Invalid('"mpid" must be a 64-bit integer')
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and INTEGER_TEXT.match(value.strip()):
        return value.strip()
    raise Invalid(f'"mpid" must be a 64-bit integer; found {value!r:.40}')


def resolve_user(
    ids: dict[str, str], mpid: str | None, context: dict[str, Any], settings: Settings
) -> User:
    """``userId`` from the configured identity (else the mpid); ``anonymousId`` from the
    device when there is no user id. A batch with neither cannot be attributed."""
    user_id = mpid if settings.user_id == "mpid" else ids.get(settings.user_id)
    if user_id is None and settings.mpid_fallback:
        user_id = mpid
    anonymous_id = None
    if user_id is None:
        device = context.get("device", {})
        anonymous_id = device.get("id") or context.get("mparticle", {}).get("device_id")
    if user_id is None and anonymous_id is None:
        wanted = "mpid" if settings.user_id == "mpid" else f"user_identities.{settings.user_id}"
        raise Invalid(
            f"the batch names no user: set {wanted}"
            + (", mpid" if settings.user_id != "mpid" and settings.mpid_fallback else "")
            + " or a device id (device_info.ios_idfv / android_uuid, mp_deviceid)"
        )
    return User(user_id, anonymous_id, context)


def attribute_map(value: Any, where: str, limits: bool) -> dict[str, Any]:
    """Event attributes: names (truncated at the S2S limit) → scalar values."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f'"{where}" must be an object; found {kind_of(value)}')
    if limits and len(value) > const.MAX_EVENT_ATTRIBUTES:
        raise Invalid(
            f"{len(value)} {where}; an event may carry at most {const.MAX_EVENT_ATTRIBUTES}"
        )
    out: dict[str, Any] = {}
    for name, item in value.items():
        if isinstance(item, (dict, list)):
            raise Invalid(f'{where} "{name:.60}" must be a string, number or boolean')
        if limits:
            if isinstance(item, str) and len(item) > const.MAX_VALUE_CHARS:
                raise Invalid(
                    f'{where} "{name:.60}" is {len(item)} characters long; the limit is '
                    f"{const.MAX_VALUE_CHARS}"
                )
            name = name[: const.MAX_NAME_CHARS]
        out[name] = item
    return out


def scalar_fields(data: dict[str, Any], skip: frozenset[str]) -> dict[str, Any]:
    """The scalar fields of an event's data, for events forwarded by their type."""
    return {
        k: v
        for k, v in data.items()
        if k not in skip and (v is None or isinstance(v, (str, int, float, bool)))
    }


def required_text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f'Required event field "{name}" is missing or empty.')
    return value


def epoch_ms_to_iso(value: Any) -> str | None:
    """Milliseconds since 1970 as an ISO 8601 UTC string; ``None`` if it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str) and INTEGER_TEXT.match(value.strip()):
            value = int(value.strip())
        else:
            return None
    if value != value or not -62135596800000 < value < 253402300800000:  # NaN, year 1..9999
        return None
    return iso(datetime.fromtimestamp(value / 1000, UTC))


def number(value: Any, name: str) -> int | float | None:
    if value is None or value == "":
        return None
    if is_number(value):
        return value
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            pass
    raise Invalid(f'"{name}" must be a number; found {value!r:.40}')


def one_of(value: Any, allowed: frozenset[str]) -> bool:
    """Membership that tolerates unhashable JSON values (lists, objects)."""
    return isinstance(value, str) and value in allowed


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else None


def as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def first_text(data: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = as_text(data.get(name))
        if value is not None:
            return value
    return None


def put_if(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def drop_empty(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != [] and v != {}}


def kind_of(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def iter_errors(errors: list[str]) -> Iterator[str]:
    """At most `const.MAX_REPORTED_ERRORS` messages, then a count of the rest."""
    yield from errors[: const.MAX_REPORTED_ERRORS]
    if len(errors) > const.MAX_REPORTED_ERRORS:
        yield f"… and {len(errors) - const.MAX_REPORTED_ERRORS} more invalid parts"
