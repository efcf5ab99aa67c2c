"""``http.webhook``: accept records (or any JSON, wrapped as events) over HTTP.

``POST /ingest/<connector>/`` (also ``/events``) with one record, an array of records or
``{"batch": [...]}``. Every request must carry the shared token (``Authorization:
Bearer``) or an HMAC signature (``X-Connectord-Signature: t=<unix>,v1=<hex>``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field, model_validator

from connectord import IngestError, Options, PushSource, Record, Route, Secret
from connectord.ingest import (
    bearer_token,
    json_response,
    parse_json,
    read_body,
    require_json_content_type,
    secrets_match,
    unauthorized,
    verify_signature,
)
from connectord.records import problem, stable_message_id

MAX_RECORDS_PER_REQUEST = 10_000
SIGNATURE_HEADER = "X-Connectord-Signature"
TOKEN_HEADER = "X-Connectord-Token"  # noqa: S105 - a header name


class WebhookSource(PushSource):
    """Receive records over HTTP POST, authenticated by token or HMAC signature."""

    type = "http.webhook"

    class Options(Options):
        token: Secret | None = Field(
            None,
            description="Shared token: `Authorization: Bearer <token>` or "
            "`X-Connectord-Token: <token>`.",
        )
        hmac_secret: Secret | None = Field(
            None,
            description="Secret for `X-Connectord-Signature: t=<unix>,v1=<hex>`, "
            "HMAC-SHA256 of `<t>.<body>`; requests older than `signature_tolerance` are "
            "refused as replays.",
        )
        signature_tolerance: int = Field(
            300, ge=1, le=3600, description="Seconds a signature stays valid."
        )
        max_body_bytes: int = Field(
            1024 * 1024,
            ge=1024,
            le=64 * 1024 * 1024,
            description="Largest request body, before decompression.",
        )
        wrap_event: str | None = Field(
            None,
            description="Accept any JSON object and wrap it as a `track` record with "
            "this event name (properties = the object), instead of expecting records.",
        )
        user_id: str | None = Field(
            None, description="With `wrap_event`: JMESPath to the user id in the object."
        )

        @model_validator(mode="after")
        def _needs_auth(self) -> WebhookSource.Options:
            if self.token is None and self.hmac_secret is None:
                raise ValueError("set token or hmac_secret: every push endpoint authenticates")
            return self

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.max_body_bytes = options.max_body_bytes
        self.user_id = None
        if options.user_id:
            from connectord.expressions import Expression

            self.user_id = Expression(options.user_id)

    def routes(self) -> list[Route]:
        return [Route("POST", "", self.receive), Route("POST", "events", self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        if self.options.hmac_secret is None:  # refuse before reading the body
            self.check_token(request)
        body = await read_body(
            request, max_bytes=self.max_body_bytes, max_decompressed=self.max_decompressed_bytes
        )
        if self.options.hmac_secret is not None:
            self.check_signature(request, body)
        require_json_content_type(request)
        payload = parse_json(body)
        items = self.items(payload)
        accepted: list[Record] = []
        rejected = []
        for index, item in enumerate(items):
            record = self.wrap(item) if self.options.wrap_event else item
            issue = problem(record)
            if issue is None:
                accepted.append(record)
            else:
                rejected.append({"index": index, "error": issue})
        if not accepted:
            raise IngestError(
                400,
                "no_valid_records",
                rejected[0]["error"] if rejected else "no records in request",
            )
        await self.ingest(accepted)
        return json_response({"accepted": len(accepted), "rejected": rejected})

    def check_token(self, request: web.Request) -> None:
        token = bearer_token(request) or request.headers.get(TOKEN_HEADER)
        expected = self.options.token
        if expected is None or not secrets_match(token, [expected.get_secret_value()]):
            raise unauthorized("missing or wrong token: send Authorization: Bearer <token>")

    def check_signature(self, request: web.Request, body: bytes) -> None:
        """The signature when one is sent (or when no token is configured), else the token."""
        header = request.headers.get(SIGNATURE_HEADER)
        if header is None and self.options.token is not None:
            self.check_token(request)
            return
        secret = self.options.hmac_secret
        assert secret is not None
        verify_signature(
            header, body, [secret.get_secret_value()], tolerance=self.options.signature_tolerance
        )

    @staticmethod
    def items(payload: Any) -> list[Any]:
        if isinstance(payload, dict) and isinstance(payload.get("batch"), list):
            items = payload["batch"]
        elif isinstance(payload, list):
            items = payload
        elif isinstance(payload, dict):
            items = [payload]
        else:
            raise IngestError(
                400, "invalid_body", 'expected a JSON object, an array or {"batch": [...]}'
            )
        if len(items) > MAX_RECORDS_PER_REQUEST:
            raise IngestError(
                413,
                "too_many_records",
                f"{len(items)} records in one request; the limit is {MAX_RECORDS_PER_REQUEST}",
            )
        return items

    def wrap(self, item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        user = self.user_id.search(item) if self.user_id is not None else None
        record: Record = {
            "type": "track",
            "event": self.options.wrap_event,
            "properties": item,
            "messageId": stable_message_id(self.context.connector, item),
        }
        if user not in (None, ""):
            record["userId"] = str(user)
        else:
            record["anonymousId"] = self.context.connector
        return record
