"""A Pendo emulator: Track Events and the metadata REST API, strict about what they take.

- ``POST /data/track`` takes the Track Event shared secret in ``x-pendo-integration-key``
  (an integration key there is refused), one event per call with ``type: "track"``,
  ``event``, ``visitorId``, ``timestamp`` in milliseconds and a ``context`` object
  (support.pendo.io 360032294291, "Server Side"; sample in
  ``tests/contracts/pendo/track-event.json``). Like Pendo, it keeps events whose
  property names break Pendo's naming rules ("Properties with an unsupported format
  don't display in Pendo") and events whose properties exceed 512 bytes of JSON
  ("appear as event properties JSON too large"): each stored event says which
  properties Pendo would not display (``hidden_properties``) and whether the JSON was
  too large (``properties_too_large``).
- ``POST /api/v1/metadata/{visitor|account}/{agent|custom}/value[?create=true]`` takes an
  integration key (a read-only key gets 403) and a JSON array of
  ``{"visitorId"|"accountId": id, "values": {...}}``. Unknown ids are ``missing``
  unless ``create=true`` on agent fields; custom fields must be defined beforehand
  (support.pendo.io 19638682125595). Field names Pendo cannot use in segments and
  reports (360031832072: letters, digits, ``_``, not starting with a digit) are stored
  and listed in ``unusable_fields``.
  The answer is ``{"total", "updated", "failed", "missing", "errors", "kind"}``.
- ``PUT .../value/{id}/{field}`` sets one value; ``GET /api/v1/token/verify`` checks a key.

What it accepted is kept in ``events``, ``visitors`` and ``accounts``; ``fail_ids`` and
``unattributed_errors`` produce partial failures, and the base class injects 429/5xx.
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web

from connectord.testing import VendorEmulator
from connectord.testing.emulator import json_response

TRACK_SECRET = "track-secret-for-tests"
INTEGRATION_KEY = "integration-key-for-tests"
READ_ONLY_KEY = "read-only-key-for-tests"
KEY_HEADER = "x-pendo-integration-key"
ID_FIELDS = {"visitor": "visitorId", "account": "accountId"}
TRACK_KEYS = {"type", "event", "visitorId", "accountId", "timestamp", "properties", "context"}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SCALARS = (str, int, float, bool)


class PendoEmulator(VendorEmulator):
    def __init__(
        self,
        *,
        track_secret: str = TRACK_SECRET,
        integration_key: str = INTEGRATION_KEY,
        read_only_key: str = READ_ONLY_KEY,
        custom_fields: dict[str, set[str]] | None = None,
        discard: bool = False,
        rate_limit: int | None = None,
    ) -> None:
        self.track_secret = track_secret
        self.integration_key = integration_key
        self.read_only_key = read_only_key
        self.custom_fields = {"visitor": set(), "account": set(), **(custom_fields or {})}
        self.discard = discard
        self.rate_limit = rate_limit
        """Calls per second per endpoint before answering 429 (Pendo's is about 100)."""
        self.events: list[dict[str, Any]] = []
        self.store: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
            "visitor": {},
            "account": {},
        }
        self.fail_ids: dict[str, str] = {}
        """id → error message: metadata entries for these ids fail."""
        self.unattributed_errors = False
        """Report metadata errors without naming the id (only a count and a message)."""
        self.event_count = 0
        self.unusable_fields: set[str] = set()
        """Metadata field names stored that Pendo's segments and reports cannot use."""
        self._calls: dict[str, deque[float]] = {}
        super().__init__()

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_post("/data/track", self.track)
        app.router.add_post("/api/v1/metadata/{kind}/{group}/value", self.bulk_metadata)
        app.router.add_put("/api/v1/metadata/{kind}/{group}/value/{id}/{field}", self.one_value)
        app.router.add_get("/api/v1/token/verify", self.verify)

    # --- inspection ------------------------------------------------------------------

    @property
    def visitors(self) -> dict[str, dict[str, dict[str, Any]]]:
        return self.store["visitor"]

    @property
    def accounts(self) -> dict[str, dict[str, dict[str, Any]]]:
        return self.store["account"]

    def visitor(self, visitor_id: str) -> dict[str, Any]:
        """Agent and custom values of a visitor, merged."""
        groups = self.visitors.get(visitor_id, {})
        return {**groups.get("agent", {}), **groups.get("custom", {})}

    def account(self, account_id: str) -> dict[str, Any]:
        groups = self.accounts.get(account_id, {})
        return {**groups.get("agent", {}), **groups.get("custom", {})}

    # --- internals -----------------------------------------------------------------------

    def limited(self, endpoint: str) -> web.Response | None:
        if self.rate_limit is None:
            return None
        now = time.monotonic()
        calls = self._calls.setdefault(endpoint, deque())
        while calls and now - calls[0] > 1.0:
            calls.popleft()
        if len(calls) >= self.rate_limit:
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})
        calls.append(now)
        return None

    def refuse_key(self, request: web.Request, *, track: bool, write: bool) -> web.Response | None:
        key = request.headers.get(KEY_HEADER)
        if not key:
            return web.Response(status=401, text=f"missing {KEY_HEADER} header")
        if track:
            if key == self.track_secret:
                return None
            if key in (self.integration_key, self.read_only_key):
                return web.Response(
                    status=401, text="track events take the Track Event shared secret"
                )
            return web.Response(status=401, text="invalid shared secret")
        if key == self.integration_key:
            return None
        if key == self.read_only_key:
            return None if not write else web.Response(status=403, text="read-only key")
        if key == self.track_secret:
            return web.Response(
                status=401, text="the REST API takes an integration key, not the shared secret"
            )
        return web.Response(status=401, text="invalid integration key")

    @staticmethod
    async def json_body(request: web.Request) -> Any:
        try:
            return orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.Response(status=400, text="invalid JSON")

    # --- track events ------------------------------------------------------------------

    async def track(self, request: web.Request) -> web.Response:
        refused = self.refuse_key(request, track=True, write=True) or self.limited("track")
        if refused is not None:
            return refused
        if request.content_type != "application/json":
            return web.Response(status=400, text="Content-Type must be application/json")
        body = await self.json_body(request)
        if isinstance(body, web.Response):
            return body
        problem = track_problem(body)
        if problem is not None:
            return web.Response(status=400, text=problem)
        self.event_count += 1
        if not self.discard:
            properties = body.get("properties") or {}
            event = dict(body)
            event["properties_too_large"] = len(orjson.dumps(properties)) > 512
            event["hidden_properties"] = [n for n in properties if not displayable(n)]
            self.events.append(event)
        return web.Response(status=200, text="OK")

    # --- metadata ----------------------------------------------------------------------

    async def bulk_metadata(self, request: web.Request) -> web.Response:
        kind, group = request.match_info["kind"], request.match_info["group"]
        if kind not in ID_FIELDS or group not in ("agent", "custom"):
            return web.Response(status=404, text="unknown metadata kind or group")
        refused = self.refuse_key(request, track=False, write=True) or self.limited("metadata")
        if refused is not None:
            return refused
        body = await self.json_body(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, list) or not all(isinstance(e, dict) for e in body):
            return web.Response(status=400, text="expected a JSON array of objects")
        create = request.query.get("create") == "true" and group == "agent"
        answer: dict[str, Any] = {
            "kind": kind,
            "total": len(body),
            "updated": 0,
            "failed": 0,
            "missing": [],
            "errors": [],
        }
        for entry in body:
            self.apply_entry(kind, group, entry, create, answer)
        return json_response(answer)

    def apply_entry(
        self, kind: str, group: str, entry: dict[str, Any], create: bool, answer: dict[str, Any]
    ) -> None:
        id_field = ID_FIELDS[kind]
        entity = entry.get(id_field)
        values = entry.get("values")
        problem = None
        if not isinstance(entity, str) or not entity:
            problem = f"{id_field} must be a non-empty string"
        elif not isinstance(values, dict):
            problem = "values must be an object"
        elif entity in self.fail_ids:
            problem = self.fail_ids[entity]
        else:
            problem = self.values_problem(kind, group, values)
        if problem is not None:
            answer["failed"] += 1
            if self.unattributed_errors or not isinstance(entity, str):
                answer["errors"].append(problem)
            else:
                answer["errors"].append({id_field: entity, "error": problem})
            return
        known = self.store[kind]
        if entity not in known:
            if not create:
                answer["failed"] += 1
                answer["missing"].append(entity)
                return
            known[entity] = {}
        known[entity].setdefault(group, {}).update(values)
        answer["updated"] += 1

    def values_problem(self, kind: str, group: str, values: dict[str, Any]) -> str | None:
        for name, value in values.items():
            if not NAME.fullmatch(name):
                self.unusable_fields.add(name)
            if group == "custom" and name not in self.custom_fields[kind]:
                return f"{name!r} is not a custom {kind} field"
            if isinstance(value, list):
                if not all(isinstance(item, SCALARS) for item in value):
                    return f"field {name!r}: lists may hold text, numbers and booleans only"
            elif value is not None and not isinstance(value, SCALARS):
                return f"field {name!r}: unsupported value"
        return None

    async def one_value(self, request: web.Request) -> web.Response:
        kind, group = request.match_info["kind"], request.match_info["group"]
        if kind not in ID_FIELDS or group not in ("agent", "custom"):
            return web.Response(status=404, text="unknown metadata kind or group")
        refused = self.refuse_key(request, track=False, write=True)
        if refused is not None:
            return refused
        value = await self.json_body(request)
        if isinstance(value, web.Response):
            return value
        entity, name = request.match_info["id"], request.match_info["field"]
        problem = self.values_problem(kind, group, {name: value})
        if problem is not None:
            return web.Response(status=400, text=problem)
        if entity not in self.store[kind]:
            return web.Response(status=404, text=f"{kind} {entity!r} not found")
        self.store[kind][entity].setdefault(group, {})[name] = value
        return web.Response(status=200, text="OK")

    async def verify(self, request: web.Request) -> web.Response:
        refused = self.refuse_key(request, track=False, write=False)
        if refused is not None:
            return refused
        return json_response({"valid": True})


