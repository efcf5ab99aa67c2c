"""Request/response contracts of the Pendo client (aioresponses, no network)."""

from __future__ import annotations

import re

import orjson
import pytest
from aioresponses import aioresponses
from yarl import URL

from connectord import AuthError, PermanentError, RetryableError
from connectord.http import new_session
from connectord.plugins.pendo import const
from connectord.plugins.pendo.client import PendoClient, parse_metadata_response
from connectord.plugins.pendo.destination import PendoDestination
from connectord.testing import deliver

from .conftest import identify, track

BASE = "https://app.pendo.io"


@pytest.fixture
async def client():
    session = new_session()
    yield PendoClient(
        lambda: session,
        base_url=BASE,
        track_base_url="https://data.pendo.io",
        track_secret="the-shared-secret",
        integration_key="the-integration-key",
    )
    await session.close()


def sent(mocked, method, url):
    return mocked.requests[(method, URL(url))]


async def test_track_posts_one_event_with_the_shared_secret(client):
    event = {"type": "track", "event": "X", "visitorId": "u1", "timestamp": 1, "context": {}}
    with aioresponses() as mocked:
        mocked.post("https://data.pendo.io/data/track", status=200, body="OK")
        await client.track(event)
        (call,) = sent(mocked, "POST", "https://data.pendo.io/data/track")
    assert call.kwargs["headers"][const.KEY_HEADER] == "the-shared-secret"
    assert call.kwargs["headers"]["Content-Type"] == "application/json"
    assert orjson.loads(call.kwargs["data"]) == event


async def test_metadata_bulk_call_uses_the_integration_key_and_create(client):
    entries = [{"visitorId": "u1", "values": {"plan": "pro"}}]
    with aioresponses() as mocked:
        mocked.post(
            f"{BASE}/api/v1/metadata/visitor/agent/value?create=true",
            payload={"total": 1, "updated": 1, "failed": 0, "missing": [], "errors": []},
        )
        outcome = await client.set_metadata("visitor", "agent", entries, create=True)
        (call,) = sent(mocked, "POST", f"{BASE}/api/v1/metadata/visitor/agent/value?create=true")
    assert call.kwargs["headers"][const.KEY_HEADER] == "the-integration-key"
    assert call.kwargs["params"] == {"create": "true"}
    assert orjson.loads(call.kwargs["data"]) == entries
    assert not outcome.missing and not outcome.errors and not outcome.unexplained


async def test_custom_fields_are_set_without_create(client):
    with aioresponses() as mocked:
        mocked.post(f"{BASE}/api/v1/metadata/account/custom/value", payload={"failed": 0})
        await client.set_metadata(
            "account", "custom", [{"accountId": "a1", "values": {"arr": 5}}], create=False
        )
        (call,) = sent(mocked, "POST", f"{BASE}/api/v1/metadata/account/custom/value")
    assert call.kwargs["params"] is None


async def test_metadata_answer_maps_missing_and_errors_to_ids(client):
    entries = [{"visitorId": v, "values": {}} for v in ("u1", "u2", "u3")]
    answer = {
        "total": 3,
        "updated": 1,
        "failed": 2,
        "missing": ["u2"],
        "errors": [{"visitorId": "u3", "error": "bad value"}],
    }
    with aioresponses() as mocked:
        mocked.post(f"{BASE}/api/v1/metadata/visitor/agent/value", payload=answer)
        outcome = await client.set_metadata("visitor", "agent", entries, create=False)
    assert outcome.missing == {"u2"}
    assert outcome.errors == {"u3": "bad value"}
    assert outcome.unexplained == 0


def test_metadata_answer_variants():
    ids = ["u1", "u2", "u3"]
    # "<id>: message" strings, and failures Pendo does not attribute
    outcome = parse_metadata_response(
        orjson.dumps({"failed": 3, "errors": ["u1: nope", "something broke"]}).decode(),
        ids,
        "visitor",
    )
    assert outcome.errors == {"u1": "nope"}
    assert outcome.unexplained == 2
    # failed as a list of objects
    outcome = parse_metadata_response(
        orjson.dumps({"failed": [{"id": "u2", "message": "no"}]}).decode(), ids, "visitor"
    )
    assert outcome.errors == {"u2": "no"}
    # ids Pendo was not asked about are ignored; an empty answer means success
    outcome = parse_metadata_response('{"missing": ["zz"]}', ids, "visitor")
    assert not outcome.missing
    assert parse_metadata_response("", ids, "visitor").unexplained == 0
    with pytest.raises(PermanentError, match="not JSON"):
        parse_metadata_response("<html>", ids, "visitor")


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"Retry-After": "7"}, RetryableError, 7.0),
        (503, {}, RetryableError, None),
        (500, {"Retry-After": "2"}, RetryableError, 2.0),
        (401, {}, AuthError, None),
        (403, {}, AuthError, None),
        (400, {}, PermanentError, None),
    ],
)
async def test_http_errors_map_to_delivery_errors(client, status, headers, error, retry_after):
    with aioresponses() as mocked:
        mocked.post("https://data.pendo.io/data/track", status=status, headers=headers)
        with pytest.raises(error) as raised:
            await client.track({"type": "track"})
    assert type(raised.value) is error
    if retry_after is not None:
        assert raised.value.retry_after == retry_after
    assert "the-shared-secret" not in str(raised.value)


async def test_network_errors_are_retryable(client):
    import aiohttp

    with aioresponses() as mocked:
        mocked.post(
            "https://data.pendo.io/data/track", exception=aiohttp.ClientConnectionError("reset")
        )
        with pytest.raises(RetryableError, match="network error"):
            await client.track({"type": "track"})


async def test_verify_checks_the_integration_key(client):
    with aioresponses() as mocked:
        mocked.get(f"{BASE}/api/v1/token/verify", payload={"valid": True})
        assert await client.verify() == {"valid": True}
        (call,) = sent(mocked, "GET", f"{BASE}/api/v1/token/verify")
    assert call.kwargs["headers"][const.KEY_HEADER] == "the-integration-key"
    assert "Content-Type" not in call.kwargs["headers"]
    with aioresponses() as mocked:
        mocked.get(f"{BASE}/api/v1/token/verify", status=401, body="invalid key")
        with pytest.raises(AuthError, match="HTTP 401"):
            await client.verify()


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us", "https://app.pendo.io"),
        ("us1", "https://us1.app.pendo.io"),
        ("eu", "https://app.eu.pendo.io"),
        ("jpn", "https://app.jpn.pendo.io"),
        ("au", "https://app.au.pendo.io"),
    ],
)
async def test_region_selects_the_host(region, host):
    options = {"track_secret": "s", "integration_key": "k", "region": region}
    with aioresponses() as mocked:
        mocked.post(f"{host}/data/track", status=200)
        mocked.post(re.compile(re.escape(host) + r"/api/v1/metadata/visitor/agent/value.*"))
        result = await deliver(PendoDestination, options, [track(), identify(plan="pro")])
        called = sorted(str(url) for _, url in mocked.requests)
    assert result.rejected == {} and not result.retry
    assert called == [
        f"{host}/api/v1/metadata/visitor/agent/value?create=true",
        f"{host}/data/track",
    ]
