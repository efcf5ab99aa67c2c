"""``pushwoosh.relay``: a Pushwoosh-compatible endpoint that forwards and records.

SDKs and backends (Pushwoosh's Web SDK, pypushwoosh, mobile SDKs with a custom host)
point their Pushwoosh host at ``/ingest/<connector>`` and keep calling
``/json/1.3/<method>``. Every Device API method they call is served (see
`connectord.plugins.pushwoosh.device_api`), forwarded to Pushwoosh byte for byte (body,
content type and encoding as they came) and answered with Pushwoosh's answer, with CORS
headers so the Web SDK works from any site. What Pushwoosh accepted of these methods
also becomes records, committed to the queue before the caller gets the answer:

- ``postEvent`` → ``track`` (event name, attributes as properties), carrying the user's
  currently known tags in ``context.traits``;
- ``setTags``, ``registerUser``, ``registerDevice`` → ``identify`` with the user's tags.

Authentication is Pushwoosh's: a token in ``Authorization: Token`` must be one the relay
knows, checked before the body is read; a call without one (what the SDKs send when no
token is configured) is forwarded and Pushwoosh decides, after the relay spent at most
``max_unauthenticated_bytes`` on it. A recorded method is refused with 503 *before* it
is forwarded when the queue has no room, so a retrying caller is never counted twice.
Tag values are kept per user in the connector's state, so every record is complete.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, AnyHttpUrl, Field, model_validator

from connectord import (
    AuthError,
    IngestError,
    Options,
    PushSource,
    RetryableError,
    Route,
    Secret,
)
from connectord.ingest import json_response, parse_json, secrets_match

from .client import ArgumentError, PushwooshClient, validate_application
from .const import (
    DEFAULT_BASE_URL,
    DEVICE_API_METHODS,
    LEGACY_PATH,
    RELAY_METHODS,
    STATUS_ARGUMENT_ERROR,
    STATUS_OK,
    VENDOR,
)
from .device_api import cors_headers, preflight, read_call
from .recorder import RelayRecorder, apply_tag_changes, text_or_none

FORWARDED_HEADERS = ("Authorization", "User-Agent", "Content-Type", "Content-Encoding")
"""Request headers passed to Pushwoosh as they came: the body is forwarded undecoded."""


class PushwooshRelay(PushSource):
    """Forward Pushwoosh Device API calls and record what Pushwoosh accepted."""

    type = "pushwoosh.relay"

    class Options(Options):
        application: Annotated[str, AfterValidator(validate_application)] = Field(
            description="Pushwoosh application code (`XXXXX-XXXXX`) callers must use."
        )
        device_token: Secret | None = Field(
            None,
            description="Device API token callers may present (`Authorization: Token ...`); "
            "forwarded to Pushwoosh as it came. Calls without a token are forwarded too, "
            "and Pushwoosh decides.",
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
            description="Largest request body of a call with a known token, before decompression.",
        )
        max_unauthenticated_bytes: int = Field(
            64 * 1024,
            ge=1024,
            le=1024 * 1024,
            description="Largest body of a call without `Authorization: Token`, on the wire "
            "and after decompression (SDK calls weigh well under 4 KB).",
        )
        cors_origins: list[str] = Field(
            ["*"],
            description="Origins of the web pages whose Web SDK may call the relay; `*` "
            "allows any page.",
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
        self.origins = tuple(options.cors_origins)
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
        self.recorder = RelayRecorder(context.state, options)
        self._reserved = 0  # queue places promised to calls being forwarded right now

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
        routes = []
        for method in DEVICE_API_METHODS:
            path = f"{LEGACY_PATH.strip('/')}/{method}"
            routes.append(Route("POST", path, self._handler(method)))
            routes.append(Route("OPTIONS", path, self._preflight))
        return routes

    def _handler(self, method: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.relay(method, request)

        return handle

    async def _preflight(self, request: web.Request) -> web.StreamResponse:
        return preflight(request, self.origins)

    def error_response(self, error: IngestError) -> web.StreamResponse:
        """Errors in Pushwoosh's envelope; a caller's bad request is an argument error.
        CORS headers ride along so a browser lets the Web SDK read the refusal."""
        code = STATUS_ARGUMENT_ERROR if error.status == 400 else error.status
        response = json_response(
            {"status_code": code, "status_message": error.message, "response": None},
            status=error.status,
            retry_after=error.retry_after,
        )
        response.headers.update(getattr(error, "cors", None) or {})
        return response

    # --- one call -------------------------------------------------------------------------

    async def relay(self, method: str, request: web.Request) -> web.StreamResponse:
        cors = cors_headers(request, self.origins)
        try:
            return await self._relay(method, request, cors)
        except IngestError as err:
            err.cors = cors  # type: ignore[attr-defined]  # read by error_response
            raise

    async def _relay(
        self, method: str, request: web.Request, cors: dict[str, str]
    ) -> web.StreamResponse:
        known_token = self._header_token_known(request)
        limit = self.max_body_bytes if known_token else self.options.max_unauthenticated_bytes
        raw, body = await read_call(
            request,
            limit=min(limit, self.max_body_bytes),
            decoded_limit=self.max_decompressed_bytes if known_token else limit,
            trusted=known_token,
        )
        fields = self._fields(body, known_token)
        recorded = method in RELAY_METHODS
        if recorded:
            validate_call(method, fields)
        self._reserve(recorded)
        try:
            answer = await self._forward(method, request, raw)
            if recorded:
                await self._record(method, fields, answer, request)
        finally:
            self._reserved -= int(recorded)
        headers = {
            **cors,
            "Content-Type": answer.headers.get("Content-Type", "application/json"),
        }
        if answer.headers.get("Retry-After"):
            headers["Retry-After"] = answer.headers["Retry-After"]
        return web.Response(body=answer.body, status=answer.status, headers=headers)

    async def _record(
        self, method: str, fields: dict[str, Any], answer: Any, request: web.Request
    ) -> None:
        """Commit the records of a call Pushwoosh accepted; its refusals record nothing."""
        envelope = answer.payload if isinstance(answer.payload, dict) else {}
        if answer.status >= 400 or envelope.get("status_code") != STATUS_OK:
            return
        response = envelope.get("response")
        records = await self.recorder.records_for(method, fields, response, request)
        try:
            await self.ingest(records)
        except IngestError:
            self.log.warning("pushwoosh.relay.not_recorded", method=method)
            raise

    def _header_token_known(self, request: web.Request) -> bool:
        """Whether the call carries a token the relay knows; an unknown one is a 401
        before anything else is spent on the call."""
        header_token = _token_header(request)
        if header_token is None:
            return False
        if not secrets_match(header_token, self.tokens):
            raise _unauthorized()
        return True

    def _fields(self, body: bytes, known_token: bool) -> dict[str, Any]:
        """``request`` of a call for this application, with a known ``auth`` if any."""
        payload = parse_json(body)
        fields = payload.get("request") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            raise IngestError(400, "invalid_request", 'the body must be {"request": {...}}')
        if not known_token and "auth" in fields:
            auth = fields["auth"]
            if not isinstance(auth, str) or not secrets_match(auth, self.tokens):
                raise _unauthorized()
        if fields.get("application") != self.options.application:
            raise IngestError(
                403,
                "forbidden",
                "Token restrictions forbid this operation: this endpoint serves application "
                f"{self.options.application}",
            )
        return fields

    def _reserve(self, recorded: bool) -> None:
        """Take a queue place for a call that will be recorded, before it is forwarded:
        with no room, nothing reaches Pushwoosh and the caller retries later."""
        if not recorded:
            return
        room = self.context.queue_room
        if room is not None and room() - self._reserved < 1:
            raise IngestError(
                503,
                "queue_full",
                "the relay's queue is full; nothing was sent to Pushwoosh, retry later",
                retry_after=30,
            )
        self._reserved += 1

    async def _forward(self, method: str, request: web.Request, body: bytes) -> Any:
        headers = {
            name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers
        }
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


def validate_call(method: str, fields: dict[str, Any]) -> None:
    """Refuse what Pushwoosh would refuse anyway, before it is forwarded."""
    hwid, user_id = fields.get("hwid"), fields.get("userId")
    for name, value in (("hwid", hwid), ("userId", user_id)):
        if value is not None and not isinstance(value, (str, int)):
            raise _argument(f"{name} must be a string")
    if method in ("registerDevice", "registerUser") and not text_or_none(hwid):
        raise _argument(f"{method} needs hwid")
    if method in ("postEvent", "setTags") and not (text_or_none(hwid) or text_or_none(user_id)):
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


__all__ = ["PushwooshRelay", "apply_tag_changes", "validate_call"]
