"""Documented Pushwoosh exchanges (tests/contracts/pushwoosh) against the emulator and
against what the destination and sources actually send."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from connectord.plugins.pushwoosh.destination import PushwooshDestination
from connectord.plugins.pushwoosh.source import PushwooshTrackingLog
from connectord.plugins.pushwoosh.tracking import iter_tracking_rows
from connectord.testing import deliver, run_source
from tests.plugins.pushwoosh.emulator import PushwooshEmulator

CONTRACTS = Path(__file__).parents[2] / "contracts" / "pushwoosh"
SAMPLES = {path.stem: orjson.loads(path.read_bytes()) for path in sorted(CONTRACTS.glob("*.json"))}
APP = "ABCDE-12345"
SERVER = "server-token-for-tests"
DEVICE = "device-token-for-tests"


def fill(value: Any) -> Any:
    """The sample with the documents' placeholders replaced by the test's values."""
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    text = orjson.dumps(value).decode()
    for marker, real in (
        ("$APP", APP),
        ("$DEVICE_TOKEN", DEVICE),
        ("$SERVER_TOKEN", SERVER),
        ("$YESTERDAY", yesterday),
    ):
        text = text.replace(marker, real)
    return orjson.loads(text)


def shape(value: Any) -> Any:
    """Keys and JSON types, not values (ids and messages vary)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if value is not None else None


def test_every_sample_names_its_source():
    assert len(SAMPLES) >= 12
    for name, sample in SAMPLES.items():
        assert str(sample.get("source", "")).strip(), f"{name}.json has no source"


@pytest.fixture
def emulator(emulator_server) -> PushwooshEmulator:
    pushwoosh = PushwooshEmulator(application=APP, api_token=SERVER, device_token=DEVICE)
    pushwoosh.url = emulator_server(pushwoosh).url
    return pushwoosh


@pytest.mark.parametrize("name", [n for n, s in SAMPLES.items() if "request" in s])
async def test_the_emulator_answers_what_pushwoosh_documents(emulator, name):
    sample = fill(SAMPLES[name])
    for key, value in (sample.get("emulator") or {}).items():
        setattr(emulator, key, value)
    request = sample["request"]
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            request["method"],
            emulator.url + request["path"],
            data=orjson.dumps(request["body"]),
            headers={"Content-Type": "application/json", **request["headers"]},
        ) as response,
    ):
        status, body = response.status, orjson.loads(await response.read())
    expected = sample["response"]
    assert status == expected["status"], body
    if "status_code" in expected["body"]:  # legacy envelope: the code decides, text varies
        assert body["status_code"] == expected["body"]["status_code"], body
        assert shape(body["response"]) == shape(expected["body"]["response"])
    else:
        assert shape(body) == shape(expected["body"])


# --- what connectord sends ------------------------------------------------------------


def options(emulator: PushwooshEmulator, **overrides: Any) -> dict[str, Any]:
    return {
        "application": APP,
        "api_token": SERVER,
        "device_token": DEVICE,
        "base_url": emulator.url,
        "poll_interval": 0.01,
        "max_wait": 5,
        **overrides,
    }


def identify(user: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": traits}


async def run_scenario(emulator: PushwooshEmulator, scenario: str) -> None:
    """Make connectord perform the call a contract sample documents."""
    if scenario == "destination.identify.few":
        await deliver(PushwooshDestination, options(emulator), [identify("u1", Plan="pro")])
    elif scenario == "destination.identify.many":
        records = [identify(f"u{i}", Plan="pro") for i in range(50)]
        await deliver(PushwooshDestination, options(emulator), records)
    elif scenario == "destination.identify.basic_plan":
        emulator.plan = "basic"
        await deliver(PushwooshDestination, options(emulator), [identify("u1", Plan="pro")])
    elif scenario == "destination.track":
        record = {
            "type": "track",
            "userId": "someuser@user.com",
            "event": "activityCompleted",
            "properties": {"login": "facebook"},
            "timestamp": "2026-11-20T10:00:00.000Z",
            "context": {"device": {"id": "8f65b16df378e7a6bece9614e1530fb2", "type": "ios"}},
        }
        await deliver(PushwooshDestination, options(emulator), [record])
    elif scenario == "destination.audience":
        record = {
            "type": "audience",
            "action": "add",
            "userId": "u1",
            "audience": {"id": "1", "name": "VIP", "source": "mparticle"},
        }
        await deliver(PushwooshDestination, options(emulator), [record])
    elif scenario == "source.tracking_log":
        source_options = {k: v for k, v in options(emulator).items() if k != "device_token"}
        await run_source(PushwooshTrackingLog, {**source_options, "initial_days": 1})
    else:
        raise AssertionError(f"unknown scenario {scenario}")


def fields(body: dict[str, Any]) -> set[str]:
    return set(body.get("request", body))


@pytest.mark.parametrize(
    "name", [n for n, s in SAMPLES.items() if "request" in s and s.get("produced_by")]
)
async def test_connectord_sends_the_documented_fields(emulator, name):
    sample = fill(SAMPLES[name])
    await run_scenario(emulator, sample["produced_by"])
    request = sample["request"]
    sent = [r for r in emulator.requests_to(request["path"]) if r.method == request["method"]]
    assert sent, f"{sample['produced_by']} made no {request['path']} call"
    documented = fields(request["body"])
    for call in sent:
        body = call.json()
        assert fields(body) <= documented | {"hwid", "userId"}, fields(body) - documented
        wanted = request["headers"].get("Authorization")
        if wanted:  # the token family: the Device API token in the header, nothing else
            assert call.headers.get("Authorization") == wanted
            assert "auth" not in fields(body)
        elif "auth" in documented:
            assert body.get("request", body)["auth"] == SERVER
    if request["path"].endswith("bulkSetTags"):
        allowed = {"hwid", "user_id", "push_token", "list_operator", "tags"}
        assert all(set(d) <= allowed for d in sent[0].json()["devices"])
        assert len(sent[0].json()["devices"]) >= 50


def test_the_documented_tracking_line_parses_and_maps_to_a_device(tmp_path):
    sample = SAMPLES["tracking-log-csv"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("log.csv", sample["csv"])
    [row] = list(iter_tracking_rows(io.BytesIO(buffer.getvalue())))
    assert {k: row[k] for k in sample["expected_row"]} == sample["expected_row"]
    assert orjson.loads(row["payload"])["pw_msg"] == "1"
    source = PushwooshTrackingLog.__new__(PushwooshTrackingLog)
    source.options = PushwooshTrackingLog.Options(application=APP, api_token=SERVER)
    record = source.record(row, datetime(2021, 4, 20, tzinfo=UTC).date())
    assert record is not None and "userId" not in record
    assert record["anonymousId"] == sample["expected_row"]["hwid"]
    assert record["context"]["device"] == {"id": sample["expected_row"]["hwid"]}
    assert record["properties"]["app_code"] == "C90C0-0E786"
