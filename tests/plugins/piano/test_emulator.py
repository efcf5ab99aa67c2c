"""The Piano emulator refuses what Piano documents as malformed, and takes what its SDK sends."""

from __future__ import annotations

import orjson
import pytest

from connectord.http import new_session

from .conftest import API_KEY, SITE


@pytest.fixture
async def http():
    session = new_session()
    yield session
    await session.close()


async def post(http, url, body, **kw):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with http.post(url, data=data, **kw) as response:
        return response.status, await response.text()


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ("idclient=v", {"events": [{"name": "x"}]}, "site id"),
        (f"s={SITE}", b"not json", "not valid JSON"),
        (f"s={SITE}", {"events": {"name": "x"}}, "must be an array"),
        (f"s={SITE}", {"events": [{"name": ""}]}, "non-empty name"),
        (f"s={SITE}", {"events": [{"name": "x", "data": [1]}]}, "data must be an object"),
        (f"s={SITE}", {"event": [{"name": "x"}]}, '{"events": [...]}'),
    ],
)
async def test_collection_refuses_malformed_requests(http, piano, piano_url, query, body, message):
    status, text = await post(http, f"{piano_url}/event?{query}", body)
    assert status == 400
    assert message in text
    assert piano.collected == []


async def test_collection_accepts_any_content_type_and_the_get_variant(http, piano, piano_url):
    events = [{"name": "page.display", "data": {"page": "home"}}]
    status, _ = await post(
        http,
        f"{piano_url}/event?s={SITE}&idclient=v1",
        {"events": events},
        headers={"Content-Type": "application/json; charset=UTF-8"},
    )
    assert status == 204
    params = {"s": str(SITE), "idclient": "v2", "events": orjson.dumps(events).decode()}
    async with http.get(f"{piano_url}/event", params=params) as response:
        assert response.status == 204
    assert [(e.idclient, e.data["page"]) for e in piano.collected] == [
        ("v1", "home"),
        ("v2", "home"),
    ]


async def test_collection_takes_what_the_js_sdk_sends_and_lists_limit_breaches(
    http, piano, piano_url
):
    """Keys with capitals and spaces and arrays of objects come from Piano's own SDK
    (tests/contracts/piano/collect-piano-analytics-js-6.17.0.json): they are taken.
    Breaking a documented data-model limit is noted, not refused."""
    data = {
        "Mixed Case Key": "x",
        "ch_ua": [{"brand": "Chromium", "version": "156"}],
        "k" * 41: 1,
        "long": "x" * 256,
        "many": list(range(21)),
    }
    status, _ = await post(
        http, f"{piano_url}/event?s={SITE}&idclient=v", {"events": [{"name": "x", "data": data}]}
    )
    assert status == 204
    assert piano.collected[0].data == data
    assert len(piano.limit_breaches) == 3
    assert any("longer than 40" in b for b in piano.limit_breaches)


def query(**overrides):
    return {
        "columns": ["pushwooshid", "m_visits"],
        "space": {"s": [SITE]},
        "period": {"p1": [{"type": "R", "granularity": "D", "offset": -1}]},
        **overrides,
    }


@pytest.mark.parametrize(
    ("method", "body", "status", "kind"),
    [
        ("getData", query(**{"max-results": 10_001}), 400, "InvalidParameter"),
        ("getData", query(**{"max-results": 10_000, "page-num": 21}), 400, "InvalidParameter"),
        ("getRowCount", query(**{"page-num": 1}), 400, "InvalidParameter"),
        ("getData", query(columns=["nosuch"]), 400, "InvalidColumn"),
        ("getData", query(space={"s": [999]}), 403, "Forbidden"),
        ("getData", {"columns": ["pushwooshid"], "space": {"s": [SITE]}}, 400, "MissingParameter"),
        (
            "getData",
            query(period={"p1": [{"type": "D", "start": "2026-02-01", "end": "2026-01-01"}]}),
            400,
            "InvalidParameter",
        ),
        (
            "getData",
            query(segment={"section": {"scope": "visitor_id", "segmentKey": "x"}}),
            400,
            "SegmentNotFound",
        ),
    ],
)
async def test_data_api_validates_parameters(http, piano_url, method, body, status, kind):
    got, text = await post(
        http, f"{piano_url}/v3/data/{method}", body, headers={"x-api-key": API_KEY}
    )
    assert got == status
    assert orjson.loads(text)["ErrorType"] == kind


async def test_data_api_needs_a_key_and_answers_get_with_param(http, piano, piano_url):
    status, text = await post(http, f"{piano_url}/v3/data/getData", query())
    assert status == 401 and "ErrorMessage" in orjson.loads(text)
    piano.set_segment("s", ["a", "b"])
    params = {
        "param": orjson.dumps(
            query(
                segment={"section": {"scope": "visitor_id", "segmentKey": "s", "mode": "exclude"}}
            )
        ).decode()
    }
    piano.add_visitor("outsider", pushwooshid="c")
    async with http.get(
        f"{piano_url}/v3/data/getData", params=params, headers={"x-api-key": API_KEY}
    ) as response:
        assert response.status == 200
        feed = (await response.json())["DataFeed"]
    assert feed["Rows"] == [{"pushwooshid": "c", "m_visits": 1}]
    assert [c["Category"] for c in feed["Columns"]] == ["Dimension", "Metric"]


async def test_data_api_quotas_are_five_per_user_and_twenty_per_organisation(http, emulator_server):
    """developers.atinternet-solutions.com/piano-analytics/data-api/technical-information/
    terms-conditions: 20 concurrent calls per organisation, 5 per user, then 429."""
    import asyncio

    from tests.plugins.piano.emulator import PianoEmulator

    keys = {f"USER{n}_secret": {SITE} for n in range(5)}
    piano = PianoEmulator(api_keys=keys, latency=0.5)
    piano.add_visitor("v1", pushwooshid="a")
    url = emulator_server(piano).url

    async def call(key):
        status, text = await post(
            http, f"{url}/v3/data/getRowCount", query(), headers={"x-api-key": key}
        )
        return status, orjson.loads(text)

    one_user = await asyncio.gather(*(call("USER0_secret") for _ in range(6)))
    refused = [body for status, body in one_user if status == 429]
    assert len(refused) == 1 and "for this user" in refused[0]["ErrorMessage"]
    assert refused[0]["ErrorType"] == "QuotasExceeded_TooManyRequests"

    everyone = await asyncio.gather(*(call(key) for key in keys for _ in range(5)))
    statuses = sorted(status for status, _ in everyone)
    assert statuses.count(200) == 20
    assert statuses.count(429) == 5
    assert all("organisation" in b["ErrorMessage"] for s, b in everyone if s == 429)
