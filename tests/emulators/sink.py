"""A generic HTTP sink for the `webhook` destination: records what arrives and can
refuse records that carry ``properties.poison`` (400), answer the status a record asks
for in ``properties.respond``, or fail like a real endpoint."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectord.testing import VendorEmulator
from connectord.testing.emulator import json_response


class SinkEmulator(VendorEmulator):
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.received: list[dict[str, Any]] = []
        super().__init__()

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_post("/hook", self.hook)

    async def hook(self, request: web.Request) -> web.Response:
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return json_response({"error": "unauthorized"}, status=401)
        payload = await request.json()
        records = (
            payload["records"] if isinstance(payload, dict) and "records" in payload else [payload]
        )
        forced = [
            _properties(r)["respond"]
            for r in records
            if isinstance(_properties(r).get("respond"), int)
        ]
        if forced:
            return json_response({"error": "as asked"}, status=forced[0])
        poisoned = [r for r in records if _properties(r).get("poison")]
        if poisoned:
            return json_response({"error": "invalid record", "count": len(poisoned)}, status=400)
        self.received.extend(records)
        return json_response({"ok": True})

    def message_ids(self) -> list[str]:
        return [r.get("messageId") for r in self.received]


def _properties(record: Any) -> dict[str, Any]:
    """A record's properties, or nothing when a hostile record has some other shape."""
    properties = record.get("properties") if isinstance(record, dict) else None
    return properties if isinstance(properties, dict) else {}
