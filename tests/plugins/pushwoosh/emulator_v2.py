"""The Pushwoosh emulator's v2 and service endpoints: Audience API ``bulkSetTags`` (with
its status), statistics ``messages:list``, the batch events path and result files.

Mixed into `tests.plugins.pushwoosh.emulator.PushwooshEmulator`; see that module for the
contract. ``bulkSetTags`` refuses fewer than 50 devices with the documented
``{"message": "invalid request"}`` (https://docs.pushwoosh.com/developer/api-reference/audience-api;
minimum in https://help.pushwoosh.com/hc/en-us/articles/36360128237213).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web

from connectord.testing.emulator import json_response

BULK_MIN_DEVICES = 50


class ArgumentError(Exception):
    """Answered as ``status_code`` 210 (legacy methods) or a failed device (bulk)."""


class AudienceStatsMixin:
    """Handlers that answer in plain HTTP statuses with ``{"message": ...}`` bodies."""

    application: str
    api_token: str
    pending_polls: int
    held_days: set[str]
    require_known_events: bool
    known_events: set[str]
    bulk_jobs: dict[str, dict[str, Any]]
    messages: list[dict[str, Any]]
    events: list[dict[str, Any]]
    files: dict[str, bytes]
    _tag_bucket: Any
    _apply_tags: Any

    # --- Audience API v2 --------------------------------------------------------------

    async def bulk_set_tags(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return json_response({"message": "invalid request"}, status=400)
        if not isinstance(body, dict):
            return json_response({"message": "invalid request"}, status=400)
        if body.get("auth") != self.api_token:
            return json_response({"message": "unauthorized"}, status=401)
        if body.get("application") != self.application:
            return json_response({"message": "forbidden"}, status=403)
        devices = body.get("devices")
        if not isinstance(devices, list) or len(devices) < BULK_MIN_DEVICES:
            return json_response({"message": "invalid request"}, status=400)
        for device in devices:
            if not isinstance(device, dict) or not any(
                device.get(k) for k in ("hwid", "user_id", "push_token")
            ):
                return json_response({"message": "invalid request"}, status=400)
            if device.get("list_operator", "set") not in ("set", "append", "remove"):
                return json_response({"message": "invalid request"}, status=400)
            if not isinstance(device.get("tags"), dict):
                return json_response({"message": "invalid request"}, status=400)
        request_id = uuid.uuid4().hex
        self.bulk_jobs[request_id] = {
            "devices": devices,
            "create_missing_tags": bool(body.get("create_missing_tags")),
            "polls": 0,
            "results": None,
        }
        return json_response({"request_id": request_id, "status": "Pending"})

    async def bulk_status(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if header != f"Token {self.api_token}":
            return json_response({"message": "unauthorized"}, status=401)
        request_id = request.match_info["request_id"]
        job = self.bulk_jobs.get(request_id)
        if job is None:
            return json_response({"message": "not found"}, status=404)
        if job["polls"] < self.pending_polls or job.get("day") in self.held_days:
            job["polls"] += 1
            state = "Pending" if job["polls"] == 1 else "Processing"
            return json_response({"request_id": request_id, "status": state, "progress": 0})
        if job["results"] is None:
            job["results"] = [
                self._bulk_device(d, job["create_missing_tags"]) for d in job["devices"]
            ]
        answer: dict[str, Any] = {"request_id": request_id, "status": "Completed", "progress": 100}
        if request.query.get("detailed", "false").lower() == "true":
            answer["devices"] = job["results"]
        return json_response(answer)

    def _bulk_device(self, device: dict[str, Any], create_missing: bool) -> dict[str, Any]:
        ids = {k: device[k] for k in ("hwid", "user_id", "push_token") if device.get(k)}
        user_id = device.get("user_id")
        hwid = device.get("hwid")
        try:
            bucket = self._tag_bucket(str(user_id) if user_id else None, hwid)
            self._apply_tags(
                bucket,
                device["tags"],
                operator=device.get("list_operator", "set"),
                create_missing=create_missing,
            )
        except (ArgumentError, AssertionError) as err:
            return {**ids, "status": "failed", "error": str(err) or "unknown device"}
        return {**ids, "status": "ok"}

    # --- statistics v2 ----------------------------------------------------------------

    async def messages_list(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != f"Token {self.api_token}":
            return json_response({"message": "unauthorized"}, status=401)
        try:
            body = orjson.loads(await request.read())
            query = body["request"]
            page = int(query.get("page", 1))
            per_page = int(query.get("per_page", 100))
            filters = query.get("filters") or {}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return json_response({"message": "invalid request"}, status=400)
        if not 1 <= per_page <= 1000 or page < 1:
            return json_response({"message": "per_page must be 1..1000, page >= 1"}, status=400)
        application = filters.get("application")
        if application is not None and application != self.application:
            return json_response({"message": "forbidden"}, status=403)
        span = filters.get("date_range") or {}
        low, high = span.get("date_from", "0000-00-00"), span.get("date_to", "9999-99-99")
        matching = [m for m in self.messages if low <= m["send_date"][:10] <= high]
        with_metrics = bool((query.get("params") or {}).get("with_metrics"))
        items = []
        for message in matching[(page - 1) * per_page : page * per_page]:
            item = {k: v for k, v in message.items() if k != "push_info"}
            item["push_info"] = {"details": message["push_info"]["details"]}
            if with_metrics:
                item["push_info"]["metrics"] = message["push_info"]["metrics"]
            items.append(item)
        return json_response({"total": len(matching), "items": items})

    # --- batch events (server-integration service) ------------------------------------

    async def batch_events(self, request: web.Request) -> web.Response:
        if (
            request.headers.get("Authorization", "") != f"Token {self.api_token}"
            or request.headers.get("X-PW-Appcode") != self.application
        ):
            return json_response({"message": "unauthorized"}, status=401)

        def failure(message: str) -> web.Response:
            return json_response(
                {"action": "post event", "status": "failure", "error": {"message": message}},
                status=400,
            )

        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as err:
            return failure(f"cannot decode body: {err}")
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events:
            return failure("events must be a non-empty array")
        if len(events) > 100:
            return failure("at most 100 events per request")
        for event in events:
            if not isinstance(event, dict) or not event.get("name") or not event.get("user_id"):
                return failure("every event needs name and user_id")
            if event.get("app_code") != self.application:
                return failure("app_code does not match")
            if self.require_known_events and event["name"] not in self.known_events:
                return failure(f"event {event['name']} not found")
        for event in events:
            self.events.append(
                {
                    "event": event["name"],
                    "userId": event["user_id"],
                    "hwid": event.get("device_id"),
                    "attributes": event.get("attributes") or {},
                    "timestamp": event.get("timestamp"),
                    "device_platform": event.get("device_platform"),
                    "via": "batch",
                }
            )
        return json_response({"status": "success"})

    async def static(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=data, content_type="application/zip")
