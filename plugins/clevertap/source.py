"""CleverTap pull sources: events and profiles, the cursor exports (counts and campaign
reports are in `reports`).

The cursor exports read day by day, from ``start`` (or the day after the last complete
one) to yesterday in the account's time zone. Each page is one `Batch`; its checkpoint
is ``{"done": last complete day, "day": day being read, "event": name, "cursor":
next page}``, so an interrupted run continues with the next page of the same day. A
cursor CleverTap no longer knows (they expire) restarts that day's query: the records
read again carry the same ``messageId`` and upsert.

Queries (a day and an event name) are read concurrently, up to twice
``max_concurrency`` at once, while calls stay within the account's limit (the
client's per-account semaphore); pages are yielded strictly in query order, so a
checkpoint never passes a query that is not fully delivered.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, field_validator

from connectord import Batch, PullSource, Record
from connectord.http import Backoff
from connectord.pull import UnitProgress, ordered_streams

from . import mapping
from .client import CleverTapClient, CursorExpired
from .const import (
    EVENTS_PATH,
    MAX_BATCH_SIZE,
    PROFILE_BATCH_MULTIPLE,
    PROFILES_PATH,
    region_url,
)
from .options import CleverTapOptions, DailyOptions

MAX_CURSOR_RESTARTS = 3
# An empty page carries only a checkpoint: one in this many is stored (each costs the
# destination and the state store a commit); a crash reads the empty queries after the
# stored one again, which is cheap. A page with records is never held back.
EMPTY_PAGES_PER_CHECKPOINT = 64
NO_EVENT_NAMES = (
    'expected at least one event name, e.g. ["Charged", "App Launched"]: CleverTap\'s '
    "Get Events API requires event_name and has no query for all events"
)


# --- shared behaviour --------------------------------------------------------------------


class CleverTapSource(PullSource):
    """What every CleverTap source shares: the client and the account's calendar."""

    Options = CleverTapOptions

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.tz: tzinfo = ZoneInfo(options.timezone) if options.timezone != "UTC" else UTC
        self.client = CleverTapClient(
            context.http,
            options.base_url or region_url(options.region),
            options.account_id,
            options.passcode.get_secret_value(),
            concurrency=options.max_concurrency,
            backoff=Backoff(options.retry_initial, 120.0),
            poll_interval=options.poll_interval,
            log=self.log,
        )
        self.progress = UnitProgress()

    def today(self) -> date:
        return datetime.now(self.tz).date()

    def last_day(self) -> date:
        """The last complete day to read: ``end``, but never today or later."""
        yesterday = self.today() - timedelta(days=1)
        end = getattr(self.options, "end", None)
        return min(end, yesterday) if end else yesterday

    def first_day(self, done: date | None) -> date:
        """The day after the last complete one (minus the look-back), else ``start``."""
        start = getattr(self.options, "start", None) or self.last_day()
        if done is None:
            return start
        lookback = getattr(self.options, "lookback_days", 0)
        return max(start, done + timedelta(days=1 - lookback))

    def probe_event(self) -> str:
        """An event name this connector queries: ``check`` asks CleverTap for it, since
        Get Events refuses a query without ``event_name``."""
        return "App Launched"

    async def check(self) -> str:
        day = int(self.last_day().strftime("%Y%m%d"))
        name = self.probe_event()
        await self.client.open_cursor(
            EVENTS_PATH, {"event_name": name, "from": day, "to": day}, batch_size=1
        )
        return (
            f"CleverTap account {self.options.account_id} accepted the passcode "
            f"and a Get Events query for {name!r}"
        )


def _iso_day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value else None


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def yyyymmdd(day: date) -> int:
    return int(day.strftime("%Y%m%d"))


# --- cursor exports ----------------------------------------------------------------------


