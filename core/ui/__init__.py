"""The status page served by the daemon at ``/ui/`` (``/`` redirects there).

`install` adds its routes to the daemon's aiohttp application and runs the sampler that
keeps the per-minute history the charts draw. Routes:

- ``GET /ui/``: the page; ``GET /ui/login``, ``POST /ui/login``, ``POST /ui/logout``
- ``GET /ui/api/status``: the same figures as JSON (what ``connectord top`` reads)
- ``GET /ui/api/tap/{connector}[?mapped=1]``: records as JSON lines (``connectord tap``)
- ``POST /ui/connectors/{connector}/dead-letters/{replay|purge}``, ``.../sync``
- ``GET /ui/static/{name}``: the stylesheet, script and icon shipped in this package

Access rules are in `connectord.ui.security`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..config import Config
from ..state import AsyncStore
from .history import sampler_context
from .security import hardened
from .views import Health, StatusViews

__all__ = ["install"]


def install(
    app: web.Application, config: Callable[[], Config], state: Any, health: Health
) -> StatusViews:
    """Mount the status page on ``app`` (``state``: the daemon's `StateBackend`); call
    before the application starts."""
    views = StatusViews(config, state, health)
    routes = app.router
    routes.add_get("/", hardened(views.root))
    routes.add_get("/ui", hardened(views.root))
    routes.add_get("/ui/", hardened(views.index))
    routes.add_get("/ui/login", hardened(views.login_form))
    routes.add_post("/ui/login", hardened(views.login))
    routes.add_post("/ui/logout", hardened(views.logout))
    routes.add_get("/ui/static/{name}", hardened(views.static))
    routes.add_get("/ui/api/status", hardened(views.api_status))
    routes.add_get("/ui/api/tap/{connector}", views.tap)
    routes.add_post(
        "/ui/connectors/{connector}/dead-letters/{action:replay|purge}", hardened(views.action)
    )
    routes.add_post("/ui/connectors/{connector}/{action:sync}", hardened(views.action))
    store = getattr(state, "store", None)
    if isinstance(store, AsyncStore):  # the charts' history lives in SQLite state only
        app.cleanup_ctx.append(
            sampler_context(store, lambda: [c.name for c in config().connectors.values()])
        )

    async def closing(_app: web.Application) -> None:
        views.closing.set()

    app.on_shutdown.append(closing)
    return views
