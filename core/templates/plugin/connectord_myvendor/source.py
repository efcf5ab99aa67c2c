"""``myvendor.events``: read My Vendor's events, resuming after the last one delivered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from connectord import Batch, Options, PullSource, Secret
from connectord.http import Backoff, call_with_retries
from pydantic import AnyHttpUrl, Field

from .client import MyVendorClient
from .const import DEFAULT_BASE_URL, MAX_PAGE_SIZE, PAGE_SIZE
from .mapping import from_vendor_event


class MyVendorEventsSource(PullSource):
    """Read My Vendor events as track records, oldest first, from the checkpoint on."""

    type = "myvendor.events"
    retry_attempts: ClassVar[int] = 5
    retry_backoff: ClassVar[Backoff] = Backoff(1.0, 60.0)
    """Each page is retried this way on 429/5xx/timeouts before the run fails."""

    class Options(Options):
        api_key: Secret = Field(description="My Vendor API key (Settings → API).")
        base_url: AnyHttpUrl = Field(
            DEFAULT_BASE_URL, description="API host: a regional host, a proxy or an emulator."
        )
        page_size: int = Field(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Events per request.")

    async def start(self) -> None:
        self.client = MyVendorClient(
            self.context.http, str(self.options.base_url), self.options.api_key.get_secret_value()
        )

    async def check(self) -> str:
        await self.client.list_events(0, None, 1)
        return "API key accepted"

    async def read(self, checkpoint: Any) -> AsyncIterator[Batch]:
        """The checkpoint is the id of the last event delivered (``None``: read all)."""
        since_id = int(checkpoint or 0)
        cursor: str | None = None
        while True:
            events, cursor = await call_with_retries(
                lambda c=cursor: self.client.list_events(since_id, c, self.options.page_size),
                attempts=self.retry_attempts,
                backoff=self.retry_backoff,
                on_retry=self._retrying,
            )
            if events:
                # The framework stores this checkpoint only once the destination has
                # acknowledged these records: a crash re-reads them, never skips them.
                yield Batch([from_vendor_event(e) for e in events], checkpoint=events[-1]["id"])
            if cursor is None:
                self.log.info("myvendor.events.read", since_id=since_id)
                return

    def _retrying(self, attempt: int, error: Exception, delay: float) -> None:
        self.log.warning("myvendor.events.retry", attempt=attempt, error=str(error), delay=delay)
