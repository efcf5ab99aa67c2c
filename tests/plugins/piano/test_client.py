"""Request/response contracts of the Piano clients (aioresponses, no network)."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest
from aioresponses import CallbackResult, aioresponses

from connectord import AuthError, PermanentError, RetryableError
from connectord.backoff import Backoff
from connectord.http import new_session
from connectord.plugins.piano.client import CollectClient, DataQueryClient, collect_headers

COLLECT = re.compile(r"^https://abcdefg\.pa-cd\.com/event\?.*$")
DATA = "https://api.atinternet.io/v3/data"
KEY = "ACCESS1_s3cretKey"


@pytest.fixture
async def session():
    s = new_session()
    yield s
    await s.close()


def only_request(mocked):
    (key, calls), *rest = mocked.requests.items()
    assert not rest and len(calls) == 1
    return key, calls[0]


async def test_collect_posts_events_for_one_visitor(session):
    client = CollectClient(lambda: session, "https://abcdefg.pa-cd.com/", 123456)
    events = [{"name": "pw_siteopened", "data": {"pushwooshid": "u-1"}}]
    with aioresponses() as mocked:
        mocked.post(COLLECT, status=204)
        await client.send("visitor 1", events, user_agent="Mozilla/5.0", ip="203.0.113.7")
        (method, url), call = only_request(mocked)
    assert method == "POST"
    assert url.path == "/event"
    assert dict(url.query) == {"s": "123456", "idclient": "visitor 1"}
    assert orjson.loads(call.kwargs["data"]) == {"events": events}
    headers = call.kwargs["headers"]
    assert headers["Content-Type"] == "text/plain;charset=UTF-8"
    assert headers["User-Agent"] == "Mozilla/5.0"
    assert headers["X-Forwarded-For"] == "203.0.113.7"


def test_only_well_formed_client_headers_are_forwarded():
    assert collect_headers("agent\r\nX-Evil: 1", "not-an-ip") == {
        "Content-Type": "text/plain;charset=UTF-8",
        "User-Agent": "agent X-Evil: 1",
    }
    assert collect_headers(None, "2001:db8::1, 10.0.0.1")["X-Forwarded-For"] == (
        "2001:db8::1, 10.0.0.1"
    )
    assert "User-Agent" not in collect_headers("   ", None)


@pytest.mark.parametrize(
    ("status", "error", "retry_after"),
    [
        (400, PermanentError, None),
        (401, AuthError, None),
        (429, RetryableError, 7.0),
        (503, RetryableError, 7.0),
    ],
)
async def test_collect_maps_http_errors(session, status, error, retry_after):
    client = CollectClient(lambda: session, "https://abcdefg.pa-cd.com", 1)
    with aioresponses() as mocked:
        mocked.post(COLLECT, status=status, body="nope", headers={"Retry-After": "7"})
        with pytest.raises(error) as raised:
            await client.send("v", [{"name": "x", "data": {}}])
    assert "Piano Analytics collection answered HTTP" in str(raised.value)
    if retry_after is not None:
        assert raised.value.retry_after == retry_after


def data_client(session, **kw):
    return DataQueryClient(
        lambda: session, "https://api.atinternet.io", KEY, backoff=Backoff(0.01, 0.05), **kw
    )


def feed(rows):
    return {"DataFeed": {"Columns": [], "Rows": rows, "Context": {}}}


async def test_get_data_posts_json_with_the_api_key(session):
    body = {"columns": ["pushwooshid", "m_visits"], "space": {"s": [1]}, "period": {}}
    with aioresponses() as mocked:
        mocked.post(f"{DATA}/getData", payload=feed([{"pushwooshid": "a", "m_visits": 1}]))
        rows = await data_client(session).get_data(body)
        (_, url), call = only_request(mocked)
    assert rows == [{"pushwooshid": "a", "m_visits": 1}]
    assert str(url) == f"{DATA}/getData"
    assert call.kwargs["headers"]["x-api-key"] == KEY
    assert call.kwargs["headers"]["Content-Type"] == "application/json"
    assert orjson.loads(call.kwargs["data"]) == body


async def test_pages_walk_page_num_until_a_short_page(session):
    seen = []

    def answer(url, **kwargs):
        body = orjson.loads(kwargs["data"])
        seen.append((body["page-num"], body["max-results"]))
        start = (body["page-num"] - 1) * 2
        return CallbackResult(payload=feed([{"c": i} for i in range(start, min(start + 2, 5))]))

    with aioresponses() as mocked:
        mocked.post(f"{DATA}/getData", callback=answer, repeat=True)
        pages = [p async for p in data_client(session).pages({"columns": ["c"]}, page_size=2)]
    assert seen == [(1, 2), (2, 2), (3, 2)]
    assert [[r["c"] for r in p] for p in pages] == [[0, 1], [2, 3], [4]]


async def test_pages_stop_after_an_empty_page(session):
    answers = [feed([{"c": 1}, {"c": 2}]), feed([])]
    with aioresponses() as mocked:
        for answer in answers:
            mocked.post(f"{DATA}/getData", payload=answer)
        pages = [p async for p in data_client(session).pages({}, page_size=2)]
    assert pages == [[{"c": 1}, {"c": 2}]]


async def test_pages_refuse_to_pass_a_truncated_answer_off_as_complete(session):
    with aioresponses() as mocked:
        mocked.post(f"{DATA}/getData", payload=feed([{"c": 1}, {"c": 2}]), repeat=True)
        with pytest.raises(PermanentError, match="more than 4 rows"):
            [p async for p in data_client(session).pages({}, page_size=2, max_rows=4)]


async def test_429_is_retried_after_retry_after(session):
    with aioresponses() as mocked:
        mocked.post(
            f"{DATA}/getData",
            status=429,
            headers={"Retry-After": "0.2"},
            payload={"ErrorMessage": "slow down", "ErrorType": "QuotasExceeded_TooManyRequests"},
        )
        mocked.post(f"{DATA}/getData", payload=feed([{"c": 1}]))
        started = asyncio.get_running_loop().time()
        rows = await data_client(session).get_data({})
        waited = asyncio.get_running_loop().time() - started
    assert rows == [{"c": 1}]
    assert waited >= 0.2


async def test_errors_carry_piano_error_type_and_message(session):
    with aioresponses() as mocked:
        mocked.post(
            f"{DATA}/getData",
            status=400,
            payload={"ErrorMessage": "segment x does not exist", "ErrorType": "SegmentNotFound"},
        )
        with pytest.raises(PermanentError) as err:
            await data_client(session).get_data({})
    assert str(err.value) == (
        "Piano Analytics Data API answered HTTP 400: SegmentNotFound: segment x does not exist"
    )
    assert KEY not in str(err.value)


async def test_refused_key_is_an_auth_error_without_retries(session):
    with aioresponses() as mocked:
        mocked.post(
            f"{DATA}/getData",
            status=401,
            payload={"ErrorMessage": "invalid key", "ErrorType": "Unauthorized"},
        )
        with pytest.raises(AuthError, match="HTTP 401: Unauthorized: invalid key"):
            await data_client(session).get_data({})
        assert sum(len(c) for c in mocked.requests.values()) == 1


async def test_persistent_5xx_gives_up_after_the_attempts(session):
    with aioresponses() as mocked:
        mocked.post(f"{DATA}/getData", status=502, body="bad gateway", repeat=True)
        with pytest.raises(RetryableError, match="HTTP 502"):
            await data_client(session, attempts=3).get_data({})
        assert sum(len(c) for c in mocked.requests.values()) == 3


async def test_answers_that_are_not_json_or_lack_rows_are_permanent(session):
    with aioresponses() as mocked:
        mocked.post(f"{DATA}/getData", status=200, body="<html>")
        mocked.post(f"{DATA}/getData", payload={"Unexpected": 1})
        client = data_client(session)
        with pytest.raises(PermanentError, match="not JSON"):
            await client.get_data({})
        with pytest.raises(PermanentError, match=r"no DataFeed\.Rows"):
            await client.get_data({})


async def test_row_count_sends_no_sort_or_paging(session):
    with aioresponses() as mocked:
        mocked.post(f"{DATA}/getRowCount", payload={"RowCounts": [{"RowCount": 42}]})
        count = await data_client(session).get_row_count(
            {"columns": ["c"], "sort": ["c"], "max-results": 5, "page-num": 2}
        )
        _, call = only_request(mocked)
    assert count == 42
    assert orjson.loads(call.kwargs["data"]) == {"columns": ["c"]}


async def test_at_most_five_calls_per_user_are_in_flight(session):
    in_flight = peak = 0

    async def answer(url, **kwargs):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return CallbackResult(payload=feed([]))

    with aioresponses() as mocked:
        mocked.post(f"{DATA}/getData", callback=answer, repeat=True)
        first, second = data_client(session), data_client(session)
        await asyncio.gather(*(c.get_data({}) for c in [first, second] * 6))
    assert peak == 5
