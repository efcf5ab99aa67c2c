"""The status page, its JSON API, its actions and the tap stream, on the real daemon."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import urllib.parse

import orjson
import pytest

from connectord.config import load_config
from connectord.testing import DaemonProcess, write_config
from connectord.testing.daemon import free_port
from connectord.top import run_top
from tests.emulators.sink import SinkEmulator
from tests.fixtures.numbers_plugin import install_plugin

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN = "admin-token-0123456789abcdef"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def relay(sink_url: str) -> str:
    return f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "webhook", url = "{sink_url}/hook", batch_size = 20 }}
delivery = {{ retry_initial = 0.2, retry_max = 1.0 }}

[[connectors.relay.mapping]]
type = "fields"
set = {{ "properties.number" = "properties.n" }}
drop = ["properties.n"]
"""


def events(count: int, poison=()) -> list[dict]:
    return [
        {
            "type": "track",
            "userId": f"u{i}",
            "event": "Tested",
            "messageId": f"m-{i}",
            "properties": {"n": i, "poison": i in poison, "note": f"key {TOKEN}"},
        }
        for i in range(count)
    ]


def fetch(daemon, path, method="GET", body=None, headers=None):
    """status, headers, body: urllib without following redirects."""
    import http.client

    host, port = daemon.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.headers, data


def api(daemon, headers=None):
    status, _, body = fetch(daemon, "/ui/api/status", headers=headers)
    assert status == 200, body
    return {c["name"]: c for c in orjson.loads(body)["connectors"]}


def csrf_of(html: bytes) -> str:
    return re.search(rb'<meta name="csrf" content="([0-9a-f]+)">', html).group(1).decode()


def test_page_and_api_show_what_flowed(connectord_daemon, emulator_server):
    sink = emulator_server(SinkEmulator())
    daemon = connectord_daemon(relay(sink.url))
    status, _ = daemon.post("/ingest/relay/", events(10, poison=(3, 7)), headers=AUTH)
    assert status == 200
    daemon.wait_for(lambda: api(daemon)["relay"]["dead_letter_count"] == 2, timeout=30)

    def sampled():
        entry = api(daemon)["relay"]
        return sum(p["in"] for p in entry["history"]) == 10 and entry

    relay_status = daemon.wait_for(
        sampled,
        timeout=30,
        message="the sampler recorded the 10 records",
    )
    assert relay_status["counts"]["received"] == 10
    assert relay_status["counts"]["delivered"] == 8
    assert sum(p["out"] for p in relay_status["history"]) == 8
    assert sorted(d["record"]["messageId"] for d in relay_status["dead_letters"]) == [
        "m-3",
        "m-7",
    ]
    assert all("HTTP 400" in d["reason"] for d in relay_status["dead_letters"])

    status, headers, html = fetch(daemon, "/ui/")
    assert status == 200
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert b'data-figure="received"><dt>received</dt><dd>10</dd>' in html
    assert b"<polyline" in html
    # The webhook token is a secret: masked in options, redacted inside records.
    assert TOKEN.encode() not in html
    status, _, body = fetch(daemon, "/ui/api/status")
    assert TOKEN.encode() not in body
    assert fetch(daemon, "/")[0] == 302


def test_forwarded_requests_are_refused_without_a_token(connectord_daemon, emulator_server):
    sink = emulator_server(SinkEmulator())
    daemon = connectord_daemon(relay(sink.url))
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    status, headers, html = fetch(daemon, "/ui/", headers=forwarded)
    assert status == 403 and b"admin_token" in html
    assert headers["X-Frame-Options"] == "DENY"
    assert fetch(daemon, "/ui/api/status", headers=forwarded)[0] == 403
    assert fetch(daemon, "/ui/api/tap/relay", headers=forwarded)[0] == 403
    assert fetch(daemon, "/ui/", headers={"Host": "rebound.example:80"})[0] == 403
    # Ingest is unchanged.
    assert daemon.post("/ingest/relay/", events(1), headers=AUTH)[0] == 200


def test_buttons_purge_and_run_need_the_csrf_token(connectord_daemon, tmp_path):
    env = install_plugin(tmp_path / "site")
    daemon = connectord_daemon(
        """
[connectors.numbers]
schedule = "manual"
source = { type = "test.numbers", count = 5 }
destination = { type = "warehouse", url = "sqlite:///warehouse.db" }
""",
        env=env,
    )
    _, _, html = fetch(daemon, "/ui/")
    assert b'action="/ui/connectors/numbers/sync"' in html
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": daemon.url}
    status, _, _ = fetch(daemon, "/ui/connectors/numbers/sync", "POST", "csrf=nope", form)
    assert status == 403
    cross = {**form, "Origin": "http://evil.example"}
    body = f"csrf={csrf_of(html)}"
    assert fetch(daemon, "/ui/connectors/numbers/sync", "POST", body, cross)[0] == 403
    status, headers, _ = fetch(daemon, "/ui/connectors/numbers/sync", "POST", body, form)
    assert status == 303 and "done=sync" in headers["Location"]
    runs = daemon.wait_for(
        lambda: (r := api(daemon)["numbers"]["runs"]) and r[0]["status"] == "succeeded" and r,
        timeout=30,
        message="the requested run finished",
    )
    assert runs[0]["kind"] == "manual" and runs[0]["records_out"] == 5
    assert api(daemon)["numbers"]["checkpoint"] is not None
    _, _, html = fetch(daemon, "/ui/")
    assert b"succeeded" in html and b"Last runs" in html


