"""Build valid records for tests, and check records a source produced.

Records follow docs/records.md; these builders fill what the model requires so a
test states only what it is about.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..api import Record
from ..records import problem, stable_message_id

_TIMESTAMP = "2026-01-15T10:00:00.000Z"


def track(
    event: str = "Order Completed",
    user_id: str | None = "user-1",
    properties: dict[str, Any] | None = None,
    **fields: Any,
) -> Record:
    """A ``track`` record with a stable ``messageId`` and a fixed ``timestamp``."""
    return _record("track", user_id, event=event, properties=properties or {}, **fields)


def identify(
    user_id: str | None = "user-1", traits: dict[str, Any] | None = None, **fields: Any
) -> Record:
    """An ``identify`` record."""
    return _record("identify", user_id, traits=traits or {}, **fields)


def page(name: str = "Home", user_id: str | None = "user-1", **fields: Any) -> Record:
    """A ``page`` record."""
    return _record("page", user_id, name=name, properties=fields.pop("properties", {}), **fields)


def audience(
    audience_id: str = "aud-1", action: str = "add", user_id: str | None = "user-1", **fields: Any
) -> Record:
    """An ``audience`` membership record."""
    info = {"id": audience_id, **fields.pop("audience", {})}
    return _record("audience", user_id, audience=info, action=action, **fields)


def metric(
    name: str = "event_count", values: dict[str, float] | None = None, **fields: Any
) -> Record:
    """A ``metric`` record (no user needed)."""
    return _record("metric", None, metric=name, values=values or {"count": 1}, **fields)


def _record(kind: str, user_id: str | None, **fields: Any) -> Record:
    record: Record = {"type": kind}
    if user_id is not None:
        record["userId"] = user_id
    record.update(fields)
    record.setdefault("timestamp", _TIMESTAMP)
    record.setdefault("messageId", stable_message_id(kind, user_id, fields))
    return record


def assert_valid_records(records: Iterable[Record]) -> None:
    """Fail with every record that breaks the record model (the daemon would
    dead-letter them), by index."""
    problems = [f"  [{i}] {issue}" for i, r in enumerate(records) if (issue := problem(r))]
    if problems:
        raise AssertionError("records break the record model:\n" + "\n".join(problems))
