"""``piano.segment``: Piano Analytics segment membership as ``audience`` add/remove records.

Piano has no "segment members" endpoint and no change feed: each run reads the whole
membership of every configured segment through the Data Query API (``getData`` with
the segment, paged) and compares it with the membership stored at the last run. Only
the difference is emitted. Each batch carries the membership changes of its own
records as state, committed with the checkpoint once the destination acknowledged
them, so an interrupted run repeats (with the same message ids) rather than skips.

Stored state, per segment and member: ``n > 0`` for a member added ``n`` times,
``-n`` after its removal. The count makes message ids stable across re-reads yet
distinct when a user leaves and later joins again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, AnyHttpUrl, Field, SecretStr, field_validator, model_validator

from connectord import (
    AuthError,
    Batch,
    ConnectordError,
    Options,
    PermanentError,
    PullSource,
    Record,
    RetryableError,
    Secret,
)
from connectord.records import now_iso, stable_message_id

from .client import DataQueryClient
from .const import (
    AUDIENCE_SOURCE,
    DATA_API_URL,
    DEFAULT_MEMBER_COLUMN,
    MAX_RESULTS,
    MAX_ROWS,
    PROPERTY_KEY,
    RECORDS_PER_BATCH,
    SEGMENT_SCOPES,
)

Scope = Literal[
    "visitor_id", "user_id", "visit_id", "event_id", "av_session_id", "cart_id", "pageview_id"
]
assert set(Scope.__args__) == set(SEGMENT_SCOPES)  # type: ignore[attr-defined]


def validate_api_key(value: SecretStr) -> SecretStr:
    """``<access key>_<secret key>``; the message never repeats the value."""
    key = value.get_secret_value().strip()
    access, sep, secret = key.partition("_")
    if not sep or not access or not secret or any(c.isspace() for c in key):
        raise ValueError(
            "api_key must be '<access key>_<secret key>': the access key and the secret "
            "key from Piano Analytics (Profile → API keys) joined by an underscore, "
            "without spaces or an 'Authorization' scheme"
        )
    return SecretStr(key)


def validate_column(value: str) -> str:
    if not PROPERTY_KEY.match(value) or value != value.lower():
        raise ValueError(
            "member_column is a Piano property key: lowercase letters, digits and '_', "
            "starting with a letter (e.g. 'pushwooshid', 'visitor_id', 'user_id')"
        )
    return value


class PianoSegmentSource(PullSource):
    """Members of Piano Analytics segments as audience add/remove records (Data Query API)."""

    type = "piano.segment"

    class Options(Options):
        site_id: int = Field(ge=1, description="Numeric Piano Analytics site id to query.")
        api_key: Annotated[Secret, AfterValidator(validate_api_key)] = Field(
            description="Data Query API key: `<access key>_<secret key>` (Profile → API keys)."
        )
        segments: list[str] = Field(
            min_length=1,
            description="Keys of saved segments to follow (the `segmentKey` of the "
            "segment's API URL in Data Query).",
        )
        segment_names: dict[str, str] = Field(
            default_factory=dict,
            description="Human names for segment keys, sent as `audience.name`.",
        )
        member_column: Annotated[str, AfterValidator(validate_column)] = Field(
            DEFAULT_MEMBER_COLUMN,
            description="The property whose values are the members (each becomes the "
            "record's `userId`); `pushwooshid` carries the Pushwoosh user id.",
        )
        scope: Scope = Field(
            "visitor_id", description="Segment scope (`visitor_id`, `user_id`, ...)."
        )
        lookback_days: int = Field(
            30,
            ge=1,
            le=366,
            description="Query period: the last N days up to today (UTC).",
        )
        page_size: int = Field(
            MAX_RESULTS, ge=1, le=MAX_RESULTS, description="Rows per getData call."
        )
        max_members: int = Field(
            MAX_ROWS,
            ge=1,
            le=MAX_ROWS,
            description="Fail the run (rather than emit removals) if a segment has more "
            "members than this; Piano pages through at most 200000 rows.",
        )
        base_url: AnyHttpUrl = Field(AnyHttpUrl(DATA_API_URL), description="Data Query API host.")

        @field_validator("segments")
        @classmethod
        def _segments(cls, value: list[str]) -> list[str]:
            keys = [key.strip() for key in value]
            if any(not key for key in keys):
                raise ValueError("segment keys must not be empty")
            duplicates = sorted({key for key in keys if keys.count(key) > 1})
            if duplicates:
                raise ValueError(f"segment keys are listed twice: {', '.join(duplicates)}")
            return keys

        @model_validator(mode="after")
        def _names(self) -> PianoSegmentSource.Options:
            unknown = sorted(set(self.segment_names) - set(self.segments))
            if unknown:
                raise ValueError(
                    f"segment_names has keys that are not in segments: {', '.join(unknown)}"
                )
            return self

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.client = self._client()

    def _client(self, attempts: int = 6) -> DataQueryClient:
        return DataQueryClient(
            self.context.http,
            str(self.options.base_url),
            self.options.api_key.get_secret_value(),
            log=self.log,
            attempts=attempts,
        )

    # --- queries ------------------------------------------------------------------------

    def query(self, segment: str, today: datetime | None = None) -> dict[str, Any]:
        """The getData body listing a segment's members (paging added by the client)."""
        day = (today or datetime.now(UTC)).date()
        start = day - timedelta(days=self.options.lookback_days - 1)
        column = self.options.member_column
        return {
            "columns": [column, "m_visits"],
            "sort": [column],
            "space": {"s": [self.options.site_id]},
            "period": {"p1": [{"type": "D", "start": start.isoformat(), "end": day.isoformat()}]},
            "segment": {
                "section": {"scope": self.options.scope, "segmentKey": segment, "mode": "include"}
            },
            "options": {"ignore_null_properties": True},
        }

    async def members(self, segment: str) -> set[str]:
        """Every member of a segment now; raises rather than return a partial set."""
        column = self.options.member_column
        found: set[str] = set()
        async for rows in self.client.pages(
            self.query(segment),
            page_size=self.options.page_size,
            max_rows=self.options.max_members,
        ):
            for row in rows:
                value = row.get(column)
                if value is not None and value != "":
                    found.add(str(value))
        return found

    async def check(self) -> str:
        """Prove the API key works and every segment can be queried on the site."""
        client = self._client(attempts=2)
        counts = []
        for segment in self.options.segments:
            try:
                count = await client.get_row_count(self.query(segment))
            except AuthError as err:
                raise AuthError(f"api_key was refused: {err}") from err
            except ConnectordError as err:
                raise type(err)(f"segment {segment!r} cannot be read: {err}") from err
            counts.append(f"{segment} ({count} rows)")
        return f"api_key accepted for site {self.options.site_id}; segments: " + ", ".join(counts)

    # --- runs -------------------------------------------------------------------------

    async def read(self, checkpoint: Any) -> AsyncIterator[Batch]:
        segments = self.options.segments
        results = await asyncio.gather(*(self.members(s) for s in segments), return_exceptions=True)
        progress = dict(checkpoint.get("segments", {})) if isinstance(checkpoint, dict) else {}
        failures: list[tuple[str, BaseException]] = []
        for segment, result in zip(segments, results, strict=True):
            if isinstance(result, BaseException):
                failures.append((segment, result))
                continue
            async for batch in self.changes(segment, result, progress):
                yield batch
        if failures:
            raise segment_failure(failures)

    async def changes(
        self, segment: str, current: set[str], progress: dict[str, Any]
    ) -> AsyncIterator[Batch]:
        """Batches of add/remove records for one segment, each with its state changes."""
        prefix = state_prefix(segment)
        stored = {
            key[len(prefix) :]: int(value)
            for key, value in (await self.context.state.scan(prefix)).items()
        }
        records, state = diff(
            segment,
            self.options.segment_names.get(segment),
            self.options.site_id,
            current,
            stored,
            now_iso(),
        )
        progress[segment] = {"members": len(current), "synced_at": now_iso()}
        checkpoint = {"segments": dict(progress)}
        self.log.info(
            "piano.segment.read",
            segment=segment,
            members=len(current),
            added=sum(1 for r in records if r["action"] == "add"),
            removed=sum(1 for r in records if r["action"] == "remove"),
        )
        if not records:
            yield Batch([], checkpoint=checkpoint)
            return
        for start in range(0, len(records), RECORDS_PER_BATCH):
            chunk = records[start : start + RECORDS_PER_BATCH]
            last = start + RECORDS_PER_BATCH >= len(records)
            yield Batch(
                chunk,
                checkpoint=checkpoint if last else None,
                state={prefix + r["userId"]: state[r["userId"]] for r in chunk},
            )


