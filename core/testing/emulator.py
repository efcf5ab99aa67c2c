"""Run vendor emulators on 127.0.0.1 and inject the faults real vendors produce."""

from __future__ import annotations

import asyncio
import base64
import hmac
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EmulatorServer:
    """Serve an aiohttp app on 127.0.0.1 from a background thread with its own loop.

    Use as a context manager; ``url`` is ``http://127.0.0.1:<port>``. Running in a
    thread means a blocking client (``requests``-based SDKs) in the test does not
    freeze the emulator.
    """

    def __init__(self, app: web.Application, *, port: int = 0) -> None:
        self.app = app
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self._serve, name="emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("emulator did not start within 10 s")
        if self._error is not None:
            raise self._error
        return self

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as err:  # report to the starting thread
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
        self.loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the emulator's loop thread and return its result."""
        assert self.loop is not None
        if inspect.iscoroutinefunction(fn):
            return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(10)
        done: asyncio.Future[Any] = asyncio.run_coroutine_threadsafe(_call_sync(fn), self.loop)
        return done.result(10)

    def stop(self) -> None:
        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


async def _call_sync(fn: Callable[[], Any]) -> Any:
    return fn()


@dataclass
class RecordedRequest:
    """One request an emulator received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass
class Fault:
    """A canned failure: ``status`` (with ``headers``/``body``), or ``delay`` seconds of
    silence before answering (a timeout), or ``hang`` (never answer), or ``disconnect``
    (close the connection without an answer, as a crashing load balancer does).

    ``delay`` with ``status=0`` lets the real handler answer late (a slow vendor).
    """

    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    hang: bool = False
    disconnect: bool = False
    paths: tuple[str, ...] = ()
    """Only requests whose path starts with one of these; empty matches all."""


class VendorEmulator:
    """Base for a vendor emulator: an aiohttp app that records requests and injects faults.

    Subclass it, add routes in `setup_routes`, and check auth in handlers with
    `require_bearer`, `require_basic`, `require_header` or `require_query` (override
    `unauthorized` to answer in the vendor's error format). Page through lists with
    `connectord.testing.paginate`.

    Faults are taken before handlers run: `fail_next` queues a number of failures,
    `throttle_next` queues 429s with ``Retry-After``, `fail_until` keeps failing until a
    time (an outage), `clear_faults` ends them. `reset` forgets requests and faults.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._outage: tuple[float, Fault] | None = None
        self.app = web.Application(middlewares=[self._middleware], client_max_size=64 * 2**20)
        self.setup_routes(self.app)

    def setup_routes(self, app: web.Application) -> None:
        """Add the vendor's routes to ``app``."""

    # --- faults ------------------------------------------------------------------------

    def fail_next(self, count: int = 1, **fault: Any) -> None:
        """The next ``count`` matching requests get `Fault(**fault)`."""
        self._faults.extend(Fault(**fault) for _ in range(count))

    def fail_until(self, until: float, **fault: Any) -> None:
        """Every matching request fails until ``time.time() >= until``."""
        self._outage = (until, Fault(**fault))

    def throttle_next(
        self, count: int = 1, *, retry_after: float = 1, body: Any = None, **fault: Any
    ) -> None:
        """The next ``count`` matching requests get 429 with ``Retry-After``."""
        headers = {"Retry-After": f"{retry_after:g}", **fault.pop("headers", {})}
        payload = body if body is not None else {"error": "rate limited"}
        self.fail_next(count, status=429, headers=headers, body=payload, **fault)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._outage = None

    def reset(self) -> None:
        """Forget recorded requests and pending faults (between phases of a test)."""
        self.requests.clear()
        self.clear_faults()

    # --- auth -------------------------------------------------------------------------

    def unauthorized(self, message: str) -> web.HTTPException:
        """The error an auth helper raises; override to match the vendor's format."""
        return web.HTTPUnauthorized(
            text=orjson.dumps({"error": "unauthorized", "message": message}).decode(),
            content_type="application/json",
        )

    def require_bearer(self, request: web.Request, *tokens: str) -> str:
        """Check ``Authorization: Bearer <token>`` against the accepted tokens."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not _accepted(value.strip(), tokens):
            raise self.unauthorized("missing or wrong bearer token")
        return value.strip()

    def require_basic(self, request: web.Request, user: str, password: str) -> str:
        """Check ``Authorization: Basic`` for ``user:password``; return the user."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        try:
            given = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            given = ""
        if scheme.lower() != "basic" or not _accepted(given, (f"{user}:{password}",)):
            raise self.unauthorized("missing or wrong basic credentials")
        return user

    def require_header(self, request: web.Request, name: str, *values: str) -> str:
        """Check that header ``name`` holds one of ``values`` (API-key headers)."""
        given = request.headers.get(name, "")
        if not _accepted(given, values):
            raise self.unauthorized(f"missing or wrong {name} header")
        return given

    def require_query(self, request: web.Request, name: str, *values: str) -> str:
        """Check that query parameter ``name`` holds one of ``values``."""
        given = request.query.get(name, "")
        if not _accepted(given, values):
            raise self.unauthorized(f"missing or wrong {name} parameter")
        return given

    def _take_fault(self, path: str) -> Fault | None:
        if self._outage is not None:
            until, fault = self._outage
            if time.time() < until:
                if _matches(fault, path):
                    return fault
            else:
                self._outage = None
        for index, fault in enumerate(self._faults):
            if _matches(fault, path):
                return self._faults.pop(index)
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                body,
                time.time(),
            )
        )
        fault = self._take_fault(request.path)
        if fault is not None:
            if fault.hang:
                await asyncio.sleep(3600)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.disconnect:
                if request.transport is not None:
                    request.transport.close()
                raise asyncio.CancelledError()
            if fault.status:
                payload = fault.body if fault.body is not None else {"error": "injected fault"}
                data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
                return web.Response(
                    body=data,
                    status=fault.status,
                    headers=fault.headers,
                    content_type="application/json",
                )
        return await handler(request)

    # --- inspection --------------------------------------------------------------------

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def last_request(self, path_prefix: str = "") -> RecordedRequest:
        """The most recent request whose path starts with ``path_prefix``."""
        found = self.requests_to(path_prefix)
        if not found:
            seen = sorted({r.path for r in self.requests}) or ["nothing"]
            raise AssertionError(f"no request to {path_prefix!r}; received: {', '.join(seen)}")
        return found[-1]

    def serve(self) -> EmulatorServer:
        """An `EmulatorServer` for this emulator (not started)."""
        return EmulatorServer(self.app)


def _matches(fault: Fault, path: str) -> bool:
    return not fault.paths or any(path.startswith(p) for p in fault.paths)


def _accepted(given: str, expected: tuple[str, ...] | list[str]) -> bool:
    """Constant-time comparison against every accepted value, as a vendor does."""
    matched = False
    for value in expected:
        matched |= hmac.compare_digest(given.encode(), value.encode())
    return bool(given) and matched


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """An emulator answer with an orjson body."""
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )
