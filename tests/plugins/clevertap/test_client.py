"""The CleverTap client's request/response contracts (aioresponses)."""

from __future__ import annotations

import re

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from connectord import AuthError, PermanentError, RetryableError
from connectord.backoff import Backoff
from connectord.plugins.clevertap.client import CleverTapClient, CursorExpired

BASE = "https://in1.api.clevertap.com"


@pytest.fixture
async def client():
    session = aiohttp.ClientSession()
    yield CleverTapClient(
        lambda: session,
        BASE,
        "W9R-486-4W5Z",
        "pass-code",
        backoff=Backoff(0.01, 0.02),
        poll_interval=0.01,
        attempts=3,
    )
    await session.close()


def sent(mock, method="POST"):
    return [
        (key[1], call) for key, calls in mock.requests.items() if key[0] == method for call in calls
    ]


async def test_open_cursor_posts_the_query_with_auth_and_flags(client):
    with aioresponses() as mock:
        mock.post(re.compile(r".*/1/events\.json.*"), payload={"status": "success", "cursor": "C1"})
        cursor = await client.open_cursor(
            "events.json",
            {"event_name": "Charged", "from": 20240101, "to": 20240101},
            batch_size=9000,
            app=True,
        )
    assert cursor == "C1"
    [(url, call)] = sent(mock)
    assert url.path == "/1/events.json"
    assert url.query == {"batch_size": "5000", "app": "true", "events": "false", "profile": "true"}
    headers = call.kwargs["headers"]
    assert headers["X-CleverTap-Account-Id"] == "W9R-486-4W5Z"
    assert headers["X-CleverTap-Passcode"] == "pass-code"
    assert headers["Content-Type"] == "application/json"
    assert call.kwargs["data"] == b'{"event_name":"Charged","from":20240101,"to":20240101}'


async def test_open_cursor_without_a_cursor_is_an_error(client):
    with aioresponses() as mock:
        mock.post(re.compile(r".*/1/events\.json.*"), payload={"status": "success"})
        with pytest.raises(PermanentError, match="no cursor"):
            await client.open_cursor("events.json", {"from": 1, "to": 1}, batch_size=10)


async def test_pages_follow_next_cursor(client):
    with aioresponses() as mock:
        mock.get(
            re.compile(r".*cursor=FIRST$"),
            payload={"status": "success", "records": [{"ts": 1}], "next_cursor": "NEXT"},
        )
        mock.get(
            re.compile(r".*cursor=NEXT$"), payload={"status": "success", "records": [{"ts": 2}]}
        )
        first = await client.page("events.json", "FIRST")
        last = await client.page("events.json", first.next_cursor)
    assert first.records == [{"ts": 1}] and first.next_cursor == "NEXT"
    assert last.records == [{"ts": 2}] and last.next_cursor is None
    for _, call in sent(mock, "GET"):
        assert "Content-Type" not in call.kwargs["headers"]  # CleverTap: none on GET


async def test_an_encoded_cursor_is_sent_as_given(emulator_server):
    """CleverTap's cursors arrive URL-encoded; encoding them again breaks them."""
    seen = []

    async def page(request):
        seen.append(request.rel_url.raw_query_string)
        return web.json_response({"status": "success", "records": [{"ts": 1}]})

    app = web.Application()
    app.router.add_get("/1/events.json", page)
    server = emulator_server(app)
    async with aiohttp.ClientSession() as session:
        client = CleverTapClient(lambda: session, server.url, "W9R-486-4W5Z", "p")
        found = await client.page("events.json", "MzU8%2BLh8dAUh%2Fmbm%3D%3D")
    assert found.records == [{"ts": 1}]
    assert seen == ["cursor=MzU8%2BLh8dAUh%2Fmbm%3D%3D"]


async def test_partial_pages_carry_cursor_and_an_empty_page_ends_the_export(client):
    with aioresponses() as mock:
        mock.get(
            re.compile(r".*cursor=A$"),
            payload={"status": "partial", "cursor": "B", "records": [{"ts": 1}]},
        )
        mock.get(re.compile(r".*cursor=B$"), payload={"status": "success", "next_cursor": "C"})
        first = await client.page("events.json", "A")
        empty = await client.page("events.json", "B")
    assert first.next_cursor == "B"
    assert empty.records == [] and empty.next_cursor is None


async def test_query_in_progress_is_polled(client):
    with aioresponses() as mock:
        url = re.compile(r".*cursor=A$")
        mock.get(url, payload={"status": "fail", "code": 2, "error": "in progress"})
        mock.get(url, payload={"status": "fail", "code": 2, "error": "in progress"})
        mock.get(url, payload={"status": "success", "records": [{"ts": 1}]})
        page = await client.page("events.json", "A")
    assert page.records == [{"ts": 1}]
    assert len(sent(mock, "GET")) == 3


