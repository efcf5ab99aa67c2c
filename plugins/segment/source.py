"""``segment.http``: a Segment-compatible HTTP Tracking API under ``/ingest/<connector>/``.

Any Segment (or RudderStack) library whose host is set to
``http://<daemon>/ingest/<connector>`` sends here: ``POST v1/batch`` (aliases ``v1/import``
and analytics.js's ``v1/b``) and the single-message routes ``v1/identify``, ``v1/track``,
``v1/page``, ``v1/screen``, ``v1/group``, ``v1/alias`` (and analytics.js's ``v1/i``,
``v1/t``, ``v1/p``, ``v1/s``, ``v1/g``, ``v1/a``), with CORS for browsers. Answers are
Segment's: ``200 {"success": true}`` once the messages are durable, ``400``/``401`` with
``{"success": false, "code", "message"}``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from aiohttp import web
from pydantic import Field, field_validator

from connectord import IngestError, Options, PushSource, Record, Route, Secret
from connectord.ingest import basic_credentials, json_response, parse_json, read_body, secrets_match
from connectord.records import iso, new_message_id, parse_time

from . import const

SUCCESS = orjson.dumps({"success": True})


class SegmentSource(PushSource):
    """Receive Segment Tracking API calls from Segment-compatible libraries."""

    type = "segment.http"
    max_body_bytes = const.MAX_BATCH_BYTES
    max_decompressed_bytes = const.MAX_BATCH_BYTES

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
        self.rejected = Counter[str]()
        """Messages refused inside otherwise accepted batches, by error code."""

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
        response = json_response(
            {"success": False, "code": error.code, "message": error.message},
            status=error.status,
            retry_after=error.retry_after,
        )
        response.headers.update(const.CORS_HEADERS)
        return response

    async def preflight(self, request: web.Request) -> web.Response:
        """CORS preflight for browsers (analytics.js)."""
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
        if len(messages) > const.MAX_BATCH_MESSAGES:
            raise IngestError(
                400,
                const.TOO_MANY_MESSAGES,
                f"{len(messages)} messages in one batch; the limit is {const.MAX_BATCH_MESSAGES}",
            )
        envelope = Envelope.of(payload, request)
        check_size = len(body) > const.MAX_MESSAGE_BYTES  # else no message can be too large
        records: list[Record] = []
        positions: list[int] = []
        refused: list[tuple[int, IngestError]] = []
        for index, message in enumerate(messages):
            try:
                if check_size:
                    check_message_size(message)
                records.append(normalize(message, None, envelope))
                positions.append(index)
            except IngestError as err:
                refused.append((index, err))
        try:
            if records:
                await self.ingest(records)
        except IngestError as err:
            if err.code != const.INVALID_JSON or len(records) == 1:
                raise
            # A message the queue cannot encode (nesting beyond orjson's 254 levels)
            # sank the request: refuse it alone and store the others.
            records = self.encodable(records, positions, refused)
            if records:
                await self.ingest(records)
        if refused:
            self.note_refused(refused, len(records))
            if not records:
                raise refused[0][1]
        return success()

    async def receive_single(self, kind: str, request: web.Request) -> web.Response:
        body = await self.read(request, const.MAX_MESSAGE_BYTES)
        payload = self.authenticated_payload(request, body)
        record = normalize(payload, kind, Envelope.of({}, request))
        await self.ingest([record])
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

    @staticmethod
    def encodable(
        records: list[Record], positions: list[int], refused: list[tuple[int, IngestError]]
    ) -> list[Record]:
        kept = []
        for record, index in zip(records, positions, strict=True):
            try:
                orjson.dumps(record)
            except orjson.JSONEncodeError as err:
                refused.append(
                    (index, IngestError(400, const.INVALID_MESSAGE, f"cannot be stored: {err}"))
                )
            else:
                kept.append(record)
        refused.sort(key=lambda item: item[0])
        return kept

    def note_refused(self, refused: list[tuple[int, IngestError]], accepted: int) -> None:
        codes = Counter(err.code for _, err in refused)
        self.rejected.update(codes)
        self.log.warning(
            "segment.messages.rejected",
            rejected=len(refused),
            accepted=accepted,
            codes=dict(codes),
            first=[{"index": i, "code": e.code, "message": e.message} for i, e in refused[:5]],
        )


def success() -> web.Response:
    return web.Response(body=SUCCESS, content_type="application/json", headers=const.CORS_HEADERS)


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


def check_message_size(message: Any) -> None:
    size = len(orjson.dumps(message))
    if size > const.MAX_MESSAGE_BYTES:
        raise IngestError(
            400,
            const.MESSAGE_TOO_LARGE,
            f"message is {size} bytes; the limit is {const.MAX_MESSAGE_BYTES} bytes",
        )


def normalize(message: Any, kind: str | None, envelope: Envelope) -> Record:
    """Turn one Tracking API message into a record, as Segment's API would store it.

    :param kind: the type the endpoint implies (single-message routes), else ``None``
        and the message's own ``type`` is used (batches).
    :raises IngestError: 400 with the reason the message is refused.
    """
    if not isinstance(message, dict):
        raise IngestError(400, const.INVALID_MESSAGE, "each message must be a JSON object")
    kind = kind or message.get("type")
    if kind not in const.SEGMENT_TYPES:
        raise IngestError(
            400,
            const.INVALID_TYPE,
            f"message type {kind!r} is not one of {', '.join(const.SEGMENT_TYPES)}",
        )
    message.pop("writeKey", None)  # never stored
    message["type"] = kind
    merge_envelope(message, envelope)
    for key in ("userId", "anonymousId", "groupId", "previousId"):
        value = message.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            message[key] = str(value)
    check_required(message, kind)
    set_message_id(message)
    set_timestamps(message, envelope)
    return message


def merge_envelope(message: dict[str, Any], envelope: Envelope) -> None:
    """Batch-level ``context``/``integrations`` apply to every message; the message's own
    keys win. ``context.direct = true`` asks for the caller's IP as ``context.ip``."""
    for key, shared in (("context", envelope.context), ("integrations", envelope.integrations)):
        own = message.get(key)
        if own is not None and not isinstance(own, dict):
            raise IngestError(400, const.INVALID_MESSAGE, f"{key} must be an object")
        if shared is not None:
            message[key] = {**shared, **own} if own else dict(shared)
    context = message.get("context")
    if context and context.get("direct") is True and "ip" not in context and envelope.remote:
        context["ip"] = envelope.remote


