"""``pushwoosh.relay``: a Pushwoosh-compatible endpoint that forwards and records.

Backends and SDKs point their Pushwoosh host at ``/ingest/<connector>`` and keep calling
``/json/1.3/postEvent``, ``setTags``, ``registerUser`` and ``registerDevice`` as before.
Each call is checked (the caller's own Pushwoosh token and application, compared in
constant time), forwarded to Pushwoosh unchanged, and Pushwoosh's answer is returned.
What Pushwoosh accepted also becomes records, committed to the queue before the caller
gets the answer:

- ``postEvent`` → ``track`` (event name, attributes as properties), carrying the user's
  currently known tags in ``context.traits``;
- ``setTags``, ``registerUser``, ``registerDevice`` → ``identify`` with the user's tags.

Tag values are kept per user in the connector's state, so every record is complete on
its own and downstream mappings stay pure.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, AnyHttpUrl, Field, model_validator

from connectord import (
    AuthError,
    IngestError,
    Options,
    PushSource,
    Record,
    RetryableError,
    Route,
    Secret,
)
from connectord.ingest import json_response, parse_json, read_body, secrets_match
from connectord.records import iso, parse_time

from .client import ArgumentError, PushwooshClient, validate_application
from .const import (
    DEFAULT_BASE_URL,
    LEGACY_PATH,
    PLATFORMS,
    RELAY_METHODS,
    STATUS_ARGUMENT_ERROR,
    STATUS_OK,
    VENDOR,
)

TAGS_KEY = "tags:"
DEVICE_KEY = "device:"

DEVICE_FIELDS_AS_TAGS = {
    "device_model": "Device Model",
    "os_version": "OS Version",
    "language": "Language",
    "app_version": "Application Version",
}
"""registerDevice fields Pushwoosh keeps as default tags of the device's user."""


