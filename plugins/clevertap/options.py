"""Options shared by the CleverTap sources: account, region, calendar and pacing."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field

from connectord import Options, Secret

from .const import DEFAULT_CONCURRENCY, DEFAULT_REGION, REGIONS

ACCOUNT_ID = re.compile(r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)+$")


# --- options -----------------------------------------------------------------------------


def _account_id(value: str) -> str:
    if not ACCOUNT_ID.match(value):
        raise ValueError(
            "a CleverTap account id looks like W9R-486-4W5Z "
            "(dashboard: Settings > Project); found " + repr(value)
        )
    return value


def _region(value: str) -> str:
    if value not in REGIONS:
        raise ValueError(f"unknown region {value!r}; expected one of {', '.join(REGIONS)}")
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Asia/Kolkata"
        ) from err
    return value


def _day(value: Any) -> Any:
    """Accept ``20240101``, ``"20240101"`` and ``"2024-01-01"``."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        text = str(value)
        if len(text) != 8:
            raise ValueError(f"a date is YYYYMMDD or YYYY-MM-DD, found {value!r}")
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return value


Day = Annotated[date, BeforeValidator(_day)]


class CleverTapOptions(Options):
    account_id: Annotated[str, AfterValidator(_account_id)] = Field(
        description="CleverTap project (account) id, sent as X-CleverTap-Account-Id."
    )
    passcode: Secret = Field(description="Project passcode, sent as X-CleverTap-Passcode.")
    region: Annotated[str, AfterValidator(_region)] = Field(
        DEFAULT_REGION,
        description=f"Data centre of the account: {', '.join(REGIONS)} "
        "(https://<region>.api.clevertap.com).",
    )
    base_url: str | None = Field(
        None,
        description="API host overriding `region`, e.g. a proxy or an emulator "
        "(`https://in1.api.clevertap.com`).",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
    )
    timezone: Annotated[str, AfterValidator(_timezone)] = Field(
        "UTC",
        description="The account's time zone (dashboard settings): CleverTap's `ts` and "
        "day boundaries are in it. Timestamps are converted to UTC.",
    )
    max_concurrency: int = Field(
        DEFAULT_CONCURRENCY,
        ge=1,
        le=15,
        description="Concurrent calls per account (CleverTap answers 429 beyond its limit).",
    )
    poll_interval: float = Field(
        15.0,
        gt=0,
        le=600,
        description="Seconds between polls of a query CleverTap is still computing.",
    )
    retry_initial: float = Field(
        2.0, gt=0, description="First delay in seconds when CleverTap answers 429 or 5xx."
    )


class DailyOptions(CleverTapOptions):
    start: Day | None = Field(
        None,
        description="First day to export (YYYYMMDD or YYYY-MM-DD). Default: yesterday.",
    )
    end: Day | None = Field(
        None,
        description="Last day to export (inclusive). Default: yesterday, the last complete day.",
    )
    lookback_days: int = Field(
        0,
        ge=0,
        le=90,
        description="Read the last N complete days again on each run (late data); "
        "re-read records upsert.",
    )
