"""A Pushwoosh emulator: legacy /json/1.3 methods, Audience API v2, statistics, tracking log.

Faithful to the contract in docs/integrations/pushwoosh.md:

- auth and token scope: Device API methods take ``Authorization: Token <device token>``
  (or ``request.auth``), all other methods the server token in ``request.auth``; the wrong
  token type is a 401, an application the token is not granted is a 403
  ("Token restrictions forbid this operation"), both in the status envelope;
- argument errors are HTTP 200 with ``status_code`` 210;
- plans: with ``plan`` other than ``"custom"`` the Tags API (listTags/addTag/deleteTag,
  "For Custom Plan subscriptions only") answers 403 "Token restrictions forbid this
  operation" (the documented 403 shape; Pushwoosh does not document the plan refusal
  itself); ``createFilter`` with ``application`` is refused (210) unless
  ``high_speed_setup`` (the docs reserve that field to High-Speed Setup accounts);
- ``bulkSetTags`` with fewer than 50 devices is refused (400 ``invalid request``,
  the documented error body): Pushwoosh sets a minimum of 50;
- tags have types; a value that does not fit its tag's type is an argument error;
  unknown tags on setTags are created with a type inferred from the JSON value;
- ``bulkSetTags`` runs asynchronously: its status is ``Pending`` until polled
  ``pending_polls`` times, then ``Completed`` with per-device results;
- scheduled requests (getTrackingLog) answer a request id; ``getResults`` says "not
  ready" (210) ``pending_polls`` times, then gives the result (a ZIP of CSV for the log);
- filters are kept with their segmentation-language expression and evaluated on demand
  (`members_of`);
- faults (429 with Retry-After, 5xx, hangs) come from `VendorEmulator`.

The handlers are grouped by area: tags and filters in `emulator_tags`, the tracking log
and messages in `emulator_reports`, the v2 and service endpoints in `emulator_v2`.

Usage::

    emulator = PushwooshEmulator(application="ABCDE-12345", api_token="server-token")
    server = emulator_server(emulator)          # server.url → base_url
    emulator.tags_of("u1"), emulator.events_of("u1"), emulator.members_of("VIP (mParticle)")
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from connectord.testing import VendorEmulator
from connectord.testing.emulator import json_response
from tests.plugins.pushwoosh.emulator_reports import InternalError, ReportsMixin
from tests.plugins.pushwoosh.emulator_segments import parse_segment
from tests.plugins.pushwoosh.emulator_tags import TagStoreMixin, code_for
from tests.plugins.pushwoosh.emulator_v2 import ArgumentError, AudienceStatsMixin
from tests.plugins.pushwoosh.emulator_values import (  # noqa: F401  (tests import the type ids here)
    BOOLEAN,
    DATE,
    DECIMAL,
    INTEGER,
    LIST,
    STRING,
    TYPE_NAMES,
    VERSION,
    check_value,
    inferred_type,
    tracking_zip,
)

DEVICE_API_METHODS = frozenset(
    {"registerDevice", "unregisterDevice", "setTags", "getTags", "registerUser", "postEvent"}
)
PLAN_LIMITED = frozenset({"addTag", "deleteTag", "listTags"})


def envelope(status_code: int = 200, message: str = "OK", response: Any = None) -> dict:
    return {"status_code": status_code, "status_message": message, "response": response}


class PushwooshEmulator(TagStoreMixin, ReportsMixin, AudienceStatsMixin, VendorEmulator):
    """Emulates one Pushwoosh application and account."""

    def __init__(
        self,
        application: str = "ABCDE-12345",
        api_token: str = "server-token-for-tests",
        device_token: str = "device-token-for-tests",
        *,
        pending_polls: int = 1,
        require_known_events: bool = False,
        plan: str = "custom",
        high_speed_setup: bool = False,
    ) -> None:
        self.application = application
        self.api_token = api_token
        self.device_token = device_token
        self.pending_polls = pending_polls
        self.require_known_events = require_known_events
        self.plan = plan
        """``"custom"`` has the Tags API; any other plan is refused it (403)."""
        self.high_speed_setup = high_speed_setup
        self.tag_types: dict[str, int] = {}
        self.user_tags: dict[str, dict[str, Any]] = {}
        self.device_tags: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.known_events: set[str] = set()
        self.filters: dict[str, dict[str, Any]] = {}
        self.bulk_jobs: dict[str, dict[str, Any]] = {}
        self.scheduled: dict[str, dict[str, Any]] = {}
        self.tracking: dict[str, list[dict[str, str]]] = {}
        self.messages: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.held_days: set[str] = set()
        """Days whose tracking-log result stays "not ready" (a slow export)."""
        self.unavailable_days: set[str] = set()
        """Days whose getTrackingLog answers an internal error (HTTP 500)."""
        super().__init__()

    # --- routes -----------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_post("/json/1.3/{method}", self.legacy)
        app.router.add_post("/api/v2/audience/bulkSetTags", self.bulk_set_tags)
        app.router.add_get("/api/v2/audience/bulkSetTags/{request_id}", self.bulk_status)
        app.router.add_post("/api/v2/messages:list", self.messages_list)
        app.router.add_post("/integration-segment/v1/post-events", self.batch_events)
        app.router.add_get("/static/{name}", self.static)

    # --- setup and inspection helpers -------------------------------------------------

    def define_events(self, *names: str) -> None:
        """Events "created in the Control Panel" (checked with ``require_known_events``)."""
        self.known_events.update(names)

    def define_tag(self, name: str, tag_type: int) -> None:
        self.tag_types[name] = int(tag_type)

    def tags_of(self, user_id: str) -> dict[str, Any]:
        """The tag values of a user (by user id), or of a device without a user (hwid)."""
        if user_id in self.user_tags:
            return dict(self.user_tags[user_id])
        return dict(self.device_tags.get(user_id, {}))

    def tag_type(self, name: str) -> int | None:
        return self.tag_types.get(name)

    def events_of(self, user_id: str) -> list[dict[str, Any]]:
        """Events posted for a user id (or hwid), oldest first."""
        return [e for e in self.events if user_id in (e.get("userId"), e.get("hwid"))]

    def filter_names(self) -> list[str]:
        return sorted(self.filters)

    def members_of(self, filter_name: str) -> set[str]:
        """User ids the filter's expression selects now."""
        expression = parse_segment(self.filters[filter_name]["filter_expression"])
        return {user for user, tags in self.user_tags.items() if expression(tags)}

    # --- legacy /json/1.3 -------------------------------------------------------------

    async def legacy(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return json_response(envelope(400, "Malformed request string"), status=400)
        fields = body.get("request") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return json_response(envelope(210, 'Body must be {"request": {...}}'))
        handler = getattr(self, f"m_{method}", None)
        if handler is None:
            return json_response(envelope(404, f"Method {method} not found"), status=404)
        refused = self._authorize(method, request, fields)
        if refused is not None:
            return refused
        if method in PLAN_LIMITED and self.plan != "custom":
            return json_response(
                envelope(403, "Token restrictions forbid this operation"), status=403
            )
        try:
            response = handler(fields, request)
        except ArgumentError as err:
            return json_response(envelope(210, str(err)))
        except InternalError as err:
            return json_response(envelope(500, str(err)), status=500)
        return json_response(envelope(response=response))

    def _authorize(
        self, method: str, request: web.Request, fields: dict[str, Any]
    ) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        token = value.strip() if scheme.lower() == "token" else None
        token = token or fields.get("auth")
        wanted, other = (
            (self.device_token, self.api_token)
            if method in DEVICE_API_METHODS
            else (self.api_token, self.device_token)
        )
        if token != wanted:
            message = (
                "Unauthorized: this method takes a "
                + ("Device" if method in DEVICE_API_METHODS else "Server")
                + " API token"
                if token == other
                else "Unauthorized: invalid or missing API access token"
            )
            return json_response(envelope(401, message), status=401)
        application = fields.get("application")
        if application is not None and application != self.application:
            return json_response(
                envelope(403, "Token restrictions forbid this operation"), status=403
            )
        return None

    def _require(self, fields: dict[str, Any], *names: str) -> None:
        for name in names:
            if fields.get(name) in (None, ""):
                raise ArgumentError(f"{name} is required")

    def _target(self, fields: dict[str, Any]) -> tuple[str | None, str | None]:
        user_id, hwid = fields.get("userId"), fields.get("hwid")
        if not user_id and not hwid:
            raise ArgumentError("hwid or userId is required")
        return (str(user_id) if user_id else None), (str(hwid) if hwid else None)

    def m_registerDevice(self, fields: dict[str, Any], request: web.Request) -> None:
        self._require(fields, "application", "hwid", "device_type")
        if not isinstance(fields["device_type"], int):
            raise ArgumentError("device_type must be an integer")
        hwid = str(fields["hwid"])
        device = self.devices.setdefault(hwid, {})
        device.update({k: v for k, v in fields.items() if k not in ("auth", "tags")})
        if fields.get("userId"):
            device["userId"] = str(fields["userId"])
            self.user_tags.setdefault(device["userId"], {})
        if isinstance(fields.get("tags"), dict):
            self._apply_tags(self._tag_bucket(device.get("userId"), hwid), fields["tags"])

    def m_registerUser(self, fields: dict[str, Any], request: web.Request) -> None:
        self._require(fields, "application", "hwid")
        hwid = str(fields["hwid"])
        user_id = str(fields.get("userId") or hwid)
        device = self.devices.setdefault(hwid, {"hwid": hwid})
        device["userId"] = user_id
        if "device_type" in fields:
            device["device_type"] = fields["device_type"]
        self.user_tags.setdefault(user_id, {}).update(self.device_tags.pop(hwid, {}))

    def m_unregisterDevice(self, fields: dict[str, Any], request: web.Request) -> None:
        self._require(fields, "application", "hwid")
        self.devices.pop(str(fields["hwid"]), None)

    def m_setTags(self, fields: dict[str, Any], request: web.Request) -> None:
        self._require(fields, "application")
        user_id, hwid = self._target(fields)
        tags = fields.get("tags")
        if not isinstance(tags, dict) or not tags:
            raise ArgumentError("tags must be a non-empty object")
        self._apply_tags(self._tag_bucket(user_id, hwid), tags)

    def m_getTags(self, fields: dict[str, Any], request: web.Request) -> dict:
        self._require(fields, "application")
        user_id, hwid = self._target(fields)
        return {"result": dict(self._tag_bucket(user_id, hwid))}

    def m_postEvent(self, fields: dict[str, Any], request: web.Request) -> dict:
        self._require(fields, "application", "event")
        user_id, hwid = self._target(fields)
        if "attributes" not in fields or not isinstance(fields["attributes"], dict):
            raise ArgumentError("attributes is required (send {} when there are none)")
        event = str(fields["event"])
        if self.require_known_events and event not in self.known_events:
            raise ArgumentError(f"Event {event} not found")
        for key in ("timestampUTC", "timestampCurrent"):
            if key in fields and not isinstance(fields[key], int):
                raise ArgumentError(f"{key} must be an integer (unix seconds)")
        if hwid and not user_id:
            user_id = self.devices.get(hwid, {}).get("userId")
        self.events.append(
            {
                "event": event,
                "userId": user_id,
                "hwid": hwid,
                "attributes": fields["attributes"],
                "timestampUTC": fields.get("timestampUTC"),
                "device_type": fields.get("device_type"),
                "via": "postEvent",
            }
        )
        return {"code": code_for("event", self.application, event)}