async def _tagged(unit: Any, pages: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Each page of ``unit`` as ``(unit, records, next cursor)``."""
    async for records, following in pages:
        yield unit, records, following


@dataclass
class Position:
    """Where a cursor export stands: see the module docstring."""

    done: date | None = None
    day: date | None = None
    event: str | None = None
    cursor: str | None = None

    @classmethod
    def load(cls, checkpoint: Any) -> Position:
        if not isinstance(checkpoint, dict):
            return cls()
        return cls(
            done=_iso_day(checkpoint.get("done")),
            day=_iso_day(checkpoint.get("day")),
            event=checkpoint.get("event"),
            cursor=checkpoint.get("cursor"),
        )

    def dump(self) -> dict[str, Any]:
        return {
            "done": self.done.isoformat() if self.done else None,
            "day": self.day.isoformat() if self.day else None,
            "event": self.event,
            "cursor": self.cursor,
        }


class CursorExport(CleverTapSource):
    """Day-by-day cursor export; subclasses name the API path and map records."""

    path: ClassVar[str]

    def names(self) -> list[str]:
        raise NotImplementedError

    def open_query(self, name: str, day: date) -> dict[str, Any]:
        """The query body: ``event_name``, ``from`` and ``to`` are all required by
        CleverTap (developer.clevertap.com/docs/get-events-api)."""
        return {"event_name": name, "from": yyyymmdd(day), "to": yyyymmdd(day)}

    def flags(self) -> dict[str, bool]:
        return {}

    def to_record(self, raw: dict[str, Any], name: str, day: date) -> Record:
        raise NotImplementedError

    def read(self, checkpoint: Any) -> AsyncIterator[Batch]:
        return self._read(Position.load(checkpoint))

    def plan(self, position: Position) -> tuple[list[tuple[date, int]], Position]:
        """The (day, event index) queries still to read, in checkpoint order, and the
        position to resume the first of them at."""
        names = self.names()
        last = self.last_day()
        first = self.first_day(position.done)
        resume = position if position.day and position.day >= first else Position()
        if resume.day and resume.event not in names:
            resume = Position()  # the configured events changed: read that day afresh
        if resume.day:
            first = resume.day
        start = names.index(resume.event) if resume.day and resume.event else 0
        units = [
            (day, index)
            for day in (days_between(first, last) if first <= last else [])
            for index in range(start if day == resume.day else 0, len(names))
        ]
        return units, resume

    async def _read(self, position: Position) -> AsyncIterator[Batch]:
        """Every query of the plan, up to ``max_concurrency`` read at once (CleverTap
        counts concurrent calls per account, see `CleverTapClient`), their pages
        yielded strictly in order: a checkpoint never passes an unfinished query."""
        names = self.names()
        units, resume = self.plan(position)
        days = sorted({day for day, _ in units})
        self.progress.plan(len(days))
        self.log.info(
            "clevertap.export.plan",
            stream=self.type,
            first=days[0].isoformat() if days else None,
            last=self.last_day().isoformat(),
            events=names,
            queries=len(units),
            concurrency=self.options.max_concurrency,
            resume_cursor=bool(resume.cursor),
        )
        done = position.done

        def pages(unit: tuple[date, int]) -> AsyncIterator[tuple[list[Record], str | None]]:
            day, index = unit
            first_query = resume.day == day and resume.event == names[index]
            return self._pages(names[index], day, resume.cursor if first_query else None)

        window = max(1, self.options.max_concurrency * 2)
        stream = ordered_streams(
            units, lambda u: _tagged(u, pages(u)), window=window, buffer=self.options.prefetch
        )
        held: Batch | None = None  # the latest empty batch, not yet yielded
        skipped = 0
        async with contextlib.aclosing(stream) as tagged:
            async for (day, index), records, following in tagged:
                if following:
                    at = Position(done, day, names[index], following)
                elif index + 1 < len(names):
                    at = Position(done, day, names[index + 1], None)
                else:  # the day's last query ended: the day is complete
                    at = Position(day, day + timedelta(days=1), names[0], None)
                    done = day
                    self.progress.advance()
                batch = Batch(records, at.dump())
                if records or skipped >= EMPTY_PAGES_PER_CHECKPOINT:
                    held, skipped = None, 0
                    yield batch
                else:
                    held, skipped = batch, skipped + 1
        if held is not None:
            yield held

    async def _pages(
        self, name: str, day: date, cursor: str | None
    ) -> AsyncIterator[tuple[list[Record], str | None]]:
        """Every page of one day's query, as mapped records and the next cursor.

        The last page of the query is always yielded (possibly empty), so the caller
        can move the checkpoint past it."""
        restarts = 0
        while True:
            try:
                if cursor is None:
                    cursor = await self.client.open_cursor(
                        self.path,
                        self.open_query(name, day),
                        batch_size=self.options.batch_size,
                        **self.flags(),
                    )
                while cursor is not None:
                    page = await self.client.page(self.path, cursor)
                    records = [self.to_record(raw, name, day) for raw in page.records]
                    cursor = page.next_cursor
                    yield records, cursor
                return
            except CursorExpired as err:
                restarts += 1
                if restarts > MAX_CURSOR_RESTARTS:
                    raise
                self.log.warning(
                    "clevertap.cursor.expired",
                    stream=self.type,
                    day=day.isoformat(),
                    event_name=name,
                    error=str(err),
                    action="reading the day again",
                )
                cursor = None


class EventsSource(CursorExport):
    """Events of the configured names, day by day, through the Get Events cursor
    export, as ``track`` records.

    CleverTap's Get Events query requires ``event_name`` and its records do not name
    their event, so there is no "all events" mode: each name is one query per day."""

    type = "clevertap.events"
    path = EVENTS_PATH

    class Options(DailyOptions):
        events: list[str] = Field(
            description='Event names to export, e.g. ["Charged", "App Launched"]: one '
            "Get Events query per name and day (CleverTap requires `event_name`; it has "
            "no query for all events).",
        )
        batch_size: int = Field(
            MAX_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE, description="Records per page (max 5000)."
        )
        app_fields: bool = Field(
            True, description="Ask for the app fields (OS and app version, device make/model)."
        )
        profile_fields: bool = Field(
            False,
            description="Copy the profile's fields into each event's `context.traits` "
            "(otherwise join events with the profiles table).",
        )
        prefetch: int = Field(2, ge=0, le=8, description="Pages read ahead while one is written.")

        @field_validator("events")
        @classmethod
        def _events(cls, value: list[str]) -> list[str]:
            if not value:
                raise ValueError(NO_EVENT_NAMES)
            if any(not name.strip() for name in value):
                raise ValueError("event names must not be empty")
            if len(set(value)) != len(value):
                raise ValueError("event names must be unique")
            return value

    def names(self) -> list[str]:
        return list(self.options.events)

    def probe_event(self) -> str:
        return self.options.events[0]

    def flags(self) -> dict[str, bool]:
        return {
            "app": self.options.app_fields,
            "events": False,
            "profile": self.options.profile_fields,
        }

    def to_record(self, raw: dict[str, Any], name: str, day: date) -> Record:
        return mapping.event_record(
            raw,
            name,
            account_id=self.options.account_id,
            tz=self.tz,
            with_traits=self.options.profile_fields,
        )


def _profile_batch(value: int) -> int:
    if value % PROFILE_BATCH_MULTIPLE:
        nearest = max(1, value // PROFILE_BATCH_MULTIPLE) * PROFILE_BATCH_MULTIPLE
        raise ValueError(
            f"CleverTap wants profile batch sizes in multiples of {PROFILE_BATCH_MULTIPLE}; "
            f"try {nearest}"
        )
    return value


class ProfilesSource(CursorExport):
    """Profiles of the users who did ``event`` each day, through the Get User Profiles
    cursor export, as ``identify`` records (the warehouse's ``users`` table)."""

    type = "clevertap.profiles"
    path = PROFILES_PATH

    class Options(DailyOptions):
        event: str = Field(
            "App Launched",
            min_length=1,
            description="Export profiles of users who did this event on each day.",
        )
        batch_size: Annotated[int, AfterValidator(_profile_batch)] = Field(
            4991, ge=23, le=MAX_BATCH_SIZE, description="Profiles per page (a multiple of 23)."
        )
        app_fields: bool = Field(True, description="Ask for the app fields.")
        event_summary: bool = Field(
            False, description="Include the per-event summary (counts, first/last seen)."
        )
        prefetch: int = Field(2, ge=0, le=8, description="Pages read ahead while one is written.")

    def names(self) -> list[str]:
        return [self.options.event]

    def probe_event(self) -> str:
        return self.options.event

    def flags(self) -> dict[str, bool]:
        return {
            "app": self.options.app_fields,
            "events": self.options.event_summary,
            "profile": True,
        }

    def to_record(self, raw: dict[str, Any], name: str, day: date) -> Record:
        return mapping.profile_record(raw, account_id=self.options.account_id, day=day, tz=self.tz)
