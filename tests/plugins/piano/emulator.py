"""Piano Analytics emulator: the Collection API and the Data Query (Reporting v3) API.

Collection (``POST /<path>?s=<site>&idclient=<visitor>``, also the GET variant with
``events=``), as developers.atinternet-solutions.com/piano-analytics/data-collection/
how-to-send-events/collection-api describes it: parses the body as JSON whatever the
Content-Type, requires a numeric ``s`` and ``{"events": [...]}`` (an array, even for one
event) of ``{"name", "data"}`` objects, records every accepted event with the request's
visitor id and headers, and answers 204 with no body. Piano documents no error answer,
so only a malformed envelope gets a 400 (text) here. Property keys and values are
accepted as ``piano-analytics-js`` sends them (keys with capitals and spaces, arrays of
objects such as ``ch_ua``); where they break a documented data-model limit (key over 40
characters, string over 255, array over 20 items: support.piano.io article
4465980791314) the event is still taken and the breach is listed in
`PianoEmulator.limit_breaches`, which tests of our sender expect to stay empty.

Data Query (``POST /v3/data/<method>`` with a JSON body, or ``GET`` with
``?param=<JSON>``): ``x-api-key: <access>_<secret>`` auth (401 unknown key, 403 a site
the key may not read), at most 5 concurrent calls per user (access key) and 20 per
organisation (429 ``QuotasExceeded_TooManyRequests``; developers.atinternet-solutions.com/
piano-analytics/data-api/technical-information/terms-conditions), parameter validation
(columns ≤ 50, ``max-results`` ≤ 10000, 200000 rows through ``page-num``, no paging on
getRowCount/getTotal), saved segments by ``segmentKey`` with include/exclude,
``ignore_null_properties``, sort and 1-based paging. Errors are ``{"ErrorMessage",
"ErrorType"}``. Tests change segment membership between runs with `set_segment`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from connectord.testing import VendorEmulator
from connectord.testing.emulator import json_response
from tests.plugins.piano.emulator_queries import (
    DATA_METHODS,
    MAX_RESULTS,
    METRICS,
    DataApiError,
    DataQueryRules,
    Segment,
)

MAX_KEY_LENGTH = 40
MAX_STRING = 255
MAX_ARRAY = 20
MAX_CONCURRENT = 5
"""Concurrent Data API calls per user."""
MAX_CONCURRENT_ORG = 20
"""Concurrent Data API calls per organisation (every key of this emulator)."""


@dataclass
class CollectedEvent:
    """One event the collection endpoint accepted."""

    site: int
    idclient: str | None
    name: str
    data: dict[str, Any]
    headers: dict[str, str]


class PianoEmulator(DataQueryRules, VendorEmulator):
    """Collection endpoint and Data Query API of one Piano Analytics organisation."""

    def __init__(
        self,
        *,
        api_keys: dict[str, set[int]] | None = None,
        collect_path: str = "event",
        latency: float = 0.0,
    ) -> None:
        self.api_keys = api_keys if api_keys is not None else {"ACCESS1_s3cretKey": {123456}}
        self.collect_path = collect_path
        self.latency = latency
        self.collected: list[CollectedEvent] = []
        self.limit_breaches: list[str] = []
        self.collect_requests = 0
        self.visitors: dict[str, dict[str, Any]] = {}
        self.segments: dict[str, Segment] = {}
        self.in_flight: dict[str, int] = {}
        self.max_in_flight = 0
        self.quota_refusals = 0
        self.data_calls: list[tuple[str, dict[str, Any]]] = []
        super().__init__()

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_route("POST", "/v3/data/{method}", self.data_api)
        app.router.add_route("GET", "/v3/data/{method}", self.data_api)
        app.router.add_route("POST", "/{path}", self.collect)
        app.router.add_route("GET", "/{path}", self.collect)

    # --- set-up and inspection ----------------------------------------------------------

    def add_visitor(self, visitor_id: str, visits: int = 1, **properties: Any) -> None:
        self.visitors[visitor_id] = {"visitor_id": visitor_id, "m_visits": visits, **properties}

    def set_segment(
        self,
        key: str,
        members: list[str] | set[str],
        *,
        name: str | None = None,
        column: str = "pushwooshid",
    ) -> None:
        """Make ``members`` (values of ``column``) the whole membership of a segment."""
        ids = set()
        for member in members:
            visitor = f"v-{member}"
            if visitor not in self.visitors:
                self.add_visitor(visitor, **{column: member})
            ids.add(visitor)
        segment = self.segments.setdefault(key, Segment(key, name or key))
        segment.visitors = ids
        if name:
            segment.name = name

    def events_named(self, name: str) -> list[CollectedEvent]:
        return [e for e in self.collected if e.name == name]

    # --- Collection API ----------------------------------------------------------------

    async def collect(self, request: web.Request) -> web.Response:
        if request.match_info["path"] != self.collect_path:
            return web.Response(status=404, text="unknown collection path")
        site = request.query.get("s", "")
        if not site.isdigit():
            return web.Response(status=400, text="missing or non-numeric site id (s=)")
        idclient = request.query.get("idclient")
        try:
            events = await self._events(request)
            for event in events:
                check_event(event)
        except ValueError as err:
            return web.Response(status=400, text=str(err))
        self.collect_requests += 1
        for event in events:
            self.limit_breaches.extend(limit_breaches(event))
        headers = dict(request.headers)
        self.collected.extend(
            CollectedEvent(int(site), idclient, e["name"], e.get("data") or {}, headers)
            for e in events
        )
        return web.Response(status=204)

    @staticmethod
    async def _events(request: web.Request) -> list[Any]:
        if request.method == "GET":
            raw = request.query.get("events")
            if raw is None:
                raise ValueError("missing events= parameter")
            events = _loads(raw.encode(), "events parameter")
        else:
            body = _loads(await request.read(), "body")
            if not isinstance(body, dict) or "events" not in body:
                raise ValueError('body must be {"events": [...]}')
            events = body["events"]
        if not isinstance(events, list):
            raise ValueError("events must be an array, even for one event")
        if not events:
            raise ValueError("events is empty")
        return events

    # --- Data Query API ---------------------------------------------------------------

    async def data_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method not in DATA_METHODS:
            return DataApiError(404, "NotFound", f"unknown method {method}").response()
        key = request.headers.get("x-api-key", "")
        if key not in self.api_keys:
            return DataApiError(401, "Unauthorized", "invalid or missing API key").response()
        access = key.split("_", 1)[0]
        refusal = self.quota_refusal(access)
        if refusal:
            self.quota_refusals += 1
            return DataApiError(429, "QuotasExceeded_TooManyRequests", refusal).response()
        self.in_flight[access] = self.in_flight.get(access, 0) + 1
        self.max_in_flight = max(self.max_in_flight, sum(self.in_flight.values()))
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            body = await self._data_body(request)
            self.data_calls.append((method, body))
            return json_response(self.answer(method, body, self.api_keys[key]))
        except DataApiError as err:
            return err.response()
        finally:
            self.in_flight[access] -= 1

    def quota_refusal(self, access: str) -> str | None:
        """Why a new call is over Piano's quotas (5 per user, 20 per organisation)."""
        if self.in_flight.get(access, 0) >= MAX_CONCURRENT:
            return f"more than {MAX_CONCURRENT} concurrent calls for this user"
        if sum(self.in_flight.values()) >= MAX_CONCURRENT_ORG:
            return f"more than {MAX_CONCURRENT_ORG} concurrent calls for this organisation"
        return None

    @staticmethod
    async def _data_body(request: web.Request) -> dict[str, Any]:
        if request.method == "GET":
            raw = request.query.get("param")
            if raw is None:
                raise DataApiError(400, "InvalidParameter", "missing param=")
            data = raw.encode()
        else:
            data = await request.read()
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise DataApiError(400, "InvalidJson", "the request is not valid JSON") from None
        if not isinstance(body, dict):
            raise DataApiError(400, "InvalidJson", "the request must be a JSON object")
        return body

    def answer(self, method: str, body: dict[str, Any], sites: set[int]) -> dict[str, Any]:
        self.validate(method, body, sites)
        rows = self.rows(body)
        if method == "getRowCount":
            return {"RowCounts": [{"RowCount": len(rows)}]}
        if method == "getTotal":
            totals = {c: "-" for c in body["columns"]}
            for metric in METRICS & set(body["columns"]):
                totals[metric] = sum(r[metric] for r in rows)
            return {"DataFeed": {"Rows": [totals], "Context": {}}}
        size = body.get("max-results", MAX_RESULTS)
        page = body.get("page-num", 1)
        return {
            "DataFeed": {
                "Columns": [self.column_info(c) for c in body["columns"]],
                "Rows": rows[(page - 1) * size : page * size],
                "Context": {},
            }
        }


# --- validation of collected events ----------------------------------------------------


def _loads(data: bytes, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ValueError(f"{what} is not valid JSON") from None


def check_event(event: Any) -> None:
    """The envelope Piano documents: a named event whose ``data`` is an object."""
    if not isinstance(event, dict):
        raise ValueError("each event must be an object")
    name = event.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("each event needs a non-empty name")
    data = event.get("data", {})
    if not isinstance(data, dict):
        raise ValueError(f"event {name}: data must be an object")


def limit_breaches(event: dict[str, Any]) -> list[str]:
    """The documented data-model limits this event's properties break."""
    name = event["name"]
    found = []
    for key, value in (event.get("data") or {}).items():
        if len(key) > MAX_KEY_LENGTH:
            found.append(f"event {name}: key {key!r} is longer than {MAX_KEY_LENGTH}")
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) > MAX_ARRAY:
            found.append(f"event {name}: {key!r} has more than {MAX_ARRAY} items")
        if any(isinstance(v, str) and len(v) > MAX_STRING for v in values):
            found.append(f"event {name}: {key!r} is longer than {MAX_STRING} characters")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            found.append(f"event {name}: {key!r} is outside int64")
    return found
