"""An emulator of Amplitude's event upload and export APIs, after Amplitude's docs.

Upload (``POST /2/httpapi`` and ``POST /batch``, same request and answer formats):

- the API key travels in the body; an unknown key is ``400 {"error": "Invalid API key"}``;
- ``Content-Type`` must be ``application/json``; the body must be JSON with
  ``api_key`` and a non-empty ``events`` array (``400 "Request missing required
  field"`` with ``missing_field``);
- over 2000 events, or over 1 MB (HTTP V2) / 20 MB (Batch), is ``413 {"code": 413,
  "error": "Payload too large"}``;
- each event needs ``event_type`` and a ``user_id`` or ``device_id`` of at least
  ``min_id_length`` (default 5) characters that is not a placeholder; ``time`` must be
  integer milliseconds; reserved ``[Amplitude] ...`` names are refused. Any such
  problem makes the whole request a 400 naming the events by index
  (``events_with_missing_fields``, ``events_with_invalid_fields``,
  ``events_with_invalid_id_lengths``), and nothing of it is ingested;
- silenced devices: ``400 "Events silenced for device_id"`` with ``silenced_events``;
- throttled users/devices: ``429`` with ``eps_threshold``, ``throttled_users``,
  ``throttled_devices`` and ``throttled_events``; nothing is ingested;
- success: ``200 {"code": 200, "events_ingested", "payload_size_bytes",
  "server_upload_time"}``; an ``insert_id`` seen before is ignored (deduplication).

Export (``GET /api/2/export?start=YYYYMMDDTHH&end=YYYYMMDDTHH``, Basic auth
``api_key:secret_key``): a zip of gzipped JSON-lines files, one per hour of upload
time; ``404`` when the range holds no data; ``400`` for a malformed or too long range.
"""

from __future__ import annotations

import gzip
import io
import re
import time
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from connectord.testing import VendorEmulator, json_response

API_KEY = "amplitude-test-api-key"
SECRET_KEY = "amplitude-test-secret-key"
PROJECT_ID = 187520

MAX_EVENTS = 2000
MAX_BYTES = {"/2/httpapi": 1024 * 1024, "/batch": 20 * 1024 * 1024}
EPS_THRESHOLD = {"/2/httpapi": 10, "/batch": 1000}
INVALID_IDS = {
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "undefined",
    "unknown",
    '""',
    "00000000-0000-0000-0000-000000000000",
    "{}",
    "lmy47d",
    "0",
    "-1",
}
RESERVED = {
    "[Amplitude] Start Session",
    "[Amplitude] End Session",
    "[Amplitude] Revenue",
    "[Amplitude] Revenue (Verified)",
    "[Amplitude] Revenue (Unverified)",
    "[Amplitude] Merged User",
}
_HOUR = re.compile(r"^\d{8}T\d{2}$")


