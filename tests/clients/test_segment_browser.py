"""Segment's own browser library, ``@segment/analytics-next``, against the real daemon.

The library's npm build (``dist/umd``, pinned in ``package.json``) is served by a page
on another origin than the daemon, configured as ``docs/integrations/segment-pendo.md``
says for a self-hosted setup: settings given inline (``cdnSettings``), no request to
Segment's CDN. It runs in headless Chromium, so CORS is the browser's, not ours: the
preflights, the ``Authorization`` header the library always sends and the
``X-Retry-Count`` header it adds to every retry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from connectord.testing import EmulatorServer
from tests.plugins.pendo.emulator import INTEGRATION_KEY, TRACK_SECRET, PendoEmulator

pytestmark = pytest.mark.e2e

WRITE_KEY = "browser-write-key-1234"
PAGE = """<!doctype html>
<html><head><title>Shop</title>
<script src="/analytics-next/bundles/index.js"></script>
</head><body>shop</body></html>
"""
LOAD = """async ([writeKey, apiHost]) => {
  // As the integration guide says: settings inline, bundles from our own origin.
  const [analytics] = await window.AnalyticsNext.AnalyticsBrowser.load(
    {
      writeKey,
      cdnURL: window.location.origin,
      cdnSettings: {
        integrations: { "Segment.io": { apiKey: writeKey, apiHost, protocol: "http" } },
        metrics: { sampleRate: 0 },
      },
    },
  );
  window.analytics = analytics;
  return true;
}"""


def config(pendo_url: str) -> str:
    return f"""
[connectors.seg]
source = {{ type = "segment.http", write_key = "{WRITE_KEY}" }}
mapping = [{{ type = "segment.to_pendo" }}]

[connectors.seg.destination]
type = "pendo"
track_secret = "{TRACK_SECRET}"
integration_key = "{INTEGRATION_KEY}"
base_url = "{pendo_url}"

[connectors.seg.delivery]
max_queue = 1
retry_initial = 0.2
retry_max = 0.5
"""


def site(node_modules: Path) -> web.Application:
    """The customer's web site: the page and the library's bundles, nothing else."""
    bundles = node_modules / "@segment" / "analytics-next" / "dist" / "umd"

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_static("/analytics-next/bundles/", bundles)
    return app


class Traffic:
    """What the browser sent to the daemon and what it was answered, per request."""

    def __init__(self, daemon_url: str) -> None:
        self.daemon_url = daemon_url
        self.sent: list[dict[str, Any]] = []
        self.failed: list[str] = []

    def request(self, request: Any) -> None:
        if request.url.startswith(self.daemon_url):
            headers = request.headers
            self.sent.append(
                {
                    "method": request.method,
                    "url": request.url,
                    "retry": headers.get("x-retry-count"),
                }
            )

    def response(self, response: Any) -> None:
        for entry in reversed(self.sent):
            if entry["url"] == response.url and "status" not in entry:
                entry["status"] = response.status
                break

    def request_failed(self, request: Any) -> None:
        if request.url.startswith(self.daemon_url):
            self.failed.append(f"{request.method} {request.url}: {request.failure}")


def wait(page: Any, predicate: Any, daemon: Any, timeout: float = 60) -> None:
    """Poll through Playwright, so that the page's events reach our listeners."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not arrived in {timeout}s\n{daemon.logs()[-3000:]}")
        page.wait_for_timeout(100)


