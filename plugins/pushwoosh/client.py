"""Pushwoosh HTTP: auth, envelopes, async request polling and error mapping.

Three API styles live side by side (see docs/integrations/pushwoosh.md):

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
import csv
import io
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson

from connectord import AuthError, PermanentError, RetryableError
from connectord.http import raise_for_status, retry_after_seconds

from .const import (
    APPLICATION_CODE,
    AUDIENCE_PATH,
    BATCH_EVENTS_PATH,
    DEFAULT_BASE_URL,
    DEFAULT_EVENTS_URL,
    DEVICE_API_METHODS,
    LEGACY_PATH,
    MESSAGES_LIST_PATH,
    STATUS_ARGUMENT_ERROR,
    STATUS_OK,
    VENDOR,
    TagType,
)

TRACKING_COLUMNS = ("timestamp", "tracking_code", "target_id", "hwid", "status", "description")
"""Columns of the push tracking log CSV, in the documented order."""

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


class ArgumentError(PermanentError):
    """Pushwoosh refused the arguments of a call (envelope ``status_code`` 210)."""

    def __init__(self, method: str, status_message: str) -> None:
        super().__init__(f"{VENDOR} {method}: argument error: {status_message}")
        self.method = method
        self.status_message = status_message


@dataclass
class Answer:
    """One HTTP answer: status, headers, raw body and its JSON (``None`` if not JSON)."""

    status: int
    headers: Any
    body: bytes
    payload: Any

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class PushwooshClient:
    """Calls the Pushwoosh APIs for one application.

    :param http: returns the aiohttp session to use (the connector's).
    :param api_token: the server token (``auth`` in bodies, statistics header).
    :param device_token: the Device API token; the server token is tried when absent.
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
        self._device_token = device_token or api_token
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

    async def create_filter(self, name: str, expression: str) -> str:
        response = await self.call(
            "createFilter",
            {"name": name, "filter_expression": expression, "application": self.application},
        )
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


def check_envelope(method: str, answer: Answer) -> Any:
    """The ``response`` of a legacy answer, or the delivery error it stands for.

    Both layers count: HTTP 429/5xx/401/403 and envelope ``status_code`` 401/403 (token
    refused), 210 (argument error), 429/5xx (transient) map to connectord's errors.
    """
    envelope = answer.payload if isinstance(answer.payload, dict) else None
    code = _envelope_code(envelope)
    message = str(envelope.get("status_message") or "") if envelope else ""
    retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
    if answer.status >= 400 or code is None:
        detail = message or answer.text
        if answer.status < 400:  # an HTTP success that is not Pushwoosh's envelope
            raise RetryableError(
                f"{VENDOR} {method} answered HTTP {answer.status} without a status envelope"
            )
        if code == STATUS_ARGUMENT_ERROR:
            raise ArgumentError(method, message)
        raise_for_status(answer.status, answer.headers, detail, vendor=f"{VENDOR} {method}")
    if code == STATUS_OK:
        return envelope.get("response") if envelope else None
    if code == STATUS_ARGUMENT_ERROR:
        raise ArgumentError(method, message)
    text = f"{VENDOR} {method}: status {code}: {message}"
    if code in (401, 403):
        raise AuthError(text, retry_after=retry_after)
    if code in (408, 429) or code >= 500:
        raise RetryableError(text, retry_after=retry_after)
    raise PermanentError(text)


def _envelope_code(envelope: dict | None) -> int | None:
    if envelope is None or "status_code" not in envelope:
        return None
    try:
        return int(envelope["status_code"])
    except (TypeError, ValueError):
        return None


def check_v2(operation: str, answer: Answer) -> Any:
    """The JSON of a v2 answer (plain HTTP status semantics), or the matching error."""
    if answer.status >= 400:
        detail = ""
        if isinstance(answer.payload, dict):
            error = answer.payload.get("error")
            detail = str(
                answer.payload.get("message")
                or (error.get("message") if isinstance(error, dict) else error)
                or ""
            )
        raise_for_status(
            answer.status, answer.headers, detail or answer.text, vendor=f"{VENDOR} {operation}"
        )
    if answer.payload is None and answer.body.strip():
        raise RetryableError(f"{VENDOR} {operation} answered something that is not JSON")
    return answer.payload


# --- tracking log files ---------------------------------------------------------------


def iter_tracking_rows(path: Path | IO[bytes]) -> Iterator[dict[str, str]]:
    """Rows of a tracking-log ZIP (a path or a seekable file): every CSV member,
    ``;``-separated.

    A first line naming the columns is used as the header (so extra columns such as
    ``campaign`` or ``platform`` are kept); without one the documented order applies.
    """
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            with archive.open(info) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                yield from _csv_rows(text)


def _csv_rows(text: IO[str]) -> Iterator[dict[str, str]]:
    reader = csv.reader(text, delimiter=";")
    header: list[str] | None = None
    for index, row in enumerate(reader):
        if not row or all(not cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if index == 0 and {"tracking_code", "status"} <= {c.lower() for c in cells}:
            header = [c.lower() for c in cells]
            continue
        names = header or list(TRACKING_COLUMNS)
        item = dict(zip(names, cells, strict=False))
        if len(cells) > len(names):  # a ';' inside the last column (description)
            item[names[-1]] = ";".join(cells[len(names) - 1 :])
        yield item
