"""The ``pushwoosh.relay`` source in process: forwarding, answers, records, state."""

from __future__ import annotations

import gzip

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectord import IngestError, QueueFull
from connectord.plugins.pushwoosh.relay import PushwooshRelay, apply_tag_changes
from connectord.state import MemoryKeyValue
from connectord.testing import free_port, make_context


@pytest.fixture
async def relay(pushwoosh):
    """The relay served under /ingest/r/ with its queue as a list (``relay.queued``)."""
    queued: list[dict] = []
    state = MemoryKeyValue()

    async def enqueue(records):
        queued.extend(orjson.loads(orjson.dumps(records)))

    async with make_context("r", state=state) as context:
        context.enqueue = enqueue
        options = PushwooshRelay.Options(
            application=pushwoosh.application,
            device_token=pushwoosh.device_token,
            base_url=pushwoosh.url,
        )
        source = PushwooshRelay(options, context)
        server = await serve(source)
        source.queued, source.state, source.server = queued, state, server
        yield source
        await server.close()


async def serve(source: PushwooshRelay) -> TestServer:
    """Mount the routes the way the daemon does: /ingest/<name>/<path>."""
    routes = {(r.method, r.path): r.handler for r in source.routes()}

    async def ingest(request: web.Request) -> web.StreamResponse:
        handler = routes.get((request.method, request.match_info["tail"].strip("/")))
        if handler is None:
            return web.Response(status=404)
        try:
            return await handler(request)
        except IngestError as err:
            return source.error_response(err)

    app = web.Application()
    app.router.add_route("*", "/ingest/r/{tail:.*}", ingest)
    server = TestServer(app, port=free_port())
    await server.start_server(auto_decompress=False)  # as the daemon serves
    return server


async def call(relay, method, request, *, token="device-token-for-tests", raw=None, headers=None):
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Token {token}"
    data = raw if raw is not None else orjson.dumps({"request": request})
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            relay.server.make_url(f"/ingest/r/json/1.3/{method}"), data=data, headers=sent
        ) as response,
    ):
        return response.status, await response.json(content_type=None), response.headers


APP = "ABCDE-12345"


async def test_calls_are_forwarded_answered_and_recorded(relay, pushwoosh):
    status, body, _ = await call(
        relay,
        "registerDevice",
        {
            "application": APP,
            "hwid": "hw-1",
            "device_type": 3,
            "push_token": "tok",
            "device_model": "Pixel 9",
            "os_version": "15",
            "language": "de",
        },
    )
    assert (status, body) == (200, {"status_code": 200, "status_message": "OK", "response": None})
    await call(relay, "registerUser", {"application": APP, "hwid": "hw-1", "userId": "u1"})
    await call(
        relay,
        "setTags",
        {"application": APP, "userId": "u1", "tags": {"Country": "DE", "Level": 3}},
    )
    status, body, _ = await call(
        relay,
        "postEvent",
        {
            "application": APP,
            "hwid": "hw-1",
            "userId": "u1",
            "event": "PW_SiteOpened",
            "attributes": {"campaign_id": "C-9"},
            "timestampUTC": 1700000000,
        },
        headers={"User-Agent": "PushwooshSDK/6.7"},
    )
    assert status == 200
    assert body["status_code"] == 200 and body["response"]["code"]  # Pushwoosh's own answer
    # forwarded unchanged, with the caller's token
    [forwarded] = pushwoosh.requests_to("/json/1.3/postEvent")
    assert forwarded.headers["Authorization"] == "Token device-token-for-tests"
    assert forwarded.json()["request"]["event"] == "PW_SiteOpened"
    assert pushwoosh.events_of("u1")[0]["attributes"] == {"campaign_id": "C-9"}
    assert pushwoosh.tags_of("u1")["Level"] == 3

    kinds = [(r["type"], r.get("userId")) for r in relay.queued]
    assert kinds == [
        ("identify", None),  # registerDevice before the device had a user
        ("identify", "u1"),
        ("identify", "u1"),
        ("track", "u1"),
    ]
    device = relay.queued[0]
    assert device["anonymousId"] == "hw-1"
    assert device["traits"] == {"Device Model": "Pixel 9", "OS Version": "15", "Language": "de"}
    event = relay.queued[-1]
    assert event["event"] == "PW_SiteOpened"
    assert event["properties"] == {"campaign_id": "C-9"}
    assert event["timestamp"] == "2023-11-14T22:13:20.000Z"
    assert event["context"]["traits"] == {
        "Device Model": "Pixel 9",
        "OS Version": "15",
        "Language": "de",
        "Country": "DE",
        "Level": 3,
    }
    assert event["context"]["device"] == {"id": "hw-1", "type": "android"}
    assert event["context"]["pushwoosh"]["platform_id"] == 3
    assert event["context"]["pushwoosh"]["event_code"] == body["response"]["code"]
    assert event["context"]["userAgent"] == "PushwooshSDK/6.7"
    assert event["context"]["ip"] == "127.0.0.1"
    assert relay.state.data["tags:u1"]["Country"] == "DE"
    assert "tags:hwid:hw-1" not in relay.state.data  # moved to the user


