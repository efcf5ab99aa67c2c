"""``segment.http``: a Segment-compatible HTTP Tracking API under ``/ingest/<connector>/``.

Any Segment (or RudderStack) library whose host is set to
``http://<daemon>/ingest/<connector>`` sends here: ``POST v1/batch`` (aliases ``v1/import``
and analytics.js's ``v1/b``) and the single-message routes ``v1/identify``, ``v1/track``,
``v1/page``, ``v1/screen``, ``v1/group``, ``v1/alias`` (and analytics.js's ``v1/i``,
``v1/t``, ``v1/p``, ``v1/s``, ``v1/g``, ``v1/a``), with CORS for browsers.

Answers are Segment's ("Errors", HTTP API docs): ``200 {"success": true}`` once the
messages are durable, for every request except JSON errors and oversize, which get
``400`` (and a bad write key, ``401``), with ``{"success": false, "code", "message"}``.
A message Segment would accept and then drop (no ``userId``/``anonymousId``, a track
without ``event``, ...) is stored all the same: the framework's record check turns it
into a dead letter that says why, so it is neither lost silently nor retried forever.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

import orjson
from aiohttp import web
from pydantic import Field, field_validator

from connectord import IngestError, Options, PushSource, Record, Route, Secret
from connectord.ingest import basic_credentials, json_response, parse_json, read_body, secrets_match
from connectord.records import iso, new_message_id, parse_time, problem

from . import const

SUCCESS = orjson.dumps({"success": True})


class SegmentSource(PushSource):
    """Receive Segment Tracking API calls from Segment-compatible libraries."""

    type = "segment.http"
    max_body_bytes = const.MAX_BATCH_BYTES
    max_decompressed_bytes = const.MAX_BATCH_BYTES
    cors_headers: ClassVar[dict[str, str]] = const.CORS_HEADERS
    """Put on every answer under this connector's path by `connectord.cors`."""

    class Options(Options):
        write_key: Secret | list[Secret] = Field(
            description="The write key clients send (body `writeKey`, or HTTP Basic with the "
            "key as user). A list accepts several keys, e.g. while rotating."
        )

        @field_validator("write_key")
        @classmethod
        def _keys(cls, value: Secret | list[Secret]) -> Secret | list[Secret]:
            keys = value if isinstance(value, list) else [value]
            if not keys:
                raise ValueError("give at least one write key")
            for key in keys:
                text = key.get_secret_value()
                if len(text) < 8 or any(c.isspace() or c == ":" for c in text):
                    raise ValueError(
                        "a write key has at least 8 characters, no spaces and no ':' "
                        "(it is sent as the HTTP Basic user name)"
                    )
            return value

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        keys = options.write_key if isinstance(options.write_key, list) else [options.write_key]
        self.write_keys = [key.get_secret_value() for key in keys]
        self.invalid = Counter[str]()
        """Accepted messages that break the record model (dead letters to be), by reason."""

    def routes(self) -> list[Route]:
        routes = [Route("POST", path, self.receive_batch) for path in const.BATCH_PATHS]
        for kind in const.SEGMENT_TYPES:
            handler = partial(self.receive_single, kind)
            routes += [Route("POST", f"v1/{kind}", handler)]
            routes += [Route("POST", const.SHORT_PATHS[kind], handler)]
        routes += [Route("OPTIONS", route.path, self.preflight) for route in list(routes)]
        return routes

    def error_response(self, error: IngestError) -> web.StreamResponse:
        """Segment's error body, for our errors and the framework's (queue full, 503)."""
        return json_response(
            {"success": False, "code": error.code, "message": error.message},
            status=error.status,
            retry_after=error.retry_after,
        )

    async def preflight(self, request: web.Request) -> web.Response:
        """CORS preflight for browsers (analytics.js); `connectord.cors` adds the headers."""
        return web.Response(status=204, headers=const.CORS_HEADERS)

    # --- handlers ---------------------------------------------------------------------

    async def receive_batch(self, request: web.Request) -> web.Response:
        body = await self.read(request, const.MAX_BATCH_BYTES)
        payload = self.authenticated_payload(request, body, allow_array=True)
        if isinstance(payload, list):  # Segment's Webhooks (Actions) in batch mode
            payload = {"batch": payload}
        messages = payload.get("batch")
        if not isinstance(messages, list):
            raise IngestError(
                400, const.INVALID_BATCH, 'a batch request needs "batch": an array of messages'
            )
        check_messages(messages, check_size=len(body) > const.MAX_MESSAGE_BYTES)
        envelope = Envelope.of(payload, request)
        await self.keep([normalize(message, None, envelope) for message in messages])
        return success()

    async def receive_single(self, kind: str, request: web.Request) -> web.Response:
        body = await self.read(request, const.MAX_MESSAGE_BYTES)
        payload = self.authenticated_payload(request, body)
        await self.keep([normalize(payload, kind, Envelope.of({}, request))])
        return success()

    # --- steps ------------------------------------------------------------------------

    async def read(self, request: web.Request, limit: int) -> bytes:
        """The body, gzip undone, at most ``limit`` bytes; Segment answers 400 otherwise."""
        try:
            return await read_body(request, max_bytes=limit, max_decompressed=limit)
        except IngestError as err:
            if err.status == 413:
                raise IngestError(
                    400,
                    const.TOO_LARGE,
                    f"{err.message} (Segment limits: {const.MAX_MESSAGE_BYTES // 1024} KB per "
                    f"message, {const.MAX_BATCH_BYTES // 1024} KB per batch)",
                ) from None
            if 400 <= err.status < 500:
                raise IngestError(400, err.code, err.message) from None
            raise

    def authenticated_payload(
        self, request: web.Request, body: bytes, *, allow_array: bool = False
    ) -> Any:
        """Parse the body and check the write key: body ``writeKey`` (also with an OAuth
        Bearer token) or HTTP Basic with the key as user name.

        :param allow_array: accept a bare JSON array of messages (then only HTTP Basic
            can carry the key).
        """
        payload = parse_json(body)
        if isinstance(payload, list) and allow_array:
            candidates: list[Any] = []
        elif isinstance(payload, dict):
            candidates = [payload.get("writeKey")]
        else:
            raise IngestError(400, const.INVALID_JSON, "the request body must be a JSON object")
        basic = basic_credentials(request)
        if basic is not None:
            candidates.append(basic[0])
        matched = False
        for candidate in candidates:
            if isinstance(candidate, str):
                matched |= secrets_match(candidate, self.write_keys)
        if not matched:
            raise IngestError(
                401,
                const.UNAUTHORIZED,
                "missing or unknown write key: send it as the body's writeKey or as the "
                "HTTP Basic user name",
            )
        return payload

    async def keep(self, records: list[Record]) -> None:
        """Store what Segment would accept. Messages Segment answers 200 to but cannot
        use (no ids, no event name, an unknown type) become dead letters with the
        reason, durable before the answer, rather than queued records that break the
        record model; the count is logged so an operator sees them at once."""
        reasons = [problem(record) for record in records]
        invalid = [(r, reason) for r, reason in zip(records, reasons, strict=True) if reason]
        await self.dead_letter(invalid)  # first: a part that cannot be stored refuses all
        await self.ingest([r for r, reason in zip(records, reasons, strict=True) if not reason])
        if invalid:
            counted = Counter(reason for _, reason in invalid)
            self.invalid.update(counted)
            self.log.warning("segment.messages.invalid", count=len(invalid), reasons=dict(counted))


