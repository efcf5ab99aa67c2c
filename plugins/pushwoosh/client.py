"""Pushwoosh HTTP: auth, envelopes, async request polling and error mapping.

Three API styles live side by side (see docs/integrations/pushwoosh.md; answers are
checked in `answers`):

- legacy ``POST /json/1.3/<method>`` with ``{"request": {...}}``: Device API methods take
  ``Authorization: Token <device token>``, every other method the server token in
  ``request.auth``. The answer is an envelope ``{"status_code", "status_message",
  "response"}`` whose ``status_code`` matters as much as the HTTP status (210 is an
  argument error on an HTTP 200);
- Audience API v2 ``/api/v2/audience/<op>``: a flat body with ``auth``;
  ``bulkSetTags`` answers a request id whose status is polled until done;
- Statistics v2 ``/api/v2/messages:list``: ``Authorization: Token <server token>``.

Nothing here logs or repeats a token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import IO, Any

import aiohttp
import orjson

from connectord import PermanentError, RetryableError
from connectord.http import raise_for_status

from .answers import (  # noqa: F401  (ArgumentError & co. are imported from here too)
    Answer,
    ArgumentError,
    DeviceTokenMissing,
    PlanLimited,
    api_family,
    check_envelope,
    check_v2,
)
from .const import (
    APPLICATION_CODE,
    AUDIENCE_PATH,
    BATCH_EVENTS_PATH,
    DEFAULT_BASE_URL,
    DEFAULT_EVENTS_URL,
    DEVICE_API_METHODS,
    LEGACY_PATH,
    MESSAGES_LIST_PATH,
    VENDOR,
    TagType,
)
from .tracking import TRACKING_COLUMNS, iter_tracking_rows  # noqa: F401  (moved there)

BULK_DONE = frozenset({"completed", "done", "finished", "success", "succeeded"})
BULK_FAILED = frozenset({"failed", "error", "canceled", "cancelled"})


def validate_application(code: str) -> str:
    """Check an application code (``XXXXX-XXXXX``, digits and capitals)."""
    if not APPLICATION_CODE.match(code):
        raise ValueError(
            f"{code!r} is not a Pushwoosh application code; expected XXXXX-XXXXX "
            "(5 + 5 digits or capital letters, e.g. ABCDE-12345)"
        )
    return code


class PushwooshClient:
    """Calls the Pushwoosh APIs for one application.

    :param http: returns the aiohttp session to use (the connector's).
    :param api_token: the server token (``auth`` in bodies, statistics header).
    :param device_token: the Device API token. Without it Device API methods raise
        `DeviceTokenMissing`: the server token is never sent in its place.
    :param poll_interval: seconds between polls of asynchronous requests.
    :param max_wait: seconds to wait for an asynchronous request before giving up.
    """

    def __init__(
        self,
        http: Callable[[], aiohttp.ClientSession],
        *,
        application: str,
        api_token: str,
        device_token: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        events_url: str = DEFAULT_EVENTS_URL,
        poll_interval: float = 5.0,
        max_wait: float = 600.0,
    ) -> None:
        self.http = http
        self.application = application
        self._api_token = api_token
        self._device_token = device_token or None
        self.base_url = base_url.rstrip("/")
        self.events_url = events_url.rstrip("/")
        self.poll_interval = poll_interval
        self.max_wait = max_wait

    # --- transport ---------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        sent = {"Content-Type": "application/json", **(headers or {})} if data else headers
        try:
            async with self.http().request(
                method, url, data=data, headers=sent, params=params
            ) as response:
                content = await response.read()
                status, answer_headers = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RetryableError(f"{VENDOR} unreachable: {err!r}") from err
        try:
            payload = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            payload = None
        return Answer(status, answer_headers, content, payload)

    def _auth_header(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Token {token}"}

    async def call(self, method: str, fields: dict[str, Any]) -> Any:
        """Call a legacy ``/json/1.3`` method; return the envelope's ``response``.

        Device API methods are sent with the Device token header, the others with the
        server token in ``request.auth``.
        """
        request = dict(fields)
        headers: dict[str, str] = {}
        if method in DEVICE_API_METHODS:
            if not self._device_token:
                raise DeviceTokenMissing(method)
            headers = self._auth_header(self._device_token)
        else:
            request["auth"] = self._api_token
        answer = await self._request(
            "POST",
            f"{self.base_url}{LEGACY_PATH}{method}",
            body={"request": request},
            headers=headers,
        )
        return check_envelope(method, answer)

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

    async def download(self, url: str, target: IO[bytes], *, max_bytes: int) -> int:
        """Stream a result file (no credentials are sent) into ``target``; return its size."""
        size = 0
        try:
            async with self.http().get(url) as response:
                if response.status >= 400:
                    text = await response.text(errors="replace")
                    raise_for_status(response.status, response.headers, text, vendor=VENDOR)
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PermanentError(
                            f"{VENDOR} result file exceeds the limit of {max_bytes} bytes"
                        )
                    target.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RetryableError(f"{VENDOR} result download failed: {err!r}") from err
        return size

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

    # --- relay -----------------------------------------------------------------------

    async def forward(self, method: str, body: bytes, headers: dict[str, str]) -> Answer:
        """Send a caller's legacy request as it came; return Pushwoosh's answer as is."""
        return await self._request(
            "POST", f"{self.base_url}{LEGACY_PATH}{method}", raw=body, headers=headers
        )


def _ids(application: str, user_id: str | None, hwid: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {"application": application}
    if user_id is not None:
        request["userId"] = user_id
    if hwid is not None:
        request["hwid"] = hwid
    return request
