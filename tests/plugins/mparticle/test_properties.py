"""Property tests: whatever JSON arrives, the parsers raise nothing but `IngestError`,
and everything they produce is a valid record that the mapping accepts."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectord import IngestError
from connectord.plugins.mparticle.common import Parsed, Settings
from connectord.plugins.mparticle.firehose import handle_message
from connectord.plugins.mparticle.mapping import to_pushwoosh
from connectord.plugins.mparticle.parse import parse_events_request, parse_webhook_request
from connectord.records import problem

from .conftest import (
    audience,
    custom_event,
    events_batch,
    firehose_events,
    membership_change,
    profile,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson.loads yields
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)

TEMPLATES = [
    events_batch(),
    events_batch(
        events=[
            {
                "event_type": "commerce_event",
                "data": {
                    "product_action": {
                        "action": "purchase",
                        "products": [{"id": "a", "quantity": 2}],
                    },
                    "promotion_action": {"action": "view", "promotions": [{"id": "p"}]},
                    "product_impressions": [{"product_impression_list": "l", "products": []}],
                },
            },
            {"event_type": "user_attribute_change", "data": {"user_attribute_name": "x"}},
            custom_event(),
        ]
    ),
    firehose_events(),
    membership_change(
        [profile("u", "1", audience("add"), audience("attribute_update", user_attributes=[]))]
    ),
]


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A realistic message with a few of its values replaced by arbitrary JSON."""
    value = copy.deepcopy(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list(_paths(value))
        path = draw(st.sampled_from(paths))
        replacement = draw(json_values)
        if not path:
            value = replacement
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = replacement
    return value


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Any:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


payloads = mutated() | json_values
option_sets = st.builds(
    Settings,
    user_id=st.sampled_from(["customer_id", "email", "mpid", "other_id_2"]),
    mpid_fallback=st.booleans(),
    other_events=st.sampled_from(["drop", "track"]),
    enforce_limits=st.booleans(),
)


def check(parsed: Parsed) -> None:
    for record in parsed.records:
        assert problem(record) is None, (problem(record), record)
        orjson.dumps(record)
        mapped = to_pushwoosh(record)
        assert problem(mapped) is None
        orjson.dumps(mapped)
    assert all(isinstance(e, str) and e for e in parsed.errors)


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(payloads, option_sets, st.booleans())
def test_events_api_parser_never_raises_anything_else(payload, options, bulk):
    if bulk and isinstance(payload, dict):
        payload = [payload]
    try:
        parsed = parse_events_request(payload, options, bulk=bulk)
    except IngestError as err:
        assert 400 <= err.status < 500
        return
    check(parsed)


@PROPERTY
@given(payloads, option_sets)
def test_webhook_parser_never_raises_anything_else(payload, options):
    try:
        parsed = parse_webhook_request(payload, options)
    except IngestError as err:
        assert 400 <= err.status < 500
        return
    check(parsed)


@PROPERTY
@given(payloads, option_sets)
def test_firehose_handler_never_raises_anything_else(payload, options):
    try:
        result = handle_message(payload, options, setting_id="connectord_secret")
    except IngestError as err:
        assert 400 <= err.status < 500
        return
    assert result.response["type"].endswith("_response")
    assert result.response["id"] == payload["id"]
    orjson.dumps(result.response)
    check(result.parsed)


@PROPERTY
@given(st.dictionaries(st.text(max_size=20), json_values, max_size=8), st.booleans())
def test_mapping_never_raises_on_any_traits_or_properties(values, detect):
    for record in (
        {"type": "identify", "userId": "u", "traits": values},
        {"type": "track", "userId": "u", "event": "e", "properties": values},
    ):
        mapped = to_pushwoosh(record, detect=detect)
        orjson.dumps(mapped)
        assert problem(mapped) is None