def success() -> web.Response:
    return web.Response(body=SUCCESS, content_type="application/json")


# --- messages ---------------------------------------------------------------------------


class Envelope:
    """What a request adds to each of its messages: batch-level ``context``,
    ``integrations`` and ``sentAt``, the receive time, and the caller's IP."""

    __slots__ = (
        "_sent",
        "context",
        "integrations",
        "received",
        "received_at",
        "remote",
        "sent_at",
    )

    def __init__(
        self,
        *,
        context: dict[str, Any] | None,
        integrations: dict[str, Any] | None,
        sent_at: Any,
        received: datetime,
        remote: str | None,
    ) -> None:
        self.context = context
        self.integrations = integrations
        self.sent_at = sent_at
        self.received = received
        self.received_at = iso(received)
        self.remote = remote
        self._sent: datetime | None = read_time(sent_at) if sent_at else None

    def sent(self, value: Any) -> datetime | None:
        """``sentAt`` as a time: the batch's is parsed once for all its messages."""
        if value is self.sent_at or value == self.sent_at:
            return self._sent
        return read_time(value)

    @classmethod
    def of(cls, payload: dict[str, Any], request: web.Request) -> Envelope:
        context = payload.get("context")
        integrations = payload.get("integrations")
        return cls(
            context=context if isinstance(context, dict) and context else None,
            integrations=integrations if isinstance(integrations, dict) and integrations else None,
            sent_at=payload.get("sentAt"),
            received=datetime.now(UTC),
            remote=request.remote,
        )


