"""The HTTP side of the daemon: push-source ingest, ``/healthz`` and ``/metrics``.

Push sources are mounted under ``/ingest/<connector>/`` followed by the vendor's own
paths. Routing looks the connector up at request time, so a reload that adds or
removes connectors needs no new routes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from . import __version__
from .errors import IngestError
from .ingest import BODY_LIMIT, json_response
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
            return runtime.source.error_response(err)
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


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)
