"""A CleverTap REST API emulator with a seeded, generated data set.

Faithful to the contract in CleverTap's API docs as far as they are known:

- auth: ``X-CleverTap-Account-Id`` and ``X-CleverTap-Passcode`` on every call, 401
  ``{"status":"fail","error":"Invalid Credentials","code":401}`` otherwise;
- ``/1/events.json`` and ``/1/profiles.json``: POST a query (``event_name``, ``from``,
  ``to``, all three required as on developer.clevertap.com/docs/get-events-api: a query
  without ``event_name`` answers 400 ``{"status":"fail","error":"event_name is
  required","code":400}``; flags ``app``, ``events``, ``profile`` and ``batch_size``
  clamped to 5000) for a cursor, then GET (or POST) ``?cursor=`` pages with
  ``next_cursor`` until a page comes without one. Cursors are opaque, URL-safe, tied
  to the account and expire; an unknown or expired cursor answers 400 ``Invalid
  cursor``. Optional quirks: a query still in
  progress (``code: 2``), ``status: partial`` pages carrying ``cursor``, and a trailing
  empty ``{"status":"success"}`` page;
- ``/1/counts/events.json`` and ``/1/counts/profiles.json`` (the profiles that did the
  event in the range, developer.clevertap.com/docs/get-profile-count-api; ``event_name``,
  ``from`` and ``to`` required): ``{"status":"partial","req_id":N}``, polled with GET or
  POST ``?req_id=`` on the same path until ``{"status":"success","count":N}``;
- ``/1/targets/list.json`` and ``/1/targets/result.json``: campaigns and their reports
  (a campaign that has not completed answers an error naming its status);
- a per-account concurrency limit (3 by default): 429
  ``{"status":"fail","error":"Too many concurrent requests","code":429}``.

The data set is computed, never stored: event ``i`` of a day and event name is a pure
function of the seed, so 1,000,000 events cost no memory and tests can ask for any
event's expected values (`Dataset.event`, in `emulator_data`). Cursors and pages are in
`emulator_paging`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from connectord.testing import VendorEmulator
from connectord.testing.emulator import json_response
from tests.plugins.clevertap.emulator_data import (
    EVENT_NAMES,
    Dataset,
    day_key,
    parse_day,
)
from tests.plugins.clevertap.emulator_paging import Cursor, CursorPages, Segment, fail


class CleverTapEmulator(CursorPages, VendorEmulator):
    """The ``/1/`` API of one CleverTap account over a `Dataset`."""

    def __init__(
        self,
        dataset: Dataset | None = None,
        *,
        account_id: str = "TEST-RK4-W75-ZZ6Z",
        passcode: str = "SKY-ABC-DEFG",
        concurrency: int = 3,
        latency: float = 0.0,
        in_progress: int = 0,
        page_style: str = "next_cursor",
        trailing_empty_page: bool = False,
        cursor_ttl: float = 1800.0,
        single_use_cursors: bool = False,
        count_polls: int = 1,
    ) -> None:
        self.data = dataset or Dataset()
        self.account_id = account_id
        self.passcode = passcode
        self.concurrency = concurrency
        self.latency = latency
        self.in_progress = in_progress
        self.page_style = page_style
        self.trailing_empty_page = trailing_empty_page
        self.cursor_ttl = cursor_ttl
        self.single_use_cursors = single_use_cursors
        self.count_polls = count_polls
        self.cursors: dict[str, Cursor] = {}
        self.rendered: dict[tuple[Any, ...], tuple[bytes, int]] = {}
        self.count_requests: dict[str, dict[str, Any]] = {}
        self.in_flight = 0
        self.peak_in_flight = 0
        self.rejected_429 = 0
        self.records_served = 0
        super().__init__()

    def setup_routes(self, app: web.Application) -> None:
        for method in ("GET", "POST"):
            app.router.add_route(method, "/1/events.json", self._api(self.events))
            app.router.add_route(method, "/1/profiles.json", self._api(self.profiles))
            app.router.add_route(method, "/1/counts/events.json", self._api(self.counts))
            app.router.add_route(method, "/1/counts/profiles.json", self._api(self.profile_counts))
        app.router.add_post("/1/targets/list.json", self._api(self.campaign_list))
        app.router.add_post("/1/targets/result.json", self._api(self.campaign_result))

    # --- controls for tests -------------------------------------------------------------

    def expire_cursors(self) -> None:
        """Every cursor handed out so far becomes invalid (as after CleverTap's TTL)."""
        self.cursors.clear()

    # --- the common envelope ----------------------------------------------------------

    def _api(
        self, handler: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            if (
                request.headers.get("X-CleverTap-Account-Id") != self.account_id
                or request.headers.get("X-CleverTap-Passcode") != self.passcode
            ):
                return fail("Invalid Credentials", 401)
            if self.in_flight >= self.concurrency:
                self.rejected_429 += 1
                return fail("Too many concurrent requests", 429)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                return await handler(request)
            finally:
                self.in_flight -= 1

        return wrapped

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except ValueError:
            return fail("Invalid JSON body", 400)
        if not isinstance(body, dict):
            return fail("Body must be a JSON object", 400)
        return body

    @staticmethod
    def _range(body: dict[str, Any]) -> list[date] | web.Response:
        try:
            start, end = parse_day(body["from"]), parse_day(body["to"])
        except (KeyError, ValueError, TypeError):
            return fail("from and to are required as YYYYMMDD", 400)
        if end < start:
            return fail("to must not be before from", 400)
        return [start + timedelta(days=n) for n in range((end - start).days + 1)]

    # --- events and profiles: cursor export -------------------------------------------

    async def events(self, request: web.Request) -> web.Response:
        if "cursor" in request.query:
            return self._page(request.query["cursor"])
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        days = self._range(body)
        if isinstance(days, web.Response):
            return days
        name = body.get("event_name")
        if not isinstance(name, str) or not name:
            return fail("event_name is required", 400)
        segments = [Segment(d, name, self.data.count(d, name)) for d in days]
        return self._new_cursor(request, "events", segments)

    async def profiles(self, request: web.Request) -> web.Response:
        if "cursor" in request.query:
            return self._page(request.query["cursor"])
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        days = self._range(body)
        if isinstance(days, web.Response):
            return days
        name = body.get("event_name")
        if not isinstance(name, str) or not name:
            return fail("event_name is required", 400)
        users = self.data.users_with(name, days) if name in EVENT_NAMES else []
        return self._new_cursor(request, "profiles", [], users=users)

    # --- counts: req_id polling -----------------------------------------------------------

    async def counts(self, request: web.Request) -> web.Response:
        return await self._count(request, "events", self._event_total)

    async def profile_counts(self, request: web.Request) -> web.Response:
        return await self._count(request, "profiles", self._profile_total)

    def _event_total(self, name: str, days: list[date]) -> int:
        return sum(self.data.count(d, name) for d in days)

    def _profile_total(self, name: str, days: list[date]) -> int:
        return len(self.data.users_with(name, days)) if name in EVENT_NAMES else 0

    async def _count(
        self, request: web.Request, kind: str, total: Callable[[str, list[date]], int]
    ) -> web.Response:
        """A count query; a ``req_id`` is only known on the path that issued it."""
        if "req_id" in request.query:
            pending = self.count_requests.get(request.query["req_id"])
            if pending is None or pending["kind"] != kind:
                return fail("Unknown req_id", 400)
            if pending["polls"] > 0:
                pending["polls"] -= 1
                return json_response({"status": "partial", "req_id": pending["req_id"]})
            return json_response({"status": "success", "count": pending["count"]})
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        days = self._range(body)
        if isinstance(days, web.Response):
            return days
        name = body.get("event_name")
        if not isinstance(name, str) or not name:
            return fail("event_name is required", 400)
        count = total(name, days)
        if self.count_polls <= 0:
            return json_response({"status": "success", "count": count})
        req_id = 100_000 + len(self.count_requests)
        self.count_requests[str(req_id)] = {
            "req_id": req_id,
            "kind": kind,
            "count": count,
            "polls": self.count_polls - 1,
        }
        return json_response({"status": "partial", "req_id": req_id})

    # --- campaigns --------------------------------------------------------------------------

    async def campaign_list(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        days = self._range(body)
        if isinstance(days, web.Response):
            return days
        first, last = int(day_key(days[0])), int(day_key(days[-1]))
        targets = [
            t for t in self.data.campaign_list() if first <= t["scheduled_on"] // 10_000 <= last
        ]
        return json_response({"status": "success", "targets": targets})

    async def campaign_result(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        found = [t for t in self.data.campaign_list() if t["id"] == body.get("id")]
        if not found:
            return fail("Campaign not found", 404)
        if found[0]["status"] != "completed":
            return fail(f"Campaign has not completed. Current status: {found[0]['status']}", 400)
        return json_response({"status": "success", "result": self.data.campaign_result(body["id"])})


if __name__ == "__main__":  # serve the emulator by hand: python -m tests.plugins.clevertap.emulator
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8899)
    parser.add_argument("--events-per-day", type=int, default=22_000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument(
        "--prerender",
        type=int,
        metavar="BATCH",
        help="render every page of the one-day, one-event queries (app=true, events=false, "
        "profile=false) of this batch size at start-up",
    )
    args = parser.parse_args()
    emulator = CleverTapEmulator(
        Dataset(events_per_day=args.events_per_day, days=args.days, users=args.users)
    )
    if args.prerender:
        rendered = emulator.prerender(args.prerender, app=True, events=False, profile=False)
        print(f"prerendered {rendered} events", flush=True)
    web.run_app(emulator.app, host="127.0.0.1", port=args.port, access_log=None, print=print)
