"""Segment's documented requests and answers (``tests/contracts/segment``) replayed
against ``segment.http`` over real HTTP."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import orjson
import pytest
import requests

from .conftest import WRITE_KEY

CONTRACTS = Path(__file__).parents[2] / "contracts" / "segment"
SAMPLES = json.loads((CONTRACTS / "http-api-samples.json").read_text())
ERRORS = json.loads((CONTRACTS / "http-api-errors.json").read_text())


def with_key(body: dict) -> dict:
    body = copy.deepcopy(body)
    body["writeKey"] = WRITE_KEY
    return body


@pytest.mark.parametrize("sample", SAMPLES["samples"], ids=lambda s: s["name"][:20])
def test_documented_examples_are_accepted_and_stored(ingest, sample):
    response = requests.post(
        f"{ingest.url}{sample['path']}",
        data=orjson.dumps(with_key(sample["body"])),
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert len(ingest.records) == sample.get("messages", 1)
    for record in ingest.records:
        assert "writeKey" not in record
        assert record["timestamp"] and record["receivedAt"] and record["messageId"]


def oversized(case: dict) -> bytes:
    blob = "x" * case["bytes"]
    if case["oversize"] == "batch":
        message = {"type": "track", "userId": "u", "event": "e", "properties": {"b": "x" * 1000}}
        body = {"batch": [message] * (case["bytes"] // 1000)}
    elif case["oversize"].startswith("batch[1]"):
        small = {"type": "track", "userId": "u", "event": "e"}
        body = {"batch": [small, {**small, "properties": {"blob": blob}}]}
    else:
        body = {"userId": "u", "event": "e", "properties": {"blob": blob}}
    return orjson.dumps(with_key(body))


def build(case: dict) -> bytes:
    if "raw" in case:
        return case["raw"].encode()
    if "oversize" in case:
        return oversized(case)
    if "repeat" in case:
        message = {"type": "track", "userId": "u", "event": "e"}
        return orjson.dumps(with_key({"batch": [message] * case["repeat"]}))
    return orjson.dumps(with_key(case["body"]))


@pytest.mark.parametrize("case", ERRORS["cases"], ids=lambda c: c["name"])
def test_answers_are_segments(ingest, case):
    response = requests.post(
        f"{ingest.url}{case['path']}",
        data=build(case),
        headers={"Content-Type": "application/json", "Authorization": "Basic x"},
    )
    assert response.status_code == case["status"], response.text
    if case["status"] == 200:
        assert response.json() == {"success": True}
        # Kept: as dead letters with the reason, or all of an oversized batch.
        assert ingest.records or ingest.dead_letters
    else:
        assert response.json()["success"] is False
        assert ingest.records == [] and ingest.dead_letters == []
