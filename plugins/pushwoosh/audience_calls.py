"""Pushwoosh account-wide audience calls: tags, segments (filters), bulk tag updates.

These take the server token, and `bulkSetTags` is asynchronous, so its polling lives
here with it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from connectord import PermanentError, RetryableError

from .answers import check_v2
from .const import AUDIENCE_PATH, VENDOR, TagType
from .transport import PushwooshTransport

BULK_DONE = frozenset({"completed", "done", "finished", "success", "succeeded"})
BULK_FAILED = frozenset({"failed", "error", "canceled", "cancelled"})


class AudienceCalls(PushwooshTransport):
    """Tags API, Segmentation (filters) API and Audience API v2 ``bulkSetTags``."""

    # --- Tags API (server token) ------------------------------------------------------

    async def add_tag(
        self,
        name: str,
        tag_type: TagType,
        *,
        user_specific: bool = True,
        application_specific: bool = False,
    ) -> None:
        tag = {
            "name": name,
            "type": int(tag_type),
            "user_specific": user_specific,
            "application_specific": application_specific,
        }
        await self.call("addTag", {"tag": tag})

    async def list_tags(self) -> dict[str, TagType]:
        """Every tag of the account with its type (unknown type ids read as String)."""
        response = await self.call("listTags", {})
        found: dict[str, TagType] = {}
        for tag in (response or {}).get("tags") or []:
            try:
                found[str(tag["name"])] = TagType(int(tag.get("type", 2)))
            except (KeyError, ValueError, TypeError):
                continue
        return found

    # --- Segmentation (filters) -------------------------------------------------------

    async def create_filter(
        self, name: str, expression: str, *, with_application: bool = False
    ) -> str:
        """Create a segment. ``application`` is sent only when asked: Pushwoosh documents
        it for High-Speed Setup accounts only."""
        request = {"name": name, "filter_expression": expression}
        if with_application:
            request["application"] = self.application
        response = await self.call("createFilter", request)
        return str((response or {}).get("name") or name)

    async def list_filters(self) -> list[dict[str, Any]]:
        response = await self.call("listFilters", {"application": self.application})
        return list((response or {}).get("filters") or [])

    # --- Audience API v2: bulkSetTags -------------------------------------------------

    async def bulk_set_tags(
        self, devices: list[dict[str, Any]], *, create_missing_tags: bool = False
    ) -> str:
        """Start a bulk tag update; return its request id (the work is asynchronous)."""
        body = {
            "application": self.application,
            "auth": self._api_token,
            "create_missing_tags": create_missing_tags,
            "devices": devices,
        }
        answer = await self._request(
            "POST", f"{self.base_url}{AUDIENCE_PATH}bulkSetTags", body=body
        )
        payload = check_v2("bulkSetTags", answer)
        request_id = payload.get("request_id") if isinstance(payload, dict) else None
        if not request_id:
            raise RetryableError(f"{VENDOR} bulkSetTags answered without a request_id")
        return str(request_id)

    async def bulk_set_tags_status(self, request_id: str, *, detailed: bool = True) -> dict:
        answer = await self._request(
            "GET",
            f"{self.base_url}{AUDIENCE_PATH}bulkSetTags/{request_id}",
            headers=self._auth_header(self._api_token),
            params={"detailed": "true" if detailed else "false"},
        )
        payload = check_v2("bulkSetTags status", answer)
        return payload if isinstance(payload, dict) else {}

    async def bulk_set_tags_wait(self, request_id: str) -> dict:
        """Poll a bulkSetTags request until it completes; return the detailed status.

        :raises PermanentError: the whole request failed.
        :raises RetryableError: it did not finish within ``max_wait`` (resending the
            same tags is harmless).
        """
        deadline = time.monotonic() + self.max_wait
        while True:
            status = await self.bulk_set_tags_status(request_id)
            state = str(status.get("status", "")).lower()
            if state in BULK_DONE:
                return status
            if state in BULK_FAILED:
                reason = status.get("error") or status.get("message") or state
                raise PermanentError(f"{VENDOR} bulkSetTags {request_id} failed: {reason}")
            if time.monotonic() + self.poll_interval > deadline:
                raise RetryableError(
                    f"{VENDOR} bulkSetTags {request_id} still {state or 'pending'} "
                    f"after {self.max_wait:.0f}s"
                )
            await asyncio.sleep(self.poll_interval)
