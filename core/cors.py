"""CORS for push sources that browsers post to.

A push source that takes traffic from web pages declares ``cors_headers`` (a class
attribute: the ``Access-Control-*`` headers to send). This middleware then puts them on
*every* answer under ``/ingest/<connector>/``, including the ones the framework makes
itself (``503`` while the connector starts or its queue is full, ``404``/``405``,
``500``), and answers preflights (``OPTIONS`` with ``Access-Control-Request-Method``)
for any path of that connector. Without them a browser hides the answer from the
library, which then cannot honour ``Retry-After`` or tell a refusal from an outage.

The policy follows the configuration, not the running connector, so a connector that
is (re)starting already answers with the headers its source declares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Policy = Callable[[str], Mapping[str, str] | None]

PREFLIGHT_ONLY = (
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
)
"""Headers that belong on preflight answers only."""


def source_policy(config: Callable[[], Any]) -> Policy:
    """The CORS headers the push source of connector ``name`` declares, per the live
    configuration (``config()`` returns the daemon's current `Config`)."""

    def policy(name: str) -> Mapping[str, str] | None:
        connector = config().connectors.get(name)
        if connector is None or not connector.enabled or not connector.is_push:
            return None
        headers = getattr(connector.source.plugin.cls, "cors_headers", None)
        return headers if isinstance(headers, Mapping) else None

    return policy


def middleware(policy: Policy) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware applying ``policy`` to ``/ingest/<connector>/`` routes."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        name = request.match_info.get("connector")
        headers = policy(name) if name else None
        if not headers:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return web.Response(status=204, headers=dict(headers))
        simple = {k: v for k, v in headers.items() if k not in PREFLIGHT_ONLY}
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(simple)
            raise
        if not response.prepared:
            response.headers.update(simple)
        return response

    return cors


def install(app: web.Application, config: Callable[[], Any]) -> None:
    """Add the middleware to the daemon's application (before it starts)."""
    app.middlewares.append(middleware(source_policy(config)))