async def test_tag_changes_follow_pushwoosh_semantics(relay):
    await call(relay, "setTags", {"application": APP, "userId": "u2", "tags": {"L": ["a"], "X": 1}})
    await call(
        relay,
        "setTags",
        {
            "application": APP,
            "userId": "u2",
            "tags": {"L": {"operation": "append", "value": ["b", "a"]}, "X": None},
        },
    )
    assert relay.queued[-1]["traits"] == {"L": ["a", "b"]}


def test_apply_tag_changes_remove():
    tags = {"L": ["a", "b", "c"], "S": "x"}
    apply_tag_changes(tags, {"L": {"operation": "remove", "value": ["b"]}, "S": "y"})
    assert tags == {"L": ["a", "c"], "S": "y"}


async def test_what_pushwoosh_refuses_is_answered_and_not_recorded(relay, pushwoosh):
    pushwoosh.require_known_events = True
    status, body, _ = await call(
        relay, "postEvent", {"application": APP, "userId": "u1", "event": "Nope", "attributes": {}}
    )
    assert (status, body["status_code"]) == (200, 210)
    assert "Nope not found" in body["status_message"]
    assert relay.queued == []


async def test_pushwoosh_outages_are_passed_back_with_retry_after(relay, pushwoosh):
    pushwoosh.fail_next(1, status=503, headers={"Retry-After": "9"})
    status, _, headers = await call(
        relay, "setTags", {"application": APP, "userId": "u1", "tags": {"a": 1}}
    )
    assert (status, headers["Retry-After"]) == (503, "9")
    assert relay.queued == []


async def test_unreachable_pushwoosh_is_a_503_in_the_envelope(pushwoosh):
    async with make_context("r") as context:

        async def enqueue(records):
            raise AssertionError("nothing may be recorded")

        context.enqueue = enqueue
        options = PushwooshRelay.Options(
            application=APP,
            device_token="device-token-for-tests",
            base_url=f"http://127.0.0.1:{free_port()}",
        )
        source = PushwooshRelay(options, context)
        source.server = await serve(source)
        try:
            status, body, headers = await call(
                source, "setTags", {"application": APP, "userId": "u1", "tags": {"a": 1}}
            )
        finally:
            await source.server.close()
    assert status == 503 and headers["Retry-After"] == "5"
    assert body["status_code"] == 503 and "could not be reached" in body["status_message"]


@pytest.mark.parametrize(
    ("token", "raw", "request_", "status", "code", "message"),
    [
        (
            "wrong",
            None,
            {"application": APP, "userId": "u", "tags": {"a": 1}},
            401,
            401,
            "Unauthorized",
        ),
        (
            "server-token-for-tests",
            None,
            {"application": APP, "userId": "u", "tags": {"a": 1}},
            401,
            401,
            "Unauthorized",
        ),
        (
            "device-token-for-tests",
            None,
            {"application": "ZZZZZ-00000", "userId": "u", "tags": {"a": 1}},
            403,
            403,
            "Token restrictions forbid this operation",
        ),
        ("device-token-for-tests", b"{not json", None, 400, 210, "not valid JSON"),
        ("device-token-for-tests", b'{"userId": "u"}', None, 400, 210, '{"request": {...}}'),
        (
            "device-token-for-tests",
            None,
            {"application": APP, "tags": {"a": 1}},
            400,
            210,
            "needs hwid or userId",
        ),
        (
            "device-token-for-tests",
            None,
            {"application": APP, "userId": "u"},
            400,
            210,
            "needs tags",
        ),
    ],
)
async def test_bad_calls_get_a_clear_4xx_in_the_envelope(
    relay, pushwoosh, token, raw, request_, status, code, message
):
    got_status, body, _ = await call(relay, "setTags", request_, token=token, raw=raw)
    assert (got_status, body["status_code"]) == (status, code)
    assert message in body["status_message"]
    assert body["response"] is None
    assert pushwoosh.requests_to("/json/1.3/") == []  # nothing forwarded
    assert relay.queued == []


