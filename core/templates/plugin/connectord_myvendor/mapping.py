"""Between connectord records (docs/records.md) and My Vendor events: pure functions.

No I/O here, so everything is unit-testable with plain dicts.
"""

from __future__ import annotations

from typing import Any

from connectord import Mapping, Options, Record, RecordRejected
from connectord.records import epoch_ms, iso, parse_time, stable_message_id, user_key
from pydantic import Field

SUPPORTED = ("track", "identify", "page", "screen")


def to_vendor_event(record: Record) -> dict[str, Any]:
    """The My Vendor event for a record; `RecordRejected` says why one cannot be sent."""
    kind = record["type"]
    if kind not in SUPPORTED:
        raise RecordRejected(f"myvendor takes {', '.join(SUPPORTED)} records; found {kind!r}")
    user = user_key(record)
    if user is None:
        raise RecordRejected("myvendor needs userId or anonymousId")
    if kind == "track":
        name, properties = record["event"], record.get("properties") or {}
    elif kind == "identify":
        name, properties = "identify", record.get("traits") or {}
    else:
        name = f"{kind}: {record.get('name') or 'unnamed'}"
        properties = record.get("properties") or {}
    event: dict[str, Any] = {
        "user_id": user,
        "name": name,
        "properties": properties,
        "id": record.get("messageId"),
    }
    moment = epoch_ms(record.get("timestamp"))
    if moment is not None:
        event["time"] = moment
    return event


def from_vendor_event(event: dict[str, Any]) -> Record:
    """The ``track`` record for an event read from My Vendor."""
    moment = parse_time(event.get("occurred_at"))
    record: Record = {
        "type": "track",
        "event": event["name"],
        "userId": str(event["user_id"]),
        "properties": dict(event.get("properties") or {}),
        "messageId": stable_message_id("myvendor", event["id"]),
        "context": {"integration": {"name": "myvendor"}},
    }
    if moment is not None:
        record["timestamp"] = iso(moment)
    return record


class MyVendorRenameEvents(Mapping):
    """Rename track events into My Vendor's vocabulary; other records pass unchanged."""

    type = "myvendor.rename_events"

    class Options(Options):
        events: dict[str, str] = Field(
            default_factory=dict,
            description='Old event name → new one, e.g. { "Order Completed" = "purchase" }.',
        )
        drop_unlisted: bool = Field(
            False, description="Drop track events that `events` does not name."
        )

    def map(self, record: Record) -> Record | None:
        if record["type"] != "track":
            return record
        renamed = self.options.events.get(record["event"])
        if renamed is None:
            return None if self.options.drop_unlisted else record
        return {**record, "event": renamed}
