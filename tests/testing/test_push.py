"""push_source: a push source behind the daemon's HTTP app, without a daemon."""

from __future__ import annotations

import asyncio

import aiohttp

from connectord.plugins.webhook.source import WebhookSource
from connectord.testing import push_source, track

AUTH = {"Authorization": "Bearer t0ken"}


async def test_accepted_records_are_committed_with_daemon_defaults():
    async with push_source(WebhookSource, {"token": "t0ken"}, connector="hooks") as push:
        status, body = await push.post(
            "", [track(), {"type": "identify", "userId": "u"}], headers=AUTH
        )
        assert (status, body) == (200, {"accepted": 2, "rejected": []})
        assert [r["type"] for r in push.records] == ["track", "identify"]
        assert push.records[1]["messageId"] and push.records[1]["receivedAt"]
        assert push.requests_committed == 1
        assert push.url.endswith("/ingest/hooks/")


async def test_errors_are_rendered_like_the_daemon_does():
    async with push_source(WebhookSource, {"token": "t0ken"}) as push:
        assert (await push.post("", [track()]))[0] == 401
        status, body = await push.post("", data=b"{not json", headers=AUTH)
        assert status == 400 and body["error"] == "invalid_json"
        status, body = await push.post("nowhere", [track()], headers=AUTH)
        assert status == 404 and "/ingest/test/events" in body["message"]
        assert push.records == []


async def test_a_full_queue_answers_503_with_retry_after():
    async with push_source(WebhookSource, {"token": "t0ken"}, queue_limit=2) as push:
        assert (await push.post("", [track(), track("B")], headers=AUTH))[0] == 200
        async with push.client.post(push.path(""), json=[track("C")], headers=AUTH) as answer:
            assert answer.status == 503
            assert answer.headers["Retry-After"] == "30"
            assert (await answer.json())["error"] == "queue_full"
        assert len(push.records) == 2


async def test_the_url_serves_clients_outside_the_test_client():
    async with push_source(WebhookSource, {"token": "t0ken"}) as push:

        async def post_with_own_session() -> int:
            async with (
                aiohttp.ClientSession() as session,
                session.post(push.url, json=track(), headers=AUTH) as answer,
            ):
                return answer.status

        assert await asyncio.wait_for(post_with_own_session(), 5) == 200
        assert len(push.records) == 1
