"""``amplitude``: send records to Amplitude's HTTP V2 API or Batch Event Upload API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from connectord import DeliveryResult, Destination, Options, Record, RecordRejected, Secret
from pydantic import AnyHttpUrl, Field

from .client import AmplitudeClient
from .const import (
    DEFAULT_BASE_URL,
    MAX_EVENTS_PER_REQUEST,
    MAX_IMMEDIATE_RESENDS,
    THROTTLE_PAUSE_SECONDS,
)
from .mapping import DEFAULT_MIN_ID_LENGTH, to_amplitude_event


class AmplitudeDestination(Destination):
    """Send track, identify, page and screen records to Amplitude as events.

    One request per batch. Events Amplitude refuses (a 400 naming them) become dead
    letters and the rest is sent again at once; events of throttled users or devices (a
    429) are retried after Amplitude's pause while the others go through.
    """

    type = "amplitude"
    max_batch_size = 1000

    class Options(Options):
        api_key: Secret = Field(description="The Amplitude project's API key.")
        endpoint: Literal["httpapi", "batch"] = Field(
            "httpapi",
            description='"httpapi": HTTP V2 API (/2/httpapi, up to 1 MB per request); '
            '"batch": Batch Event Upload API (/batch, up to 20 MB, higher per-user '
            "rate limits; for backfills and busy users).",
        )
        base_url: AnyHttpUrl = Field(
            DEFAULT_BASE_URL,
            description="Ingestion host: https://api2.amplitude.com, or "
            "https://api.eu.amplitude.com for EU data residency (or a proxy).",
        )
        batch_size: int = Field(
            1000,
            ge=1,
            le=MAX_EVENTS_PER_REQUEST,
            description="Events per request (Amplitude takes at most 2000).",
        )
        min_id_length: int | None = Field(
            None,
            ge=1,
            le=DEFAULT_MIN_ID_LENGTH,
            description="Accept user and device IDs shorter than Amplitude's default of 5 "
            "characters (sent as options.min_id_length).",
        )
        throttle_pause: float = Field(
            THROTTLE_PAUSE_SECONDS,
            gt=0,
            le=3600,
            description="Seconds to hold back events of throttled users or devices after a "
            "429 without Retry-After (Amplitude asks for 30).",
        )

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.max_batch_size = options.batch_size
        self.min_id_length = options.min_id_length or DEFAULT_MIN_ID_LENGTH

    async def start(self) -> None:
        self.client = AmplitudeClient(self.context.http, str(self.options.base_url))

    async def send(self, records: Sequence[Record]) -> DeliveryResult | None:
        rejected: dict[int, str] = {}
        events: dict[int, dict[str, Any]] = {}
        for index, record in enumerate(records):
            try:
                events[index] = to_amplitude_event(record, min_id_length=self.min_id_length)
            except RecordRejected as err:
                rejected[index] = str(err)
        pending = list(events)
        retry: set[int] = set()
        retry_after: float | None = None
        for _ in range(1 + MAX_IMMEDIATE_RESENDS):
            if not pending:
                break
            outcome = await self.client.upload(
                self.options.api_key.get_secret_value(),
                [events[i] for i in pending],
                endpoint=self.options.endpoint,
                min_id_length=self.options.min_id_length,
                throttle_pause=self.options.throttle_pause,
            )
            if outcome.ingested:
                pending = []
                break
            # Nothing of this request was ingested: keep what Amplitude named, resend the rest.
            for position, reason in outcome.refused.items():
                rejected[pending[position]] = reason
            retry.update(pending[position] for position in outcome.throttled)
            if outcome.retry_after is not None:
                retry_after = max(retry_after or 0.0, outcome.retry_after)
            named = set(outcome.refused) | outcome.throttled
            pending = [index for position, index in enumerate(pending) if position not in named]
            self.log.info(
                "amplitude.upload.partial",
                refused=len(outcome.refused),
                throttled=len(outcome.throttled),
                resending=len(pending),
            )
        retry.update(pending)  # still not ingested after the immediate resends
        if not rejected and not retry:
            return None
        return DeliveryResult(rejected=rejected, retry=retry, retry_after=retry_after)
