"""The Piano emulator refuses what the reference says Piano refuses."""

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
        (f"s={SITE}", {"events": [{"name": "x", "data": {"Bad Key": 1}}]}, "invalid property"),
        (f"s={SITE}", {"events": [{"name": "x", "data": {"m_x": 1}}]}, "reserved prefix"),
        (f"s={SITE}", {"events": [{"name": "x", "data": {"k": "x" * 256}}]}, "255"),
        (f"s={SITE}", {"events": [{"name": "x", "data": {"k": {"a": 1}}}]}, "value type"),
        (f"s={SITE}", {"events": [{"name": "x", "data": {"k": list(range(21))}}]}, "20 items"),
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
