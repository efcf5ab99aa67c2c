"""Piano Analytics over HTTP: the Collection API and the Data Query (Reporting v3) API.

Only transport lives here: URLs, headers, envelopes, paging, the per-user concurrency
quota and error mapping. What goes into events and what a segment means is decided by
`payloads`, `destination` and `source`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import structlog

from connectord import PermanentError
from connectord.http import Backoff, call_with_retries, raise_for_status

from .const import (
    COLLECT_PATH,
    DATA_API_PATH,
    MAX_CONCURRENT_CALLS,
    MAX_RESULTS,
    MAX_ROWS,
)

SessionFactory = Callable[[], aiohttp.ClientSession]

COLLECT_VENDOR = "Piano Analytics collection"
DATA_VENDOR = "Piano Analytics Data API"
MAX_HEADER_LENGTH = 1024


# --- Collection API ------------------------------------------------------------------


class CollectClient:
    """Posts events to ``<base_url>/<path>?s=<site>&idclient=<visitor>``.

    Every event in one request belongs to one visitor: Piano reads the visitor from
    the query string, and device and geo data from the request's User-Agent and
    client IP, so those are forwarded per request.
    """

    def __init__(
        self, session: SessionFactory, base_url: str, site_id: int, path: str = COLLECT_PATH
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.site_id = site_id
        self.url = f"{self.base_url}/{path.strip('/')}"

    async def send(
        self,
        visitor_id: str,
        events: list[dict[str, Any]],
        *,
        user_agent: str | None = None,
        ip: str | None = None,
    ) -> None:
        """POST ``{"events": [...]}`` for one visitor; raises the matching delivery error."""
        body = orjson.dumps({"events": events})
        async with self.session().post(
            self.url,
            params={"s": str(self.site_id), "idclient": visitor_id},
            data=body,
            headers=collect_headers(user_agent, ip),
        ) as response:
            text = await response.text(errors="replace")
            raise_for_status(response.status, response.headers, text, vendor=COLLECT_VENDOR)

    async def probe(self) -> int:
        """``HEAD /`` on the collection host: proves it resolves and answers HTTP(S)."""
        async with self.session().head(self.base_url + "/", allow_redirects=False) as response:
            return response.status


def collect_headers(user_agent: str | None, ip: str | None) -> dict[str, str]:
    """Headers for one collection request: the end user's agent and address if known."""
    headers = {"Content-Type": "text/plain;charset=UTF-8"}
    agent = header_value(user_agent)
    if agent:
        headers["User-Agent"] = agent
    address = client_ip(ip)
    if address:
        headers["X-Forwarded-For"] = address
    return headers


def header_value(value: Any) -> str | None:
    """A value safe to put in a header: text on one line, bounded in length."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text[:MAX_HEADER_LENGTH] or None


def client_ip(value: Any) -> str | None:
    """``context.ip`` if it is an IP address (or a comma-separated chain of them)."""
    if not isinstance(value, str):
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    try:
        return ", ".join(str(ipaddress.ip_address(p)) for p in parts) or None
    except ValueError:
        return None


# --- Data Query API ------------------------------------------------------------------

_quotas: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def user_quota(access_key: str) -> asyncio.Semaphore:
    """The semaphore that keeps one Piano user at `MAX_CONCURRENT_CALLS` calls in flight.

    Shared by every connector of this process that uses the same access key, since
    Piano counts concurrent calls per user, not per connection.
    """
    loop = asyncio.get_running_loop()
    per_key = _quotas.setdefault(loop, {})
    if access_key not in per_key:
        per_key[access_key] = asyncio.Semaphore(MAX_CONCURRENT_CALLS)
    return per_key[access_key]


class DataQueryClient:
    """``POST <base_url>/v3/data/<method>`` with ``x-api-key: <access>_<secret>``.

    Calls wait for the per-user quota, and 429/5xx/timeouts are retried with backoff
    (honouring ``Retry-After``) outside the quota, so a waiting retry never holds a slot.
    """

    def __init__(
        self,
        session: SessionFactory,
        base_url: str,
        api_key: str,
        *,
        log: structlog.typing.FilteringBoundLogger | None = None,
        attempts: int = 6,
        backoff: Backoff | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._access_key = api_key.split("_", 1)[0]
        self.log = log or structlog.get_logger()
        self.attempts = attempts
        self.backoff = backoff or Backoff(0.5, 30.0)

    async def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """One API method with retries; the decoded JSON answer."""

        def on_retry(attempt: int, error: Exception, delay: float) -> None:
            self.log.warning(
                "piano.data_api.retry",
                method=method,
                attempt=attempt,
                delay=round(delay, 2),
                error=str(error) or repr(error),
            )

        return await call_with_retries(
            lambda: self._call_once(method, body),
            attempts=self.attempts,
            backoff=self.backoff,
            on_retry=on_retry,
        )

    async def _call_once(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        async with (
            user_quota(self._access_key),
            self.session().post(
                f"{self.base_url}{DATA_API_PATH}/{method}",
                data=orjson.dumps(body),
                headers={"x-api-key": self._api_key, "Content-Type": "application/json"},
            ) as response,
        ):
            text = await response.text(errors="replace")
            status, headers = response.status, response.headers
        raise_for_status(status, headers, error_detail(text), vendor=DATA_VENDOR)
        try:
            answer = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise PermanentError(
                f"{DATA_VENDOR} answered {method} with HTTP {status} but not JSON"
            ) from None
        if not isinstance(answer, dict):
            raise PermanentError(f"{DATA_VENDOR} answered {method} with unexpected JSON")
        return answer

    async def get_data(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """``getData``: the rows of one page (``DataFeed.Rows``)."""
        answer = await self.call("getData", body)
        rows = (answer.get("DataFeed") or {}).get("Rows")
        if not isinstance(rows, list):
            raise PermanentError(f"{DATA_VENDOR} getData answer has no DataFeed.Rows")
        return [row for row in rows if isinstance(row, dict)]

    async def get_row_count(self, body: dict[str, Any]) -> int:
        """``getRowCount`` for a query (without sort and paging)."""
        query = {k: v for k, v in body.items() if k not in ("sort", "max-results", "page-num")}
        answer = await self.call("getRowCount", query)
        try:
            return int(answer["RowCounts"][0]["RowCount"])
        except (KeyError, IndexError, TypeError, ValueError):
            raise PermanentError(f"{DATA_VENDOR} getRowCount answer has no RowCount") from None

    async def pages(
        self, body: dict[str, Any], *, page_size: int = MAX_RESULTS, max_rows: int = MAX_ROWS
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of a getData query, in order, until a short or empty page.

        Raises `PermanentError` when the query has more rows than ``max_rows``: a
        truncated answer must never pass for a complete one.
        """
        page_size = max(1, min(page_size, MAX_RESULTS))
        page = 1
        while True:
            if (page - 1) * page_size >= max_rows:
                raise PermanentError(
                    f"the query returns more than {max_rows} rows, the most "
                    f"{DATA_VENDOR} lets one query page through"
                )
            rows = await self.get_data({**body, "max-results": page_size, "page-num": page})
            if rows:
                yield rows
            if len(rows) < page_size:
                return
            page += 1


def error_detail(text: str) -> str:
    """``ErrorType: ErrorMessage`` from a Data API error body, else the text itself."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if isinstance(body, dict) and ("ErrorMessage" in body or "ErrorType" in body):
        kind, message = body.get("ErrorType"), body.get("ErrorMessage")
        return ": ".join(str(p) for p in (kind, message) if p)
    return text
