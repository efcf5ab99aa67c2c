"""Pull sources: the push tracking log and message statistics.

- ``pushwoosh.tracking_log``: UTC days, up to ``max_concurrency`` requested at once and
  delivered in order, ``getTrackingLog`` → ``getResults``
  (polled until ready) → a ZIP of quoted ``;``-separated CSV with eight columns
  (`tracking`); lines become device-keyed ``track`` records (``Push Sent``, ``Push
  Delivered``, ``Push Opened``). Pushwoosh's older docs mark getTrackingLog deprecated
  in favour of the Custom-plan ``getMessageLog``; its current developer docs still
  document it (see docs/integrations/pushwoosh.md). The checkpoint is the last
  complete day delivered; a run that fails mid-day starts that day again, and stable
  message ids keep re-read lines from doubling.
- ``pushwoosh.message_stats``: ``messages:list`` with per-platform metrics, day by day,
  as ``metric`` records (``push_stats``). Figures keep changing after a send (late
  opens), so each run re-reads the last ``lookback_days``; stable ids make the new
  figures replace the old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AnyHttpUrl, Field

from connectord import AuthError, Batch, Options, PermanentError, PullSource, Record, Secret
from connectord.http import Backoff, call_with_retries
from connectord.pull import AccountLimits, ordered_streams
from connectord.records import iso, parse_time, stable_message_id

from .client import PushwooshClient, validate_application
from .const import (
    DEFAULT_BASE_URL,
    PLATFORM_IDS,
    PLATFORMS,
    STATS_PAGE_SIZE_MAX,
    TRACKING_LOG_CONCURRENCY,
    TRACKING_LOG_DAYS,
)
from .tracking import iter_tracking_rows, parse_payload

T = TypeVar("T")

DEFAULT_EVENTS = {"sent": "Push Sent", "delivered": "Push Delivered", "opened": "Push Opened"}
STAT_VALUES = ("sends", "deliveries", "opens", "inbox_opens", "unshowable_sends", "errors")
_CAMPAIGN_COLUMNS = ("campaign_id", "campaign_code", "campaign")
_PLATFORM_COLUMNS = ("platform_id", "device_type", "platform")
_MESSAGE_COLUMNS = ("message_code", "message")
# Tracking-log requests in flight per application, across connectors (see max_concurrency).
TRACKING_LOGS = AccountLimits()


class _PushwooshPull(PullSource):
    """What both pull sources share: options, client, retries, the UTC calendar."""

    class Options(Options):
        application: Annotated[str, AfterValidator(validate_application)] = Field(
            description="Pushwoosh application code, `XXXXX-XXXXX`."
        )
        api_token: Secret = Field(description="Server API access token.")
        base_url: AnyHttpUrl = Field(DEFAULT_BASE_URL, description="Pushwoosh API host.")
        initial_days: int = Field(
            7,
            ge=1,
            le=TRACKING_LOG_DAYS,
            description="Complete days to read on the first run (the log keeps 14).",
        )
        attempts: int = Field(
            5, ge=1, le=20, description="Tries per API call before the run fails."
        )
        poll_interval: float = Field(
            10.0, gt=0, le=600, description="Seconds between polls of a scheduled request."
        )
        max_wait: float = Field(
            900.0, gt=0, description="Seconds to wait for a scheduled request's result."
        )

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.client = PushwooshClient(
            context.http,
            application=options.application,
            api_token=options.api_token.get_secret_value(),
            base_url=str(options.base_url),
            poll_interval=options.poll_interval,
            max_wait=options.max_wait,
        )
        self.backoff = Backoff(min(1.0, options.poll_interval), 60.0)

    async def check(self) -> str:
        """The server token (the only one a pull source uses) against the server API."""
        app = self.options.application
        try:
            await self.client.list_filters()
        except (AuthError, PermanentError) as err:
            raise AuthError(
                f"api_token rejected by the server API (listFilters) for {app}: {err}"
            ) from err
        return f"api_token accepted by the server API (listFilters) for {app}"

    async def retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        def on_retry(attempt: int, error: Exception, delay: float) -> None:
            self.log.warning(
                "pushwoosh.pull.retry",
                call=what,
                attempt=attempt,
                error=str(error),
                delay=round(delay, 2),
            )

        return await call_with_retries(
            call, attempts=self.options.attempts, backoff=self.backoff, on_retry=on_retry
        )

    @staticmethod
    def today() -> date:
        return datetime.now(UTC).date()


class PushwooshTrackingLog(_PushwooshPull):
    """Read the push tracking log day by day as Push Sent/Delivered/Opened events."""

    type = "pushwoosh.tracking_log"

    class Options(_PushwooshPull.Options):
        events: dict[str, str] = Field(
            default_factory=lambda: dict(DEFAULT_EVENTS),
            description="Tracking status → event name; statuses left out (e.g. `created`) "
            'are skipped. Default: {sent = "Push Sent", delivered = "Push Delivered", '
            'opened = "Push Opened"}.',
        )
        batch_size: int = Field(1000, ge=1, le=50_000, description="Records per batch.")
        max_file_bytes: int = Field(
            1024**3, ge=1024, description="Largest tracking-log ZIP accepted, in bytes."
        )
        max_concurrency: int = Field(
            TRACKING_LOG_CONCURRENCY,
            ge=1,
            le=TRACKING_LOG_DAYS,
            description="Days whose tracking log is requested and downloaded at once, shared "
            "by every connector of the application (at most the 14 days the log keeps). "
            "Pushwoosh documents no limit for getTrackingLog or getResults (its only stated "
            "cap is on createMessage), so the default of 4 is connectord's own conservative "
            "bound. Days are still delivered and checkpointed in order.",
        )

    async def read(self, checkpoint: Any) -> AsyncIterator[Batch]:
        today = self.today()
        first = today - timedelta(days=self.options.initial_days)
        if isinstance(checkpoint, dict) and checkpoint.get("day"):
            first = date.fromisoformat(checkpoint["day"]) + timedelta(days=1)
        oldest = today - timedelta(days=TRACKING_LOG_DAYS - 1)
        if first < oldest:
            self.log.warning(
                "pushwoosh.tracking_log.gap",
                missed_from=first.isoformat(),
                missed_to=(oldest - timedelta(days=1)).isoformat(),
                reason="the tracking log keeps 14 days",
            )
            first = oldest
        days = [first + timedelta(days=n) for n in range((today - first).days)]  # complete
        stream = ordered_streams(days, self.read_day, window=self.options.max_concurrency)
        async with contextlib.aclosing(stream) as batches:
            async for batch in batches:
                yield batch

    async def read_day(self, day: date) -> AsyncIterator[Batch]:
        """One day's lines in batches; only the last batch carries the checkpoint."""
        text = day.isoformat()
        with tempfile.TemporaryFile(prefix="pushwoosh-tracking-") as file:

            async def download(url: str) -> int:
                file.seek(0)
                file.truncate()
                return await self.client.download(url, file, max_bytes=self.options.max_file_bytes)

            slots = TRACKING_LOGS.get(
                (str(self.options.base_url), self.options.application), self.options.max_concurrency
            )
            async with slots:  # the day's log requested, awaited and downloaded
                url = await self.retrying(
                    "getTrackingLog", lambda: self.client.tracking_log_url(text)
                )
                size = await self.retrying("download", lambda: download(url))
            file.seek(0)
            self.log.info("pushwoosh.tracking_log.day", day=text, bytes=size)
            rows = iter_tracking_rows(file)
            try:
                held: list[Record] = []  # held back so the day's last batch has the checkpoint
                while chunk := await asyncio.to_thread(_take, rows, self.options.batch_size):
                    if held:
                        yield Batch(held)
                    held = [r for r in (self.record(row, day) for row in chunk) if r]
                yield Batch(held, checkpoint={"day": text})
            finally:
                rows.close()

    def record(self, row: dict[str, str], day: date) -> Record | None:
        """A tracking-log line as a track record; ``None`` for statuses not mapped.

        The log names devices, not users: ``target_id`` is the device identifier the push
        was addressed to (a hwid or a push token) and ``hwid`` the device's hardware id.
        So the record is keyed by device (``anonymousId`` and ``context.device``) and has
        no ``userId``: a device id is never passed off as a user id.
        """
        status = (row.get("status") or "").strip().lower()
        event = self.options.events.get(status)
        if not event:
            return None
        hwid = row.get("hwid") or None
        target = row.get("target_id") or None
        tracking_code = row.get("tracking_code") or None
        app_code = row.get("appcode") or None
        moment = _log_time(row.get("timestamp"))
        campaign = _first(row, _CAMPAIGN_COLUMNS)
        message_code = _first(row, _MESSAGE_COLUMNS)
        platform_id = _platform_id(_first(row, _PLATFORM_COLUMNS))
        properties: dict[str, Any] = {
            k: v
            for k, v in row.items()
            if v not in (None, "") and k not in ("timestamp", "appcode", "payload")
        }
        if app_code:
            properties["app_code"] = app_code
        payload = parse_payload(row.get("payload"))
        if payload is not None:
            properties["payload"] = payload
        pushwoosh: dict[str, Any] = {"application": app_code or self.options.application}
        for key, value in (
            ("hwid", hwid),
            ("target_id", target),
            ("tracking_code", tracking_code),
            ("campaign_id", campaign),
            ("message_code", message_code),
            ("platform_id", platform_id),
        ):
            if value is not None:
                pushwoosh[key] = value
        if campaign is not None:
            properties["campaign_id"] = campaign
        if platform_id is not None:
            properties["platform_id"] = platform_id
            properties["platform"] = PLATFORMS.get(platform_id, str(platform_id))
        context: dict[str, Any] = {"pushwoosh": pushwoosh, "device": _device(hwid, target)}
        if platform_id in PLATFORMS:
            context["device"]["type"] = PLATFORMS[platform_id].lower()
        return {
            "type": "track",
            "event": event,
            "anonymousId": hwid or target or tracking_code or "pushwoosh",
            "properties": properties,
            "context": context,
            "timestamp": iso(moment or datetime.combine(day, datetime.min.time(), UTC)),
            "messageId": stable_message_id(
                self.type,
                self.options.application,
                row.get("timestamp"),
                tracking_code,
                target,
                hwid,
                status,
            ),
        }


