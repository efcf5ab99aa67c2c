"""The HTTP side of the daemon: push-source ingest, ``/healthz`` and ``/metrics``.

Push sources are mounted under ``/ingest/<connector>/`` followed by the vendor's own
paths. Routing looks the connector up at request time, so a reload that adds or
removes connectors needs no new routes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from . import __version__
from .errors import IngestError
from .ingest import BODY_LIMIT, BODY_TIMEOUT, json_response
from .metrics import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from .connector import ConnectorRuntime
    from .metrics import Metrics

log = structlog.get_logger()


def create_app(
    connectors: Callable[[], dict[str, ConnectorRuntime]],
    metrics: Metrics,
    health: Callable[[], tuple[bool, dict[str, Any]]],
    expected: Callable[[str], bool] = lambda name: False,
    max_body_bytes: int | None = None,
    body_timeout: float | None = None,
) -> web.Application:
    """The aiohttp application. ``connectors`` returns the live runtimes by name;
    ``expected`` tells whether a push connector of that name is configured and enabled;
    ``max_body_bytes`` (``[daemon] max_body_bytes``) caps every push endpoint's body on
    top of its own limit."""

    async def healthz(request: web.Request) -> web.Response:
        ok, detail = health()
        return json_response(
            {"status": "ok" if ok else "unavailable", "version": __version__, **detail},
            status=200 if ok else 503,
        )

    async def metrics_view(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def ingest(request: web.Request) -> web.StreamResponse:
        name = request.match_info["connector"]
        runtime = connectors().get(name)
        if runtime is None or not runtime.started:
            if expected(name):
                # Configured but (re)starting: the sender should retry, not give up.
                return json_response(
                    {
                        "error": "starting",
                        "message": f"connector {name!r} is starting; retry shortly",
                    },
                    status=503,
                    retry_after=5,
                )
            return json_response(
                {"error": "not_found", "message": f"no push connector named {name!r} is running"},
                status=404,
            )
        if not runtime.routes:
            return json_response(
                {"error": "not_found", "message": f"connector {name!r} has no push source"},
                status=404,
            )
        path = request.match_info["tail"].strip("/")
        handler = runtime.routes.get((request.method, path))
        if handler is None:
            methods = sorted(m for m, p in runtime.routes if p == path)
            if methods:
                return runtime.source.error_response(
                    IngestError(
                        405,
                        "method_not_allowed",
                        f"use {' or '.join(methods)} for /ingest/{name}/{path}",
                    )
                )
            paths = sorted({f"/ingest/{name}/{p}" for _, p in runtime.routes})
            return runtime.source.error_response(
                IngestError(
                    404,
                    "not_found",
                    f"unknown path /ingest/{name}/{path}; this connector serves {', '.join(paths)}",
                )
            )
        if max_body_bytes is not None:
            request[BODY_LIMIT] = max_body_bytes  # read_body honours it
        if body_timeout is not None:
            request[BODY_TIMEOUT] = body_timeout
        try:
            return await handler(request)
        except IngestError as err:
            metrics.requests_rejected.labels(name, err.code).inc()
            if err.status >= 500:
                runtime.log.warning("ingest.unavailable", code=err.code, message=err.message)
            else:
                runtime.log.info(
                    "ingest.rejected",
                    code=err.code,
                    status=err.status,
                    message=err.message,
                    path=path,
                )
            response = runtime.source.error_response(err)
            if err.code == "body_timeout":
                response.force_close()  # no keep-alive after a trickled body
            return response
        except Exception as err:
            metrics.requests_rejected.labels(name, "internal_error").inc()
            runtime.log.exception("ingest.crashed", path=path, error=repr(err))
            return runtime.source.error_response(
                IngestError(
                    500,
                    "internal_error",
                    "the daemon failed to handle this request; nothing was stored, retry later",
                )
            )

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_route("*", "/ingest/{connector}/{tail:.*}", ingest)
    return app


class CappedRunner(web.AppRunner):
    """An `aiohttp.web.AppRunner` that keeps at most ``max_connections`` client
    connections open: one more is answered ``503`` and closed before anything is read,
    so that idle or slow clients cannot take every file descriptor."""

    def __init__(self, app: web.Application, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.max_connections = max_connections

    async def _make_server(self) -> Any:
        return _CappedServer(await super()._make_server(), self.max_connections)


class _CappedServer:
    """aiohttp's protocol factory, refusing connections beyond the cap."""

    LOG_EVERY = 10.0  # seconds: a flood of refusals is one log line per interval

    def __init__(self, server: web.Server, cap: int) -> None:
        self._server = server
        self._cap = cap
        self._refused = 0
        self._logged_at = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    def __call__(self) -> asyncio.BaseProtocol:
        if len(self._server.connections) >= self._cap:
            self._refused += 1
            now = time.monotonic()
            if now - self._logged_at >= self.LOG_EVERY:
                log.warning(
                    "http.connection_refused",
                    reason="max_connections",
                    limit=self._cap,
                    refused=self._refused,
                )
                self._logged_at, self._refused = now, 0
            return _Busy()
        return self._server()


class _Busy(asyncio.Protocol):
    ANSWER = (
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.ANSWER)
        transport.close()


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)
