"""CleverTap export records → connectord records (docs/records.md). Pure functions.

- Get Events record → ``track``: ``event`` is the queried event name, ``userId`` the
  profile's ``identity`` (when the user has one), ``anonymousId`` CleverTap's
  ``objectId`` (the CleverTap ID, present for every user), ``timestamp`` from ``ts``
  (``YYYYMMDDHHMMSS`` in the account's time zone) in ISO 8601 UTC, ``properties`` from
  ``event_props`` (plus ``items`` of ``Charged``), ``context`` from ``session_props``
  plus the profile's platform, app and device fields under ``os``/``app``/``device``.
- Get User Profiles record → ``identify`` with the profile fields and ``profileData``
  as ``traits``.
- Event counts, profile counts and campaign reports → ``metric`` records.

CleverTap's ``"$D_<epoch>"`` date values become ISO 8601 strings. Message ids are
derived from CleverTap's identity of each item, so a re-read upserts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from connectord import Record
from connectord.records import iso, stable_message_id

from .const import DATE_PREFIX

_PROFILE_STRUCTURE = frozenset(
    {
        "objectId",
        "identity",
        "all_identities",
        "profileData",
        "events",
        "platformInfo",
        "push_token",
        "badKs",
        "df",
        "os_version",
        "app_version",
        "make",
        "model",
        "platform",
    }
)


# --- values -------------------------------------------------------------------------


def ts_to_iso(value: Any, tz: tzinfo = UTC) -> str | None:
    """``20250607130935`` (in ``tz``) → ``"2025-06-07T13:09:35.000Z"``; ``None`` if garbled."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    if number < 10**13 or number >= 10**14:
        return None
    day, clock = divmod(number, 1_000_000)
    if tz is UTC:  # the common case: check the date, then format it directly
        try:
            datetime(day // 10_000, day // 100 % 100, day % 100, clock // 10_000,
                     clock // 100 % 100, clock % 100)  # fmt: skip
        except ValueError:
            return None
        t = str(number)
        return f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:14]}.000Z"
    try:
        moment = datetime(
            day // 10_000,
            day // 100 % 100,
            day % 100,
            clock // 10_000,
            clock // 100 % 100,
            clock % 100,
            tzinfo=tz,
        )
    except ValueError:
        return None
    return iso(moment)


def clevertap_value(value: Any) -> Any:
    """``"$D_1749670800"`` → ISO 8601 UTC; everything else unchanged."""
    if isinstance(value, str) and value.startswith(DATE_PREFIX):
        try:
            return iso(datetime.fromtimestamp(int(value[len(DATE_PREFIX) :]), UTC))
        except (ValueError, OverflowError, OSError):
            return value
    return value