def track_problem(body: Any) -> str | None:
    """Why Pendo would refuse a track event body, or ``None``."""
    if not isinstance(body, dict):
        return "expected a JSON object (one event per call)"
    unknown = set(body) - TRACK_KEYS
    if unknown:
        return f"unknown fields: {', '.join(sorted(unknown))}"
    if body.get("type") != "track":
        return 'type must be "track"'
    for key in ("event", "visitorId"):
        if not isinstance(body.get(key), str) or not body[key]:
            return f"{key} is required (a non-empty string)"
    if "accountId" in body and not isinstance(body["accountId"], str):
        return "accountId must be a string"
    timestamp = body.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        return "timestamp is required: an integer, milliseconds since the epoch"
    if not 10**12 <= timestamp < 10**14:
        return f"timestamp {timestamp} is not in milliseconds since the epoch"
    if not isinstance(body.get("context"), dict):
        return "context is required (an object, may be empty)"
    unknown_context = set(body["context"]) - {"ip", "userAgent", "url", "title"}
    if unknown_context:
        return f"unknown context fields: {', '.join(sorted(unknown_context))}"
    properties = body.get("properties", {})
    if not isinstance(properties, dict):
        return "properties must be an object"
    return None


def displayable(name: str) -> bool:
    """Pendo's property name rules: letters, digits, ``_``, not starting with a digit,
    not ``__x__``, at most 32 characters (support.pendo.io 360032294291)."""
    return bool(
        NAME.fullmatch(name)
        and len(name) <= 32
        and not (name.startswith("__") and name.endswith("__"))
    )


async def _state(emulator: PendoEmulator) -> web.Response:
    return json_response(
        {"visitors": emulator.visitors, "accounts": emulator.accounts, "events": emulator.events}
    )


def main() -> None:
    """Run the emulator by hand: ``python -m tests.plugins.pendo.emulator [--port 8789]``.

    It answers with the test credentials (``track-secret-for-tests``,
    ``integration-key-for-tests``) and shows what it accepted at ``GET /_emulator/state``.
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8789)
    args = parser.parse_args()
    emulator = PendoEmulator()
    emulator.app.router.add_get("/_emulator/state", lambda request: _state(emulator))
    print(
        f"Pendo emulator on http://127.0.0.1:{args.port} "
        f"(track secret {TRACK_SECRET!r}, integration key {INTEGRATION_KEY!r}); "
        f"see what it accepted at http://127.0.0.1:{args.port}/_emulator/state",
        flush=True,
    )
    web.run_app(emulator.app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
