"""The wire side of the Pushwoosh relay: the Device API methods it serves, the CORS
answers it gives, and how much of a body it reads.

Pushwoosh's SDKs call more methods than its docs list, and a relay that an SDK's host
points at must serve every one of them, or the SDK breaks (a 404 from ``getConfig``
stops the Web SDK's initialisation). Each method below names the source that shows it
is called on ``/json/1.3/``; the relay forwards all of them unchanged and records only
the ones `RELAY_METHODS` lists (both in `const`).

Authentication is Pushwoosh's, per method: every method here is a Device API method,
which takes the Device API token in ``Authorization: Token <token>`` (API access token
page). The SDKs send that header only when the site or app configures a token
(``apiToken`` in the Web SDK; pypushwoosh never does), so a call without it is
forwarded and Pushwoosh decides; a call with a token the relay does not know is
refused before its body is read.
"""

from __future__ import annotations

from aiohttp import web

from connectord import IngestError
from connectord.ingest import BODY_LIMIT, decompress

ALLOWED_HEADERS = "Authorization, Content-Type, Content-Encoding"
"""Answered to preflights that name no headers. The Web SDK asks for ``authorization``
only when a token is configured; its ``text/plain`` body needs no preflight at all."""


def cors_headers(request: web.Request, origins: tuple[str, ...]) -> dict[str, str]:
    """CORS headers for ``request``'s ``Origin``, or none when the origin is not allowed.

    The Web SDK sends ``credentials: "include"`` with its token header, and a browser
    then accepts only its own origin echoed with ``Access-Control-Allow-Credentials``
    (Fetch standard, CORS protocol), never ``*``: so the origin is echoed.
    """
    origin = request.headers.get("Origin")
    if not origin or ("*" not in origins and origin not in origins):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def preflight(request: web.Request, origins: tuple[str, ...]) -> web.Response:
    """Answer an ``OPTIONS`` preflight: 204 with the CORS grant, or 403 for an origin
    the operator did not allow."""
    headers = cors_headers(request, origins)
    if not headers:
        return web.Response(status=403, text="origin not allowed")
    asked = request.headers.get("Access-Control-Request-Headers", "").strip()
    headers.update(
        {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": asked or ALLOWED_HEADERS,
            "Access-Control-Max-Age": "86400",
        }
    )
    headers["Vary"] = "Origin, Access-Control-Request-Headers"
    return web.Response(status=204, headers=headers)


async def read_call(
    request: web.Request, *, limit: int, decoded_limit: int, trusted: bool
) -> tuple[bytes, bytes]:
    """The body as it came (to forward unchanged) and decoded (to read), refusing more
    than ``limit`` bytes on the wire (or the daemon-wide limit, if smaller) and
    ``decoded_limit`` after gzip/deflate. ``trusted``: the caller's token was checked,
    so a refusal need not point at the limit for calls without one."""
    limit = min(limit, request.get(BODY_LIMIT, limit))
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit, trusted)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, trusted)
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw, raw
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            return raw, decompress(raw, encoding, decoded_limit)
        except IngestError as err:
            if err.status == 413:
                raise _too_large(decoded_limit, trusted, "decompressed ") from None
            raise
    raise IngestError(
        415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported"
    )


def _too_large(limit: int, trusted: bool, what: str = "") -> IngestError:
    hint = "" if trusted else "; calls without Authorization: Token are held to this limit"
    return IngestError(413, "body_too_large", f"{what}request body exceeds {limit} bytes{hint}")