def check_messages(messages: list[Any], *, check_size: bool) -> None:
    """Refuse the request (400) for what Segment refuses: a message that is not a JSON
    object, or one over 32 KB ("If these limits are exceeded, Segment returns a 400")."""
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise IngestError(
                400, const.INVALID_BATCH, f"batch[{index}] is not a JSON object (a message)"
            )
        if check_size:
            size = len(orjson.dumps(message))
            if size > const.MAX_MESSAGE_BYTES:
                raise IngestError(
                    400,
                    const.MESSAGE_TOO_LARGE,
                    f"batch[{index}] is {size} bytes; the limit is "
                    f"{const.MAX_MESSAGE_BYTES} bytes per message",
                )


def normalize(message: Any, kind: str | None, envelope: Envelope) -> Record:
    """Turn one Tracking API message into a record, as Segment's API would store it.

    Nothing is refused here: a message that breaks the record model (no user id, no
    event name, an unknown type) is stored as it came and dead-lettered by the
    framework with the reason, as Segment answers 200 and drops it.

    :param kind: the type the endpoint implies (single-message routes), else ``None``
        and the message's own ``type`` is used (batches).
    """
    message.pop("writeKey", None)  # never stored
    if kind is not None:
        message["type"] = kind
    merge_envelope(message, envelope)
    for key in ("userId", "anonymousId", "groupId", "previousId"):
        value = message.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            message[key] = str(value)
    set_message_id(message)
    set_timestamps(message, envelope)
    return message


def merge_envelope(message: dict[str, Any], envelope: Envelope) -> None:
    """Batch-level ``context``/``integrations`` apply to every message; the message's own
    keys win. ``context.direct = true`` asks for the caller's IP as ``context.ip``."""
    for key, shared in (("context", envelope.context), ("integrations", envelope.integrations)):
        own = message.get(key)
        if shared is not None and (own is None or isinstance(own, dict)):
            message[key] = {**shared, **own} if own else dict(shared)
    context = message.get("context")
    if (
        isinstance(context, dict)
        and context.get("direct") is True
        and "ip" not in context
        and envelope.remote
    ):
        context["ip"] = envelope.remote


def set_message_id(message: dict[str, Any]) -> None:
    """Keep the sender's ``messageId`` (it deduplicates retries); make one when missing."""
    value = message.get("messageId")
    if value is None or value == "":
        message["messageId"] = new_message_id()
    elif not isinstance(value, str):
        message["messageId"] = str(value)


def set_timestamps(message: dict[str, Any], envelope: Envelope) -> None:
    """Segment's timestamp rule.

    The caller's ``timestamp`` becomes ``originalTimestamp``; ``receivedAt`` is now; and
    ``timestamp = receivedAt - (sentAt - originalTimestamp)`` corrects the device clock
    when ``sentAt`` is known, else it is ``originalTimestamp``, else ``receivedAt``. A
    message that already carries both (forwarded by Segment itself) keeps its
    ``timestamp``. An unreadable time counts as absent (the sender's value stays in
    ``originalTimestamp``): Segment documents no refusal for it.
    """
    message["receivedAt"] = envelope.received_at
    sent_value = message.get("sentAt") or envelope.sent_at
    if sent_value:
        message["sentAt"] = sent_value
    given = message.get("timestamp")
    original_value = message.get("originalTimestamp")
    if original_value and given and (moment := read_time(given)) is not None:
        message["timestamp"] = iso(moment)
        return
    original_value = original_value or given
    original = read_time(original_value) if original_value else None
    if original_value:
        message["originalTimestamp"] = original_value
    if original is None:
        message["timestamp"] = envelope.received_at
        return
    sent = envelope.sent(sent_value) if sent_value else None
    if sent is None:
        message["timestamp"] = iso(original)
    else:
        message["timestamp"] = iso(envelope.received - (sent - original))


def read_time(value: Any) -> datetime | None:
    """`parse_time`, with a fast path for the ISO 8601 strings libraries send."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return parse_time(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return parse_time(value)
