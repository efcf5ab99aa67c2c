"""An emulator of My Vendor's API: the same paths, auth, paging, limits and errors.

Keep it faithful to the vendor's documentation: the plugin's tests are only as good
as this file. Faults (429, 5xx, timeouts, hangs) come from `VendorEmulator`.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from connectord.testing import VendorEmulator, json_response, paginate

API_KEY = "test-api-key"
MAX_BATCH = 500
MAX_PAGE_SIZE = 1000


class MyVendorEmulator(VendorEmulator):
    """``GET /v1/events`` (paged by cursor) and ``POST /v1/track`` (batches)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        """What the source reads: add events here in tests."""
        self.tracked: list[dict[str, Any]] = []
        """What the destination delivered and the vendor accepted."""

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/events", self.list_events)
        app.router.add_post("/v1/track", self.track)

    def add_events(self, count: int, **fields: Any) -> list[dict[str, Any]]:
        """Append ``count`` events with increasing ids; return them."""
        start = len(self.events) + 1
        new = [
            {
                "id": i,
                "user_id": f"user-{i}",
                "name": "Signed Up",
                "properties": {"n": i},
                "occurred_at": f"2026-01-01T00:00:{i % 60:02d}Z",
                **fields,
            }
            for i in range(start, start + count)
        ]
        self.events += new
        return new

    async def list_events(self, request: web.Request) -> web.Response:
        self.require_bearer(request, API_KEY)
        try:
            since_id = int(request.query.get("since_id", "0"))
        except ValueError:
            return json_response({"error": "since_id must be an integer"}, status=400)
        newer = [e for e in self.events if e["id"] > since_id]
        page = paginate(
            newer,
            cursor=request.query.get("cursor"),
            limit=request.query.get("limit"),
            max_limit=MAX_PAGE_SIZE,
        )
        return json_response({"events": page.items, "next_cursor": page.next_cursor})

    async def track(self, request: web.Request) -> web.Response:
        self.require_bearer(request, API_KEY)
        try:
            events = orjson.loads(await request.read())["events"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return json_response({"error": 'body must be {"events": [...]}'}, status=400)
        if len(events) > MAX_BATCH:
            return json_response({"error": f"at most {MAX_BATCH} events"}, status=413)
        errors = []
        for index, event in enumerate(events):
            missing = [k for k in ("user_id", "name") if not event.get(k)]
            if missing:
                errors.append({"index": index, "message": f"missing {', '.join(missing)}"})
            else:
                self.tracked.append(event)
        return json_response({"accepted": len(events) - len(errors), "errors": errors})