class AmplitudeEmulator(VendorEmulator):
    """Amplitude's ingestion and export endpoints with their documented errors."""

    def __init__(self) -> None:
        super().__init__()
        self.ingested: list[dict[str, Any]] = []
        """Events accepted, in order, without repeats of an insert_id."""
        self.duplicates = 0
        self.throttled_users: set[str] = set()
        self.throttled_devices: set[str] = set()
        self.silenced_devices: set[str] = set()
        self.exportable: list[dict[str, Any]] = []
        """Events the Export API serves (``server_upload_time`` decides the hour)."""
        self._insert_ids: set[str] = set()

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_post("/2/httpapi", self.upload)
        app.router.add_post("/batch", self.upload)
        app.router.add_get("/api/2/export", self.export)

    # --- upload --------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if len(raw) > MAX_BYTES[request.path]:
            return _error(413, "Payload too large")
        if request.content_type != "application/json":
            # Amplitude validates Content-Type; the exact error text is not documented.
            return _error(400, "Invalid JSON request body")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _error(400, "Invalid JSON request body")
        if not isinstance(body, dict):
            return _error(400, "Invalid JSON request body")
        for required in ("api_key", "events"):
            if not body.get(required):
                return _error(400, "Request missing required field", missing_field=required)
        if body["api_key"] != API_KEY:
            return _error(400, "Invalid API key")
        events = body["events"]
        if not isinstance(events, list):
            return _error(400, "Invalid event JSON")
        if len(events) > MAX_EVENTS:
            return _error(413, "Payload too large")
        min_length = int((body.get("options") or {}).get("min_id_length") or 5)
        problems = self._validate(events, min_length)
        if problems:
            return problems
        silenced = [i for i, e in enumerate(events) if e.get("device_id") in self.silenced_devices]
        if silenced:
            return json_response(
                {
                    "code": 400,
                    "error": "Events silenced for device_id",
                    "eps_threshold": EPS_THRESHOLD[request.path],
                    "exceeded_daily_quota_devices": {},
                    "silenced_devices": sorted({events[i]["device_id"] for i in silenced}),
                    "silenced_events": silenced,
                    "throttled_devices": {},
                    "throttled_events": [],
                },
                status=400,
            )
        throttled = [
            i
            for i, e in enumerate(events)
            if e.get("user_id") in self.throttled_users
            or e.get("device_id") in self.throttled_devices
        ]
        if throttled:
            threshold = EPS_THRESHOLD[request.path]
            return json_response(
                {
                    "code": 429,
                    "error": "Too many requests for some devices and users",
                    "eps_threshold": threshold,
                    "throttled_devices": {
                        d: threshold + 1
                        for d in sorted(
                            {e.get("device_id") for e in events} & self.throttled_devices
                        )
                    },
                    "throttled_users": {
                        u: threshold + 1
                        for u in sorted({e.get("user_id") for e in events} & self.throttled_users)
                    },
                    "throttled_events": throttled,
                },
                status=429,
            )
        for event in events:
            insert_id = event.get("insert_id")
            if insert_id and insert_id in self._insert_ids:
                self.duplicates += 1
                continue
            if insert_id:
                self._insert_ids.add(insert_id)
            self.ingested.append(event)
        return json_response(
            {
                "code": 200,
                "events_ingested": len(events),
                "payload_size_bytes": len(raw),
                "server_upload_time": int(time.time() * 1000),
            }
        )

    def _validate(self, events: list[Any], min_length: int) -> web.Response | None:
        missing: dict[str, list[int]] = {}
        invalid: dict[str, list[int]] = {}
        short: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                return _error(400, "Invalid event JSON")
            if not event.get("event_type"):
                missing.setdefault("event_type", []).append(index)
            elif event["event_type"] in RESERVED:
                invalid.setdefault("event_type", []).append(index)
            if "time" in event and not isinstance(event["time"], int):
                invalid.setdefault("time", []).append(index)
            usable = False
            for key in ("user_id", "device_id"):
                value = event.get(key)
                if value is None:
                    continue
                if not isinstance(value, str) or value.lower() in INVALID_IDS:
                    invalid.setdefault(key, []).append(index)
                elif len(value) < min_length:
                    short.setdefault(key, []).append(index)
                else:
                    usable = True
            if not usable and not any(index in v for v in (*invalid.values(), *short.values())):
                # Neither ID given; which field name Amplitude reports is not documented.
                missing.setdefault("user_id", []).append(index)
        if not (missing or invalid or short):
            return None
        error = (
            "Request missing required field" if missing else "Invalid field values on some events"
        )
        body: dict[str, Any] = {"code": 400, "error": error}
        if missing:
            body["events_with_missing_fields"] = missing
        if invalid:
            body["events_with_invalid_fields"] = invalid
        if short:
            body["events_with_invalid_id_lengths"] = short
        return json_response(body, status=400)

    # --- export --------------------------------------------------------------------------

    def add_exportable(self, count: int, *, hour: datetime, **fields: Any) -> list[dict[str, Any]]:
        """Add ``count`` events uploaded during ``hour`` (UTC) to what export serves."""
        added = []
        for n in range(count):
            uploaded = hour + timedelta(minutes=n % 60, seconds=n // 60)
            serial = len(self.exportable) + 1
            event = {
                "$insert_id": f"insert-{serial:06d}",
                "uuid": f"00000000-0000-4000-8000-{serial:012d}",
                "amplitude_id": 900000 + serial,
                "app": PROJECT_ID,
                "event_id": serial,
                "event_type": "Song Played",
                "event_time": _amplitude_time(uploaded - timedelta(seconds=30)),
                "server_upload_time": _amplitude_time(uploaded),
                "client_event_time": _amplitude_time(uploaded - timedelta(seconds=30)),
                "user_id": f"user-{serial:04d}",
                "device_id": f"device-{serial:04d}",
                "event_properties": {"n": serial},
                "user_properties": {"plan": "pro"},
                "os_name": "ios",
                "os_version": "17.4",
                "platform": "iOS",
                "country": "France",
                "city": "Paris",
                "ip_address": "192.0.2.10",
                "session_id": 1767225600000,
                **fields,
            }
            self.exportable.append(event)
            added.append(event)
        return added

    async def export(self, request: web.Request) -> web.Response:
        self.require_basic(request, API_KEY, SECRET_KEY)
        start, end = request.query.get("start", ""), request.query.get("end", "")
        if not (_HOUR.match(start) and _HOUR.match(end)):
            return web.Response(status=400, text="start and end must be YYYYMMDDTHH")
        first = datetime.strptime(start, "%Y%m%dT%H").replace(tzinfo=UTC)
        last = datetime.strptime(end, "%Y%m%dT%H").replace(tzinfo=UTC)
        if last < first or last - first > timedelta(days=365):
            return web.Response(status=400, text="invalid time range")
        by_hour: dict[datetime, list[dict[str, Any]]] = {}
        for event in self.exportable:
            uploaded = datetime.strptime(event["server_upload_time"], "%Y-%m-%d %H:%M:%S.%f")
            hour = uploaded.replace(minute=0, second=0, microsecond=0, tzinfo=UTC)
            if first <= hour <= last:
                by_hour.setdefault(hour, []).append(event)
        if not by_hour:
            return web.Response(status=404, text="No data available for the time range")
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            for hour, events in sorted(by_hour.items()):
                name = f"{PROJECT_ID}/{PROJECT_ID}_{hour:%Y-%m-%d}_{hour.hour}#0.json.gz"
                lines = b"".join(orjson.dumps(e) + b"\n" for e in events)
                zipped.writestr(name, gzip.compress(lines))
        return web.Response(body=archive.getvalue(), content_type="application/zip")


def _error(status: int, error: str, **extra: Any) -> web.Response:
    return json_response({"code": status, "error": error, **extra}, status=status)


def _amplitude_time(moment: datetime) -> str:
    """The Export API's timestamp format: ``2026-01-01 05:00:00.000000`` (UTC)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
