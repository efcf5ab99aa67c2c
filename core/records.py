"""The record model: Segment-spec dicts plus ``audience`` and ``metric`` (docs/records.md).

Helpers here are pure: they check records, fill implicit fields and convert times.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from .api import Record
from .errors import IngestError

SEGMENT_TYPES = frozenset({"track", "identify", "group", "page", "screen", "alias"})
RECORD_TYPES = SEGMENT_TYPES | {"audience", "metric"}
AUDIENCE_ACTIONS = frozenset({"add", "remove"})
_USERLESS = frozenset({"metric"})


def problem(record: Any) -> str | None:
    """What makes ``record`` invalid in the record model, or ``None`` if it is valid."""
    if not isinstance(record, dict):
        return f"a record must be an object, found {type(record).__name__}"
    kind = record.get("type")
    if not isinstance(kind, str) or kind not in RECORD_TYPES:
        return f"unknown record type {kind!r}; expected one of {', '.join(sorted(RECORD_TYPES))}"
    if kind not in _USERLESS and not (
        _present(record.get("userId")) or _present(record.get("anonymousId"))
    ):
        return f"{kind} record needs userId or anonymousId"
    if kind == "track" and not _present(record.get("event")):
        return "track record needs an event name"
    if kind == "group" and not _present(record.get("groupId")):
        return "group record needs a groupId"
    if kind == "alias" and not _present(record.get("previousId")):
        return "alias record needs a previousId"
    if kind == "audience":
        audience = record.get("audience")
        if not isinstance(audience, dict) or not _present(audience.get("id")):
            return "audience record needs audience.id"
        if record.get("action") not in AUDIENCE_ACTIONS:
            return 'audience record needs action "add" or "remove"'
    if kind == "metric":
        if not _present(record.get("metric")):
            return "metric record needs a metric name"
        if not isinstance(record.get("values"), dict):
            return "metric record needs values (an object of numbers)"
    return None


def _present(value: Any) -> bool:
    return value is not None and value != ""


def user_key(record: Record) -> str | None:
    """The id a destination keys a user by: ``userId``, else ``anonymousId``."""
    for key in ("userId", "anonymousId"):
        value = record.get(key)
        if _present(value):
            return str(value)
    return None


def new_message_id() -> str:
    return str(uuid.uuid4())


def normalise_id(record: Any, make: Callable[[], str] = new_message_id) -> None:
    """Make ``record["messageId"]`` a non-empty string, in place, as records are accepted.

    A number becomes its decimal string (``7`` → ``"7"``); a missing, null, empty or
    otherwise non-string id gets ``make()``, a fresh id per record, so that records sent
    without ids are never merged by a destination that upserts on ``messageId``.
    Anything that is not an object is left for validation to refuse.
    """
    if not isinstance(record, dict):
        return
    value = record.get("messageId")
    if isinstance(value, str) and value.strip():
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        record["messageId"] = str(value)
        return
    record["messageId"] = make()


def stable_message_id(*parts: Any) -> str:
    """A deterministic id for records read from an API: re-reading gives the same id,
    so destinations that upsert on ``messageId`` stay free of duplicates."""
    digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``, as Segment writes timestamps."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """Read an ISO 8601 string or a Unix time in seconds or milliseconds (UTC)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def epoch_ms(value: Any) -> int | None:
    moment = parse_time(value)
    return None if moment is None else int(moment.timestamp() * 1000)


# --- accepting records ----------------------------------------------------------------


def serialize(records: list[Record], now: str) -> list[bytes]:
    """Fill the implicit fields and encode records for the queue.

    :raises IngestError: a record nests deeper than orjson encodes (254 levels) or holds
        something that is not JSON; nothing of the request is queued then.
    """
    bodies = []
    for record in records:
        normalise_id(record)
        if isinstance(record, dict):  # anything else is kept as sent; validation refuses it
            record.setdefault("receivedAt", now)
            record.setdefault("timestamp", record["receivedAt"])
        bodies.append(encode(record))
    return bodies


def encode(value: Any) -> bytes:
    """JSON for the state file.

    :raises IngestError: the value nests deeper than orjson encodes (254 levels) or holds
        something that is not JSON; the request is refused before anything is stored.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as err:
        raise IngestError(400, "invalid_json", f"record cannot be stored: {err}") from None


def normalise_pulled(connector: str, records: list[Record], checkpoint: Any) -> None:
    """Give pulled records string ids; a missing one is derived from the connector, the
    batch's checkpoint, the record's place and content, so that re-reading the same batch
    after a failure yields the same ids (destinations that upsert stay duplicate-free)
    while two records of one batch never share one."""
    for index, record in enumerate(records):

        def derived(index: int = index, record: Any = record) -> str:
            try:
                return stable_message_id(connector, checkpoint, index, record)
            except TypeError:  # not JSON-able: validation will say so
                return new_message_id()

        normalise_id(record, derived)
