"""Pendo's documented contracts (``tests/contracts/pendo``) against the emulator and the
destination's name rules."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from connectord.plugins.pendo.payloads import name_problem, pendo_name
from tests.plugins.pendo.emulator import TRACK_SECRET, displayable

CONTRACTS = Path(__file__).parents[2] / "contracts" / "pendo"
TRACK = json.loads((CONTRACTS / "track-event.json").read_text())
RULES = json.loads((CONTRACTS / "naming-rules.json").read_text())


def post_track(pendo, body, key=TRACK_SECRET):
    return requests.post(
        f"{pendo.url}/data/track",
        json=body,
        headers={"x-pendo-integration-key": key},
        timeout=10,
    )


def test_the_documented_sample_is_accepted(pendo):
    response = post_track(pendo, TRACK["request"]["body"])
    assert response.status_code == TRACK["response"]["status"]
    (event,) = pendo.events
    assert event["event"] == "Registered"
    assert event["hidden_properties"] == [] and event["properties_too_large"] is False


def test_required_fields_are_required(pendo):
    for field in ("type", "event", "visitorId", "timestamp", "context"):
        body = {k: v for k, v in TRACK["request"]["body"].items() if k != field}
        assert post_track(pendo, body).status_code == 400, field
    assert pendo.events == []


def test_names_and_sizes_pendo_keeps_without_displaying(pendo):
    rules = RULES["track_property_names"]
    properties = {name: 1 for name in rules["displayed"] + rules["kept_but_not_displayed"]}
    properties["blob"] = "x" * RULES["track_properties_size"]["bytes"]
    response = post_track(pendo, {**TRACK["request"]["body"], "properties": properties})
    assert response.status_code == 200
    (event,) = pendo.events
    assert event["hidden_properties"] == rules["kept_but_not_displayed"]
    assert event["properties_too_large"] is True


def test_the_destinations_rules_match_pendos():
    rules = RULES["track_property_names"]
    for name in rules["displayed"]:
        assert displayable(name) and name_problem(name) is None
    for name in rules["kept_but_not_displayed"]:
        assert not displayable(name) and name_problem(name) is not None
        fixed = pendo_name(name)
        assert fixed is None or displayable(fixed)
    for old, new in RULES["metadata_keys"]["renames"].items():
        assert pendo_name(old, max_length=None) == new
