"""Helpers for push-source handlers: bounded bodies, decompression, JSON, auth.

Every function raises `IngestError` with the status and message to answer with; the
server turns it into the vendor's error format through `PushSource.error_response`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import zlib
from typing import Any

import orjson
from aiohttp import web

from .errors import IngestError

BODY_LIMIT = "connectord.max_body_bytes"
"""Request key where the server puts the daemon-wide body limit (``[daemon]
max_body_bytes``); `read_body` applies the smaller of it and the plugin's own."""
BODY_TIMEOUT = "connectord.body_timeout"
"""Request key where the server puts ``[daemon] body_timeout``: `read_body` refuses a body
that takes longer to arrive (a slowloris trickling bytes holds no worker forever)."""


async def read_body(request: web.Request, *, max_bytes: int, max_decompressed: int) -> bytes:
    """Read the body, refusing more than ``max_bytes`` on the wire (or the daemon-wide
    limit, if smaller), and undo ``Content-Encoding: gzip/deflate`` without ever holding
    more than ``max_decompressed`` bytes (a gzip bomb stops at the cap)."""
    max_bytes = min(max_bytes, request.get(BODY_LIMIT, max_bytes))
    length = request.content_length
    if length is not None and length > max_bytes:
        raise IngestError(
            413, "body_too_large", f"request body is {length} bytes; the limit is {max_bytes}"
        )
    seconds = request.get(BODY_TIMEOUT)
    try:
        async with asyncio.timeout(seconds):
            body = await _read_bounded(request, max_bytes)
    except TimeoutError:
        raise IngestError(
            408, "body_timeout", f"request body did not arrive within {seconds:g} s"
        ) from None
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        return decompress(body, encoding, max_decompressed)
    raise IngestError(
        415,
        "unsupported_encoding",
        f"Content-Encoding {encoding!r} is not supported; use gzip or none",
    )


async def _read_bounded(request: web.Request, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise IngestError(
                413, "body_too_large", f"request body exceeds the limit of {max_bytes} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Inflate at most ``limit`` bytes; more is refused, not buffered."""
    wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as err:
        raise IngestError(400, "malformed_body", f"malformed {encoding} content: {err}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise IngestError(
            413, "body_too_large", f"decompressed body exceeds the limit of {limit} bytes"
        )
    if not inflater.eof:
        raise IngestError(400, "malformed_body", f"truncated {encoding} content")
    return out


def require_json_content_type(request: web.Request) -> None:
    ctype = request.content_type
    if ctype not in (
        "application/json",
        "text/plain",
        "application/octet-stream",
    ) and not ctype.endswith("+json"):
        raise IngestError(
            415,
            "unsupported_content_type",
            f"Content-Type {ctype!r} is not accepted; send application/json",
        )


def parse_json(body: bytes) -> Any:
    """Parse JSON with orjson; invalid UTF-8 or bad syntax is a 400.

    orjson refuses nesting deeper than 1024 levels here, and encoding for the queue
    refuses more than 254 (`connectord.connector.serialize`), both as a 400.
    """
    if not body.strip():
        raise IngestError(400, "invalid_json", "request body is empty; expected JSON")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise IngestError(400, "invalid_json", f"request body is not valid JSON: {err}") from None
    return value


def json_error(error: IngestError) -> web.Response:
    """The default error body: ``{"error": code, "message": text}``."""
    return json_response(
        {"error": error.code, "message": error.message},
        status=error.status,
        retry_after=error.retry_after,
    )


def json_response(
    data: Any, *, status: int = 200, retry_after: float | None = None
) -> web.Response:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else None
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


# --- authentication -----------------------------------------------------------------


def secrets_match(given: str | bytes | None, expected: list[str]) -> bool:
    """Constant-time comparison against every accepted secret (no early exit)."""
    if given is None:
        return False
    # Header values arrive decoded with surrogateescape: undo it to compare raw bytes.
    given_bytes = given.encode("utf-8", "surrogateescape") if isinstance(given, str) else given
    matched = False
    for secret in expected:
        matched |= hmac.compare_digest(given_bytes, secret.encode())
    return matched


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """``(user, password)`` from ``Authorization: Basic``; ``None`` if absent or garbled."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return user, password


def unauthorized(message: str = "missing or invalid credentials") -> IngestError:
    return IngestError(401, "unauthorized", message)


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Connectord-Signature`` header value for a body: ``t=<unix>,v1=<hex>``.

    The signature covers ``"<t>." + body`` with HMAC-SHA256, so a captured request
    cannot be replayed outside the tolerance window.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify_signature(
    header: str | None,
    body: bytes,
    secrets: list[str],
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> int:
    """Check a `sign` header; return its timestamp. Raises `IngestError` 401 otherwise."""
    if not header:
        raise unauthorized("missing X-Connectord-Signature header")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise unauthorized("malformed signature header; expected t=<unix>,v1=<hex>") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise unauthorized(
            f"signature timestamp is outside the {int(tolerance)} s window "
            "(replayed request or clock skew)"
        )
    expected = [
        hmac.new(s.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest() for s in secrets
    ]
    if not secrets_match(given, expected):
        raise unauthorized("signature does not match the body")
    return ts
