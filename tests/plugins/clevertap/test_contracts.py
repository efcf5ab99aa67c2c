"""CleverTap's documented calls (tests/contracts/clevertap/*.json, each naming its source)
replayed against our sources and the emulator: what we send has the documented shape,
what the emulator answers is what the samples say, and documented answers map."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from connectord.http import new_session
from connectord.plugins.clevertap import mapping
from connectord.plugins.clevertap.client import interpret
from connectord.plugins.clevertap.reports import CampaignsSource, CountsSource
from connectord.plugins.clevertap.source import EventsSource, ProfilesSource
from connectord.testing import make_context, run_source
from tests.plugins.clevertap.common import source_options

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "clevertap"


def contract(name: str) -> dict[str, Any]:
    return json.loads((CONTRACTS / name).read_text())


def test_every_sample_names_its_source():
    samples = sorted(CONTRACTS.glob("*.json"))
    assert len(samples) >= 6
    for path in samples:
        assert json.loads(path.read_text()).get("source"), path.name


async def test_get_events_requests_have_the_documented_shape(emulator, served):
    sample = contract("get-events-cursor.json")["request"]
    options = source_options(emulator, served.url, events=["Charged"], batch_size=5000)
    await run_source(EventsSource, options)
    posts = [r for r in emulator.requests_to("/1/events.json") if r.method == "POST"]
    gets = [r for r in emulator.requests_to("/1/events.json") if r.method == "GET"]
    assert posts and gets
    for request in posts:
        assert set(request.json()) == set(sample["required_body"])
        assert request.json()["event_name"] == "Charged"
        assert all(isinstance(request.json()[k], int) for k in ("from", "to"))
        assert set(request.query) == set(sample["query"])
        assert int(request.query["batch_size"]) <= 5000
        for header in sample["headers"]:
            assert header in request.headers
    for request in gets:
        assert set(request.query) == {"cursor"}
        # get-user-profiles-api: "Do not include Content-Type on GET requests."
        assert "Content-Type" not in request.headers


async def post_raw(url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with new_session() as http, http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json()


async def test_the_emulator_answers_as_the_samples(emulator, served):
    auth = {
        "X-CleverTap-Account-Id": emulator.account_id,
        "X-CleverTap-Passcode": emulator.passcode,
    }
    missing = contract("get-events-without-event-name.json")
    request = missing["request"]
    status, body = await post_raw(
        f"{served.url}{request['path']}?batch_size=5000", request["body"], auth
    )
    assert (status, body) == (missing["response"]["status"], missing["response"]["body"])

    errors = contract("api-errors-invalid-credentials.json")
    request = errors["request"]
    status, body = await post_raw(
        f"{served.url}{request['path']}?batch_size=10",
        {"event_name": "Charged", "from": 20240101, "to": 20240101},
        request["headers"],
    )
    assert (status, body) == (errors["responses"][0]["status"], errors["responses"][0]["body"])


def test_a_documented_page_becomes_track_records():
    sample = contract("get-events-page.json")
    page = interpret(200, {}, json.dumps(sample["response"]["body"]).encode())
    (raw,) = page["records"]
    record = mapping.event_record(raw, "Charged", account_id="W9R-486-4W5Z", tz=UTC)
    assert record["type"] == "track" and record["event"] == "Charged"
    assert record["userId"] == raw["profile"]["identity"]
    assert record["anonymousId"] == raw["profile"]["objectId"]
    assert record["timestamp"].startswith("2025-06-07T13:09:35")
    assert record["properties"]["Fare"] == 5149
    assert record["properties"]["Leave Date"].startswith("2025-06-11T")
    last = interpret(200, {}, json.dumps(sample["last_page"]["body"]).encode())
    assert not last.get("records") and not last.get("next_cursor")


async def test_counts_post_the_documented_body_and_poll_by_req_id(emulator, served):
    sample = contract("get-event-count.json")
    await run_source(CountsSource, source_options(emulator, served.url, events=["Charged"]))
    requests = emulator.requests_to("/1/counts/events.json")
    posts = [r for r in requests if r.method == "POST"]
    polls = [r for r in requests if r.method == "GET"]
    assert posts and polls
    assert all(set(r.json()) == set(sample["request"]["required_body"]) for r in posts)
    assert all(set(r.query) == set(sample["poll"]["query"]) for r in polls)


async def test_campaign_calls_post_the_documented_bodies(emulator, served):
    sample = contract("get-campaigns.json")
    listing, report = sample["requests"]
    options = source_options(emulator, served.url)
    del options["end"]
    await run_source(CampaignsSource, options)
    lists = emulator.requests_to(listing["path"])
    results = emulator.requests_to(report["path"])
    assert lists and results
    assert all(r.method == "POST" and set(r.json()) == set(listing["body"]) for r in lists)
    assert all(isinstance(v, int) for r in lists for v in r.json().values())
    assert all(r.method == "POST" and set(r.json()) == set(report["body"]) for r in results)


async def checked(cls: type, options: dict[str, Any]) -> str:
    async with contextlib.AsyncExitStack() as stack:
        context = await stack.enter_async_context(make_context())
        source = cls(cls.Options.model_validate(options), context)
        await source.start()
        stack.push_async_callback(source.close)
        return await source.check()


@pytest.mark.parametrize(
    ("cls", "extra", "event"),
    [
        (EventsSource, {"events": ["Charged", "App Launched"]}, "Charged"),
        (CountsSource, {"events": ["Added To Cart"]}, "Added To Cart"),
        (ProfilesSource, {"event": "Product Viewed"}, "Product Viewed"),
    ],
)
async def test_check_asks_for_an_event_the_connector_reads(emulator, served, cls, extra, event):
    """``check`` must pass only if the run can: it queries a configured event name."""
    message = await checked(cls, source_options(emulator, served.url, **extra))
    (request,) = emulator.requests_to("/1/events.json")
    assert request.json()["event_name"] == event
    assert repr(event) in message


async def test_campaigns_check_lists_campaigns_only(emulator, served):
    options = source_options(emulator, served.url)
    del options["end"]
    await checked(CampaignsSource, options)
    (request,) = emulator.requests_to("/1/")
    assert (request.method, request.path) == ("POST", "/1/targets/list.json")
    assert set(request.json()) == {"from", "to"}


async def test_profile_counts_post_the_documented_body_and_poll_their_own_path(emulator, served):
    sample = contract("get-profile-count.json")
    options = source_options(emulator, served.url, events=["Charged"], profiles=True)
    records, _ = await run_source(CountsSource, options)
    requests = emulator.requests_to(sample["request"]["path"])
    posts = [r for r in requests if r.method == "POST"]
    polls = [r for r in requests if r.method == "GET"]
    assert posts and polls
    for request in posts:
        assert set(request.json()) == set(sample["request"]["required_body"])
        assert all(isinstance(request.json()[k], int) for k in ("from", "to"))
        for header in sample["request"]["headers"]:
            assert header in request.headers
    assert all(set(r.query) == set(sample["poll"]["query"]) for r in polls)
    assert {r["metric"] for r in records} == {"event_count", "profile_count"}
    # the documented answers, as the client reads them
    partial, success = (
        interpret(200, {}, json.dumps(a["body"]).encode()) for a in sample["responses"]
    )
    assert partial["req_id"] == 100001 and success["count"] == 2953671


async def test_the_emulator_refuses_profile_counts_clevertap_refuses(emulator, served):
    sample = contract("get-profile-count.json")
    headers = {
        "X-CleverTap-Account-Id": emulator.account_id,
        "X-CleverTap-Passcode": emulator.passcode,
    }
    async with new_session() as session:
        for case in sample["rejected"]:
            async with session.post(
                f"{served.url}/1/counts/profiles.json", json=case["body"], headers=headers
            ) as answer:
                assert answer.status == 400, case["why"]
                assert (await answer.json())["status"] == "fail"
        async with session.post(
            f"{served.url}/1/counts/profiles.json", json=sample["request"]["body"]
        ) as answer:
            assert answer.status == 401  # no credentials
        # a req_id is known only on the path that issued it
        async with session.post(
            f"{served.url}/1/counts/events.json", json=sample["request"]["body"], headers=headers
        ) as answer:
            req_id = (await answer.json())["req_id"]
        async with session.get(
            f"{served.url}/1/counts/profiles.json?req_id={req_id}", headers=headers
        ) as answer:
            assert answer.status == 400
