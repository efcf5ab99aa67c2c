"""Pushwoosh's own clients pointed at the relay in the real daemon.

- The Web SDK (npm ``web-push-notifications`` 3.55.0) in headless Chromium, on a page
  served from another origin, configured as Pushwoosh's docs tell site owners
  (``Pushwoosh.push(['init', {...}])``) with ``pushwooshUrl`` set to the relay: with and
  without ``apiToken`` (with one, every call is preflighted and sent with
  ``credentials: "include"``).
- ``pypushwoosh`` 0.3.1 (PyPI), whose commands never carry a Device API token.

Their calls must succeed, reach Pushwoosh byte for byte, and what the relay maps must
reach the destination.
"""

from __future__ import annotations

import functools
import shutil
import sqlite3
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from tests.plugins.pushwoosh.test_relay_sdk import SdkPushwoosh

pytestmark = pytest.mark.e2e

APP = "ABCDE-12345"
DEVICE = "devtok"

PAGE = """<!doctype html><html><head><title>shop</title>
<script src="/npm.js"></script></head><body><script>
window.outcome = null;
const pw = new Pushwoosh();
pw.addEventHandler('ready', async () => {
  try {
    await pw.api.setTags({Plan: 'pro', Seats: 5});
    await pw.api.postEvent('Order Completed', {total: 12.5, currency: 'EUR'});
    const tags = await pw.api.getTags();
    await pw.api.pushStat('hash-1');
    window.outcome = {ok: true, tags: tags, hwid: await pw.getHWID()};
  } catch (error) {
    window.outcome = {ok: false, error: String(error)};
  }
});
pw.push(['init', INIT]);
</script></body></html>
"""


@pytest.fixture
def site(tmp_path, node_modules):
    """Serves a page with the Web SDK from its own origin; yields a function that writes
    the page's init parameters and returns its URL."""
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(node_modules / "web-push-notifications" / "npm.js", root / "npm.js")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def page(init: dict) -> str:
        (root / "index.html").write_text(PAGE.replace("INIT", orjson.dumps(init).decode()))
        return f"http://127.0.0.1:{server.server_address[1]}/index.html"

    yield page
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def start_relay(connectord_daemon, emulator_server, extra: str = ""):
    """The daemon with a ``pushwoosh.relay`` connector ``pw`` in front of an upstream
    Pushwoosh, writing records to a SQLite warehouse."""
    upstream = SdkPushwoosh(application=APP, device_token=DEVICE)
    url = emulator_server(upstream).url
    daemon = connectord_daemon(
        f"""
[connectors.pw]
source = {{ type = "pushwoosh.relay", application = "{APP}", device_token = "{DEVICE}", \
base_url = "{url}"{extra} }}
destination = {{ type = "warehouse", url = "sqlite:///warehouse.db" }}
"""
    )
    return daemon, upstream


@pytest.fixture
def relay_daemon(connectord_daemon, emulator_server):
    return start_relay(connectord_daemon, emulator_server)


def sdk_init(daemon, token: str | None) -> dict:
    init = {
        "applicationCode": APP,
        "pushwooshUrl": f"{daemon.url}/ingest/pw/json/1.3/",
        "userId": "user-web-1",
        "logLevel": "error",
        "autoSubscribe": False,
    }
    if token:
        init["apiToken"] = token
    return init


def rows(daemon, sql):
    path = daemon.config.parent / "warehouse.db"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:  # table not created yet
            return []


