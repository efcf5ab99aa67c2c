"""The status page in a real browser (Debian's Chromium, headless) against the real
daemon: it renders without console errors or CSP violations, shows what flowed, replays
a dead letter when its button is clicked, and asks for the token off loopback.

Screenshots are written next to the test's temporary files (the path is printed) for a
person to look at.
"""

from __future__ import annotations

import re

import orjson
import pytest

from connectord.testing import DaemonProcess, write_config
from connectord.testing.daemon import free_port
from tests.emulators.sink import SinkEmulator

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN = "admin-token-0123456789abcdef"
PIANO_KEY = "piano-access_key_secret"


def relay(sink_url: str) -> str:
    return f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{sink_url}/hook", batch_size = 20 }}
delivery = {{ retry_initial = 0.2, retry_max = 1.0 }}

[connectors.nightly]
enabled = false
schedule = "0 2 * * *"
source = {{ type = "piano.segment", site_id = "1", api_key = "{PIANO_KEY}", segments = ["s1"] }}
destination = {{ type = "warehouse", url = "sqlite:///nightly.db" }}
"""


def events(count: int, start: int = 0) -> list[dict]:
    return [
        {
            "type": "track",
            "userId": f"u{i}",
            "event": "Order Completed",
            "messageId": f"m-{i}",
            "properties": {"n": i, "card": f"paid with {TOKEN}"},
        }
        for i in range(start, start + count)
    ]


class Watch:
    """Console errors, page errors and failed requests of one page."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        page.on(
            "console",
            lambda m: (
                m.type in ("error", "warning") and self.problems.append(f"{m.type}: {m.text}")
            ),
        )
        page.on("pageerror", lambda err: self.problems.append(f"pageerror: {err}"))
        page.on("requestfailed", self._failed)
        page.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"),
        )

    def _failed(self, request) -> None:
        # A load the browser itself cancelled because the page navigated or refreshed
        # meanwhile (the favicon during a form POST) is not a fault of the page; an
        # asset that is missing or refused shows up as an HTTP status above.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed: {request.url} {request.failure}")


def figure(page, name: str, connector: str = "relay") -> str:
    return page.locator(f'#c-{connector} [data-figure="{name}"] dd').inner_text()


