"""CleverTap's report sources: daily event and profile counts, and campaign reports.

Both read small aggregates rather than cursor exports, one batch per day (counts) or per
run (campaigns), through the same client and account limit as the exports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

from pydantic import Field

from connectord import Batch, Record

from . import mapping
from .options import CleverTapOptions, DailyOptions, Day
from .source import CleverTapSource, _iso_day, days_between, yyyymmdd

# --- counts ------------------------------------------------------------------------------


class CountsSource(CleverTapSource):
    """Daily counts of the configured events through the asynchronous ``req_id`` count
    APIs, as ``metric`` records: ``metric_event_count`` (Get Event Count) and, with
    ``profiles``, ``metric_profile_count`` (Get Profile Count: the profiles that did the
    event that day). One batch per day."""

    type = "clevertap.counts"

    class Options(DailyOptions):
        events: list[str] = Field(
            min_length=1, description='Event names to count each day, e.g. ["Charged"].'
        )
        profiles: bool = Field(
            False,
            description="Also count the profiles that did each event that day "
            "(`metric_profile_count`, one more count query per event and day).",
        )
        lookback_days: int = Field(
            2,
            ge=0,
            le=90,
            description="Count the last N complete days again on each run (late events "
            "change counts); a new count replaces the old one.",
        )

    def probe_event(self) -> str:
        return self.options.events[0]

    async def read(self, checkpoint: Any) -> AsyncIterator[Batch]:
        done = _iso_day(checkpoint.get("done")) if isinstance(checkpoint, dict) else None
        first, last = self.first_day(done), self.last_day()
        for day in days_between(first, last) if first <= last else []:
            yield Batch(await self._day(day), {"done": day.isoformat()})

    async def _day(self, day: date) -> list[Record]:
        stamp, names = yyyymmdd(day), self.options.events
        queries = [self.client.event_count(name, stamp, stamp) for name in names]
        if self.options.profiles:
            queries += [self.client.profile_count(name, stamp, stamp) for name in names]
        counts = await asyncio.gather(*queries)
        account, tz = self.options.account_id, self.tz
        records = [
            mapping.event_count_record(name, day, count, account_id=account, tz=tz)
            for name, count in zip(names, counts[: len(names)], strict=True)
        ]
        if self.options.profiles:
            records += [
                mapping.profile_count_record(name, day, count, account_id=account, tz=tz)
                for name, count in zip(names, counts[len(names) :], strict=True)
            ]
        return records


# --- campaigns ---------------------------------------------------------------------------


class CampaignsSource(CleverTapSource):
    """Campaigns scheduled in a sliding window and their reports, as ``metric`` records
    (``metric_campaign_report``): figures of recent campaigns are read again each run
    until they leave the window, so late clicks and conversions update."""

    type = "clevertap.campaigns"

    class Options(CleverTapOptions):
        start: Day | None = Field(
            None, description="Earliest scheduled day to read. Default: `lookback_days` ago."
        )
        lookback_days: int = Field(
            7, ge=0, le=365, description="Read campaigns of the last N days again on each run."
        )

    async def check(self) -> str:
        """List yesterday's campaigns: the call this source makes, without exports."""
        day = yyyymmdd(self.today() - timedelta(days=1))
        await self.client.campaigns(day, day)
        return f"CleverTap account {self.options.account_id} accepted the passcode"

    async def read(self, checkpoint: Any) -> AsyncIterator[Batch]:
        done = _iso_day(checkpoint.get("done")) if isinstance(checkpoint, dict) else None
        today = self.today()
        window = today - timedelta(days=self.options.lookback_days)
        first = min(done, window) if done else (self.options.start or window)
        if self.options.start:
            first = max(first, self.options.start)
        targets = await self.client.campaigns(yyyymmdd(first), yyyymmdd(today))
        reports = await asyncio.gather(*(self._report(t) for t in targets))
        records = [
            mapping.campaign_record(t, r, account_id=self.options.account_id, tz=self.tz)
            for t, r in zip(targets, reports, strict=True)
        ]
        self.log.info("clevertap.campaigns.read", first=first.isoformat(), campaigns=len(records))
        yield Batch(records, {"done": window.isoformat()})

    async def _report(self, target: dict[str, Any]) -> dict[str, Any] | None:
        if str(target.get("status", "completed")).lower() not in ("completed", "stopped"):
            return None
        return await self.client.campaign_report(target.get("id"))
