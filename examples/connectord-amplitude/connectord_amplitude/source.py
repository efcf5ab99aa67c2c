"""``amplitude.export``: read a project's events through Amplitude's Export API."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from connectord import Batch, Options, PullSource, Secret
from connectord.http import Backoff, call_with_retries
from pydantic import AnyHttpUrl, Field, field_validator

from .client import AmplitudeClient
from .const import EXPORT_BASE_URL, EXPORT_DELAY_HOURS, EXPORT_HOUR_FORMAT
from .mapping import from_export_event

HOUR = timedelta(hours=1)


def parse_hour(text: str) -> datetime:
    """``20260101T05`` → 2026-01-01 05:00 UTC."""
    return datetime.strptime(text, EXPORT_HOUR_FORMAT).replace(tzinfo=UTC)


def format_hour(moment: datetime) -> str:
    return moment.strftime(EXPORT_HOUR_FORMAT)


class AmplitudeExportSource(PullSource):
    """Read every event of an Amplitude project, hour by hour, through the Export API.

    The checkpoint is the next hour to export (``YYYYMMDDTHH``, by the time Amplitude
    received the events); an hour is read once it is at least two hours old, when
    Amplitude makes it available. Events become ``track`` records (``$identify``
    events ``identify`` records) with stable message ids, so a re-read never duplicates.
    """

    type = "amplitude.export"
    retry_attempts: ClassVar[int] = 5
    retry_backoff: ClassVar[Backoff] = Backoff(2.0, 120.0)
    now: ClassVar[Callable[[], datetime]] = staticmethod(lambda: datetime.now(UTC))

    class Options(Options):
        api_key: Secret = Field(description="The project's API key.")
        secret_key: Secret = Field(description="The project's secret key.")
        start: str = Field(
            description="First hour to export on the first run, YYYYMMDDTHH in UTC, "
            'e.g. "20260101T00". Later runs continue from the checkpoint.'
        )
        base_url: AnyHttpUrl = Field(
            EXPORT_BASE_URL,
            description="Export host: https://amplitude.com, or "
            "https://analytics.eu.amplitude.com for EU data residency.",
        )
        hours_per_request: int = Field(
            1,
            ge=1,
            le=24,
            description="Hours per export request; fewer when an hour holds gigabytes "
            "(one request may not exceed 4 GB).",
        )
        event_types: list[str] = Field(
            default_factory=list, description="Only these event types; empty: all."
        )
        batch_size: int = Field(
            5000, ge=1, le=100_000, description="Records handed to the destination at once."
        )

        @field_validator("start")
        @classmethod
        def _start(cls, value: str) -> str:
            try:
                parse_hour(value)
            except ValueError:
                raise ValueError(
                    f"start must be an hour as YYYYMMDDTHH (UTC), e.g. 20260101T00; got {value!r}"
                ) from None
            return value

    async def start(self) -> None:
        self.client = AmplitudeClient(self.context.http, str(self.options.base_url))

    async def read(self, checkpoint: Any) -> AsyncIterator[Batch]:
        hour = parse_hour(str(checkpoint or self.options.start))
        last = self.last_available_hour()
        while hour <= last:
            end = min(hour + (self.options.hours_per_request - 1) * HOUR, last)
            following = format_hour(end + HOUR)
            events = await call_with_retries(
                lambda h=hour, e=end: self.client.export(
                    self.options.api_key.get_secret_value(),
                    self.options.secret_key.get_secret_value(),
                    format_hour(h),
                    format_hour(e),
                ),
                attempts=self.retry_attempts,
                backoff=self.retry_backoff,
            )
            count = 0
            async for records in self._chunks(events):
                count += len(records)
                yield Batch(records)  # the checkpoint moves only once the window is done
            self.log.info(
                "amplitude.export.window",
                start=format_hour(hour),
                end=format_hour(end),
                records=count,
            )
            yield Batch([], checkpoint=following)
            hour = end + HOUR

    def last_available_hour(self) -> datetime:
        """The latest hour Amplitude has finished making exportable."""
        current = self.now().replace(minute=0, second=0, microsecond=0)
        return current - (EXPORT_DELAY_HOURS + 1) * HOUR

    async def _chunks(self, events: Iterator[dict[str, Any]] | None) -> AsyncIterator[list[Any]]:
        """Records in batches of ``batch_size``; unzipping runs off the event loop."""
        if events is None:  # Amplitude's 404: no data in these hours
            return
        wanted = set(self.options.event_types)
        size = self.options.batch_size

        def take() -> tuple[list[Any], bool]:
            raw = list(itertools.islice(events, size))
            kept = [e for e in raw if not wanted or e.get("event_type") in wanted]
            return [from_export_event(e) for e in kept], len(raw) < size

        try:
            while True:
                records, done = await asyncio.to_thread(take)
                if records:
                    yield records
                if done:
                    return
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # removes the spooled download
