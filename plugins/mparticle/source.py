"""``mparticle.http``: receive mParticle data under ``/ingest/<connector>/``.

What an ordinary mParticle customer can point at a self-hosted URL:

- ``POST v2/events`` and ``v2/bulkevents``: mParticle's Events API, so that any
  mParticle server SDK only needs its host changed. HTTP Basic ``api_key:api_secret``;
  ``202`` with no body on success. As at mParticle, a bulk request whose batches are
  partly invalid is still ``202``: the valid batches are committed and each invalid one
  becomes a dead letter with its reason; a single batch with an invalid part is a
  ``400`` and nothing of it is stored, so a corrected retry cannot duplicate.
- ``POST webhook``: mParticle's Webhook event output. The ``Authorization`` header
  configured in mParticle's connection settings is compared as a whole.
- ``POST kinesis``: an Amazon Data Firehose delivery stream with an HTTP endpoint
  destination, fed by mParticle's Amazon Kinesis Firehose *audience* output (membership
  added/removed) and/or *event* output. ``X-Amz-Firehose-Access-Key`` is the secret.

And what needs mParticle's partner onboarding:

- ``POST firehose``: mParticle's partner (Firehose) messages, each answered with its
  matching response message. mParticle registers Firehose endpoints for listed
  partners only and documents no authentication for them; connectord takes
  ``Authorization: Bearer <secret>`` or a secret in the ``connectord_secret`` account
  setting, and reads at most `const.BODY_SECRET_MAX_BYTES` before that secret is
  checked.

Every path authenticates from headers before it reads a body. Invalid parts of what
mParticle itself sends (webhook, kinesis, firehose) become dead letters (stage
``ingest``) with the reason; the request is still acknowledged, since mParticle would
only send it again.
"""

from __future__ import annotations

import time
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

from . import const, kinesis
from .common import Parsed, Settings, iter_errors
from .firehose import account_secret, handle_message
from .parse import events_request_batches, parse_webhook_request


class InvalidRequest(IngestError):
    """The request has invalid parts and was refused whole: nothing of it was stored."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(400, "invalid_parts", f"{len(errors)} invalid part(s): {errors[0]}")
        self.errors = errors


class KinesisRefused(IngestError):
    """A refusal rendered in Amazon Data Firehose's error response format."""

    def __init__(self, error: IngestError, request_id: str | None) -> None:
        super().__init__(error.status, error.code, error.message, retry_after=error.retry_after)
        self.request_id = request_id