async def test_tokenless_calls_are_forwarded_and_pushwoosh_decides(relay, pushwoosh):
    """The SDKs send no token unless one is configured: Pushwoosh authenticates."""
    status, body, _ = await call(
        relay, "setTags", {"application": APP, "userId": "u", "tags": {"a": 1}}, token=None
    )
    assert (status, body["status_code"]) == (401, 401)  # this Pushwoosh wants the token
    assert len(pushwoosh.requests_to("/json/1.3/setTags")) == 1
    assert relay.queued == []


async def test_a_wrong_token_in_the_body_is_refused_before_forwarding(relay, pushwoosh):
    request = {"application": APP, "auth": "wrong", "userId": "u", "tags": {"a": 1}}
    status, body, _ = await call(relay, "setTags", request, token=None)
    assert (status, body["status_code"]) == (401, 401)
    assert pushwoosh.requests_to("/json/1.3/") == []


async def test_body_auth_and_gzip_are_accepted(relay, pushwoosh):
    payload = {
        "request": {
            "application": APP,
            "auth": "device-token-for-tests",
            "userId": "u5",
            "event": "Opened",
            "attributes": {},
        }
    }
    status, body, _ = await call(
        relay,
        "postEvent",
        None,
        token=None,
        raw=gzip.compress(orjson.dumps(payload)),
        headers={"Content-Encoding": "gzip"},
    )
    assert (status, body["status_code"]) == (200, 200)
    assert relay.queued[0]["event"] == "Opened"
    assert relay.queued[0]["properties"] == {}
    assert pushwoosh.events_of("u5")


async def test_postevent_without_user_is_an_anonymous_track(relay):
    await call(
        relay, "postEvent", {"application": APP, "hwid": "hw-9", "event": "Open", "attributes": {}}
    )
    [record] = relay.queued
    assert record["anonymousId"] == "hw-9" and "userId" not in record
    assert record["context"]["traits"] == {}


def test_options_need_a_token_and_a_valid_application():
    with pytest.raises(ValueError, match="set device_token"):
        PushwooshRelay.Options(application=APP)
    with pytest.raises(ValueError, match="XXXXX-XXXXX"):
        PushwooshRelay.Options(application="nope", device_token="t")


async def test_check_verifies_the_callers_token(pushwoosh):
    async with make_context("r") as context:
        for token, expected in (("device-token-for-tests", None), ("nope", "token refused")):
            options = PushwooshRelay.Options(
                application=APP, device_token=token, base_url=pushwoosh.url
            )
            source = PushwooshRelay(options, context)
            if expected is None:
                assert await source.check() == "token accepted for application ABCDE-12345"
            else:
                with pytest.raises(Exception, match=expected):
                    await source.check()


async def test_a_full_queue_is_a_503_even_after_pushwoosh_accepted(pushwoosh):
    """The fallback when the queue fills between the room check and the commit (here:
    no room is reported, as from a writer the relay cannot see): still a 503."""
    async with make_context("r") as context:

        async def enqueue(records):
            raise QueueFull("r", 10)

        context.enqueue = enqueue
        options = PushwooshRelay.Options(
            application=APP, device_token="device-token-for-tests", base_url=pushwoosh.url
        )
        source = PushwooshRelay(options, context)
        source.server = await serve(source)
        try:
            status, body, headers = await call(
                source, "setTags", {"application": APP, "userId": "u1", "tags": {"a": 1}}
            )
        finally:
            await source.server.close()
    assert (status, body["status_code"], headers["Retry-After"]) == (503, 503, "30")
    assert "retry later" in body["status_message"]
    assert pushwoosh.tags_of("u1") == {"a": 1}  # Pushwoosh has it; the caller retries
