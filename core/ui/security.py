"""Who may see the status page and press its buttons.

The rule: a request is *local* when the listener is bound to a loopback address, the
peer is loopback, no proxy header says it was forwarded, and the ``Host`` it asked for
is a loopback name (so a web page that rebinds its DNS name to 127.0.0.1 is not local).
Local requests are open. Every other request needs ``[daemon] admin_token``: as
``Authorization: Bearer`` or through the login form, which sets a signed, HttpOnly,
SameSite=Strict session cookie. Without a configured token, non-local requests are
refused. Browser POSTs also need the page's CSRF token and a same-origin ``Origin``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

COOKIE = "connectord_ui"
SESSION_SECONDS = 12 * 3600
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make form POSTs send Origin: null
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def request_host(request: web.Request) -> str:
    """The host name the client asked for, without the port."""
    host = request.headers.get("Host", "")
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """Decides access for one daemon; ``token`` returns the current admin token."""

    def __init__(self, listen_host: str, token: Callable[[], str | None]) -> None:
        self.listen_host = listen_host
        self.token = token
        self._csrf_key = secrets.token_bytes(32)

    # --- who is asking --------------------------------------------------------------

    def local(self, request: web.Request) -> bool:
        return (
            is_loopback(self.listen_host)
            and is_loopback(request.remote)
            and not any(h in request.headers for h in FORWARDING_HEADERS)
            and is_loopback(request_host(request))
        )

    def bearer(self, request: web.Request) -> bool:
        token = self.token()
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return bool(
            token
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), token.encode())
        )

    def session(self, request: web.Request) -> bool:
        return self.valid_cookie(request.cookies.get(COOKIE, ""))

    def allowed(self, request: web.Request) -> bool:
        return self.local(request) or self.bearer(request) or self.session(request)

    # --- sessions ---------------------------------------------------------------------

    def _session_key(self) -> bytes:
        token = self.token() or ""
        return hashlib.sha256(b"connectord-ui-session\0" + token.encode()).digest()

    def new_cookie(self, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + SESSION_SECONDS)
        body = f"{expires}.{secrets.token_urlsafe(16)}"
        mac = hmac.new(self._session_key(), body.encode(), "sha256").hexdigest()
        return f"{body}.{mac}"

    def valid_cookie(self, value: str, now: float | None = None) -> bool:
        if not self.token() or value.count(".") != 2:
            return False
        body, _, mac = value.rpartition(".")
        expected = hmac.new(self._session_key(), body.encode(), "sha256").hexdigest()
        if not hmac.compare_digest(mac, expected):
            return False
        expires = body.split(".", 1)[0]
        return expires.isdigit() and int(expires) > (time.time() if now is None else now)

    def token_matches(self, given: str) -> bool:
        token = self.token()
        return bool(token) and hmac.compare_digest(given.encode(), token.encode())

    # --- forms --------------------------------------------------------------------------

    def csrf(self, request: web.Request) -> str:
        """The CSRF token for this browser: bound to its session cookie (or to being
        local), valid for this daemon process only."""
        anchor = request.cookies.get(COOKIE, "") if not self.local(request) else "local"
        return hmac.new(self._csrf_key, anchor.encode(), "sha256").hexdigest()

    def same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None or origin == "null":
            return origin is None
        return origin.split("://", 1)[-1] == request.headers.get("Host", "")

    def form_ok(self, request: web.Request, given: str) -> bool:
        """A POST is genuine: bearer-authenticated (no browser sends that on its own),
        or same-origin with this browser's CSRF token."""
        if self.bearer(request):
            return True
        return self.same_origin(request) and hmac.compare_digest(given, self.csrf(request))


def harden(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.update(SECURITY_HEADERS)
    return response


def hardened(handler: Handler) -> Handler:
    """Add the security headers to whatever the handler answers (errors included)."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as err:
            harden(err)
            raise
        if not response.prepared:
            harden(response)
        return response

    wrapper.__doc__ = handler.__doc__
    return wrapper