async def test_429_is_retried_with_retry_after(client):
    with aioresponses() as mock:
        url = re.compile(r".*cursor=A$")
        body = {"status": "fail", "error": "Too many concurrent requests", "code": 429}
        mock.get(url, status=429, payload=body, headers={"Retry-After": "0"})
        mock.get(url, status=200, payload=body)  # the code inside a 200 counts too
        mock.get(url, payload={"status": "success", "records": [{"ts": 1}]})
        page = await client.page("events.json", "A")
    assert page.records == [{"ts": 1}]


async def test_429_that_persists_is_retryable(client):
    with aioresponses() as mock:
        url = re.compile(r".*cursor=A$")
        for _ in range(3):
            mock.get(url, status=429, payload={"status": "fail", "code": 429, "error": "busy"})
        with pytest.raises(RetryableError, match="too many concurrent"):
            await client.page("events.json", "A")


async def test_expired_cursor(client):
    with aioresponses() as mock:
        mock.get(
            re.compile(r".*cursor=OLD$"),
            status=400,
            payload={"status": "fail", "error": "Invalid cursor", "code": 400},
        )
        with pytest.raises(CursorExpired):
            await client.page("events.json", "OLD")


async def test_bad_credentials_are_an_auth_error_without_the_passcode(client):
    with aioresponses() as mock:
        mock.post(
            re.compile(r".*/1/events\.json.*"),
            status=401,
            payload={"status": "fail", "error": "Invalid Credentials", "code": 401},
        )
        with pytest.raises(AuthError) as caught:
            await client.open_cursor("events.json", {"from": 1, "to": 1}, batch_size=1)
    assert "pass-code" not in str(caught.value)


async def test_fail_inside_a_200_is_permanent(client):
    with aioresponses() as mock:
        mock.post(
            re.compile(r".*/1/events\.json.*"),
            payload={"status": "fail", "error": "event_name is required", "code": 400},
        )
        with pytest.raises(PermanentError, match="event_name is required"):
            await client.open_cursor("events.json", {"from": 1, "to": 1}, batch_size=1)


async def test_event_count_polls_its_req_id(client):
    with aioresponses() as mock:
        mock.post(f"{BASE}/1/counts/events.json", payload={"status": "partial", "req_id": 123})
        mock.get(
            f"{BASE}/1/counts/events.json?req_id=123", payload={"status": "partial", "req_id": 123}
        )
        mock.get(
            f"{BASE}/1/counts/events.json?req_id=123", payload={"status": "success", "count": 130}
        )
        count = await client.event_count("Charged", 20240101, 20240101)
    assert count == 130
    [(_, post)] = sent(mock)
    assert post.kwargs["data"] == b'{"event_name":"Charged","from":20240101,"to":20240101}'
    assert len(sent(mock, "GET")) == 2


async def test_event_count_answered_at_once(client):
    with aioresponses() as mock:
        mock.post(f"{BASE}/1/counts/events.json", payload={"status": "success", "count": 7})
        assert await client.event_count("Charged", 20240101, 20240101) == 7


async def test_campaign_report_of_a_running_campaign_is_none(client):
    with aioresponses() as mock:
        mock.post(
            f"{BASE}/1/targets/result.json",
            status=400,
            payload={
                "status": "fail",
                "error": "Campaign has not completed. Current status: running",
                "code": 400,
            },
        )
        mock.post(
            f"{BASE}/1/targets/result.json",
            payload={"status": "success", "result": {"status": "completed", "sent": 5}},
        )
        assert await client.campaign_report(1) is None
        assert await client.campaign_report(2) == {"status": "completed", "sent": 5}


async def test_profile_count_posts_the_event_query_and_polls_its_own_path(client):
    with aioresponses() as mock:
        mock.post(f"{BASE}/1/counts/profiles.json", payload={"status": "partial", "req_id": "r9"})
        mock.get(
            f"{BASE}/1/counts/profiles.json?req_id=r9",
            payload={"status": "success", "count": 2953671, "tcount": 7921312, "nQCount": 0},
        )
        assert await client.profile_count("Charged", 20240101, 20240107) == 2953671
    [(_, post)] = sent(mock)
    assert post.kwargs["data"] == b'{"event_name":"Charged","from":20240101,"to":20240107}'
    assert len(sent(mock, "GET")) == 1


async def test_a_profile_count_without_a_count_is_refused(client):
    with aioresponses() as mock:
        mock.post(f"{BASE}/1/counts/profiles.json", payload={"status": "success"})
        with pytest.raises(PermanentError, match="without a count"):
            await client.profile_count("Charged", 20240101, 20240101)
