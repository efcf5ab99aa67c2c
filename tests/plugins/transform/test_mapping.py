"""The declarative ``fields`` and ``filter`` mappings."""

import pytest
from pydantic import ValidationError

from connectord.plugins.transform.mapping import FieldsMapping, FilterMapping
from connectord.testing import map_records

RECORD = {
    "type": "track",
    "event": "Order Completed",
    "userId": "u1",
    "properties": {"total": 10, "coupon": "X"},
    "context": {"ip": "1.2.3.4"},
    "traits": {"plan": "pro"},
}


async def test_set_from_expressions_and_drop():
    [[out]] = await map_records(
        FieldsMapping,
        {
            "set": {
                "properties.plan": "traits.plan",
                "event": "lower(event)",
                "properties.source": "'web'",
                "context.page.url": '`"https://x"`',
            },
            "drop": ["context.ip", "properties.coupon", "no.such.path"],
        },
        [RECORD],
    )
    assert out["event"] == "order completed"
    assert out["properties"] == {"total": 10, "plan": "pro", "source": "web"}
    assert out["context"] == {"page": {"url": "https://x"}}
    assert RECORD["properties"]["coupon"] == "X", "the input record is not modified"


async def test_expressions_see_the_original_record_so_swaps_work():
    record = {"type": "identify", "userId": "a", "anonymousId": "b"}
    [[out]] = await map_records(
        FieldsMapping, {"set": {"userId": "anonymousId", "anonymousId": "userId"}}, [record]
    )
    assert (out["userId"], out["anonymousId"]) == ("b", "a")


async def test_null_results_leave_targets_untouched():
    [[out]] = await map_records(FieldsMapping, {"set": {"event": "missing.field"}}, [RECORD])
    assert out["event"] == "Order Completed"


async def test_when_limits_the_change():
    records = [RECORD, {**RECORD, "event": "Other"}]
    outputs = await map_records(
        FieldsMapping, {"when": "event == 'Other'", "set": {"properties.flag": "`true`"}}, records
    )
    assert "flag" not in outputs[0][0]["properties"]
    assert outputs[1][0]["properties"]["flag"] is True


async def test_custom_functions():
    record = {"type": "track", "userId": "u", "event": " A-B ", "timestamp": "2026-01-01T00:00:00Z"}
    [[out]] = await map_records(
        FieldsMapping,
        {
            "set": {
                "properties.trimmed": "trim(event)",
                "properties.upper": "upper(event)",
                "properties.parts": "split(trim(event), '-')",
                "properties.replaced": "replace(trim(event), '-', '_')",
                "properties.ms": "epoch_ms(timestamp)",
                "properties.iso": "iso_time(`1767225600`)",
            }
        },
        [record],
    )
    assert out["properties"] == {
        "trimmed": "A-B",
        "upper": " A-B ",
        "parts": ["A", "B"],
        "replaced": "A_B",
        "ms": 1767225600000,
        "iso": "2026-01-01T00:00:00.000Z",
    }


async def test_filter_keeps_matching_records_only():
    records = [RECORD, {**RECORD, "type": "identify"}]
    outputs = await map_records(FilterMapping, {"when": "type == 'track'"}, records)
    assert outputs == [[RECORD], []]


@pytest.mark.parametrize(
    "options",
    [
        {"when": "type =="},
        {"set": {"a..b": "x"}},
        {"set": {"a": "[[["}},
        {"drop": [""]},
    ],
)
def test_invalid_options_are_config_errors(options):
    with pytest.raises(ValidationError):
        FieldsMapping.Options.model_validate(options)
