"""Piano's own ``piano-analytics-js`` (pinned in package.json) and our ``piano.collect``
destination send the same event to the same capture server: the requests must agree.

The SDK runs in headless Chromium on a page served from 127.0.0.1, configured as Piano's
docs tell site owners (``pa.setConfigurations({site, collectDomain})``, ``pa.setUser``,
``pa.sendEvent``). The capture server is the Piano emulator, which records each request's
query, headers and events. Our destination then sends the same event for the same
visitor; we compare the URL shape (path, ``s``, ``idclient``), the content type, and
every ``events[].data`` field both send: same keys, same JSON types, same values where
they do not depend on the moment or the device.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from connectord.plugins.piano.destination import PianoCollectDestination
from connectord.testing import deliver
from tests.plugins.piano.emulator import PianoEmulator

pytestmark = pytest.mark.e2e

SITE = 123456
EVENT = "order.completed"
PROPERTIES = {"order_total": 12.5, "currency": "EUR", "plan_name": "pro", "Mixed Case Key": "x"}

BROWSER_ONLY = {
    # What the SDK reads from the browser, the page or its own storage; a server-side
    # sender has no such source (Piano derives device data from User-Agent and IP).
    "pageview_id",
    "cookie_creation_date",
    "has_access",
    "device_screen_width",
    "device_screen_height",
    "device_display_width",
    "device_display_height",
    "browser_language",
    "browser_language_local",
    "previous_url",
    "page_title_html",
    "event_url_full",
    "device_local_hour",
    "device_hour",
}
"""Fields the SDK sends that the destination does not (docs/integrations/piano.md)."""


def page_html(collect_url: str) -> str:
    return f"""<!doctype html>
<html><head><title>Shop</title><script src="/piano-analytics.js"></script></head>
<body><script>
  pa.setConfigurations({{site: {SITE}, collectDomain: "{collect_url}"}});
  pa.setUser("user-42", "premium");
  pa.sendEvent("{EVENT}", {{
    order_total: 12.5, currency: "EUR", plan_name: "pro", "Mixed Case Key": "x"
  }});
</script></body></html>"""


def site_app(sdk: Path, collect_url: str) -> web.Application:
    """The customer's web site: one page and Piano's SDK, from another origin."""

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=page_html(collect_url), content_type="text/html")

    async def script(_: web.Request) -> web.Response:
        return web.Response(body=sdk.read_bytes(), content_type="application/javascript")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/piano-analytics.js", script)
    return app


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the SDK sent nothing")
        time.sleep(0.05)


def json_kind(value: Any) -> str:
    return type(value).__name__


def test_destination_sends_what_piano_analytics_js_sends(browser, node_modules, emulator_server):
    piano = PianoEmulator(api_keys={})
    collect = emulator_server(piano)
    sdk_file = node_modules / "piano-analytics-js" / "dist" / "browser" / "piano-analytics.js"
    site = emulator_server(site_app(sdk_file, collect.url))

    page = browser.new_page()
    try:
        page.goto(site.url + "/")
        wait_for(lambda: piano.collected)
    finally:
        page.close()
    (sdk_request,) = piano.requests_to("/event")
    (sdk_event,) = piano.collected
    visitor = sdk_event.idclient
    assert visitor, "the SDK sends idclient once it has a visitor id"

    sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record = {
        "type": "track",
        "event": EVENT,
        "userId": "user-42",
        "timestamp": sent_at,
        "properties": dict(PROPERTIES),
        "context": {"piano": {"idclient": visitor, "user_category": "premium"}},
    }
    options = {"site_id": SITE, "collection_domain": "collect.example.com", "base_url": collect.url}
    # Playwright's sync API owns this thread's event loop: deliver from another thread.
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(
            asyncio.run, deliver(PianoCollectDestination, options, [record])
        ).result()
    assert result.rejected == {} and result.retry == set()
    ours_request = piano.requests_to("/event")[1]
    ours_event = piano.collected[1]

    # The URL: same path, same query parameters, same site and visitor.
    assert ours_request.method == sdk_request.method == "POST"
    assert ours_request.path == sdk_request.path == "/event"
    assert set(ours_request.query) == set(sdk_request.query) == {"s", "idclient"}
    assert ours_request.query == sdk_request.query == {"s": str(SITE), "idclient": visitor}
    assert ours_request.headers["Content-Type"] == sdk_request.headers["Content-Type"]
    assert (ours_event.name, sdk_event.name) == (EVENT, EVENT)

    ours, theirs = ours_event.data, sdk_event.data
    # Every field we send, the SDK sends too, with the same JSON type.
    assert set(ours) <= set(theirs), set(ours) - set(theirs)
    assert {k: json_kind(v) for k, v in ours.items()} == {k: json_kind(theirs[k]) for k in ours}
    # What only the SDK sends is what only a browser knows.
    assert set(theirs) - set(ours) - {k for k in theirs if k.startswith("ch_ua")} == BROWSER_ONLY
    # Values that do not depend on the moment or the sender are equal.
    for key in (*PROPERTIES, "user_id", "user_category", "user_recognition"):
        assert ours[key] == theirs[key], key
    for key in ("visitor_privacy_mode", "visitor_privacy_consent"):
        assert ours[key] == theirs[key], key
    assert theirs["event_collection_platform"] == "js"
    assert ours["event_collection_platform"] == "connectord"
    # device_timestamp_utc: epoch seconds (a float with milliseconds) on both sides.
    assert isinstance(theirs["device_timestamp_utc"], float)
    assert abs(ours["device_timestamp_utc"] - theirs["device_timestamp_utc"]) < 120
    assert abs(theirs["device_timestamp_utc"] - time.time()) < 120
    assert piano.limit_breaches == []
