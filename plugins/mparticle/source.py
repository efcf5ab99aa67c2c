"""``mparticle.http``: receive mParticle data under ``/ingest/<connector>/``.

- ``POST v2/events`` and ``v2/bulkevents``: mParticle's Events API, so that any
  mParticle server SDK only needs its host changed. HTTP Basic ``api_key:api_secret``;
  ``202`` with no body on success.
- ``POST firehose``: mParticle's partner (Firehose) messages, each answered with its
  matching response message. mParticle does not sign these requests; they carry a
  shared secret, either in the ``connectord_secret`` account setting (entered in
  mParticle's UI) or as ``Authorization: Bearer <secret>``.
- ``POST webhook``: mParticle's generic Webhook output. The ``Authorization`` header
  configured in mParticle's connection settings is compared as a whole.

Only the endpoints whose credentials are configured are served. A request whose parts
are partly invalid still commits the valid parts, then answers ``400`` with mParticle's
error body listing what was refused.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import Field, field_validator, model_validator

from connectord import IngestError, Options, PushSource, Record, Route, Secret
from connectord.ingest import (
    basic_credentials,
    bearer_token,
    json_response,
    parse_json,
    read_body,
    require_json_content_type,
    secrets_match,
)

from . import const
from .common import Parsed, Settings, iter_errors
from .firehose import account_secret, handle_message
from .parse import parse_events_request, parse_webhook_request


class PartiallyRejected(IngestError):
    """Some parts of the request were invalid; the valid ones were committed."""

    def __init__(self, errors: list[str], accepted: int) -> None:
        super().__init__(
            400,
            "invalid_parts",
            f"{len(errors)} invalid part(s) refused, {accepted} record(s) accepted: {errors[0]}",
        )
        self.errors = errors
        self.accepted = accepted


class MparticleSource(PushSource):
    """Receive mParticle Events API batches, Firehose messages and Webhook output."""

    type = "mparticle.http"

    class Options(Options):
        api_key: Secret | None = Field(
            None,
            description="Events API key: the username of HTTP Basic auth on v2/events and "
            "v2/bulkevents (what an mParticle SDK is configured with).",
        )
        api_secret: Secret | None = Field(
            None, description="Events API secret: the password of HTTP Basic auth."
        )
        firehose_secret: Secret | None = Field(
            None,
            description="Shared secret for the firehose endpoint, sent by mParticle in the "
            "account setting named by `firehose_setting` or as `Authorization: Bearer`.",
        )
        firehose_setting: str = Field(
            const.DEFAULT_FIREHOSE_SETTING,
            min_length=1,
            max_length=100,
            description="Id of the Firehose account setting that carries `firehose_secret`.",
        )
        webhook_authorization: Secret | None = Field(
            None,
            description="The exact `Authorization` header value entered in mParticle's "
            'Webhook output, e.g. "Bearer 3f9c…" or "Basic dXNlcjpwYXNz".',
        )
        user_id: str = Field(
            "customer_id",
            description="The mParticle identity that becomes `userId`: customer_id, email, "
            "other, other_id_2 … other_id_10, mobile_number, … or mpid.",
        )
        mpid_fallback: bool = Field(
            True, description="Use the mpid as `userId` when the `user_id` identity is absent."
        )
        other_events: Literal["drop", "track"] = Field(
            "drop",
            description="Events other than custom events, screen views, commerce events and "
            'attribute changes (sessions, lifecycle, push, ...): "drop" them, or "track" them '
            "with their mParticle type as the event name.",
        )
        max_partner_body_bytes: int = Field(
            const.DEFAULT_PARTNER_MAX_BYTES,
            ge=64 * 1024,
            le=64 * 1024 * 1024,
            description="Largest Firehose or Webhook request body. Events API requests are "
            "limited to 256 KB, as at mParticle.",
        )

        @field_validator("user_id")
        @classmethod
        def _user_id(cls, value: str) -> str:
            from .common import canonical_identity

            name = canonical_identity(value)
            if name != "mpid" and name not in const.USER_IDENTITIES:
                raise ValueError(
                    f"unknown mParticle identity {value!r}; use mpid or one of "
                    + ", ".join(const.USER_IDENTITIES)
                )
            return name

        @field_validator("api_key", "api_secret", "firehose_secret", "webhook_authorization")
        @classmethod
        def _not_blank(cls, value: Secret | None) -> Secret | None:
            if value is not None and not value.get_secret_value().strip():
                raise ValueError("is empty; remove the option to switch its endpoint off")
            return value

        @model_validator(mode="after")
        def _credentials(self) -> MparticleSource.Options:
            if (self.api_key is None) != (self.api_secret is None):
                raise ValueError("set both api_key and api_secret (HTTP Basic key:secret)")
            if (
                self.api_key is None
                and self.firehose_secret is None
                and (self.webhook_authorization is None)
            ):
                raise ValueError(
                    "set api_key/api_secret, firehose_secret or webhook_authorization: "
                    "every push endpoint authenticates"
                )
            return self

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.settings = Settings(
            user_id=options.user_id,
            mpid_fallback=options.mpid_fallback,
            other_events=options.other_events,
        )

    def routes(self) -> list[Route]:
        routes = []
        if self.options.api_key is not None:
            routes += [
                Route("POST", const.EVENTS_PATH, self.events),
                Route("POST", const.BULK_EVENTS_PATH, self.bulk_events),
            ]
        if self.options.firehose_secret is not None:
            routes.append(Route("POST", const.FIREHOSE_PATH, self.firehose))
        if self.options.webhook_authorization is not None:
            routes.append(Route("POST", const.WEBHOOK_PATH, self.webhook))
        return routes

    # --- Events API ------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.Response:
        return await self._events_api(request, bulk=False)

    async def bulk_events(self, request: web.Request) -> web.Response:
        return await self._events_api(request, bulk=True)

    async def _events_api(self, request: web.Request, *, bulk: bool) -> web.Response:
        self.check_basic(request)
        payload = await self._read_json(request, const.MAX_REQUEST_BYTES, const.MAX_REQUEST_BYTES)
        parsed = parse_events_request(payload, self.settings, bulk=bulk)
        await self._commit(parsed, "events_api")
        return web.Response(status=202)

    def check_basic(self, request: web.Request) -> None:
        """401 without credentials, 403 with wrong ones (as mParticle answers)."""
        credentials = basic_credentials(request)
        if credentials is None:
            raise IngestError(
                401, "unauthorized", "missing HTTP Basic credentials: send api_key:api_secret"
            )
        key, secret = credentials
        assert self.options.api_key is not None and self.options.api_secret is not None
        key_ok = secrets_match(key, [self.options.api_key.get_secret_value()])
        secret_ok = secrets_match(secret, [self.options.api_secret.get_secret_value()])
        if not (key_ok & secret_ok):
            raise IngestError(403, "forbidden", "the API key or secret is not valid")

    # --- Firehose --------------------------------------------------------------------------

    async def firehose(self, request: web.Request) -> web.Response:
        assert self.options.firehose_secret is not None
        expected = [self.options.firehose_secret.get_secret_value()]
        bearer = bearer_token(request)
        by_header = secrets_match(bearer, expected)
        cap = self.options.max_partner_body_bytes
        message = await self._read_json(request, cap, const.MAX_DECOMPRESSED_BYTES)
        if not by_header:
            in_body = account_secret(message, self.options.firehose_setting)
            if bearer is None and in_body is None:
                raise IngestError(
                    401,
                    "unauthorized",
                    "missing shared secret: enter it in mParticle as the "
                    f"{self.options.firehose_setting!r} account setting or send "
                    "Authorization: Bearer <secret>",
                )
            if not secrets_match(in_body, expected):
                raise IngestError(403, "forbidden", "the shared secret is not valid")
        result = handle_message(message, self.settings, setting_id=self.options.firehose_setting)
        if result.subscription is not None:
            self.log.info("mparticle.audience.subscription", **result.subscription)
        await self._commit(result.parsed, "firehose", message_type=message.get("type"))
        return web.Response(
            body=orjson.dumps(result.response),
            status=200,
            content_type="application/json",
            charset="utf-8",
        )

    # --- Webhook ---------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization")
        if given is None:
            raise IngestError(
                401,
                "unauthorized",
                "missing Authorization header: set it in the Webhook output's settings",
            )
        assert self.options.webhook_authorization is not None
        expected = self.options.webhook_authorization.get_secret_value().strip()
        if not secrets_match(given.strip(), [expected]):
            raise IngestError(403, "forbidden", "the Authorization header is not valid")
        cap = self.options.max_partner_body_bytes
        payload = await self._read_json(request, cap, const.MAX_DECOMPRESSED_BYTES)
        parsed = parse_webhook_request(payload, self.settings)
        await self._commit(parsed, "webhook")
        return web.Response(status=202)

    # --- shared ----------------------------------------------------------------------------

    async def _read_json(self, request: web.Request, wire: int, decompressed: int) -> Any:
        body = await read_body(request, max_bytes=wire, max_decompressed=decompressed)
        require_json_content_type(request)
        return parse_json(body)

    async def _commit(self, parsed: Parsed, channel: str, **fields: Any) -> None:
        """Commit the valid records, then refuse the invalid parts (if any)."""
        records: list[Record] = parsed.records
        if records:
            await self.ingest(records)
        if parsed.ignored:
            self.log.debug("mparticle.events.ignored", channel=channel, count=parsed.ignored)
        if parsed.errors:
            self.log.info(
                "mparticle.parts.rejected",
                channel=channel,
                accepted=len(records),
                rejected=len(parsed.errors),
                **fields,
            )
            raise PartiallyRejected(parsed.errors, len(records))

    def error_response(self, error: IngestError) -> web.StreamResponse:
        """mParticle's error body: ``{"errors": [{"code": "BAD_REQUEST", "message": …}]}``."""
        fallback = "BAD_REQUEST" if error.status < 500 else "SERVER_ERROR"
        code = const.ERROR_CODES.get(error.status, fallback)
        messages = (
            list(iter_errors(error.errors))
            if isinstance(error, PartiallyRejected)
            else [error.message]
        )
        body: dict[str, Any] = {"errors": [{"code": code, "message": m} for m in messages]}
        if isinstance(error, PartiallyRejected):
            body["accepted"] = error.accepted
        return json_response(body, status=error.status, retry_after=error.retry_after)
