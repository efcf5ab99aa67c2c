"""Pushwoosh reports a source pulls: scheduled requests, the tracking log, statistics.

Scheduled requests answer a request id that ``getResults`` is polled with; the
tracking log is one of them and ends in a file to download.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from connectord import PermanentError, RetryableError

from .answers import ArgumentError, check_v2
from .const import MESSAGES_LIST_PATH, VENDOR
from .transport import PushwooshTransport


class ReportCalls(PushwooshTransport):
    """Scheduled requests (``getResults``), ``getTrackingLog`` and ``messages:list``."""

    # --- scheduled requests -----------------------------------------------------------

    async def get_results(self, request_id: str) -> tuple[bool, Any]:
        """``(True, result)`` once a scheduled request is done, ``(False, message)`` before."""
        try:
            return True, await self.call("getResults", {"request_id": request_id})
        except ArgumentError as err:
            return False, err.status_message

    async def wait_results(self, request_id: str, *, method: str) -> Any:
        """Poll ``getResults`` until the request is ready.

        :raises RetryableError: not ready within ``max_wait``.
        """
        deadline = time.monotonic() + self.max_wait
        while True:
            ready, result = await self.get_results(request_id)
            if ready:
                return result
            if time.monotonic() + self.poll_interval > deadline:
                raise RetryableError(
                    f"{VENDOR} {method} result {request_id} not ready after "
                    f"{self.max_wait:.0f}s: {result}"
                )
            await asyncio.sleep(self.poll_interval)

    # --- push tracking log ------------------------------------------------------------

    async def request_tracking_log(self, day: str) -> str:
        """Ask for the tracking log of one UTC day (``YYYY-MM-DD``); return the request id."""
        response = await self.call("getTrackingLog", {"date": day})
        request_id = (response or {}).get("request_id") if isinstance(response, dict) else None
        if not request_id:
            raise RetryableError(f"{VENDOR} getTrackingLog answered without a request_id")
        return str(request_id)

    async def tracking_log_url(self, day: str) -> str:
        """Request the log of ``day``, wait for it, and return the ZIP's address."""
        request_id = await self.request_tracking_log(day)
        result = await self.wait_results(request_id, method="getTrackingLog")
        url = (result or {}).get("fileName") if isinstance(result, dict) else None
        if not url:
            raise PermanentError(f"{VENDOR} getTrackingLog result for {day} has no fileName")
        return str(url)

    # --- statistics v2 ----------------------------------------------------------------

    async def list_messages(
        self, date_from: str, date_to: str, *, page: int = 1, per_page: int = 100
    ) -> dict[str, Any]:
        """One page of ``messages:list`` with details and per-platform metrics."""
        body = {
            "request": {
                "filters": {
                    "application": self.application,
                    "date_range": {"date_from": date_from, "date_to": date_to},
                },
                "params": {"with_details": True, "with_metrics": True},
                "per_page": per_page,
                "page": page,
            }
        }
        answer = await self._request(
            "POST",
            f"{self.base_url}{MESSAGES_LIST_PATH}",
            body=body,
            headers=self._auth_header(self._api_token),
        )
        payload = check_v2("messages:list", answer)
        if not isinstance(payload, dict):
            raise RetryableError(f"{VENDOR} messages:list answered without a JSON object")
        return payload
