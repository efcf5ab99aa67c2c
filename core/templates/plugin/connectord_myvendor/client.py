"""My Vendor's HTTP API: authentication, envelopes, paging and error mapping.

Only vendor I/O lives here, no record logic. Every answer goes through
`connectord.http.raise_for_status`, so failures are classified the way the framework
expects: 429/5xx/timeouts are `RetryableError` (with ``Retry-After``), 401/403
`AuthError`, other 4xx `PermanentError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from connectord import RetryableError
from connectord.http import raise_for_status

from .const import EVENTS_PATH, TRACK_PATH, VENDOR


class MyVendorClient:
    """Calls My Vendor with the connector's shared HTTP session."""

    def __init__(
        self, session: Callable[[], aiohttp.ClientSession], base_url: str, api_key: str
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"}

    async def list_events(
        self, since_id: int, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of events with an id above ``since_id``, oldest first, and the
        cursor of the next page (``None`` on the last one)."""
        params = {"since_id": str(since_id), "limit": str(limit)}
        if cursor:
            params["cursor"] = cursor
        body = await self._request("GET", EVENTS_PATH, params=params)
        return list(body.get("events", [])), body.get("next_cursor")

    async def track(self, events: list[dict[str, Any]]) -> dict[int, str]:
        """Upload events in one request; return the vendor's per-event errors by index."""
        body = await self._request("POST", TRACK_PATH, json={"events": events})
        return {int(e["index"]): str(e["message"]) for e in body.get("errors", [])}

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self.session().request(
                method, self.base_url + path, headers=self.headers, **kwargs
            ) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            # Unreachable or too slow: try again later, never dead-letter for this.
            raise RetryableError(f"{VENDOR} unreachable: {err!r}") from err
        raise_for_status(response.status, response.headers, text, vendor=VENDOR)
        return orjson.loads(text) if text else {}
