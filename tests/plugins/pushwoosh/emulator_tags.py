"""The Pushwoosh emulator's tags and segments: the Tags API (Custom plan), the
Segmentation (filters) API and the typed tag storage that setTags and bulkSetTags write.

Mixed into `tests.plugins.pushwoosh.emulator.PushwooshEmulator`; see that module for the
contract (tag types: https://docs.pushwoosh.com/developer/api-reference/tags).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from aiohttp import web

from tests.plugins.pushwoosh.emulator_segments import parse_segment
from tests.plugins.pushwoosh.emulator_v2 import ArgumentError
from tests.plugins.pushwoosh.emulator_values import LIST, TYPE_NAMES, check_value, inferred_type


def code_for(*parts: Any) -> str:
    """A Pushwoosh-style ``XXXXX-XXXXX`` code, stable for the same parts."""
    digest = hashlib.sha1(orjson.dumps(parts)).hexdigest().upper()
    return f"{digest[:5]}-{digest[5:10]}"


class TagStoreMixin:
    """Tags API and filters handlers, and where tag values are kept."""

    application: str
    high_speed_setup: bool
    tag_types: dict[str, int]
    user_tags: dict[str, dict[str, Any]]
    device_tags: dict[str, dict[str, Any]]
    devices: dict[str, dict[str, Any]]
    filters: dict[str, dict[str, Any]]

    # --- Tags API and filters -----------------------------------------------------------

    def m_addTag(self, fields: dict[str, Any], request: web.Request) -> dict:
        tag = fields.get("tag")
        if not isinstance(tag, dict) or not tag.get("name"):
            raise ArgumentError("tag.name is required")
        if tag.get("type") not in TYPE_NAMES:
            raise ArgumentError(f"tag.type must be one of {sorted(TYPE_NAMES)}")
        if tag["name"] in self.tag_types:
            raise ArgumentError(f"Tag {tag['name']} already exists")
        self.tag_types[str(tag["name"])] = int(tag["type"])
        return {"result": True}

    def m_deleteTag(self, fields: dict[str, Any], request: web.Request) -> dict:
        name = (fields.get("tag") or {}).get("name")
        if name not in self.tag_types:
            raise ArgumentError(f"Tag {name} not found")
        del self.tag_types[name]
        return {"result": True}

    def m_listTags(self, fields: dict[str, Any], request: web.Request) -> dict:
        return {
            "tags": [
                {"name": name, "type": kind, "isApplicationSpecific": False}
                for name, kind in sorted(self.tag_types.items())
            ]
        }

    def m_createFilter(self, fields: dict[str, Any], request: web.Request) -> dict:
        self._require(fields, "name", "filter_expression")
        if "application" in fields and not self.high_speed_setup:
            raise ArgumentError("application is available for High-Speed Setup accounts only")
        name = str(fields["name"])
        if name in self.filters:
            raise ArgumentError(f"Filter with name {name} already exists")
        try:
            parse_segment(str(fields["filter_expression"]))
        except ValueError as err:
            raise ArgumentError(f"Invalid filter_expression: {err}") from None
        self.filters[name] = {
            "code": code_for("filter", name),
            "name": name,
            "filter_expression": str(fields["filter_expression"]),
            "expiration_date": fields.get("expiration_date"),
            "application": fields.get("application"),
        }
        return {"name": name}

    def m_listFilters(self, fields: dict[str, Any], request: web.Request) -> dict:
        return {"filters": [dict(f) for f in self.filters.values()]}

    def m_deleteFilter(self, fields: dict[str, Any], request: web.Request) -> None:
        if self.filters.pop(str(fields.get("name")), None) is None:
            raise ArgumentError("Filter not found")

    # --- tag storage --------------------------------------------------------------------

    def _tag_bucket(self, user_id: str | None, hwid: str | None) -> dict[str, Any]:
        if not user_id and hwid:
            user_id = self.devices.get(hwid, {}).get("userId")
        if user_id:
            return self.user_tags.setdefault(user_id, {})
        assert hwid is not None
        return self.device_tags.setdefault(hwid, {})

    def _apply_tags(
        self,
        bucket: dict[str, Any],
        tags: dict[str, Any],
        *,
        operator: str = "set",
        create_missing: bool = True,
    ) -> None:
        """Validate every tag first (all or nothing), then write."""
        writes: dict[str, Any] = {}
        for name, value in tags.items():
            kind = self.tag_types.get(name)
            if value is None:
                writes[name] = None
                continue
            if isinstance(value, dict) and value.get("operation") in ("append", "remove"):
                # the SDKs' list edits on setTags: {"operation": "append", "value": [...]}
                self._apply_tags(bucket, {name: value.get("value")}, operator=value["operation"])
                continue
            if kind is None:
                if not create_missing:
                    raise ArgumentError(f"Tag {name} not found")
                kind = inferred_type(value)
            check_value(name, kind, value)
            if operator != "set" and kind != LIST:
                raise ArgumentError(f"list_operator {operator} needs a List tag; {name} is not")
            writes[name] = (kind, value)
        for name, write in writes.items():
            if write is None:
                bucket.pop(name, None)
                continue
            kind, value = write
            self.tag_types.setdefault(name, kind)
            if operator == "append":
                current = list(bucket.get(name) or [])
                bucket[name] = current + [v for v in value if v not in current]
            elif operator == "remove":
                bucket[name] = [v for v in bucket.get(name) or [] if v not in value]
            else:
                bucket[name] = value
