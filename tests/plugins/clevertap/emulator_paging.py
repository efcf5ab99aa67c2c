"""The CleverTap emulator's cursors: queries answered page by page with ``next_cursor``.

Cursors are opaque, URL-safe, tied to the account and expire; pages can be rendered
ahead of time (`CursorPages.prerender`) so a benchmark measures the client, not the
emulator.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from aiohttp import web

from connectord.testing.emulator import json_response
from tests.plugins.clevertap.emulator_data import EVENT_NAMES, MAX_BATCH, Dataset


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


class CursorPages:
    """Cursor issuing and paging for `CleverTapEmulator` (its state lives there)."""

    data: Dataset
    account_id: str
    in_progress: int
    cursor_ttl: float
    single_use_cursors: bool
    page_style: str
    trailing_empty_page: bool
    cursors: dict[str, Cursor]
    rendered: dict[tuple[Any, ...], tuple[bytes, int]]
    records_served: int

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
