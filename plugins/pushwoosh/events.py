"""Records as Pushwoosh events (pure): name, user, hwid, attributes, time, platform."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectord import Record
from connectord.records import iso, parse_time

from .const import PLATFORM_IDS, PLATFORMS
from .tagtypes import json_text


def event_of(record: Record, screen_event: str, page_event: str) -> Event:
    """The event for a track, screen or page record (``userId`` checked by the caller).

    Screens and pages become ``screen_event``/``page_event`` with their ``name`` and
    ``category`` as attributes; ``attributes`` is always an object, even an empty one.
    """
    kind = record.get("type")
    attributes = attributes_of(record.get("properties"))
    if kind == "track":
        name = str(record["event"])
    else:
        name = screen_event if kind == "screen" else page_event
        for key in ("name", "category"):
            if record.get(key) not in (None, ""):
                attributes.setdefault(key, record[key])
    moment = parse_time(record.get("timestamp"))
    context = record.get("context") if isinstance(record.get("context"), dict) else {}
    return Event(
        name=name,
        user=str(record.get("userId")),
        hwid=hwid_of(context),
        attributes=attributes,
        timestamp=int(moment.timestamp()) if moment else None,
        device_type=device_type_of(context),
    )


@dataclass
class Event:
    """One event as Pushwoosh takes it (postEvent fields)."""

    name: str
    user: str
    hwid: str | None
    attributes: dict[str, Any]
    timestamp: int | None
    device_type: int | None

    def batch_item(self, application: str) -> dict[str, Any]:
        """The event as the batch events path takes it."""
        item: dict[str, Any] = {
            "user_id": self.user,
            "app_code": application,
            "name": self.name,
            "attributes": self.attributes,
        }
        if self.hwid:
            item["device_id"] = self.hwid
        platform = _batch_platform(self.device_type)
        if platform:
            item["device_platform"] = platform
        if self.timestamp is not None:
            item["timestamp"] = iso(datetime.fromtimestamp(self.timestamp, UTC))
        return item


def hwid_of(context: dict[str, Any]) -> str | None:
    device = context.get("device") if isinstance(context.get("device"), dict) else {}
    pushwoosh = context.get("pushwoosh") if isinstance(context.get("pushwoosh"), dict) else {}
    value = device.get("id") or pushwoosh.get("hwid")
    return None if value in (None, "") else str(value)


def device_type_of(context: dict[str, Any]) -> int | None:
    """Pushwoosh's platform id from the record's context, when it can be told."""
    pushwoosh = context.get("pushwoosh") if isinstance(context.get("pushwoosh"), dict) else {}
    platform = pushwoosh.get("platform_id")
    if isinstance(platform, int) and platform in PLATFORMS:
        return platform
    for block, key in (("os", "name"), ("device", "type")):
        value = context.get(block)
        if isinstance(value, dict) and isinstance(value.get(key), str):
            found = PLATFORM_IDS.get(value[key].strip().lower())
            if found is not None:
                return found
    return None


def _batch_platform(device_type: int | None) -> str | None:
    if device_type == 1:
        return "ios"
    if device_type in (3, 9, 17, 19):
        return "android"
    if device_type in (7, 10, 11, 12, 13):
        return "web"
    return None


def attributes_of(properties: Any) -> dict[str, Any]:
    """Event attributes: flat values; objects become JSON text, nulls are left out."""
    if not isinstance(properties, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in properties.items():
        if value is None:
            continue
        if isinstance(value, dict):
            out[key] = json_text(value)
        elif isinstance(value, list):
            out[key] = [
                v if isinstance(v, (str, int, float, bool)) else json_text(v)
                for v in value
                if v is not None
            ]
        else:
            out[key] = value
    return out