def clevertap_values(values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        return {}
    out = dict(values)
    for key, value in values.items():
        if value.__class__ is str and value.startswith(DATE_PREFIX):
            out[key] = clevertap_value(value)
    return out


def day_start_iso(day: date, tz: tzinfo = UTC) -> str:
    return iso(datetime.combine(day, time(), tzinfo=tz))


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


# --- events ---------------------------------------------------------------------------


def profile_context(profile: dict[str, Any]) -> dict[str, Any]:
    """Segment-style ``os``/``app``/``device`` from the profile's app fields, and
    CleverTap's other identities under ``clevertap``."""
    context: dict[str, Any] = {}
    get = profile.get
    platform, os_version = get("platform"), get("os_version")
    if platform is not None:
        context["os"] = (
            {"name": platform} if os_version is None else {"name": platform, "version": os_version}
        )
    elif os_version is not None:
        context["os"] = {"version": os_version}
    app_version = get("app_version")
    if app_version is not None:
        context["app"] = {"version": app_version}
    make, model = get("make"), get("model")
    if make is not None and model is not None:
        context["device"] = {"manufacturer": make, "model": model}
    elif make is not None or model is not None:
        context["device"] = _compact({"manufacturer": make, "model": model})
    identities = get("all_identities")
    if identities:
        context["clevertap"] = {"all_identities": identities}
    return context


def event_record(
    raw: dict[str, Any],
    event_name: str,
    *,
    account_id: str,
    tz: tzinfo = UTC,
    with_traits: bool = False,
) -> Record:
    """One Get Events record as a ``track`` record; ``with_traits`` also copies the
    profile's fields into ``context.traits`` (otherwise join with the profiles)."""
    profile = raw.get("profile") or {}
    identity = _text(profile.get("identity"))
    object_id = _text(profile.get("objectId"))
    event_props = raw.get("event_props") or {}
    session_props = raw.get("session_props") or {}
    ts = raw.get("ts")
    properties = clevertap_values(event_props)
    if raw.get("items") is not None:
        properties.setdefault("items", raw["items"])
    context = profile_context(profile)
    if isinstance(session_props, dict):
        context = {**session_props, **context}
    if with_traits:
        traits = _profile_traits(profile)
        if traits:
            context["traits"] = traits
    record: Record = {
        "type": "track",
        "event": event_name,
        "properties": properties,
        "context": context,
        "messageId": stable_message_id(
            "clevertap.event",
            account_id,
            event_name,
            ts,
            object_id or identity,
            event_props,
            session_props,
        ),
    }
    if identity:
        record["userId"] = identity
    if object_id:
        record["anonymousId"] = object_id
    timestamp = ts_to_iso(ts, tz)
    if timestamp:
        record["timestamp"] = timestamp
    return record


def _profile_traits(profile: dict[str, Any]) -> dict[str, Any]:
    """Profile fields (``name``, ``email``, ``phone``, ...) and custom ``profileData``."""
    traits = {
        key: clevertap_value(value)
        for key, value in profile.items()
        if key not in _PROFILE_STRUCTURE and value is not None
    }
    traits.update(clevertap_values(profile.get("profileData")))
    return traits


# --- profiles -------------------------------------------------------------------------


def profile_record(
    raw: dict[str, Any],
    *,
    account_id: str,
    day: date,
    tz: tzinfo = UTC,
) -> Record:
    """One Get User Profiles record as an ``identify`` record; ``day`` is the export day
    it was read for (re-reading that day gives the same ``messageId``)."""
    identity = _text(raw.get("identity"))
    object_id = _text(raw.get("objectId"))
    platforms = raw.get("platformInfo")
    if not object_id and isinstance(platforms, list) and platforms:
        object_id = _text((platforms[0] or {}).get("objectId"))
    traits = _profile_traits(raw)
    if raw.get("platform") is not None:
        traits.setdefault("platform", raw["platform"])
    if raw.get("push_token") is not None:
        traits.setdefault("push_token", raw["push_token"])
    context = profile_context(raw)
    clevertap = context.setdefault("clevertap", {})
    if platforms:
        clevertap["platformInfo"] = platforms
    if raw.get("events"):
        clevertap["events"] = raw["events"]
    if not clevertap:
        del context["clevertap"]
    record: Record = {
        "type": "identify",
        "traits": traits,
        "context": context,
        "timestamp": day_start_iso(day, tz),
        "messageId": stable_message_id(
            "clevertap.profile", account_id, object_id or identity, day.isoformat()
        ),
    }
    if identity:
        record["userId"] = identity
    if object_id:
        record["anonymousId"] = object_id
    return record


# --- metrics --------------------------------------------------------------------------


def event_count_record(
    event_name: str, day: date, count: int, *, account_id: str, tz: tzinfo = UTC
) -> Record:
    """A daily count of one event as a ``metric`` record (``metric_event_count``)."""
    return {
        "type": "metric",
        "metric": "event_count",
        "period": "day",
        "timestamp": day_start_iso(day, tz),
        "dimensions": {"event": event_name},
        "values": {"count": count},
        "messageId": stable_message_id(
            "clevertap.event_count", account_id, event_name, day.isoformat()
        ),
    }


def profile_count_record(
    event_name: str, day: date, count: int, *, account_id: str, tz: tzinfo = UTC
) -> Record:
    """How many profiles did one event on a day, as a ``metric`` record
    (``metric_profile_count``), from CleverTap's Get Profile Count."""
    return {
        "type": "metric",
        "metric": "profile_count",
        "period": "day",
        "timestamp": day_start_iso(day, tz),
        "dimensions": {"event": event_name},
        "values": {"count": count},
        "messageId": stable_message_id(
            "clevertap.profile_count", account_id, event_name, day.isoformat()
        ),
    }


def scheduled_time(value: Any, tz: tzinfo = UTC) -> str | None:
    """A campaign's ``scheduled_on``: ``YYYYMMDDHHMM``, ``YYYYMMDDHHMMSS`` or epoch seconds."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    digits = len(str(abs(number)))
    if digits == 12:
        return ts_to_iso(number * 100, tz)
    if digits == 14:
        return ts_to_iso(number, tz)
    if digits == 8:
        return ts_to_iso(number * 1_000_000, tz)
    if digits == 10:
        return iso(datetime.fromtimestamp(number, UTC))
    return None


def numbers(
    value: Any, prefix: str = "", out: dict[str, float | int] | None = None
) -> dict[str, Any]:
    """The numeric leaves of a report, nested keys joined with ``_``."""
    out = {} if out is None else out
    if not isinstance(value, dict):
        return out
    for key, item in value.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(item, dict):
            numbers(item, name, out)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            out[name] = item
    return out


def campaign_record(
    campaign: dict[str, Any],
    report: dict[str, Any] | None,
    *,
    account_id: str,
    tz: tzinfo = UTC,
) -> Record:
    """A campaign and its report (``None`` while it runs) as a ``metric`` record
    (``metric_campaign_report``)."""
    dimensions = _compact(
        {
            "campaign_id": campaign.get("id"),
            "name": campaign.get("name"),
            "channel": campaign.get("channel"),
            "status": (report or {}).get("status") or campaign.get("status"),
            "scheduled_on": scheduled_time(campaign.get("scheduled_on"), tz),
        }
    )
    record: Record = {
        "type": "metric",
        "metric": "campaign_report",
        "period": "total",
        "dimensions": dimensions,
        "values": numbers(report or {}),
        "messageId": stable_message_id("clevertap.campaign", account_id, campaign.get("id")),
    }
    if dimensions.get("scheduled_on"):
        record["timestamp"] = dimensions["scheduled_on"]
    return record


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
