"""Outgoing HTTP: one session per connector, and vendor answers mapped to delivery errors.

Vendor clients (``plugins/<vendor>/client.py``) use `raise_for_status` so that every
plugin classifies failures the same way: 408/429/5xx and network errors are retryable
(honouring ``Retry-After``), 401/403 are credential problems, other 4xx are permanent.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import yarl

from . import __version__
from .backoff import Backoff
from .errors import AuthError, PermanentError, RetryableError
from .log import redact

T = TypeVar("T")
USER_AGENT = f"connectord/{__version__}"
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})


class RedirectRefused(RetryableError, aiohttp.ClientError):
    """A vendor answered with a redirect to another origin, which is not followed.

    aiohttp strips only ``Authorization`` when it follows a redirect to another host:
    vendor keys in custom headers (``x-pendo-integration-key``), webhook signatures and
    the request body itself would go to whoever the ``Location`` names. The request is
    retried like an outage, so nothing is dead-lettered over a misconfigured host.
    """


async def _same_origin_redirects_only(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Client middleware: refuse a redirect whose target is another origin (scheme, host
    or port), before aiohttp follows it. Runs for every hop, so a same-origin redirect
    that leads elsewhere on its next hop is refused too."""
    response = await handler(request)
    _refuse_foreign_redirect(request, response)
    return response


def _checked(middleware: Any) -> Any:
    """``middleware`` with the redirect check after it, as one middleware (the
    outermost, so that the check sees what the others let through).

    aiohttp runs each session middleware as a coroutine of its own, behind a closure it
    builds for every request: at thousands of requests a second (one per Pendo event)
    a second layer costs measurable CPU, so the check rides on the plugin's layer."""

    async def checked(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        response = await middleware(request, handler)
        _refuse_foreign_redirect(request, response)
        return response

    return checked


def _refuse_foreign_redirect(request: aiohttp.ClientRequest, response: Any) -> None:
    if response.status not in REDIRECT_STATUS:
        return
    location = response.headers.get("Location")
    if location:
        try:
            target = request.url.join(yarl.URL(location))
            foreign = target.origin() != request.url.origin()
        except ValueError:
            target, foreign = None, True
        if foreign:
            response.release()
            shown = target.origin() if target is not None else "an invalid location"
            raise RedirectRefused(
                f"{request.url.origin()} answered HTTP {response.status} redirecting to "
                f"{shown}; redirects to another host are not followed (credentials "
                "would go with them): set base_url to the address that answers"
            )


def new_session(
    *,
    timeout: float = 30.0,
    connect_timeout: float = 10.0,
    limit: int = 32,
    middlewares: tuple[Any, ...] = (),
) -> aiohttp.ClientSession:
    """A client session with TLS verification on, bounded timeouts, our user agent, and
    no redirect followed to another origin (every plugin's session comes from here)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout, connect=connect_timeout),
        connector=aiohttp.TCPConnector(limit=limit, ssl=True),
        headers={"User-Agent": USER_AGENT},
        raise_for_status=False,
        middlewares=(_checked(middlewares[0]), *middlewares[1:])
        if middlewares
        else (_same_origin_redirects_only,),
    )


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Parse ``Retry-After``: delta seconds or an HTTP date. ``None`` if absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def raise_for_status(status: int, headers: Any, body: str, *, vendor: str) -> None:
    """Raise the delivery error that matches an HTTP status; return quietly for 2xx/3xx."""
    if status < 400:
        return
    # Redact before shortening: cut first, a long echoed secret loses its tail and the
    # remaining head no longer matches the secret, so it would pass redaction.
    detail = _shorten(redact(body))
    message = (
        f"{vendor} answered HTTP {status}: {detail}"
        if detail
        else f"{vendor} answered HTTP {status}"
    )
    retry_after = retry_after_seconds(headers.get("Retry-After")) if headers else None
    if status in (401, 403):
        raise AuthError(message, retry_after=retry_after)
    if status in RETRYABLE_STATUS or status >= 500:
        raise RetryableError(message, retry_after=retry_after)
    raise PermanentError(message)


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = 5,
    backoff: Backoff | None = None,
    on_retry: Callable[[int, Exception, float], None] | None = None,
) -> T:
    """Run ``call`` until it succeeds, retrying `RetryableError` and network errors.

    For pull sources' reads: `AuthError` and `PermanentError` are raised at once; the
    last retryable error is raised after ``attempts`` tries.
    """
    backoff = backoff or Backoff(1.0, 60.0)
    for attempt in range(attempts):
        try:
            return await call()
        except AuthError:
            raise
        except (TimeoutError, RetryableError, aiohttp.ClientError) as err:
            if attempt + 1 >= attempts:
                if isinstance(err, RetryableError):
                    raise
                raise RetryableError(f"network error: {err!r}") from err
            retry_after = err.retry_after if isinstance(err, RetryableError) else None
            delay = backoff.delay(attempt, retry_after)
            if on_retry is not None:
                on_retry(attempt + 1, err, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
