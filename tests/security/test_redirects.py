"""A vendor host that answers with a redirect to another origin gets nothing more: not
the vendor key in a custom header, not the webhook's headers, HMAC signature or body.

Before: aiohttp followed the 307 and stripped only ``Authorization``. Two real servers
on 127.0.0.1 on different ports: the "vendor" redirects, the "attacker" records.
"""

from __future__ import annotations

import sqlite3
import time

import orjson
import pytest
from aiohttp import web

from connectord.http import RedirectRefused, new_session
from tests.chaos.support import report, track, wait_until

SECRET = "pendo-integration-key-1f2e3d4c5b6a"
HOOK_KEY = "webhook-header-secret-99887766"
HMAC = "webhook-hmac-secret-55443322"
TOKEN = "redirect-ingest-token-1234"


ARRIVED = web.AppKey("arrived", list)


class Recorder:
    """The other origin: keeps every request it sees."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.record)

    async def record(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append({"path": request.path, "headers": dict(request.headers), "body": body})
        return web.json_response({"ok": True})


def redirecting(target: str) -> web.Application:
    """The vendor host: 307 to ``target`` + path, except /same which redirects to /final
    on itself (same origin), where it records what arrives."""
    app = web.Application()
    arrived: list[dict] = []
    app[ARRIVED] = arrived

    async def elsewhere(request: web.Request) -> web.Response:
        await request.read()
        raise web.HTTPTemporaryRedirect(target + request.path)

    async def same(request: web.Request) -> web.Response:
        await request.read()
        raise web.HTTPTemporaryRedirect("/final")

    async def final(request: web.Request) -> web.Response:
        arrived.append({"headers": dict(request.headers), "body": await request.read()})
        return web.json_response({"ok": True})

    app.router.add_post("/same", same)
    app.router.add_post("/final", final)
    app.router.add_route("*", "/{tail:.*}", elsewhere)
    return app


async def test_the_session_every_plugin_gets_refuses_cross_origin_redirects(emulator_server):
    other = Recorder()
    attacker = emulator_server(other.app)
    vendor_app = redirecting(attacker.url)
    vendor = emulator_server(vendor_app)
    session = new_session(timeout=5)
    try:
        with pytest.raises(RedirectRefused, match="not followed"):
            async with session.post(
                vendor.url + "/api/v1/metadata/visitor/value",
                headers={"x-pendo-integration-key": SECRET},
                data=b'[{"visitorId": "v"}]',
            ):
                pass
        # A redirect within the same origin is still followed.
        async with session.post(
            vendor.url + "/same", headers={"x-pendo-integration-key": SECRET}, data=b"{}"
        ) as response:
            assert response.status == 200
    finally:
        await session.close()
    assert other.seen == [], "the other origin received a request"
    assert vendor_app[ARRIVED][0]["headers"]["x-pendo-integration-key"] == SECRET


@pytest.mark.e2e
def test_the_webhook_destination_sends_nothing_to_a_redirect_target(
    tmp_path, emulator_server, spawn_daemon
):
    other = Recorder()
    attacker = emulator_server(other.app)
    vendor = emulator_server(redirecting(attacker.url))
    daemon = spawn_daemon(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
delivery = {{ retry_initial = 0.1, retry_max = 0.5 }}

[connectors.relay.destination]
type = "webhook"
url = "{vendor.url}/hook"
hmac_secret = "{HMAC}"
headers = {{ X-Api-Key = "{HOOK_KEY}" }}
"""
    )
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, _ = daemon.post(
        "/ingest/relay/", orjson.dumps([track(f"r{i}") for i in range(3)]), headers=headers
    )
    assert status == 200
    wait_until(
        lambda: "redirects to another host are not followed" in daemon.logs(),
        15,
        "the refused redirect is logged",
    )
    time.sleep(1.5)  # several retries, all refused
    with sqlite3.connect(f"file:{tmp_path / 'state.db'}?mode=ro", uri=True) as db:
        queued = db.execute("select count(*) from queue").fetchone()[0]
        dead = db.execute("select count(*) from dead_letters").fetchone()[0]
    report("redirects", requests_to_other_origin=len(other.seen), queued=queued, dead=dead)
    assert other.seen == [], "headers, signature or body went to the redirect target"
    assert (queued, dead) == (3, 0), "kept and retried, never dead-lettered"
    logs = daemon.logs()
    assert HOOK_KEY not in logs and HMAC not in logs