def state_prefix(segment: str) -> str:
    """State keys of one segment's members; the JSON-quoted key keeps prefixes distinct."""
    return f"member:{orjson.dumps(segment).decode()}:"


def diff(
    segment: str,
    name: str | None,
    site_id: int,
    current: set[str],
    stored: dict[str, int],
    timestamp: str,
) -> tuple[list[Record], dict[str, int]]:
    """The records that take ``stored`` to ``current``, and each member's new state value."""
    records: list[Record] = []
    state: dict[str, int] = {}
    for member in sorted(current):
        before = stored.get(member, 0)
        if before <= 0:
            state[member] = -before + 1
            records.append(audience_record(segment, name, site_id, member, "add", state[member]))
    for member in sorted(m for m, count in stored.items() if count > 0 and m not in current):
        state[member] = -stored[member]
        records.append(audience_record(segment, name, site_id, member, "remove", stored[member]))
    for record in records:
        record["timestamp"] = timestamp
    return records, state


def audience_record(
    segment: str, name: str | None, site_id: int, member: str, action: str, generation: int
) -> Record:
    audience: dict[str, Any] = {"id": segment, "source": AUDIENCE_SOURCE}
    if name:
        audience["name"] = name
    return {
        "type": "audience",
        "action": action,
        "audience": audience,
        "userId": member,
        "messageId": stable_message_id(
            AUDIENCE_SOURCE, site_id, segment, member, action, generation
        ),
    }


def segment_failure(failures: list[tuple[str, BaseException]]) -> BaseException:
    """One error naming every segment that could not be read, of the gravest kind."""
    text = "; ".join(f"segment {s!r}: {e or type(e).__name__}" for s, e in failures)
    errors = [e for _, e in failures]
    if any(isinstance(e, AuthError) for e in errors):
        return AuthError(text)
    if all(isinstance(e, RetryableError) for e in errors):
        return RetryableError(text)
    if all(isinstance(e, ConnectordError) for e in errors):
        return PermanentError(text)
    first = next(e for e in errors if not isinstance(e, ConnectordError))
    return first
