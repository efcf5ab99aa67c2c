"""Piano's documented calls and its SDK's captured request (tests/contracts/piano/*.json,
each naming its source) replayed against the emulator and compared with what our
``piano.collect`` destination and ``piano.segment`` source send."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from connectord.http import new_session
from connectord.plugins.piano.const import MAX_CONCURRENT_CALLS, MAX_RESULTS
from connectord.plugins.piano.destination import PianoCollectDestination
from connectord.plugins.piano.source import PianoSegmentSource
from connectord.testing import deliver, run_source
from tests.plugins.piano import emulator as emulator_module

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "piano"
SDK_SAMPLE = "collect-piano-analytics-js-6.17.0.json"


def contract(name: str) -> dict[str, Any]:
    return json.loads((CONTRACTS / name).read_text())


def test_every_sample_names_its_source():
    samples = sorted(CONTRACTS.glob("*.json"))
    assert len(samples) >= 5
    for path in samples:
        assert json.loads(path.read_text()).get("source"), path.name


async def replay(url: str, request: dict[str, Any]) -> int:
    async with (
        new_session() as http,
        http.request(
            request["method"],
            url + request["path"],
            params=request["query"],
            data=orjson.dumps(request["body"]),
            headers=request["headers"],
        ) as response,
    ):
        return response.status


async def test_the_emulator_takes_and_refuses_what_the_samples_say(piano, piano_url):
    for name in (SDK_SAMPLE, "collect-docs-pattern.json", "collect-events-not-an-array.json"):
        sample = contract(name)
        assert await replay(piano_url, sample["request"]) == sample["response"]["status"], name
    sdk_body = contract(SDK_SAMPLE)["request"]["body"]
    assert piano.collected[0].data == sdk_body["events"][0]["data"]
    assert len(piano.collected) == 2
    assert piano.limit_breaches == []


async def test_our_collect_request_has_the_sdk_shape(piano, collect_options):
    sdk = contract(SDK_SAMPLE)["request"]
    sdk_event = sdk["body"]["events"][0]
    properties = {
        k: sdk_event["data"][k] for k in ("order_total", "currency", "plan_name", "Mixed Case Key")
    }
    record = {
        "type": "track",
        "event": sdk_event["name"],
        "userId": sdk_event["data"]["user_id"],
        "timestamp": "2026-12-07T01:49:07.068Z",
        "properties": properties,
        "context": {
            "piano": {
                "idclient": sdk["query"]["idclient"],
                "user_category": sdk_event["data"]["user_category"],
            }
        },
    }
    options = {**collect_options, "site_id": int(sdk["query"]["s"])}
    result = await deliver(PianoCollectDestination, options, [record])
    assert result.rejected == {}
    (request,) = piano.requests_to("/event")
    assert request.method == sdk["method"] and request.path == sdk["path"]
    assert request.query == sdk["query"]
    assert request.headers["Content-Type"] == sdk["headers"]["Content-Type"]
    ours = request.json()["events"][0]
    assert ours["name"] == sdk_event["name"]
    assert set(ours["data"]) <= set(sdk_event["data"])
    for key, value in ours["data"].items():
        assert type(value) is type(sdk_event["data"][key]), key
        if key not in ("event_collection_platform", "event_collection_version"):
            assert value == sdk_event["data"][key], key


async def test_segment_queries_have_the_documented_shape(piano, segment_options):
    sample = contract("data-api-getdata-segment.json")["request"]
    piano.set_segment("seg-a", [f"u{i}" for i in range(5)])
    records, _ = await run_source(PianoSegmentSource, {**segment_options, "page_size": 2})
    assert len(records) == 5
    calls = piano.requests_to("/v3/data/getData")
    assert [c.json()["page-num"] for c in calls] == [1, 2, 3]
    for call in calls:
        assert call.method == sample["method"]
        assert call.headers["x-api-key"] == segment_options["api_key"]
        assert call.headers["Content-Type"] == sample["headers"]["Content-Type"]
        body = call.json()
        assert set(body) == set(sample["body"])
        assert body["segment"]["section"].keys() == sample["body"]["segment"]["section"].keys()
        assert 1 <= body["max-results"] <= MAX_RESULTS


def test_the_quotas_we_keep_are_the_documented_ones():
    sample = contract("data-api-quotas.json")
    assert MAX_CONCURRENT_CALLS == sample["per_user"] == emulator_module.MAX_CONCURRENT
    assert sample["per_organisation"] == emulator_module.MAX_CONCURRENT_ORG
