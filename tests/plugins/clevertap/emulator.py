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
event's expected values (`Dataset.event`).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from connectord.testing import VendorEmulator
from connectord.testing.emulator import json_response

EVENT_NAMES = ("App Launched", "Product Viewed", "Added To Cart", "Charged")
EVENT_WEIGHTS = (0.40, 0.30, 0.18, 0.12)
CATEGORIES = ("Shoes", "Bags", "Shirts", "Hats", "Socks", "Coats")
SOURCES = ("Direct", "Organic", "Paid", "Referral")
PLATFORMS = ("Android", "iOS", "Web")
PLANS = ("free", "pro", "team")
MAX_BATCH = 5000


def day_key(day: date) -> str:
    return day.strftime("%Y%m%d")


def parse_day(value: Any) -> date:
    text = str(value)
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def epoch(day: date, seconds: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) + seconds


@dataclass(frozen=True)
class Dataset:
    """A deterministic CleverTap account: users, events per day and name, campaigns.

    Schema changes built in, to exercise the warehouse: ``Charged`` gains a ``Coupon``
    property from day index ``new_property_day`` on, and ``Added To Cart``'s ``Ref``
    turns from an integer into text on day index ``text_ref_day``.
    """

    seed: int = 7
    start: date = date(2024, 1, 1)
    days: int = 5
    events_per_day: int = 22_000
    users: int = 2_000
    campaigns: int = 6
    new_property_day: int = 2
    text_ref_day: int = 4

    # --- shape ----------------------------------------------------------------------

    def day_list(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]

    def day_index(self, day: date) -> int | None:
        index = (day - self.start).days
        return index if 0 <= index < self.days else None

    def count(self, day: date, event: str) -> int:
        """How many ``event`` events happened on ``day``."""
        index = self.day_index(day)
        if index is None or event not in EVENT_NAMES:
            return 0
        e = EVENT_NAMES.index(event)
        base = int(self.events_per_day * EVENT_WEIGHTS[e])
        return base + (index * 37 * (e + 1) + self.seed) % 101

    def total(self, event: str | None = None) -> int:
        names = [event] if event else EVENT_NAMES
        return sum(self.count(day, name) for day in self.day_list() for name in names)

    # --- users ----------------------------------------------------------------------

    def object_id(self, k: int) -> str:
        digest = hashlib.sha1(f"{self.seed}:{k}".encode()).hexdigest()
        return f"__{digest[:30]}"

    def identity(self, k: int) -> str | None:
        """Every tenth user never logged in: CleverTap knows only its objectId."""
        return None if k % 10 == 0 else f"cust-{k:06d}"

    def user_of(self, day_index: int, e: int, i: int) -> int:
        return (i * 7919 + day_index * 104_729 + e * 31 + self.seed) % self.users

    def profile(self, k: int, *, app: bool = False, profile: bool = True) -> dict[str, Any]:
        """The ``profile`` object of an event record (and the base of a profile record)."""
        identity = self.identity(k)
        out: dict[str, Any] = {"objectId": self.object_id(k)}
        if identity:
            out.update(
                identity=identity,
                all_identities=[identity, f"user{k}@example.com"],
                name=f"User {k}",
                email=f"user{k}@example.com",
                phone=4915100000000 + k,
            )
        else:
            out["all_identities"] = []
        out["platform"] = PLATFORMS[k % 3]
        out["push_token"] = f"fcm:tok{k:06d}"
        if app:
            out.update(os_version=f"{13 + k % 4}", app_version=f"9.{k % 5}.0", make="Samsung")
            out["model"] = f"SM-S{900 + k % 30}"
        if profile:
            out["profileData"] = self.profile_data(k)
        return out

    def profile_data(self, k: int) -> dict[str, Any]:
        signup = epoch(self.start, -86400 * (30 + k % 300))
        return {"Plan": PLANS[k % 3], "Signup Date": f"$D_{signup}", "Loyalty Points": k * 3 % 1000}

    def profile_record(self, k: int, *, app: bool, profile: bool, events: bool) -> dict[str, Any]:
        """A Get User Profiles record: the event record's profile plus ``platformInfo``."""
        record = self.profile(k, app=app, profile=profile)
        record["platformInfo"] = [
            {
                "platform": record["platform"],
                "objectId": record["objectId"],
                "push_token": record["push_token"],
                "os_version": f"{13 + k % 4}",
                "app_version": f"9.{k % 5}.0",
            }
        ]
        if events:
            record["events"] = {"App Launched": {"count": 3 + k % 40, "first_seen": 1704067200}}
        return record

    def users_with(self, event: str, days: list[date]) -> list[int]:
        e = EVENT_NAMES.index(event)
        seen: set[int] = set()
        for day in days:
            index = self.day_index(day)
            if index is None:
                continue
            seen.update(self.user_of(index, e, i) for i in range(self.count(day, event)))
        return sorted(seen)

    # --- events ---------------------------------------------------------------------

    def event(
        self,
        day: date,
        event: str,
        i: int,
        *,
        app: bool = False,
        profile: bool = True,
    ) -> dict[str, Any]:
        """Event ``i`` (0-based, in time order) of ``event`` on ``day``, as the API returns it."""
        index = self.day_index(day)
        assert index is not None
        e = EVENT_NAMES.index(event)
        count = self.count(day, event)
        second = i * 86400 // count
        moment = datetime(day.year, day.month, day.day) + timedelta(seconds=second)
        user = self.user_of(index, e, i)
        record: dict[str, Any] = {
            "profile": self.profile(user, app=app, profile=profile),
            "ts": int(moment.strftime("%Y%m%d%H%M%S")),
            "event_props": self.event_props(index, day, e, i),
            "session_props": {
                "session_source": SOURCES[(user + index) % 4],
                "utm_source": f"camp{(i + index) % 7}",
            },
        }
        if e == 3:
            record["items"] = [
                {"Items|product": f"P{(i * 13) % 500:03d}", "Items|price": 10 + i % 90}
            ]
        return record

    def event_props(self, index: int, day: date, e: int, i: int) -> dict[str, Any]:
        session = (index + 1) * 10_000_000 + e * 1_000_000 + i
        if e == 0:
            return {
                "CT Source": "Mobile" if i % 3 else "Web",
                "CT App Version": f"9.{i % 5}.0",
                "CT Session Id": session,
            }
        if e == 1:
            return {
                "Product": f"P{(i * 13) % 500:03d}",
                "Category": CATEGORIES[i % 6],
                "Price": 5 + (i * 17) % 200,
                "CT Session Id": session,
            }
        if e == 2:
            ref: int | str = 1000 + i % 97
            if index >= self.text_ref_day:
                ref = f"R-{ref}"
            return {
                "Product": f"P{(i * 7) % 500:03d}",
                "Quantity": 1 + i % 3,
                "Ref": ref,
                "CT Session Id": session,
            }
        props: dict[str, Any] = {
            "Amount": round(10 + (i * 7) % 490 + 0.5, 2),
            "Currency": "EUR" if i % 2 else "USD",
            "Payment Mode": ("Card", "COD", "Wallet")[i % 3],
            "Delivery Date": f"$D_{epoch(day, 3 * 86400)}",
            "CT Session Id": session,
        }
        if index >= self.new_property_day:
            props["Coupon"] = f"SAVE{i % 4 * 5}" if i % 4 else ""
        return props

    # --- campaigns ------------------------------------------------------------------

    def campaign_list(self) -> list[dict[str, Any]]:
        out = []
        for n in range(self.campaigns):
            day = self.start + timedelta(days=n % self.days)
            out.append(
                {
                    "id": 1_700_000_000 + n * 1111,
                    "name": f"Campaign {n}",
                    "scheduled_on": int(day.strftime("%Y%m%d")) * 10_000 + 900 + n,
                    "status": "running" if n == self.campaigns - 1 else "completed",
                    "channel": ("push", "email", "sms")[n % 3],
                }
            )
        return out

    def campaign_result(self, campaign_id: int) -> dict[str, Any]:
        n = (campaign_id - 1_700_000_000) // 1111
        sent = 1000 + n * 250
        return {
            "status": "completed",
            "sent": sent,
            "viewed": sent * 6 // 10,
            "clicked": sent // 10 + n,
            "converted": sent // 40,
            "platform": {"android": {"sent": sent // 2}, "ios": {"sent": sent - sent // 2}},
        }


# --- cursors ---------------------------------------------------------------------------


@dataclass
class Segment:
    day: date
    event: str
    count: int


@dataclass
class Cursor:
    account: str
    kind: str  # "events" | "profiles"
    segments: list[Segment]
    offset: int
    batch: int
    flags: dict[str, bool]
    created: float
    pending: int = 0
    users: list[int] = field(default_factory=list)
    following: str | None = None
    """The cursor of the next page, once handed out: asking twice gives the same one."""


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() in ("1", "true", "yes")


def fail(error: str, code: int, status: int | None = None) -> web.Response:
    return json_response({"status": "fail", "error": error, "code": code}, status=status or code)


class CleverTapEmulator(VendorEmulator):
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

    def _new_cursor(
        self,
        request: web.Request,
        kind: str,
        segments: list[Segment],
        *,
        users: list[int] | None = None,
    ) -> web.Response:
        try:
            batch = int(request.query.get("batch_size", "10"))
        except ValueError:
            return fail("batch_size must be an integer", 400)
        if batch < 1:
            return fail("batch_size must be positive", 400)
        flags = {
            "app": _flag(request, "app", False),
            "events": _flag(request, "events", True),
            "profile": _flag(request, "profile", True),
        }
        token = self._issue(
            Cursor(
                account=self.account_id,
                kind=kind,
                segments=segments,
                offset=0,
                batch=min(batch, MAX_BATCH),
                flags=flags,
                created=time.time(),
                pending=self.in_progress,
                users=users or [],
            )
        )
        return json_response({"status": "success", "cursor": token})

    def _issue(self, cursor: Cursor) -> str:
        token = secrets.token_urlsafe(32)
        self.cursors[token] = cursor
        return token

    def _page(self, token: str) -> web.Response:
        cursor = self.cursors.get(token)
        if cursor is None or time.time() - cursor.created > self.cursor_ttl:
            self.cursors.pop(token, None)
            return fail("Invalid cursor", 400)
        if cursor.pending > 0:
            cursor.pending -= 1
            return json_response({"status": "fail", "code": 2, "error": "Query in progress"})
        rendered = self.rendered.get(self._render_key(cursor)) if self.rendered else None
        if rendered is not None:
            return self._rendered_page(token, cursor, *rendered)
        if cursor.kind == "events":
            records, total = self._event_slice(cursor), sum(s.count for s in cursor.segments)
        else:
            records, total = self._profile_slice(cursor), len(cursor.users)
        self.records_served += len(records)
        end = cursor.offset + len(records)
        more = end < total
        following = None
        if more or (self.trailing_empty_page and records):
            following = cursor.following
            if following is None or following not in self.cursors:
                following = cursor.following = self._issue(
                    Cursor(**{**cursor.__dict__, "offset": end, "pending": 0, "following": None})
                )
        if self.single_use_cursors:
            del self.cursors[token]
        if self.page_style == "partial":
            answer: dict[str, Any] = {"status": "partial" if following else "success"}
            if following:
                answer["cursor"] = following
            if records:
                answer["records"] = records
            return json_response(answer)
        answer = {"status": "success"}
        if records:
            answer["records"] = records
        if following:
            answer["next_cursor"] = following
        return json_response(answer)

    # --- pre-rendered pages (benchmarks: serve bytes, not Python work) -------------------

    @staticmethod
    def _render_key(cursor: Cursor) -> tuple[Any, ...] | None:
        if cursor.kind != "events" or len(cursor.segments) != 1:
            return None
        segment = cursor.segments[0]
        flags = tuple(sorted(cursor.flags.items()))
        return (segment.day, segment.event, cursor.offset, cursor.batch, flags)

    def prerender(self, batch: int, **flags: bool) -> int:
        """Render every page of every one-day, one-event query with these flags now,
        so that serving them costs the emulator almost nothing; the records served."""
        flags = {"app": False, "events": True, "profile": True, **flags}
        count = 0
        for day in self.data.day_list():
            for event in EVENT_NAMES:
                total = self.data.count(day, event)
                for offset in range(0, total, min(batch, MAX_BATCH)):
                    cursor = Cursor(
                        self.account_id,
                        "events",
                        [Segment(day, event, total)],
                        offset,
                        min(batch, MAX_BATCH),
                        flags,
                        time.time(),
                    )
                    records = self._event_slice(cursor)
                    self.rendered[self._render_key(cursor)] = (orjson.dumps(records), len(records))
                    count += len(records)
        return count

    def _rendered_page(
        self, token: str, cursor: Cursor, records: bytes, count: int
    ) -> web.Response:
        self.records_served += count
        end = cursor.offset + count
        following = None
        if end < cursor.segments[0].count:
            following = cursor.following
            if following is None or following not in self.cursors:
                following = cursor.following = self._issue(
                    Cursor(**{**cursor.__dict__, "offset": end, "pending": 0, "following": None})
                )
        if self.single_use_cursors:
            del self.cursors[token]
        tail = b',"next_cursor":"' + following.encode() + b'"}' if following else b"}"
        return web.Response(
            body=b'{"status":"success","records":' + records + tail,
            content_type="application/json",
        )

    def _event_slice(self, cursor: Cursor) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        skip = cursor.offset
        for segment in cursor.segments:
            if skip >= segment.count:
                skip -= segment.count
                continue
            stop = min(segment.count, skip + cursor.batch - len(records))
            records.extend(
                self.data.event(
                    segment.day,
                    segment.event,
                    i,
                    app=cursor.flags["app"],
                    profile=cursor.flags["profile"],
                )
                for i in range(skip, stop)
            )
            skip = 0
            if len(records) >= cursor.batch:
                break
        return records

    def _profile_slice(self, cursor: Cursor) -> list[dict[str, Any]]:
        chosen = cursor.users[cursor.offset : cursor.offset + cursor.batch]
        return [
            self.data.profile_record(
                k,
                app=cursor.flags["app"],
                profile=cursor.flags["profile"],
                events=cursor.flags["events"],
            )
            for k in chosen
        ]

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


def iter_all_events(data: Dataset, **flags: Any) -> Iterator[tuple[date, str, dict[str, Any]]]:
    """Every event of the data set, in export order (day, then name, then time)."""
    for day in data.day_list():
        for name in EVENT_NAMES:
            for i in range(data.count(day, name)):
                yield day, name, data.event(day, name, i, **flags)


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