def test_status_page_shows_flow_and_replays_a_dead_letter_by_click(
    browser, connectord_daemon, emulator_server, tmp_path
):
    sink = SinkEmulator()
    daemon = connectord_daemon(relay(emulator_server(sink).url))
    sink.fail_next(1, status=422, body={"error": "unprocessable"})
    assert daemon.post("/ingest/relay/", events(1), headers=AUTH)[0] == 200
    daemon.wait_for(lambda: sink.requests, message="the refused attempt")
    assert daemon.post("/ingest/relay/", events(24, start=1), headers=AUTH)[0] == 200
    daemon.wait_for(lambda: len(sink.received) == 24, timeout=30, message="24 delivered")

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    watch = Watch(page)
    page.goto(f"{daemon.url}/ui/")
    page.wait_for_load_state("networkidle")
    # The 10-second refresh would race the clicks below; the checkbox stops it (and is
    # remembered for the next pages of this browser).
    page.uncheck("#live")
    assert figure(page, "received") == "25"
    assert figure(page, "delivered") == "24"
    assert figure(page, "dead letters") == "1"
    row = page.locator("#c-relay tr[data-dead-letter]")
    assert row.count() == 1
    assert "HTTP 422" in row.locator(".reason").inner_text()
    content = page.content()
    assert TOKEN not in content and PIANO_KEY not in content
    assert page.locator("#c-nightly .badge").first.inner_text() == "disabled"
    assert page.locator("#c-relay svg.chart").count() == 1

    # Wait for the sampler to count the records, then keep a picture.
    def sampled():
        _, body = daemon.get("/ui/api/status")
        (entry,) = [c for c in orjson.loads(body)["connectors"] if c["name"] == "relay"]
        return sum(p["in"] for p in entry["history"]) == 25

    daemon.wait_for(sampled, timeout=30, message="the sampler counted 25 records")
    page.reload()
    assert page.locator("#c-relay svg.chart polyline.line-in").count() == 1
    assert page.locator("#c-relay svg.chart text.tick").first.text_content() == "50/min"
    shot = tmp_path / "status-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")

    with page.expect_navigation():
        row.get_by_role("button", name="Replay").click()
    assert page.locator(".notice").inner_text() == "Queued 1 dead letter of relay for delivery."
    daemon.wait_for(lambda: len(sink.received) == 25, timeout=30, message="replayed and sent")
    assert "m-0" in sink.message_ids()
    page.goto(f"{daemon.url}/ui/")
    assert figure(page, "dead letters") == "0"
    assert figure(page, "delivered") == "25"
    page.screenshot(path=str(tmp_path / "status-page-after-replay.png"), full_page=True)

    # Purge asks first (ui.js), then deletes the letter for good.
    sink.fail_next(1, status=422, body={"error": "unprocessable"})
    assert daemon.post("/ingest/relay/", events(1, start=100), headers=AUTH)[0] == 200
    page.goto(f"{daemon.url}/ui/")
    daemon.wait_for(
        lambda: page.reload() or figure(page, "dead letters") == "1", message="a new letter"
    )
    prompts = []
    page.once("dialog", lambda dialog: (prompts.append(dialog.message), dialog.accept()))
    with page.expect_navigation():
        page.locator("#c-relay tr[data-dead-letter]").get_by_role("button", name="Purge").click()
    assert prompts and "cannot be recovered" in prompts[0]
    assert "Deleted 1 dead letter of relay" in page.locator(".notice").inner_text()
    assert figure(page, "dead letters") == "0"
    assert "m-100" not in sink.message_ids()
    assert watch.problems == []

    # The watch does see a CSP violation: an inline style is refused and reported.
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
    page.wait_for_timeout(200)
    assert any("Content Security Policy" in p for p in watch.problems), watch.problems
    context.close()


def off_loopback_listen() -> str:
    """A listener on every interface: off loopback as far as the page is concerned (the
    token is required even from loopback), while the test's own requests still go to
    127.0.0.1 only."""
    return f"0.0.0.0:{free_port()}"


def test_off_loopback_the_page_asks_for_the_token(browser, emulator_server, tmp_path):
    sink = SinkEmulator()
    config = write_config(
        tmp_path, relay(emulator_server(sink).url), daemon=f'admin_token = "{ADMIN}"'
    )
    listen = f'listen = "{off_loopback_listen()}"'
    config.write_text(re.sub(r"^listen = .*$", listen, config.read_text(), count=1, flags=re.M))
    daemon = DaemonProcess(config).start()
    try:
        context = browser.new_context(viewport={"width": 1200, "height": 700})
        page = context.new_page()
        watch = Watch(page)
        page.goto(f"{daemon.url}/ui/")
        assert page.url.endswith("/ui/login")
        page.fill("#token", "not-the-token")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "Wrong token" in page.content()
        page.fill("#token", ADMIN)
        with page.expect_navigation():
            page.click("button[type=submit]")
        page.wait_for_selector("#c-relay")
        assert page.url.endswith("/ui/")
        (cookie,) = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert ADMIN not in page.content() and TOKEN not in page.content()
        page.screenshot(path=str(tmp_path / "status-page-remote.png"), full_page=True)
        with page.expect_navigation():
            page.get_by_role("button", name="Log out").click()
        assert page.url.endswith("/ui/login")
        page.goto(f"{daemon.url}/ui/")
        assert page.url.endswith("/ui/login")
        # The wrong-token answer is a 401: the browser reports that one failed load.
        assert [p for p in watch.problems if "401" not in p] == []
        context.close()
    finally:
        daemon.stop(timeout=15)