class MparticleOptions(Options):
    """The options of ``mparticle.http``: one credential per path it serves."""

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
        description="Shared secret for the firehose path, which only an mParticle partner "
        "integration (registered by mParticle) can use: sent as `Authorization: Bearer`, or "
        "in the account setting named by `firehose_setting` (then at most 1 MiB of the "
        "request is read before the secret is checked).",
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
    kinesis_access_key: Secret | None = Field(
        None,
        description="The access key of the Amazon Data Firehose delivery stream that "
        "mParticle's Amazon Kinesis Firehose outputs write to, whose HTTP endpoint "
        "destination is this connector's `kinesis` path.",
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
        description="Largest Webhook, Kinesis or Firehose request body. Events API "
        "requests are limited to 256 KB, as at mParticle.",
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

    @field_validator(
        "api_key",
        "api_secret",
        "firehose_secret",
        "webhook_authorization",
        "kinesis_access_key",
    )
    @classmethod
    def _not_blank(cls, value: Secret | None) -> Secret | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty; remove the option to switch its endpoint off")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> MparticleOptions:
        if (self.api_key is None) != (self.api_secret is None):
            raise ValueError("set both api_key and api_secret (HTTP Basic key:secret)")
        secrets = (self.api_key, self.firehose_secret, self.webhook_authorization)
        if all(s is None for s in (*secrets, self.kinesis_access_key)):
            raise ValueError(
                "set api_key/api_secret, webhook_authorization, kinesis_access_key or "
                "firehose_secret: every push endpoint authenticates"
            )
        return self


class MparticleSource(PushSource):
    """Receive mParticle Events API batches, Webhook and Kinesis outputs, Firehose messages."""

    type = "mparticle.http"

    Options = MparticleOptions

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
        if self.options.kinesis_access_key is not None:
            routes.append(Route("POST", const.KINESIS_PATH, self.kinesis))
        return routes

    # --- Events API ------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.Response:
        return await self._events_api(request, bulk=False)

    async def bulk_events(self, request: web.Request) -> web.Response:
        return await self._events_api(request, bulk=True)

    async def _events_api(self, request: web.Request, *, bulk: bool) -> web.Response:
        """202 once every valid batch is stored; invalid batches of a bulk request are
        dead letters. Only a request with no valid batch at all is a 400."""
        self.check_basic(request)
        payload = await self._read_json(request, const.MAX_REQUEST_BYTES, const.MAX_REQUEST_BYTES)
        batches = events_request_batches(payload, self.settings, bulk=bulk)
        accepted = Parsed()
        refused: list[tuple[Any, list[str]]] = []  # mParticle fails batches, not events
        for batch, parsed in batches:
            if parsed.errors:
                refused.append((batch, parsed.errors))
            else:
                accepted.add(parsed)
        if refused and len(refused) == len(batches):
            raise InvalidRequest([error for _, errors in refused for error in errors])
        dead = [(_without_api_key(batch), _joined(errors)) for batch, errors in refused]
        await self._commit(accepted, "events_api", dead)
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

    # --- Firehose (partner onboarding) -------------------------------------------------------

    async def firehose(self, request: web.Request) -> web.Response:
        """A bearer token is checked before the body is read. Without one, the secret
        can only be in the body: at most `const.BODY_SECRET_MAX_BYTES` are read and
        inflated to find it, so an unauthenticated request stays cheap."""
        assert self.options.firehose_secret is not None
        expected = [self.options.firehose_secret.get_secret_value()]
        bearer = bearer_token(request)
        if bearer is not None:
            if not secrets_match(bearer, expected):
                raise IngestError(403, "forbidden", "the shared secret is not valid")
            cap = self.options.max_partner_body_bytes
            message = await self._read_json(request, cap, const.MAX_DECOMPRESSED_BYTES)
        else:
            cap = min(self.options.max_partner_body_bytes, const.BODY_SECRET_MAX_BYTES)
            message = await self._read_json(request, cap, const.BODY_SECRET_MAX_BYTES)
            in_body = account_secret(message, self.options.firehose_setting)
            if in_body is None:
                raise IngestError(
                    401,
                    "unauthorized",
                    "missing shared secret: send Authorization: Bearer <secret> or enter it "
                    f"in mParticle as the {self.options.firehose_setting!r} account setting",
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

    # --- Amazon Data Firehose HTTP endpoint (mParticle's Kinesis outputs) --------------------

    async def kinesis(self, request: web.Request) -> web.Response:
        """Answered as AWS specifies: 200 ``{"requestId", "timestamp"}``; a refusal
        carries ``errorMessage`` and makes the delivery stream retry."""
        request_id = request.headers.get("X-Amz-Firehose-Request-Id")
        try:
            self._check_access_key(request)
            cap = self.options.max_partner_body_bytes
            payload = await self._read_json(request, cap, const.MAX_DECOMPRESSED_BYTES)
            request_id = kinesis.request_id(payload) or request_id
            parsed = kinesis.parse_delivery(payload, self.settings)
            await self._commit(parsed, "kinesis")
        except IngestError as err:
            raise KinesisRefused(err, request_id) from err
        return json_response({"requestId": request_id, "timestamp": _now_ms()})

    def _check_access_key(self, request: web.Request) -> None:
        assert self.options.kinesis_access_key is not None
        given = request.headers.get("X-Amz-Firehose-Access-Key")
        if given is None:
            raise IngestError(
                401,
                "unauthorized",
                "missing X-Amz-Firehose-Access-Key: set the stream's access key",
            )
        if not secrets_match(given, [self.options.kinesis_access_key.get_secret_value()]):
            raise IngestError(403, "forbidden", "the access key is not valid")

    # --- shared ----------------------------------------------------------------------------

    async def _read_json(self, request: web.Request, wire: int, decompressed: int) -> Any:
        body = await read_body(request, max_bytes=wire, max_decompressed=decompressed)
        require_json_content_type(request)
        return parse_json(body)

    async def _commit(
        self,
        parsed: Parsed,
        channel: str,
        dead: list[tuple[Any, str]] | None = None,
        **fields: Any,
    ) -> None:
        """Store the valid records, then the invalid parts as dead letters with their
        reasons (by default the parser's, part by part). Records go first: a full queue
        then refuses the request before anything is kept, so its retry duplicates nothing."""
        records: list[Record] = parsed.records
        if dead is None:
            dead = list(zip(parsed.parts, parsed.errors, strict=True))
        if records:
            await self.ingest(records)
        await self.dead_letter(dead)
        if parsed.ignored:
            self.log.debug("mparticle.events.ignored", channel=channel, count=parsed.ignored)
        if dead:
            self.log.info(
                "mparticle.parts.dead_lettered",
                channel=channel,
                accepted=len(records),
                rejected=len(dead),
                **fields,
            )

    def error_response(self, error: IngestError) -> web.StreamResponse:
        """mParticle's error body ``{"errors": [{"code", "message"}]}``; on the kinesis
        path, Amazon Data Firehose's ``{"requestId", "timestamp", "errorMessage"}``."""
        if isinstance(error, KinesisRefused):
            body = {
                "requestId": error.request_id,
                "timestamp": _now_ms(),
                "errorMessage": error.message,
            }
            return json_response(body, status=error.status, retry_after=error.retry_after)
        fallback = "BAD_REQUEST" if error.status < 500 else "SERVER_ERROR"
        code = const.ERROR_CODES.get(error.status, fallback)
        messages = (
            list(iter_errors(error.errors))
            if isinstance(error, InvalidRequest)
            else [error.message]
        )
        body = {"errors": [{"code": code, "message": m} for m in messages]}
        return json_response(body, status=error.status, retry_after=error.retry_after)


def _without_api_key(batch: Any) -> Any:
    """A batch as a dead letter keeps it: the Events API schema lets a batch carry the
    ``api_key``, which is this connector's credential."""
    if isinstance(batch, dict) and "api_key" in batch:
        return {k: v for k, v in batch.items() if k != "api_key"}
    return batch


def _joined(errors: list[str]) -> str:
    return "; ".join(iter_errors(errors))


def _now_ms() -> int:
    return int(time.time() * 1000)
