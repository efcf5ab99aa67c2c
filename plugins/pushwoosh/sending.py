"""How the ``pushwoosh`` destination sends events and per-user calls (a mixin).

- ``postEvent`` per record (Device API token), users in parallel up to ``concurrency``,
  each user's records in order;
- or, with ``events_api = "batch"``, 100 events per request to Pushwoosh's
  server-integration service; a refused request is halved until the refused events are
  isolated, so each good event is posted exactly once.

Refused records are rejected with Pushwoosh's message; after a transient failure only
the rest is retried; when nothing got through the error is raised so the framework's
backoff (and its credential handling) applies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from connectord import AuthError, DeliveryResult, PermanentError, Record, RetryableError

from .client import ArgumentError, PushwooshClient
from .const import BATCH_EVENTS_MAX
from .events import Event, event_of


@dataclass
class _Progress:
    done: int = 0


class PerUserDelivery:
    """Events and per-user calls with bounded concurrency; mixed into the destination."""

    client: PushwooshClient
    options: Any

    # --- events -----------------------------------------------------------------------

    async def _send_events(self, items: list[tuple[int, Record]], result: DeliveryResult) -> None:
        events = [
            (index, event_of(record, self.options.screen_event, self.options.page_event))
            for index, record in items
        ]
        if self.options.events_api == "batch":
            await self._send_event_batches(events, result)
            return

        async def one(event: Event) -> None:
            await self.client.post_event(
                event.name,
                user_id=event.user,
                hwid=event.hwid,
                attributes=event.attributes,
                timestamp_utc=event.timestamp,
                device_type=event.device_type,
            )

        await self._run_per_user(
            [(index, e.user, e) for index, e in events], one, result, raise_if_none_done=True
        )

    async def _send_event_batches(
        self, events: list[tuple[int, Event]], result: DeliveryResult
    ) -> None:
        progress = _Progress()
        for start in range(0, len(events), BATCH_EVENTS_MAX):
            chunk = events[start : start + BATCH_EVENTS_MAX]
            await self._post_chunk(chunk, result, progress)

    async def _post_chunk(
        self, chunk: list[tuple[int, Event]], result: DeliveryResult, progress: _Progress
    ) -> None:
        """Post a chunk; a refused chunk is halved until the refused events are isolated."""
        payload = [event.batch_item(self.options.application) for _, event in chunk]
        try:
            await self.client.post_events_batch(payload)
        except PermanentError as err:
            if len(chunk) == 1:
                result.rejected[chunk[0][0]] = str(err)
                return
            middle = len(chunk) // 2
            await self._post_chunk(chunk[:middle], result, progress)
            await self._post_chunk(chunk[middle:], result, progress)
            return
        except RetryableError as err:
            if not progress.done and not result.retry:
                raise
            result.retry.update(index for index, _ in chunk)
            result.retry_after = err.retry_after or result.retry_after
            return
        progress.done += len(chunk)

    # --- shared: per-user calls with bounded concurrency ------------------------------

    async def _run_per_user(
        self,
        items: list[tuple[int, str, Any]],
        call: Callable[[Any], Awaitable[None]],
        result: DeliveryResult,
        *,
        raise_if_none_done: bool,
    ) -> None:
        """Run ``call`` for every item: users in parallel (up to ``concurrency``), each
        user's items in order. Refused items are rejected; after a transient failure the
        user's remaining items are retried. When nothing got through, the error is raised
        so the framework's backoff (and its credential handling) applies."""
        by_user: dict[str, list[tuple[int, Any]]] = {}
        for index, user, item in items:
            by_user.setdefault(user, []).append((index, item))
        slots = asyncio.Semaphore(self.options.concurrency)
        progress = _Progress()
        failures: list[RetryableError] = []

        async def run_user(queue: list[tuple[int, Any]]) -> None:
            async with slots:
                for position, (index, item) in enumerate(queue):
                    try:
                        await call(item)
                    except ArgumentError as err:
                        result.rejected[index] = str(err)
                        continue
                    except RetryableError as err:
                        failures.append(err)
                        result.retry.update(i for i, _ in queue[position:])
                        result.retry_after = (
                            max(err.retry_after or 0.0, result.retry_after or 0.0) or None
                        )
                        return
                    except PermanentError as err:
                        result.rejected[index] = str(err)
                        continue
                    progress.done += 1

        await asyncio.gather(*(run_user(queue) for queue in by_user.values()))
        if failures and raise_if_none_done and progress.done == 0:
            auth = next((f for f in failures if isinstance(f, AuthError)), None)
            raise auth or failures[0]
