"""What the Pushwoosh relay records for a call Pushwoosh accepted.

Each record is complete on its own: a user's tags and a device's user and platform are
kept in the connector's state and added to every record. Several daemons may share that
state and accept calls for the same user at once (docs/scale-out.md), so every
read-modify-write here ends in a compare-and-set and is retried when another process
wrote in between.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from connectord import IngestError, Record
from connectord.records import iso, parse_time

from .const import PLATFORMS, VENDOR

TAGS_KEY = "tags:"
DEVICE_KEY = "device:"
CAS_ATTEMPTS = 20
"""Rounds of read, change and compare-and-set before a call is answered 503."""

DEVICE_FIELDS_AS_TAGS = {
    "device_model": "Device Model",
    "os_version": "OS Version",
    "language": "Language",
    "app_version": "Application Version",
}
"""registerDevice fields Pushwoosh keeps as default tags of the device's user."""


def _contended() -> IngestError:
    return IngestError(
        503,
        "state_contended",
        f"{VENDOR} call accepted but its tags could not be recorded (other daemons kept "
        "changing them); retry",
        retry_after=1,
    )


class RelayRecorder:
    """Turns accepted calls into records, keeping each user's tags and each device's
    user and platform in the connector's state, so every record is complete on its own."""

    def __init__(self, state: Any, options: Any) -> None:
        self.state = state
        self.options = options
        self._lock = asyncio.Lock()  # one process's calls in turn; CAS across daemons

    async def records_for(
        self, method: str, fields: dict[str, Any], response: Any, request: web.Request
    ) -> list[Record]:
        """The records for an accepted call, after updating the user's known tags."""
        hwid = text_or_none(fields.get("hwid"))
        user_id = text_or_none(fields.get("userId"))
        if method == "registerUser" and user_id is None:
            user_id = hwid  # Pushwoosh uses the hwid when no user id is given
        async with self._lock:  # read-modify-write of the user's tags
            device = await self._device(hwid, fields, user_id)
            subject = user_id or device.get("userId") or (f"hwid:{hwid}" if hwid else None)
            if subject is None:
                return []
            tags = await self._update_tags(method, subject, hwid, fields)
        record: Record = {
            "type": "track" if method == "postEvent" else "identify",
            "context": self._context(fields, hwid, device, request, response),
        }
        if subject.startswith("hwid:"):
            record["anonymousId"] = hwid
        else:
            record["userId"] = subject
        if method == "postEvent":
            record["event"] = str(fields["event"])
            record["properties"] = dict(fields.get("attributes") or {})
            record["context"]["traits"] = tags
            moment = parse_time(fields.get("timestampUTC"))
            if moment is not None:
                record["timestamp"] = iso(moment)
        else:
            record["traits"] = tags
        return [record]

    async def _device(
        self, hwid: str | None, fields: dict[str, Any], user_id: str | None
    ) -> dict[str, Any]:
        """What is known of the device; registerDevice/registerUser/setTags teach it."""
        if hwid is None:
            return {}
        key = f"{DEVICE_KEY}{hwid}"
        for _ in range(CAS_ATTEMPTS):
            seen = await self.state.get(key)
            device = dict(seen or {})
            changed = False
            if user_id and device.get("userId") != user_id:
                device["userId"] = user_id
                changed = True
            platform = fields.get("device_type")
            if isinstance(platform, int) and not isinstance(platform, bool):
                changed |= device.get("platform_id") != platform
                device["platform_id"] = platform
            if not changed or await self.state.compare_and_set(key, seen, device):
                return device
        raise _contended()

    async def _update_tags(
        self, method: str, subject: str, hwid: str | None, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """The subject's tags after this call. Written with compare-and-set: another
        daemon sharing the state may change the same user's tags at the same moment."""
        key = f"{TAGS_KEY}{subject}"
        loose_key = f"{TAGS_KEY}hwid:{hwid}" if hwid and not subject.startswith("hwid:") else None
        for _ in range(CAS_ATTEMPTS):
            found = await self.state.get_many([key] + ([loose_key] if loose_key else []))
            seen = found.get(key)
            tags = dict(seen or {})
            merged = loose_key is not None and loose_key in found
            if merged:  # tags set before the device had a user
                tags = {**found[loose_key], **tags}
            before = dict(tags)
            if method in ("setTags", "registerDevice") and isinstance(fields.get("tags"), dict):
                apply_tag_changes(tags, fields["tags"])
            if method == "registerDevice":
                for name, tag in DEVICE_FIELDS_AS_TAGS.items():
                    if fields.get(name) not in (None, ""):
                        tags[tag] = fields[name]
            if tags == before and not merged:
                return tags
            if await self.state.compare_and_set(key, seen, tags or None):
                if merged:  # merging twice is harmless: the user's own tags win
                    await self.state.delete(loose_key)
                return tags
        raise _contended()

    def _context(
        self,
        fields: dict[str, Any],
        hwid: str | None,
        device: dict[str, Any],
        request: web.Request,
        response: Any,
    ) -> dict[str, Any]:
        pushwoosh: dict[str, Any] = {"application": self.options.application}
        context: dict[str, Any] = {"pushwoosh": pushwoosh}
        platform = device.get("platform_id")
        if hwid:
            pushwoosh["hwid"] = hwid
            context["device"] = {"id": hwid}
        if isinstance(platform, int):
            pushwoosh["platform_id"] = platform
            if platform in PLATFORMS:
                context.setdefault("device", {})["type"] = PLATFORMS[platform].lower()
        if isinstance(response, dict) and response.get("code"):
            pushwoosh["event_code"] = response["code"]
        if self.options.client_context:
            if request.remote:
                context["ip"] = request.remote
            if request.headers.get("User-Agent"):
                context["userAgent"] = request.headers["User-Agent"]
        return context


def apply_tag_changes(tags: dict[str, Any], changes: dict[str, Any]) -> None:
    """Apply setTags values: ``null`` removes a tag; ``{"operation": "append"|"remove",
    "value": [...]}`` edits a list tag; anything else replaces the value."""
    for name, value in changes.items():
        if value is None:
            tags.pop(name, None)
            continue
        if isinstance(value, dict) and value.get("operation") in ("append", "remove"):
            items = value.get("value")
            items = items if isinstance(items, list) else [items]
            current = tags.get(name)
            current = list(current) if isinstance(current, list) else []
            if value["operation"] == "append":
                tags[name] = current + [v for v in items if v not in current]
            else:
                tags[name] = [v for v in current if v not in items]
            continue
        tags[name] = value


def text_or_none(value: Any) -> str | None:
    """A field as trimmed text, or None when absent, empty or a boolean."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None