class PushwooshRelay(PushSource):
    """Forward Pushwoosh Device API calls and record what Pushwoosh accepted."""

    type = "pushwoosh.relay"

    class Options(Options):
        application: Annotated[str, AfterValidator(validate_application)] = Field(
            description="Pushwoosh application code (`XXXXX-XXXXX`) callers must use."
        )
        device_token: Secret | None = Field(
            None,
            description="Device API token callers present (`Authorization: Token ...`); "
            "forwarded to Pushwoosh as it came.",
        )
        api_token: Secret | None = Field(
            None,
            description="Server token, accepted from callers that authenticate with "
            "`request.auth` in the body.",
        )
        base_url: AnyHttpUrl = Field(
            DEFAULT_BASE_URL, description="Pushwoosh API host the calls are forwarded to."
        )
        client_context: bool = Field(
            True,
            description="Record the caller's IP and User-Agent as context.ip/context.userAgent.",
        )
        max_body_bytes: int = Field(
            1024 * 1024,
            ge=1024,
            le=16 * 1024 * 1024,
            description="Largest request body, before decompression.",
        )

        @model_validator(mode="after")
        def _checks(self) -> PushwooshRelay.Options:
            if self.device_token is None and self.api_token is None:
                raise ValueError(
                    "set device_token (or api_token): callers authenticate with the "
                    "application's own Pushwoosh token"
                )
            return self

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.max_body_bytes = options.max_body_bytes
        self.tokens = [
            token.get_secret_value()
            for token in (options.device_token, options.api_token)
            if token is not None
        ]
        self.client = PushwooshClient(  # forwards callers' own credentials; used by check
            context.http,
            application=options.application,
            api_token=options.api_token.get_secret_value() if options.api_token else "",
            device_token=(
                options.device_token.get_secret_value() if options.device_token else None
            ),
            base_url=str(options.base_url),
        )
        self._state_lock = asyncio.Lock()

    async def check(self) -> str:
        """The token callers must present works for this application."""
        app = self.options.application
        try:
            if self.options.device_token is not None:
                await self.client.get_tags(user_id="connectord-check")
            else:
                await self.client.list_filters()
        except ArgumentError:
            pass  # authenticated; Pushwoosh only disliked the probe
        except AuthError as err:
            raise AuthError(f"token refused for application {app}: {err}") from err
        return f"token accepted for application {app}"

    def routes(self) -> list[Route]:
        return [
            Route("POST", f"{LEGACY_PATH.strip('/')}/{method}", self._handler(method))
            for method in RELAY_METHODS
        ]

    def _handler(self, method: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.relay(method, request)

        return handle

    def error_response(self, error: IngestError) -> web.StreamResponse:
        """Errors in Pushwoosh's envelope; a caller's bad request is an argument error."""
        code = STATUS_ARGUMENT_ERROR if error.status == 400 else error.status
        return json_response(
            {"status_code": code, "status_message": error.message, "response": None},
            status=error.status,
            retry_after=error.retry_after,
        )

    # --- one call -------------------------------------------------------------------------

    async def relay(self, method: str, request: web.Request) -> web.StreamResponse:
        header_token = _token_header(request)
        if header_token is not None and not secrets_match(header_token, self.tokens):
            raise _unauthorized()
        body = await read_body(
            request, max_bytes=self.max_body_bytes, max_decompressed=self.max_decompressed_bytes
        )
        payload = parse_json(body)
        fields = payload.get("request") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            raise IngestError(400, "invalid_request", 'the body must be {"request": {...}}')
        if header_token is None:
            auth = fields.get("auth")
            if not isinstance(auth, str) or not secrets_match(auth, self.tokens):
                raise _unauthorized()
        if fields.get("application") != self.options.application:
            raise IngestError(
                403,
                "forbidden",
                "Token restrictions forbid this operation: this endpoint serves application "
                f"{self.options.application}",
            )
        validate_call(method, fields)
        answer = await self._forward(method, request, body)
        envelope = answer.payload if isinstance(answer.payload, dict) else {}
        if answer.status < 400 and envelope.get("status_code") == STATUS_OK:
            records = await self.records_for(method, fields, envelope.get("response"), request)
            try:
                await self.ingest(records)
            except IngestError:
                self.log.warning("pushwoosh.relay.not_recorded", method=method)
                raise
        headers = {}
        if answer.headers.get("Retry-After"):
            headers["Retry-After"] = answer.headers["Retry-After"]
        return web.Response(
            body=answer.body,
            status=answer.status,
            headers=headers,
            content_type=answer.headers.get("Content-Type", "application/json").split(";")[0],
        )

    async def _forward(self, method: str, request: web.Request, body: bytes) -> Any:
        headers = {}
        for name in ("Authorization", "User-Agent"):
            if request.headers.get(name):
                headers[name] = request.headers[name]
        try:
            return await self.client.forward(method, body, headers)
        except RetryableError as err:
            self.log.warning("pushwoosh.relay.upstream_failed", method=method, error=str(err))
            raise IngestError(
                503,
                "upstream_unavailable",
                f"{VENDOR} could not be reached; nothing was sent or recorded, retry later",
                retry_after=5,
            ) from err

    # --- records ----------------------------------------------------------------------

    async def records_for(
        self, method: str, fields: dict[str, Any], response: Any, request: web.Request
    ) -> list[Record]:
        """The records for an accepted call, after updating the user's known tags."""
        hwid = _text(fields.get("hwid"))
        user_id = _text(fields.get("userId"))
        if method == "registerUser" and user_id is None:
            user_id = hwid  # Pushwoosh uses the hwid when no user id is given
        async with self._state_lock:  # read-modify-write of the user's tags
            device = await self._device(hwid, fields, user_id)
            subject = user_id or device.get("userId") or (f"hwid:{hwid}" if hwid else None)
            if subject is None:
                return []
            tags = await self._update_tags(method, subject, hwid, fields)
        record: Record = {
            "type": "track" if method == "postEvent" else "identify",
            "context": self._context(fields, hwid, device, request, response),
        }
        if subject.startswith("hwid:"):
            record["anonymousId"] = hwid
        else:
            record["userId"] = subject
        if method == "postEvent":
            record["event"] = str(fields["event"])
            record["properties"] = dict(fields.get("attributes") or {})
            record["context"]["traits"] = tags
            moment = parse_time(fields.get("timestampUTC"))
            if moment is not None:
                record["timestamp"] = iso(moment)
        else:
            record["traits"] = tags
        return [record]

    async def _device(
        self, hwid: str | None, fields: dict[str, Any], user_id: str | None
    ) -> dict[str, Any]:
        """What is known of the device; registerDevice/registerUser/setTags teach it."""
        if hwid is None:
            return {}
        key = f"{DEVICE_KEY}{hwid}"
        device = dict(await self.context.state.get(key) or {})
        changed = False
        if user_id and device.get("userId") != user_id:
            device["userId"] = user_id
            changed = True
        platform = fields.get("device_type")
        if isinstance(platform, int) and not isinstance(platform, bool):
            changed |= device.get("platform_id") != platform
            device["platform_id"] = platform
        if changed:
            await self.context.state.set(key, device)
        return device

    async def _update_tags(
        self, method: str, subject: str, hwid: str | None, fields: dict[str, Any]
    ) -> dict[str, Any]:
        state = self.context.state
        key = f"{TAGS_KEY}{subject}"
        loose_key = f"{TAGS_KEY}hwid:{hwid}" if hwid and not subject.startswith("hwid:") else None
        found = await state.get_many([key] + ([loose_key] if loose_key else []))
        tags = dict(found.get(key) or {})
        writes: dict[str, Any] = {}
        if loose_key and loose_key in found:  # tags set before the device had a user
            tags = {**found[loose_key], **tags}
            writes[loose_key] = None
        before = dict(tags)
        if method in ("setTags", "registerDevice") and isinstance(fields.get("tags"), dict):
            apply_tag_changes(tags, fields["tags"])
        if method == "registerDevice":
            for name, tag in DEVICE_FIELDS_AS_TAGS.items():
                if fields.get(name) not in (None, ""):
                    tags[tag] = fields[name]
        if tags != before or writes:
            writes[key] = tags or None
        if writes:
            await state.set_many(writes)
        return tags

    def _context(
        self,
        fields: dict[str, Any],
        hwid: str | None,
        device: dict[str, Any],
        request: web.Request,
        response: Any,
    ) -> dict[str, Any]:
        pushwoosh: dict[str, Any] = {"application": self.options.application}
        context: dict[str, Any] = {"pushwoosh": pushwoosh}
        platform = device.get("platform_id")
        if hwid:
            pushwoosh["hwid"] = hwid
            context["device"] = {"id": hwid}
        if isinstance(platform, int):
            pushwoosh["platform_id"] = platform
            if platform in PLATFORMS:
                context.setdefault("device", {})["type"] = PLATFORMS[platform].lower()
        if isinstance(response, dict) and response.get("code"):
            pushwoosh["event_code"] = response["code"]
        if self.options.client_context:
            if request.remote:
                context["ip"] = request.remote
            if request.headers.get("User-Agent"):
                context["userAgent"] = request.headers["User-Agent"]
        return context


def apply_tag_changes(tags: dict[str, Any], changes: dict[str, Any]) -> None:
    """Apply setTags values: ``null`` removes a tag; ``{"operation": "append"|"remove",
    "value": [...]}`` edits a list tag; anything else replaces the value."""
    for name, value in changes.items():
        if value is None:
            tags.pop(name, None)
            continue
        if isinstance(value, dict) and value.get("operation") in ("append", "remove"):
            items = value.get("value")
            items = items if isinstance(items, list) else [items]
            current = tags.get(name)
            current = list(current) if isinstance(current, list) else []
            if value["operation"] == "append":
                tags[name] = current + [v for v in items if v not in current]
            else:
                tags[name] = [v for v in current if v not in items]
            continue
        tags[name] = value


def validate_call(method: str, fields: dict[str, Any]) -> None:
    """Refuse what Pushwoosh would refuse anyway, before it is forwarded."""
    hwid, user_id = fields.get("hwid"), fields.get("userId")
    for name, value in (("hwid", hwid), ("userId", user_id)):
        if value is not None and not isinstance(value, (str, int)):
            raise _argument(f"{name} must be a string")
    if method in ("registerDevice", "registerUser") and not _text(hwid):
        raise _argument(f"{method} needs hwid")
    if method in ("postEvent", "setTags") and not (_text(hwid) or _text(user_id)):
        raise _argument(f"{method} needs hwid or userId")
    if method == "registerDevice" and (
        not isinstance(fields.get("device_type"), int) or isinstance(fields["device_type"], bool)
    ):
        raise _argument("registerDevice needs device_type (an integer platform id)")
    if method == "postEvent":
        event = fields.get("event")
        if not isinstance(event, str) or not event.strip():
            raise _argument("postEvent needs event (the event name)")
        if "attributes" in fields and not isinstance(fields["attributes"], dict):
            raise _argument("attributes must be an object")
        if "timestampUTC" in fields and (
            not isinstance(fields["timestampUTC"], int) or isinstance(fields["timestampUTC"], bool)
        ):
            raise _argument("timestampUTC must be an integer (unix seconds)")
    if method == "setTags" and (not isinstance(fields.get("tags"), dict) or not fields["tags"]):
        raise _argument("setTags needs tags (a non-empty object)")
    if method == "registerDevice" and "tags" in fields and not isinstance(fields["tags"], dict):
        raise _argument("tags must be an object")


def _argument(message: str) -> IngestError:
    return IngestError(400, "argument_error", f"Argument error: {message}")


def _unauthorized() -> IngestError:
    return IngestError(
        401,
        "unauthorized",
        "Unauthorized: send this application's Pushwoosh API token "
        "(Authorization: Token <token>, or request.auth)",
    )


def _token_header(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "token" and value.strip() else ""


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None
