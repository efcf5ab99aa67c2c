"""``pushwoosh.to_piano``: Pushwoosh records in Piano Analytics' vocabulary (pure).

The glossary of Pushwoosh's Piano integration:

| Pushwoosh | Piano |
|---|---|
| event name (``PW_SiteOpened``) | event name, lowercased (``pw_siteopened``) |
| UserID | property ``pushwooshid`` |
| CampaignID | property ``src_medium`` |
| PlatformID | property ``device_type`` (readable: ``iOS``, ``Android``, ``Chrome``…) |
| tags (``context.traits``) | properties (Country → ``country``, Device Model → ``device_model``…) |
| tag ``Piano Visitor ID`` / user / hwid | visitor id ``context.piano.idclient`` |

``metric`` records (push stats) become ``pw_push_stats`` events with the figures as
properties; ``identify`` records are dropped: their tags already ride on every event.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any

from pydantic import Field, field_validator

from connectord import Mapping, Options, Record

from .const import PLATFORM_IDS, PLATFORMS

MAX_KEY = 40
RESERVED_PREFIXES = ("m_", "visit_")
VISITOR_NAMESPACE = uuid.UUID("6f1c8e1e-3b1e-5d2a-9c55-70757368776f")
"""Namespace of the visitor ids derived from Pushwoosh users and devices (uuid5)."""

DEFAULT_TAGS = {
    "Country": "country",
    "Device Model": "device_model",
    "OS Version": "os_version",
    "Browser Type": "browser_type",
}
CAMPAIGN_KEYS = ("campaign_id", "campaignid", "campaign_code", "campaign")
DROPPED_TYPES = frozenset({"identify", "group", "alias", "audience"})

_NOT_KEY = re.compile(r"[^a-z0-9_]+")
_NOT_EVENT = re.compile(r"[^a-z0-9_.]+")


def piano_key(name: Any) -> str:
    """A Piano-valid property key: lowercase ``^[a-z]\\w*$``, at most 40 characters,
    never starting with ``m_``/``visit_`` (such names get a ``pw_`` prefix)."""
    text = unicodedata.normalize("NFKD", str(name).strip().lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    key = _NOT_KEY.sub("_", text).strip("_")
    key = re.sub(r"_+", "_", key)
    if not key or not key[0].isalpha() or key.startswith(RESERVED_PREFIXES):
        key = f"pw_{key}".rstrip("_")
    return key[:MAX_KEY].rstrip("_")


def piano_event(name: Any) -> str:
    """Lowercased, with runs of other characters as ``_`` (``Push Opened`` → ``push_opened``)."""
    text = _NOT_EVENT.sub("_", str(name).strip().lower()).strip("_")
    return text or "pw_event"


def visitor_id(kind: str, value: str) -> str:
    """A stable GUID for a Pushwoosh user or device (Piano recommends GUIDs)."""
    return str(uuid.uuid5(VISITOR_NAMESPACE, f"{kind}:{value}"))


class PushwooshToPiano(Mapping):
    """Rename Pushwoosh events, tags and push stats into Piano Analytics events."""

    type = "pushwoosh.to_piano"

    class Options(Options):
        events: dict[str, str] = Field(
            default_factory=dict,
            description="Pushwoosh event → Piano event, matched case-insensitively, e.g. "
            '{ PW_SiteOpened = "page.display" }. Others are lowercased.',
        )
        tags: dict[str, str] = Field(
            default_factory=lambda: dict(DEFAULT_TAGS),
            description="Tag → Piano property, matched case-insensitively. Default: Country, "
            "Device Model, OS Version, Browser Type.",
        )
        other_tags: bool = Field(
            False, description="Also send every other tag, under its Piano-valid name."
        )
        visitor_id_tag: str = Field(
            "Piano Visitor ID",
            description="Tag whose value is the Piano visitor id (else one is derived from "
            "the Pushwoosh user id or hwid).",
        )
        stats_event: str = Field("pw_push_stats", description="Event name for push stats.")

        @field_validator("tags")
        @classmethod
        def _keys(cls, value: dict[str, str]) -> dict[str, str]:
            for tag, key in value.items():
                if piano_key(key) != key:
                    raise ValueError(
                        f"{key!r} (for tag {tag!r}) is not a Piano property key; "
                        f"use {piano_key(key)!r}"
                    )
            return value

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.events = {k.lower(): v for k, v in options.events.items()}
        self.tags = {k.lower(): v for k, v in options.tags.items()}
        self.visitor_tag = options.visitor_id_tag.lower()

    def map(self, record: Record) -> Record | None:
        kind = record.get("type")
        if kind == "track":
            return self.event(record)
        if kind == "metric":
            return self.stats(record)
        if kind in DROPPED_TYPES:
            return None
        return record

    # --- track ------------------------------------------------------------------------

    def event(self, record: Record) -> Record:
        context = _dict(record.get("context"))
        pushwoosh = _dict(context.get("pushwoosh"))
        traits = _dict(context.get("traits"))
        raw_properties = _dict(record.get("properties"))
        properties = flatten(raw_properties)
        properties.update(self.tag_properties(traits))
        user_id = record.get("userId")
        if user_id not in (None, ""):
            properties["pushwooshid"] = str(user_id)
        campaign = pushwoosh.get("campaign_id") or _campaign(raw_properties)
        if campaign not in (None, ""):
            properties["src_medium"] = str(campaign)
        platform = platform_name(context, raw_properties)
        if platform:
            properties["device_type"] = platform
        name = str(record.get("event", ""))
        out_context = {k: v for k, v in context.items() if k != "traits"}
        out_context["piano"] = {
            **_dict(context.get("piano")),
            "idclient": self.visitor(record, traits, context),
        }
        return _track(
            record, self.events.get(name.lower()) or piano_event(name), properties, out_context
        )

    def tag_properties(self, traits: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for tag, value in traits.items():
            if value is None or tag.lower() == self.visitor_tag:
                continue
            key = self.tags.get(tag.lower())
            if key is None and self.options.other_tags:
                key = piano_key(tag)
            if key is not None:
                out[key] = value
        return out

    def visitor(self, record: Record, traits: dict[str, Any], context: dict[str, Any]) -> str:
        for tag, value in traits.items():
            if tag.lower() == self.visitor_tag and value not in (None, ""):
                return str(value)
        if record.get("userId") not in (None, ""):
            return visitor_id("user", str(record["userId"]))
        hwid = _dict(context.get("device")).get("id") or _dict(context.get("pushwoosh")).get("hwid")
        if hwid:
            return visitor_id("hwid", str(hwid))
        return visitor_id("anonymous", str(record.get("anonymousId")))

    # --- metric -----------------------------------------------------------------------

    def stats(self, record: Record) -> Record:
        dimensions = _dict(record.get("dimensions"))
        metric = str(record.get("metric"))
        properties = flatten(dimensions)
        properties.update(flatten(_dict(record.get("values"))))
        properties["metric"] = metric
        if record.get("period"):
            properties["period"] = record["period"]
        if dimensions.get("campaign") not in (None, ""):
            properties["src_medium"] = str(dimensions["campaign"])
        platform = _platform(dimensions.get("platform_id")) or _platform(dimensions.get("platform"))
        if platform:
            properties["device_type"] = platform
        subject = str(dimensions.get("message_code") or metric)
        event = self.options.stats_event if metric == "push_stats" else piano_event(f"pw_{metric}")
        out: Record = _track(
            record,
            event,
            properties,
            {"piano": {"idclient": visitor_id("stats", subject)}},
        )
        out["anonymousId"] = f"pushwoosh-stats:{subject}"
        return out


def _track(record: Record, event: str, properties: dict[str, Any], context: dict) -> Record:
    out: Record = {"type": "track", "event": event, "properties": properties, "context": context}
    for key in ("userId", "anonymousId", "messageId", "timestamp", "receivedAt", "sentAt"):
        if record.get(key) not in (None, ""):
            out[key] = record[key]
    return out


def flatten(values: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Properties with Piano-valid keys; nested objects become ``parent_child`` keys.
    When two names end up as the same key, the first one wins."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        key = piano_key(f"{prefix}_{name}" if prefix else name)
        if isinstance(value, dict) and depth < 3:
            for inner, item in flatten(value, key, depth + 1).items():
                out.setdefault(inner, item)
        else:
            out.setdefault(key, value)
    return out


def platform_name(context: dict[str, Any], properties: dict[str, Any]) -> str | None:
    """The readable platform of an event (PlatformID → ``iOS``, ``Android``, ``Chrome``…)."""
    pushwoosh = _dict(context.get("pushwoosh"))
    for value in (
        pushwoosh.get("platform_id"),
        properties.get("platform_id"),
        properties.get("device_type"),
        _dict(context.get("device")).get("type"),
        _dict(context.get("os")).get("name"),
    ):
        name = _platform(value)
        if name:
            return name
    return None


def _platform(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return PLATFORMS.get(value)
    text = str(value).strip()
    if text.isdigit():
        return PLATFORMS.get(int(text))
    code = PLATFORM_IDS.get(text.lower())
    return PLATFORMS.get(code) if code is not None else None


def _campaign(properties: dict[str, Any]) -> Any:
    for name, value in properties.items():
        if piano_key(name).replace("_", "") in {k.replace("_", "") for k in CAMPAIGN_KEYS}:
            return value
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
