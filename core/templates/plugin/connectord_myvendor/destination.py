"""``myvendor``: send records to My Vendor's batch event API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from connectord import DeliveryResult, Destination, Options, Record, RecordRejected, Secret
from pydantic import AnyHttpUrl, Field

from .client import MyVendorClient
from .const import DEFAULT_BASE_URL, MAX_BATCH
from .mapping import to_vendor_event


class MyVendorDestination(Destination):
    """Send track, identify, page and screen records to My Vendor, in batches."""

    type = "myvendor"
    max_batch_size: ClassVar[int] = MAX_BATCH

    class Options(Options):
        api_key: Secret = Field(description="My Vendor API key (Settings → API).")
        base_url: AnyHttpUrl = Field(
            DEFAULT_BASE_URL, description="API host: a regional host, a proxy or an emulator."
        )

    async def start(self) -> None:
        self.client = MyVendorClient(
            self.context.http, str(self.options.base_url), self.options.api_key.get_secret_value()
        )

    async def send(self, records: Sequence[Record]) -> DeliveryResult | None:
        """One request per batch. Records we cannot convert and events the vendor
        refuses are rejected by index; errors for the whole request propagate."""
        rejected: dict[int, str] = {}
        events, positions = [], []
        for index, record in enumerate(records):
            try:
                events.append(to_vendor_event(record))
            except RecordRejected as err:
                rejected[index] = str(err)
                continue
            positions.append(index)
        if events:
            errors = await self.client.track(events)
            for event_index, message in errors.items():
                rejected[positions[event_index]] = f"myvendor refused the event: {message}"
        if rejected:
            self.log.info("myvendor.track.rejected", count=len(rejected))
            return DeliveryResult(rejected=rejected)
        return None