class PushwooshMessageStats(_PushwooshPull):
    """Read per-message, per-platform push statistics as ``push_stats`` metrics."""

    type = "pushwoosh.message_stats"

    class Options(_PushwooshPull.Options):
        lookback_days: int = Field(
            3,
            ge=0,
            le=90,
            description="Complete days before the checkpoint read again each run, so that "
            "late deliveries and opens update the figures.",
        )
        per_page: int = Field(
            100, ge=1, le=STATS_PAGE_SIZE_MAX, description="Messages per messages:list page."
        )

    async def read(self, checkpoint: Any) -> AsyncIterator[Batch]:
        today = self.today()
        first = today - timedelta(days=self.options.initial_days)
        if isinstance(checkpoint, dict) and checkpoint.get("day"):
            done = date.fromisoformat(checkpoint["day"])
            first = done + timedelta(days=1 - self.options.lookback_days)
        day = first
        while day <= today:  # today too: its figures are replaced on the next run
            records = await self.read_day(day)
            complete = day < today
            yield Batch(records, checkpoint={"day": day.isoformat()} if complete else None)
            day += timedelta(days=1)

    async def read_day(self, day: date) -> list[Record]:
        text = day.isoformat()
        records: list[Record] = []
        page = 1
        while True:
            answer = await self.retrying(
                "messages:list",
                lambda page=page: self.client.list_messages(
                    text, text, page=page, per_page=self.options.per_page
                ),
            )
            items = answer.get("items") or []
            for item in items:
                records.extend(self.records(item))
            total = int(answer.get("total") or 0)
            if not items or page * self.options.per_page >= total:
                return records
            page += 1

    def records(self, message: dict[str, Any]) -> Iterator[Record]:
        """One metric record per platform of a message."""
        info = message.get("push_info") or {}
        details = info.get("details") or {}
        code = str(message.get("code") or message.get("id") or "")
        moment = parse_time(message.get("send_date") or message.get("created_date"))
        campaign = message.get("campaign") or details.get("campaign")
        for metrics in info.get("metrics") or []:
            platform_id = _platform_id(metrics.get("platform"))
            platform = PLATFORMS.get(platform_id, str(metrics.get("platform"))).lower()
            dimensions = {
                "application": self.options.application,
                "message_code": code,
                "message_id": message.get("id"),
                "platform": platform,
                "platform_id": platform_id,
                "campaign": campaign,
                "source": message.get("source"),
            }
            yield {
                "type": "metric",
                "metric": "push_stats",
                "period": "total",
                "timestamp": iso(moment) if moment else None,
                "dimensions": {k: v for k, v in dimensions.items() if v is not None},
                "values": {key: _number(metrics.get(key)) for key in STAT_VALUES},
                "messageId": stable_message_id(self.type, self.options.application, code, platform),
            }


# --- helpers ---------------------------------------------------------------------------


def _take(rows: Iterator[dict[str, str]], size: int) -> list[dict[str, str]]:
    """Up to ``size`` rows (run in a thread: unzipping and CSV parsing block)."""
    out = []
    for row in rows:
        out.append(row)
        if len(out) >= size:
            break
    return out


def _device(hwid: str | None, target: str | None) -> dict[str, Any]:
    """``context.device``: the hwid as ``id``; a ``target_id`` that is not the hwid is the
    push token the message was addressed to."""
    device: dict[str, Any] = {}
    if hwid:
        device["id"] = hwid
    if target and target != hwid:
        device["token"] = target
    return device


def _first(row: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if row.get(name):
            return row[name]
    return None


def _platform_id(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    return PLATFORM_IDS.get(text.lower())


def _log_time(value: str | None) -> datetime | None:
    """Tracking-log times: unix seconds or ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return parse_time(int(text))
    return parse_time(text)


def _number(value: Any) -> int | float:
    """Figures sometimes come as strings ("6"); missing ones are 0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    try:
        text = str(value).strip()
        return float(text) if "." in text else int(text)
    except (TypeError, ValueError):
        return 0
