"""CleverTap's REST API: auth headers, the JSON envelope, cursors, ``req_id`` polling.

Only HTTP lives here. Every call goes through one per-account semaphore (CleverTap
limits concurrent calls per account and answers 429 beyond it), retries 429/5xx and
network errors with backoff, and reads both the HTTP status and the ``status``/``code``
of the JSON body, because CleverTap reports some failures inside a 200.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import structlog
from yarl import URL

from connectord import ConnectordError, PermanentError, RetryableError
from connectord.http import Backoff, call_with_retries, raise_for_status, retry_after_seconds
from connectord.pull import AccountLimits

from .const import (
    ACCOUNT_HEADER,
    API_VERSION_PATH,
    CAMPAIGN_LIST_PATH,
    CAMPAIGN_RESULT_PATH,
    EVENT_COUNT_PATH,
    IN_PROGRESS_CODE,
    MAX_BATCH_SIZE,
    PASSCODE_HEADER,
    PROFILE_COUNT_PATH,
    VENDOR,
)


class QueryInProgress(ConnectordError):
    """CleverTap is still computing the query (``code: 2``); ask again later.

    Not a `RetryableError`: the caller polls at its own pace instead of backing off."""


class CursorExpired(PermanentError):
    """CleverTap no longer knows the cursor (expired or already used): start the query
    again."""


@dataclass
class Page:
    """One page of a cursor export."""

    records: list[dict[str, Any]]
    next_cursor: str | None


ACCOUNTS = AccountLimits()


def account_slots(base_url: str, account_id: str, limit: int) -> asyncio.Semaphore:
    """The semaphore every client of one account shares within this event loop, so
    several connectors on the same account stay under CleverTap's concurrency limit
    (counted per account: developer.clevertap.com/docs/api-request-limit)."""
    return ACCOUNTS.get((base_url, account_id), limit)


class CleverTapClient:
    """Calls ``<base_url>/1/...`` for one account."""

    def __init__(
        self,
        http: Callable[[], aiohttp.ClientSession],
        base_url: str,
        account_id: str,
        passcode: str,
        *,
        concurrency: int = 3,
        attempts: int = 8,
        backoff: Backoff | None = None,
        poll_interval: float = 15.0,
        query_timeout: float = 1800.0,
        log: Any = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self._passcode = passcode
        self.concurrency = concurrency
        self.attempts = attempts
        self.backoff = backoff or Backoff(2.0, 120.0)
        self.poll_interval = poll_interval
        self.query_timeout = query_timeout
        self.log = log or structlog.get_logger()

    def _headers(self, *, json_body: bool) -> dict[str, str]:
        headers = {ACCOUNT_HEADER: self.account_id, PASSCODE_HEADER: self._passcode}
        if json_body:
            headers["Content-Type"] = "application/json"
        return headers

    def url(self, path: str, query: str = "") -> URL:
        """The API URL; ``query`` is used as given, because CleverTap's cursors arrive
        URL-encoded already and must not be encoded twice."""
        text = f"{self.base_url}{API_VERSION_PATH}/{path}"
        return URL(f"{text}?{query}" if query else text, encoded=True)

    # --- the envelope -------------------------------------------------------------------

    async def call(
        self, method: str, path: str, *, query: str = "", body: Any = None
    ) -> dict[str, Any]:
        """One API call with retries of 429, 5xx and network errors; the decoded body."""

        async def once() -> dict[str, Any]:
            async with account_slots(self.base_url, self.account_id, self.concurrency):
                data = None if body is None else orjson.dumps(body)
                async with self.http().request(
                    method,
                    self.url(path, query),
                    data=data,
                    headers=self._headers(json_body=body is not None),
                ) as response:
                    raw = await response.read()
                    return interpret(response.status, response.headers, raw)

        def on_retry(attempt: int, err: Exception, delay: float) -> None:
            self.log.warning(
                "clevertap.call.retry",
                path=path,
                attempt=attempt,
                delay=round(delay, 2),
                error=str(err) or repr(err),
            )

        return await call_with_retries(
            once, attempts=self.attempts, backoff=self.backoff, on_retry=on_retry
        )

    # --- cursor exports (events and profiles) ---------------------------------------------

    async def open_cursor(
        self,
        path: str,
        query: dict[str, Any],
        *,
        batch_size: int,
        app: bool = False,
        events: bool = False,
        profile: bool = True,
    ) -> str:
        """POST the query; CleverTap answers a cursor for the first page."""
        flags = (
            f"batch_size={min(batch_size, MAX_BATCH_SIZE)}&app={_bool(app)}"
            f"&events={_bool(events)}&profile={_bool(profile)}"
        )
        answer = await self.call("POST", path, query=flags, body=query)
        cursor = answer.get("cursor") or answer.get("next_cursor")
        if not cursor:
            raise PermanentError(f"{VENDOR} answered no cursor for {path}: {_excerpt(answer)}")
        return str(cursor)

    async def page(self, path: str, cursor: str) -> Page:
        """The page behind ``cursor``; waits while CleverTap is still computing it."""
        deadline = time.monotonic() + self.query_timeout
        while True:
            try:
                answer = await self.call("GET", path, query=f"cursor={cursor}")
            except QueryInProgress as err:
                if time.monotonic() > deadline:
                    raise RetryableError(
                        f"{VENDOR} query still in progress after {self.query_timeout:.0f}s"
                    ) from err
                await asyncio.sleep(self.poll_interval)
                continue
            records = answer.get("records") or []
            following = answer.get("next_cursor") or answer.get("cursor")
            if not records:
                following = None  # an empty page ends the export, whatever it says
            return Page(records, str(following) if following else None)

    # --- counts: asynchronous req_id queries ----------------------------------------------

    async def event_count(self, event_name: str, day_from: int, day_to: int) -> int:
        """``counts/events.json``: the count now, or after polling its ``req_id``."""
        return await self._count(EVENT_COUNT_PATH, event_name, day_from, day_to)

    async def profile_count(self, event_name: str, day_from: int, day_to: int) -> int:
        """``counts/profiles.json`` (Get Profile Count): how many profiles did the event
        in the range; the same body and ``req_id`` polling as the event count."""
        return await self._count(PROFILE_COUNT_PATH, event_name, day_from, day_to)

    async def _count(self, path: str, event_name: str, day_from: int, day_to: int) -> int:
        answer = await self.call(
            "POST", path, body={"event_name": event_name, "from": day_from, "to": day_to}
        )
        answer = await self.poll(path, answer)
        count = answer.get("count")
        if not isinstance(count, int | float) or isinstance(count, bool):
            raise PermanentError(f"{VENDOR} count answer without a count: {_excerpt(answer)}")
        return int(count)

    async def poll(self, path: str, answer: dict[str, Any]) -> dict[str, Any]:
        """Follow ``{"status":"partial","req_id":N}`` until the query is done."""
        deadline = time.monotonic() + self.query_timeout
        while answer.get("status") == "partial" and answer.get("req_id") is not None:
            if time.monotonic() > deadline:
                raise RetryableError(
                    f"{VENDOR} query {answer['req_id']} still running after "
                    f"{self.query_timeout:.0f}s"
                )
            await asyncio.sleep(self.poll_interval)
            answer = await self.call("GET", path, query=f"req_id={answer['req_id']}")
        return answer

    # --- campaigns ------------------------------------------------------------------------

    async def campaigns(self, day_from: int, day_to: int) -> list[dict[str, Any]]:
        answer = await self.call("POST", CAMPAIGN_LIST_PATH, body={"from": day_from, "to": day_to})
        targets = answer.get("targets") or []
        return [t for t in targets if isinstance(t, dict)]

    async def campaign_report(self, campaign_id: Any) -> dict[str, Any] | None:
        """The campaign's report, or ``None`` while it has not completed."""
        try:
            answer = await self.call("POST", CAMPAIGN_RESULT_PATH, body={"id": campaign_id})
        except PermanentError as err:
            if "complete" in str(err).lower():
                return None
            raise
        result = answer.get("result")
        return result if isinstance(result, dict) else None


def interpret(status: int, headers: Any, raw: bytes | str) -> dict[str, Any]:
    """Turn one CleverTap answer into its body, or the delivery error it stands for."""
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    error = str(body.get("error") or "") if isinstance(body, dict) else ""
    if status == 429 or code == 429:
        retry_after = retry_after_seconds(headers.get("Retry-After")) if headers else None
        raise RetryableError(f"{VENDOR}: too many concurrent requests", retry_after=retry_after)
    if code == IN_PROGRESS_CODE:
        raise QueryInProgress(f"{VENDOR}: query in progress")
    if status == 400 and "cursor" in error.lower():
        raise CursorExpired(f"{VENDOR}: {error}")
    if status >= 400:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        raise_for_status(status, headers, text, vendor=VENDOR)
    if not isinstance(body, dict):
        raise RetryableError(f"{VENDOR} answered HTTP {status} without a JSON object")
    if body.get("status") == "fail":
        raise PermanentError(f"{VENDOR}: {error or _excerpt(body)}")
    return body


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _excerpt(body: Any, limit: int = 200) -> str:
    text = orjson.dumps(body).decode() if not isinstance(body, str) else body
    return text if len(text) <= limit else text[: limit - 3] + "..."