def off_loopback_listen() -> str:
    """A listener on every interface: off loopback as far as the page is concerned (the
    token is required even from loopback), while the test's own requests still go to
    127.0.0.1 only."""
    return f"0.0.0.0:{free_port()}"


@pytest.fixture
def remote_daemon(tmp_path, emulator_server):
    """The daemon listening on every interface (not only loopback), with a token file."""
    sink = emulator_server(SinkEmulator())
    (tmp_path / "admin.token").write_text(ADMIN + "\n")
    config = write_config(tmp_path, relay(sink.url), daemon='admin_token_file = "admin.token"')
    listen = f'listen = "{off_loopback_listen()}"'
    text = re.sub(r"^listen = .*$", listen, config.read_text(), count=1, flags=re.M)
    config.write_text(text)
    daemon = DaemonProcess(config).start()
    yield daemon
    daemon.stop(timeout=15)


def test_off_loopback_the_token_is_required(remote_daemon, registry, capsys):
    daemon = remote_daemon
    status, headers, _ = fetch(daemon, "/ui/")
    assert status == 303 and headers["Location"] == "/ui/login"
    assert fetch(daemon, "/ui/api/status")[0] == 401
    assert fetch(daemon, "/ui/api/status", headers={"Authorization": "Bearer no"})[0] == 401
    assert api(daemon, {"Authorization": f"Bearer {ADMIN}"})["relay"]["running"]

    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": daemon.url}
    status, _, html = fetch(daemon, "/ui/login", "POST", "token=wrong", form)
    assert status == 401 and b"Wrong token" in html
    status, headers, _ = fetch(daemon, "/ui/login", "POST", f"token={ADMIN}", form)
    assert status == 303
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
    session = cookie.split(";", 1)[0]
    status, _, html = fetch(daemon, "/ui/", headers={"Cookie": session})
    assert status == 200 and b'id="c-relay"' in html
    assert ADMIN.encode() not in html and TOKEN.encode() not in html
    assert ADMIN not in daemon.logs()

    # `connectord top` reads the same API with the configured token.
    capsys.readouterr()
    run_top(load_config(daemon.config, registry), interval=0.2, frames=2)
    frame = capsys.readouterr().out
    assert "relay" in frame and "cannot reach" not in frame and "HTTP 401" not in frame


def test_tap_streams_raw_and_mapped_records_redacted(connectord_daemon, emulator_server):
    sink = SinkEmulator()
    daemon = connectord_daemon(relay(emulator_server(sink).url))
    taps = {}

    def tap(mapped: bool) -> subprocess.Popen:
        args = [sys.executable, "-m", "connectord", "tap", "relay", "-c", str(daemon.config)]
        return subprocess.Popen(
            [*args, "--mapped"] if mapped else args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    for mapped in (False, True):
        taps[mapped] = tap(mapped)
        # The CLI reports the subscription on stderr once the daemon holds it.
        line = taps[mapped].stderr.readline()
        assert line.startswith("tapping relay"), line
    assert daemon.post("/ingest/relay/", events(3), headers=AUTH)[0] == 200
    got = {}
    for mapped, process in taps.items():
        lines = []
        reader = threading.Thread(
            target=lambda p=process, out=lines: out.extend(p.stdout.readline() for _ in range(3))
        )
        reader.start()
        reader.join(timeout=30)
        process.terminate()
        process.wait(timeout=10)
        got[mapped] = [orjson.loads(x) for x in lines]
    assert [r["properties"]["n"] for r in got[False]] == [0, 1, 2]
    assert [r["properties"]["number"] for r in got[True]] == [0, 1, 2]
    assert all(r["properties"]["note"] == "key **********" for r in got[False] + got[True])
    daemon.wait_for(lambda: len(sink.received) == 3, message="delivery went on")
    assert fetch(daemon, "/ui/api/tap/nope")[0] == 404


def test_unknown_connector_actions_are_404(connectord_daemon, emulator_server):
    sink = emulator_server(SinkEmulator())
    daemon = connectord_daemon(relay(sink.url))
    _, _, html = fetch(daemon, "/ui/")
    body = urllib.parse.urlencode({"csrf": csrf_of(html)})
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": daemon.url}
    assert fetch(daemon, "/ui/connectors/nope/dead-letters/purge", "POST", body, form)[0] == 404
    assert fetch(daemon, "/ui/connectors/relay/sync", "POST", body, form)[0] == 409
