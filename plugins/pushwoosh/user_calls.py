"""Pushwoosh calls about one user or device: tags, events, batch events.

Kept apart from the account-wide calls because these are the ones a Device API token
authorises (see `PushwooshTransport.call`), and the batch-events service beside them
takes the same per-user payloads.
"""

from __future__ import annotations

from typing import Any

from .answers import check_v2
from .const import BATCH_EVENTS_PATH
from .transport import PushwooshTransport


class UserCalls(PushwooshTransport):
    """Device API calls and the batch-events service."""

    # --- Device API (Device token) ----------------------------------------------------

    async def set_tags(
        self, tags: dict[str, Any], *, user_id: str | None = None, hwid: str | None = None
    ) -> None:
        """Set tag values of one user (``userId``) or device (``hwid``)."""
        await self.call("setTags", _ids(self.application, user_id, hwid) | {"tags": tags})

    async def get_tags(self, *, user_id: str | None = None, hwid: str | None = None) -> dict:
        response = await self.call("getTags", _ids(self.application, user_id, hwid))
        return dict((response or {}).get("result") or {})

    async def post_event(
        self,
        event: str,
        *,
        user_id: str | None,
        hwid: str | None = None,
        attributes: dict[str, Any] | None = None,
        timestamp_utc: int | None = None,
        device_type: int | None = None,
    ) -> str | None:
        """Post one event; ``attributes`` is always sent (Pushwoosh refuses it missing)."""
        request = _ids(self.application, user_id, hwid)
        request["event"] = event
        request["attributes"] = attributes or {}
        if timestamp_utc is not None:
            request["timestampUTC"] = timestamp_utc
        if device_type is not None:
            request["device_type"] = device_type
        response = await self.call("postEvent", request)
        return (response or {}).get("code") if isinstance(response, dict) else None

    # --- batch events (server-integration service) ------------------------------------

    async def post_events_batch(self, events: list[dict[str, Any]]) -> None:
        """Post up to 100 events in one request; one bad event refuses the whole batch."""
        headers = {**self._auth_header(self._api_token), "X-PW-Appcode": self.application}
        answer = await self._request(
            "POST",
            f"{self.events_url}{BATCH_EVENTS_PATH}",
            body={"events": events},
            headers=headers,
        )
        check_v2("post-events", answer)


def _ids(application: str, user_id: str | None, hwid: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {"application": application}
    if user_id is not None:
        request["userId"] = user_id
    if hwid is not None:
        request["hwid"] = hwid
    return request
