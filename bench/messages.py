"""The messages the Segment → Pendo benchmarks send and expect: Segment batches as
analytics-python sends them, and the Pendo track body the daemon makes of each."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

WRITE_KEY = "bench-write-key-0001"
BATCH_SIZE = 100


def pendo_event(message: dict[str, Any]) -> bytes:
    """The same Pendo track body the daemon sends, built the shortest way."""
    context = message.get("context", {})
    moment = datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
    return orjson.dumps(
        {
            "type": "track",
            "event": message["event"],
            "visitorId": message["userId"],
            "timestamp": int(moment.timestamp() * 1000),
            "properties": message.get("properties", {}),
            "context": {"ip": context.get("ip"), "userAgent": context.get("userAgent")},
        }
    )


def batch_bodies(count: int) -> list[bytes]:
    """Distinct batch bodies of 100 track messages each, as analytics-python sends."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    bodies = []
    for b in range(count):
        messages = [
            {
                "type": "track",
                "event": "Order Completed",
                "userId": f"user-{(b * BATCH_SIZE + i) % 5000}",
                "properties": {"orderId": f"o-{b}-{i}", "total": 42.5, "currency": "EUR"},
                "context": {
                    "library": {"name": "analytics-python", "version": "2.3.4"},
                    "ip": "203.0.113.9",
                    "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
                },
                "integrations": {},
                "timestamp": now,
                "messageId": str(uuid.uuid4()),
            }
            for i in range(BATCH_SIZE)
        ]
        bodies.append(orjson.dumps({"batch": messages, "sentAt": now, "writeKey": WRITE_KEY}))
    return bodies
