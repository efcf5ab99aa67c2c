"""HTTP handlers of the status page, its JSON API and the tap stream.

Actions reuse what the command line does: dead letters move with the same `Store`
calls as ``connectord dlq replay|purge``, and "Run now" leaves the same run request in
the state file as ``connectord sync`` does when the daemon runs the connector.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import orjson
import structlog
from aiohttp import web

from ..config import Config
from ..state import AsyncStore
from ..tap import hub
from . import render
from .data import read_shared_state, read_state, snapshot
from .security import COOKIE, SESSION_SECONDS, Guard, harden

STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
MAX_HOURS = 48
log = structlog.get_logger()
Health = Callable[[], tuple[bool, dict[str, Any]]]


class StatusViews:
    """One daemon's status page; ``config`` returns the running configuration."""

    def __init__(self, config: Callable[[], Config], state: Any, health: Health) -> None:
        self.config = config
        self.state = state  # the daemon's StateBackend
        self.health = health
        listen_host = config().daemon.listen.rpartition(":")[0].strip("[]")
        self.guard = Guard(listen_host, self._token)
        self.closing = asyncio.Event()

    def _token(self) -> str | None:
        token = self.config().daemon.admin_token
        return token.get_secret_value() if token is not None else None

    # --- access -------------------------------------------------------------------------

    def _locked(self, request: web.Request, *, api: bool) -> web.Response | None:
        """``None`` when the request may proceed; else the answer that refuses it."""
        if self.guard.allowed(request):
            return None
        configured = self._token() is not None
        if api:
            message = (
                "send Authorization: Bearer <[daemon] admin_token>"
                if configured
                else "off loopback this needs [daemon] admin_token, which is not set"
            )
            return web.json_response(
                {"error": "unauthorized", "message": message},
                status=401 if configured else 403,
                headers={"WWW-Authenticate": 'Bearer realm="connectord"'},
            )
        if configured:
            raise web.HTTPSeeOther("/ui/login")
        return _html(render.login_page(configured=False), status=403)

    def _session(self, request: web.Request) -> bool:
        return self.guard.session(request)

    # --- pages --------------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/")

    async def index(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._locked(request, api=False)) is not None:
            return denied
        data = await self._snapshot(_hours(request))
        html = render.status_page(
            data,
            csrf=self.guard.csrf(request),
            notice=self._notice(request),
            session=self._session(request),
        )
        return _html(html)

    def _notice(self, request: web.Request) -> str:
        done, name = request.query.get("done", ""), request.query.get("connector", "")
        count = request.query.get("n", "0")
        if name not in self.config().connectors or not count.isdigit():
            return ""
        letters = "dead letter" if count == "1" else "dead letters"
        return {
            "replay": f"Queued {count} {letters} of {name} for delivery.",
            "purge": f"Deleted {count} {letters} of {name}.",
            "sync": f"Asked the daemon to run {name} now (request {count}).",
        }.get(done, "")

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        if self.guard.allowed(request):
            raise web.HTTPSeeOther("/ui/")
        configured = self._token() is not None
        return _html(render.login_page(configured=configured), status=200 if configured else 403)

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if not self.guard.same_origin(request) or self._token() is None:
            return _html(render.login_page(configured=self._token() is not None), status=403)
        if not self.guard.token_matches(str(form.get("token", ""))):
            log.warning("ui.login_failed", peer=request.remote)
            await asyncio.sleep(0.5)  # slows guessing down
            return _html(render.login_page(error="Wrong token.", configured=True), status=401)
        log.info("ui.login", peer=request.remote)
        response = web.HTTPSeeOther("/ui/")
        response.set_cookie(
            COOKIE,
            self.guard.new_cookie(),
            max_age=SESSION_SECONDS,
            path="/ui",
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if not self.guard.form_ok(request, str(form.get("csrf", ""))):
            return _forbidden("the form is stale or came from another site; reload the page")
        response = web.HTTPSeeOther("/ui/login")
        response.del_cookie(COOKIE, path="/ui")
        raise response

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        suffix = name[name.rfind(".") :] if "." in name else ""
        folder = resources.files(__package__) / "static"
        if "/" in name or suffix not in STATIC_TYPES or not (folder / name).is_file():
            raise web.HTTPNotFound()
        return web.Response(body=(folder / name).read_bytes(), content_type=STATIC_TYPES[suffix])

    # --- JSON -----------------------------------------------------------------------------

    async def api_status(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._locked(request, api=True)) is not None:
            return denied
        data = await self._snapshot(_hours(request))
        return web.Response(body=orjson.dumps(data, default=str), content_type="application/json")

    async def _snapshot(self, hours: float) -> dict[str, Any]:
        config = self.config()
        store = getattr(self.state, "store", None)
        if isinstance(store, AsyncStore):  # SQLite: one read on the reader thread
            state = await store.read(read_state, list(config.connectors), hours)
        else:
            state = await read_shared_state(self.state, list(config.connectors))
        _, health = self.health()
        return snapshot(config, state, health, hours)

    # --- actions --------------------------------------------------------------------------

    async def action(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._locked(request, api=True)) is not None:
            return denied
        form = await request.post()
        if not self.guard.form_ok(request, str(form.get("csrf", ""))):
            return _forbidden("the form is stale or came from another site; reload the page")
        name, what = request.match_info["connector"], request.match_info["action"]
        connector = self.config().connectors.get(name)
        if connector is None:
            return web.json_response({"error": "not_found"}, status=404)
        ids = [int(i) for i in form.getall("id", []) if str(i).isdigit()] or None
        if what == "replay":
            count = await self.state.replay_dead_letters(name, ids)
        elif what == "purge":
            count = await self.state.purge_dead_letters(name, ids)
        elif what == "sync" and not connector.is_push and connector.enabled:
            count = await self.state.request_run(name)
        else:
            return web.json_response(
                {"error": "conflict", "message": f"{name} cannot {what}"}, status=409
            )
        log.info("ui.action", connector=name, action=what, ids=ids, count=count)
        if self.guard.bearer(request):
            return web.json_response({"connector": name, "action": what, "count": count})
        query = urlencode({"done": what, "connector": name, "n": count})
        raise web.HTTPSeeOther(f"/ui/?{query}#c-{name}")

    # --- tap ------------------------------------------------------------------------------

    async def tap(self, request: web.Request) -> web.StreamResponse:
        """Stream a connector's records as JSON lines; ``{"_tap": ...}`` lines report the
        subscription and how many records this watcher missed because it read too slowly."""
        if (denied := self._locked(request, api=True)) is not None:
            return denied
        name = request.match_info["connector"]
        if name not in self.config().connectors:
            return web.json_response({"error": "not_found"}, status=404)
        stage = "mapped" if request.query.get("mapped", "") in ("1", "true", "yes") else "raw"
        response = harden(web.StreamResponse(headers={"Content-Type": "application/x-ndjson"}))
        sub = hub.subscribe(name, stage)
        try:
            await response.prepare(request)
            await _meta(response, connector=name, stage=stage, buffer=sub.limit, dropped=0)
            await self._pump(response, sub)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            hub.unsubscribe(sub)
            log.info("ui.tap.closed", connector=name, stage=stage, dropped=sub.dropped)
        return response

    async def _pump(self, response: web.StreamResponse, sub: Any) -> None:
        reported, idle = 0, 0
        while not self.closing.is_set():
            line = await sub.next(1.0)
            if line is not None:
                idle, lines = 0, [line]
                while not sub.queue.empty() and len(lines) < 500:
                    lines.append(sub.queue.get_nowait())
                await response.write(b"".join(lines))
            else:
                idle += 1
            if sub.dropped != reported or idle >= 10:
                reported, idle = sub.dropped, 0
                await _meta(response, dropped=sub.dropped)


async def _meta(response: web.StreamResponse, **fields: Any) -> None:
    await response.write(orjson.dumps({"_tap": fields}) + b"\n")


def _hours(request: web.Request) -> float:
    with contextlib.suppress(ValueError):
        return min(MAX_HOURS, max(0.25, float(request.query.get("hours", "3"))))
    return 3.0


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _forbidden(message: str) -> web.Response:
    return web.json_response({"error": "forbidden", "message": message}, status=403)
