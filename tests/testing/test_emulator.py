"""VendorEmulator: recording, auth helpers and injected faults, over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import time

import aiohttp
import pytest
from aiohttp import web

from connectord.testing import VendorEmulator, json_response


class Shop(VendorEmulator):
    """A tiny vendor: bearer-authenticated orders, a basic-auth export, an API-key header."""

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/orders", self.orders)
        app.router.add_get("/export", self.export)
        app.router.add_get("/keyed", self.keyed)
        app.router.add_get("/query", self.query)

    async def orders(self, request: web.Request) -> web.Response:
        self.require_bearer(request, "tok-1", "tok-2")
        return json_response({"ok": True})

    async def export(self, request: web.Request) -> web.Response:
        return json_response({"user": self.require_basic(request, "acct", "s3cret")})

    async def keyed(self, request: web.Request) -> web.Response:
        return json_response({"key": self.require_header(request, "X-Api-Key", "k-123")})

    async def query(self, request: web.Request) -> web.Response:
        return json_response({"key": self.require_query(request, "api_key", "q-1")})


class ForbiddenShop(Shop):
    def unauthorized(self, message: str) -> web.HTTPException:
        return web.HTTPForbidden(text=f"denied: {message}")


@pytest.fixture
def shop(emulator_server):
    emulator = Shop()
    return emulator, emulator_server(emulator)


async def call(method, url, **kwargs):
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, **kwargs) as response,
    ):
        return response.status, response.headers, await response.read()


async def test_requests_are_recorded_with_body_query_and_headers(shop):
    emulator, server = shop
    await call(
        "POST",
        server.url + "/orders?page=2",
        data=b'{"a": 1}',
        headers={"Authorization": "Bearer tok-1", "Content-Type": "application/json"},
    )
    recorded = emulator.last_request("/orders")
    assert recorded.method == "POST"
    assert recorded.query == {"page": "2"}
    assert recorded.json() == {"a": 1}
    assert recorded.headers["Authorization"] == "Bearer tok-1"
    assert emulator.requests_to("/export") == []


def test_last_request_names_what_was_received_when_nothing_matches():
    emulator = Shop()
    with pytest.raises(AssertionError, match="no request to '/orders'; received: nothing"):
        emulator.last_request("/orders")


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/orders", {"Authorization": "Bearer tok-2"}, 200),
        ("/orders", {"Authorization": "Bearer wrong"}, 401),
        ("/orders", {"Authorization": "Basic tok-1"}, 401),
        ("/orders", {}, 401),
        ("/export", {"Authorization": "Basic " + base64.b64encode(b"acct:s3cret").decode()}, 200),
        ("/export", {"Authorization": "Basic " + base64.b64encode(b"acct:nope").decode()}, 401),
        ("/export", {"Authorization": "Basic !!!not-base64"}, 401),
        ("/keyed", {"X-Api-Key": "k-123"}, 200),
        ("/keyed", {"X-Api-Key": ""}, 401),
        ("/query?api_key=q-1", {}, 200),
        ("/query?api_key=q-2", {}, 401),
    ],
)
async def test_auth_helpers(shop, path, headers, status):
    _, server = shop
    got, _, body = await call("GET", server.url + path, headers=headers)
    assert got == status, body
    if status == 401:
        assert b'"error":"unauthorized"' in body


async def test_unauthorized_can_take_the_vendors_shape(emulator_server):
    server = emulator_server(ForbiddenShop())
    status, _, body = await call("GET", server.url + "/orders")
    assert (status, body) == (403, b"denied: missing or wrong bearer token")


async def test_fail_next_answers_the_fault_then_the_real_handler(shop):
    emulator, server = shop
    emulator.fail_next(2, status=503, body={"error": "maintenance"})
    auth = {"Authorization": "Bearer tok-1"}
    answers = [(await call("POST", server.url + "/orders", headers=auth))[::2] for _ in range(3)]
    assert answers == [
        (503, b'{"error":"maintenance"}'),
        (503, b'{"error":"maintenance"}'),
        (200, b'{"ok":true}'),
    ]
    assert len(emulator.requests) == 3  # faulted requests are recorded too


async def test_throttle_next_sends_retry_after(shop):
    emulator, server = shop
    emulator.throttle_next(retry_after=7)
    status, headers, body = await call("GET", server.url + "/keyed")
    assert (status, headers["Retry-After"], body) == (429, "7", b'{"error":"rate limited"}')


async def test_faults_can_target_paths(shop):
    emulator, server = shop
    emulator.fail_next(status=500, paths=("/export",))
    assert (await call("GET", server.url + "/keyed", headers={"X-Api-Key": "k-123"}))[0] == 200
    assert (await call("GET", server.url + "/export"))[0] == 500


async def test_fail_until_is_an_outage_that_ends(shop):
    emulator, server = shop
    emulator.fail_until(time.time() + 0.3, status=502)
    headers = {"X-Api-Key": "k-123"}
    assert (await call("GET", server.url + "/keyed", headers=headers))[0] == 502
    assert (await call("GET", server.url + "/keyed", headers=headers))[0] == 502
    await asyncio.sleep(0.35)
    assert (await call("GET", server.url + "/keyed", headers=headers))[0] == 200


async def test_delay_makes_a_client_time_out(shop):
    emulator, server = shop
    emulator.fail_next(delay=1.0, status=0)  # answer late, from the real handler
    with pytest.raises(TimeoutError):
        await call(
            "GET",
            server.url + "/keyed",
            headers={"X-Api-Key": "k-123"},
            timeout=aiohttp.ClientTimeout(total=0.2),
        )


async def test_slow_answer_still_comes_from_the_handler(shop):
    emulator, server = shop
    emulator.fail_next(delay=0.2, status=0)
    started = time.monotonic()
    status, _, body = await call("GET", server.url + "/keyed", headers={"X-Api-Key": "k-123"})
    assert (status, body) == (200, b'{"key":"k-123"}')
    assert time.monotonic() - started >= 0.2


async def test_hang_never_answers(shop):
    emulator, server = shop
    emulator.fail_next(hang=True)
    with pytest.raises(TimeoutError):
        await call("GET", server.url + "/export", timeout=aiohttp.ClientTimeout(total=0.3))


async def test_disconnect_drops_the_connection(shop):
    emulator, server = shop
    emulator.fail_next(disconnect=True)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call("POST", server.url + "/orders", headers={"Authorization": "Bearer tok-1"})


async def test_reset_forgets_requests_and_faults(shop):
    emulator, server = shop
    emulator.fail_next(5, status=500)
    await call("GET", server.url + "/export")
    emulator.reset()
    assert emulator.requests == []
    assert (await call("GET", server.url + "/keyed", headers={"X-Api-Key": "k-123"}))[0] == 200


def test_call_runs_code_on_the_emulator_loop(shop):
    emulator, server = shop

    async def count() -> int:
        await asyncio.sleep(0)
        return len(emulator.requests)

    assert server.call(count) == 0
    assert server.call(lambda: "sync") == "sync"