def check_required(message: dict[str, Any], kind: str) -> None:
    if not (_present(message.get("userId")) or _present(message.get("anonymousId"))):
        raise IngestError(400, const.NO_USER, f"{kind} needs a userId or an anonymousId")
    if kind == "track" and not (isinstance(message.get("event"), str) and message["event"]):
        raise IngestError(400, const.NO_EVENT, "track needs an event name (a string)")
    if kind == "group" and not _present(message.get("groupId")):
        raise IngestError(400, const.NO_GROUP_ID, "group needs a groupId")
    if kind == "alias" and not _present(message.get("previousId")):
        raise IngestError(400, const.NO_PREVIOUS_ID, "alias needs a previousId")


def _present(value: Any) -> bool:
    return value is not None and value != ""


def set_message_id(message: dict[str, Any]) -> None:
    """Keep the sender's ``messageId`` (it deduplicates retries); make one when missing."""
    value = message.get("messageId")
    if value is None or value == "":
        message["messageId"] = new_message_id()
        return
    if not isinstance(value, str):
        value = message["messageId"] = str(value)
    if len(value) > const.MAX_MESSAGE_ID_LENGTH:
        raise IngestError(
            400,
            const.INVALID_MESSAGE_ID,
            f"messageId has {len(value)} characters; the limit is {const.MAX_MESSAGE_ID_LENGTH}",
        )


def set_timestamps(message: dict[str, Any], envelope: Envelope) -> None:
    """Segment's timestamp rule.

    The caller's ``timestamp`` becomes ``originalTimestamp``; ``receivedAt`` is now; and
    ``timestamp = receivedAt - (sentAt - originalTimestamp)`` corrects the device clock
    when ``sentAt`` is known, else it is ``originalTimestamp``, else ``receivedAt``. A
    message that already carries both (forwarded by Segment itself) keeps its
    ``timestamp``.
    """
    message["receivedAt"] = envelope.received_at
    sent_value = message.get("sentAt") or envelope.sent_at
    if sent_value:
        message["sentAt"] = sent_value
    given = message.get("timestamp")
    original_value = message.get("originalTimestamp")
    if original_value and given:
        message["timestamp"] = iso(_time(given, "timestamp"))
        return
    original_value = original_value or given
    if not original_value:
        message["timestamp"] = envelope.received_at
        return
    original = _time(original_value, "timestamp")
    message["originalTimestamp"] = original_value
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


def _time(value: Any, field: str) -> datetime:
    moment = read_time(value)
    if moment is None:
        raise IngestError(
            400,
            const.INVALID_TIMESTAMP,
            f"{field} {str(value)[:40]!r} is not an ISO 8601 date",
        )
    return moment