@pytest.mark.parametrize("token", [DEVICE, None], ids=["apiToken", "no-token"])
def test_web_sdk_in_a_browser_works_through_the_relay(browser, site, relay_daemon, token):
    daemon, upstream = relay_daemon
    page_url = site(sdk_init(daemon, token))
    context = browser.new_context()
    try:
        page = context.new_page()
        seen: list[tuple[str, str, int]] = []
        page.on(
            "response",
            lambda r: seen.append((r.request.method, r.url.rsplit("/", 1)[1], r.status)),
        )
        page.goto(page_url)
        page.wait_for_function("window.outcome !== null", timeout=20_000)
        outcome = page.evaluate("window.outcome")
    finally:
        context.close()
    assert outcome["ok"], (outcome, seen)
    assert outcome["tags"]["result"] == {"Plan": "pro", "Seats": 5}

    relayed = [(m, name, status) for m, name, status in seen if m in ("POST", "OPTIONS")]
    assert all(status in (200, 204) for _, _, status in relayed), relayed
    methods = {name for m, name, _ in relayed if m == "POST"}
    assert {"getConfig", "applicationOpen", "registerUser", "setTags", "postEvent"} <= methods
    assert "getTags" in methods
    assert "pushStat" in methods

    # forwarded as the SDK sent them: text/plain bodies, the token header if configured.
    # A browser sends that header cross-origin only after the relay answered the
    # preflight (Chromium does not show preflights to the page's response events).
    [event] = upstream.requests_to("/json/1.3/postEvent")
    assert event.headers["Content-Type"] == "text/plain;charset=UTF-8"
    assert event.headers.get("Authorization") == (f"Token {token}" if token else None)
    assert event.json()["request"]["attributes"] == {"total": 12.5, "currency": "EUR"}
    assert upstream.events_of("user-web-1")[0]["event"] == "Order Completed"

    daemon.wait_for(
        lambda: rows(daemon, "select user_id, total, currency from order_completed"),
        message="the event in the warehouse",
    )
    assert rows(daemon, "select user_id, total, currency from order_completed") == [
        ("user-web-1", 12.5, "EUR")
    ]
    daemon.wait_for(lambda: rows(daemon, "select id, plan from users"), message="users row")
    assert ("user-web-1", "pro") in rows(daemon, "select id, plan from users")


def test_an_origin_the_operator_did_not_allow_gets_nothing_through(
    browser, site, connectord_daemon, emulator_server
):
    """The control for the test above: with the page's origin not allowed, the
    preflight is refused and the browser sends no call at all."""
    extra = ', cors_origins = ["https://shop.example"]'
    daemon, upstream = start_relay(connectord_daemon, emulator_server, extra)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site(sdk_init(daemon, DEVICE)))
        page.wait_for_timeout(3000)
        assert page.evaluate("window.outcome") is None  # the SDK never got ready
    finally:
        context.close()
    assert upstream.requests_to("/json/1.3/") == []


def test_pypushwoosh_works_through_the_relay(relay_daemon):
    from pypushwoosh.client import PushwooshClient
    from pypushwoosh.command import (
        GetTagsCommand,
        PushStatCommand,
        RegisterDeviceCommand,
        SetBadgeCommand,
        SetTagsCommand,
    )

    daemon, upstream = relay_daemon
    client = PushwooshClient(timeout=10)
    client.scheme = "http"
    client.hostname = daemon.listen
    client.endpoint = "ingest/pw/json"  # the host and path are the only change

    answers = [
        client.invoke(RegisterDeviceCommand(APP, "hwid-py-1", 3, "push-token-1", "en", 3600)),
        client.invoke(SetTagsCommand(APP, "hwid-py-1", {"Plan": "pro"})),
        client.invoke(SetBadgeCommand(APP, "hwid-py-1", 3)),
        client.invoke(PushStatCommand(APP, "hwid-py-1", "hash-1")),
        client.invoke(GetTagsCommand(APP, "hwid-py-1", auth=DEVICE)),
    ]
    assert [a["status_code"] for a in answers] == [200] * 5, answers
    assert answers[-1]["response"]["result"] == {"Plan": "pro"}

    [sent] = upstream.requests_to("/json/1.3/registerDevice")
    assert sent.headers["User-Agent"] == "PyPushwooshClient"
    assert sent.headers["Content-Type"] == "application/json"
    assert "Authorization" not in sent.headers  # pypushwoosh sends no token; none added
    assert sent.json()["request"]["push_token"] == "push-token-1"

    # the device has no user id: its identifies are anonymous, keyed by the hwid
    sql = "select anonymous_id, language, plan from identifies"
    daemon.wait_for(lambda: len(rows(daemon, sql)) == 2, message="two identifies")
    assert rows(daemon, sql) == [("hwid-py-1", "en", None), ("hwid-py-1", "en", "pro")]
    assert daemon.stop() == 0