def test_analytics_next_retries_after_a_503_and_every_event_arrives(
    browser, node_modules, connectord_daemon, emulator_server
):
    pendo = PendoEmulator()
    pendo_server = emulator_server(pendo)
    daemon = connectord_daemon(config(pendo_server.url))
    page_server = EmulatorServer(site(node_modules)).start()
    try:
        # Pendo is down: the first message fills the one-record queue, the others get
        # 503 queue_full until Pendo is back, and the library retries them.
        pendo.fail_until(time.time() + 3, status=503)
        traffic = Traffic(daemon.url)
        context = browser.new_context()
        page = context.new_page()
        page.on("request", traffic.request)
        page.on("response", traffic.response)
        page.on("requestfailed", traffic.request_failed)
        page_origin = page_server.url.replace("127.0.0.1", "localhost")
        assert page_origin != daemon.url
        page.goto(page_origin + "/")
        api_host = daemon.url.removeprefix("http://") + "/ingest/seg/v1"
        assert page.evaluate(LOAD, [WRITE_KEY, api_host])
        sent = [
            ("identify", "user-1", {"plan": "pro", "seats": 3}),
            ("track", "Product Viewed", {"sku": "A-1", "price": 9.5}),
            ("track", "Product Added", {"sku": "A-1", "quantity": 2}),
            ("track", "Checkout Started", {"total": 19, "currency": "EUR"}),
        ]
        page.evaluate(
            """async (calls) => {
              for (const [method, first, second] of calls) {
                if (method === "identify") await window.analytics.identify(first, second);
                else window.analytics.track(first, second);
              }
            }""",
            sent,
        )

        started = time.monotonic()
        wait(page, lambda: len(pendo.events) == 3 and pendo.visitor("user-1"), daemon)
        print(f"all arrived {time.monotonic() - started:.1f}s after the calls")
        events = {e["event"]: e for e in pendo.events}
        for _, name, properties in sent[1:]:
            assert events[name]["properties"] == properties
            assert events[name]["visitorId"] == "user-1"
            assert events[name]["context"]["url"] == page_origin + "/"
        assert pendo.visitor("user-1") == {"plan": "pro", "seats": 3}
        assert len(pendo.events) == 3  # nothing twice

        to_ingest = [t for t in traffic.sent if t["method"] == "POST"]
        refused = [t for t in to_ingest if t.get("status") == 503]
        retried = [t for t in to_ingest if t["retry"] is not None]
        assert refused, json.dumps(traffic.sent, indent=1)  # the queue was full
        assert retried and all(t.get("status") in (200, 503) for t in retried)
        assert any(t.get("status") == 200 for t in retried), json.dumps(traffic.sent)
        assert traffic.failed == []  # no CORS failure, no preflight refused
        context.close()
    finally:
        page_server.stop()


def test_analytics_next_events_sent_while_the_daemon_restarts_arrive(
    browser, node_modules, connectord_daemon, emulator_server
):
    """While the daemon is down the library's requests fail at the network level; its
    retries (with ``X-Retry-Count``) must get through once the daemon is back."""
    pendo = PendoEmulator()
    daemon = connectord_daemon(config(emulator_server(pendo).url))
    page_server = EmulatorServer(site(node_modules)).start()
    try:
        traffic = Traffic(daemon.url)
        context = browser.new_context()
        page = context.new_page()
        page.on("request", traffic.request)
        page.on("response", traffic.response)
        page.goto(page_server.url.replace("127.0.0.1", "localhost") + "/")
        api_host = daemon.url.removeprefix("http://") + "/ingest/seg/v1"
        assert page.evaluate(LOAD, [WRITE_KEY, api_host])
        page.evaluate("() => window.analytics.identify('user-2', { plan: 'free' })")
        wait(page, lambda: pendo.visitor("user-2"), daemon)

        daemon.kill()
        page.evaluate(
            """() => {
              window.analytics.track("Search", { query: "boots" });
              window.analytics.track("Filter", { size: 42 });
            }"""
        )
        page.wait_for_timeout(1500)  # a few attempts fail while nothing listens
        daemon.start()
        wait(page, lambda: len(pendo.events) == 2, daemon)
        events = {e["event"]: e["properties"] for e in pendo.events}
        assert events == {"Search": {"query": "boots"}, "Filter": {"size": 42}}
        retried = [t for t in traffic.sent if t["method"] == "POST" and t["retry"]]
        assert any(t.get("status") == 200 for t in retried), json.dumps(traffic.sent)
        context.close()
    finally:
        page_server.stop()
