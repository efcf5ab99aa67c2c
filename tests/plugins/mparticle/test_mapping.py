"""The pure ``mparticle.to_pushwoosh`` mapping, and overriding it with ``fields``."""

from __future__ import annotations

import pytest

from connectord.plugins.mparticle.mapping import (
    MparticleToPushwoosh,
    detect_type,
    tag_name,
    to_pushwoosh,
)
from connectord.plugins.transform.mapping import FieldsMapping, FilterMapping
from connectord.testing import map_records


@pytest.mark.parametrize(
    ("attribute", "title", "strip", "keep"),
    [
        ("$firstname", "First Name", "firstname", "$firstname"),
        ("$FirstName", "First Name", "firstname", "$FirstName"),
        ("$LastName", "Last Name", "lastname", "$LastName"),
        ("$age", "Age", "age", "$age"),
        ("$Zip", "Zip", "zip", "$Zip"),
        ("$mobile", "Mobile", "mobile", "$mobile"),
        ("$Custom", "Custom", "Custom", "$Custom"),
        ("plan", "plan", "plan", "plan"),
        ("$", "$", "$", "$"),
    ],
)
def test_tag_names(attribute, title, strip, keep):
    assert tag_name(attribute, "title") == title
    assert tag_name(attribute, "strip") == strip
    assert tag_name(attribute, "keep") == keep


def test_tag_prefix():
    assert tag_name("$firstname", "title", "mp_") == "mp_First Name"
    assert tag_name("plan", "title", "mp_") == "mp_plan"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("18", 18),
        ("-3", -3),
        ("0", 0),
        ("19.95", 19.95),
        ("true", True),
        ("FALSE", False),
        ("2024-03-01", "2024-03-01T00:00:00.000Z"),
        ("2024-03-01T10:20:30+02:00", "2024-03-01T08:20:30.000Z"),
        ("2024-13-45", "2024-13-45"),
        ("02134", "02134"),
        ("+15551234567", "+15551234567"),
        ("1e5", "1e5"),
        ("12345678901234567890123", "12345678901234567890123"),
        ("gold", "gold"),
        (7, 7),
        (["1", "2"], ["1", "2"]),
        (None, None),
    ],
)
def test_detect_type(value, expected):
    assert detect_type(value) == expected


def test_identify_traits_become_typed_tags():
    record = {
        "type": "identify",
        "userId": "u-1",
        "traits": {
            "$firstname": "Jane",
            "$age": "31",
            "$zip": "02134",
            "$Mobile": "0049123",
            "visits": "12",
            "ltv": "99.5",
            "vip": "true",
            "since": "2021-06-01",
            "colors": ["red", "blue"],
            "address": {"street": "Main"},
            "orders": [{"id": 1}],
            "old": None,
        },
    }
    mapped = to_pushwoosh(record)
    assert mapped["traits"] == {
        "First Name": "Jane",
        "Age": 31,
        "Zip": "02134",
        "Mobile": "0049123",
        "visits": 12,
        "ltv": 99.5,
        "vip": True,
        "since": "2021-06-01T00:00:00.000Z",
        "colors": ["red", "blue"],
        "address": '{"street":"Main"}',
        "old": None,
    }
    assert mapped["userId"] == "u-1"
    assert record["traits"]["$age"] == "31"  # the input is not modified


def test_events_keep_their_names_and_typed_attributes():
    track = {
        "type": "track",
        "userId": "u",
        "event": "Level_Achieved",
        "properties": {"level": "7", "products": [{"id": "a"}], "product_ids": ["a"]},
    }
    assert to_pushwoosh(track) == {
        "type": "track",
        "userId": "u",
        "event": "Level_Achieved",
        "properties": {"level": 7, "product_ids": ["a"]},
    }
    screen = {"type": "screen", "userId": "u", "name": "Home", "properties": {"tab": "2"}}
    assert to_pushwoosh(screen)["name"] == "Home"
    assert to_pushwoosh(screen, detect=False)["properties"] == {"tab": "2"}


def test_screen_views_can_become_events_named_after_the_screen():
    screen = {"type": "screen", "userId": "u", "name": "Home", "properties": {"tab": "2"}}
    assert to_pushwoosh(screen, screens="track") == {
        "type": "track",
        "userId": "u",
        "event": "Home",
        "properties": {"tab": 2},
    }
    assert to_pushwoosh(screen)["type"] == "screen"


def test_audiences_keep_id_and_name_with_mparticle_source():
    record = {
        "type": "audience",
        "action": "remove",
        "userId": "u",
        "audience": {"id": 456, "name": "High value"},
    }
    assert to_pushwoosh(record)["audience"] == {
        "id": "456",
        "name": "High value",
        "source": "mparticle",
    }


def test_other_records_pass_unchanged():
    alias = {"type": "alias", "userId": "a", "previousId": "b"}
    assert to_pushwoosh(alias) is alias


async def test_mapping_class_with_options():
    record = {"type": "identify", "userId": "u", "traits": {"$FirstName": "Ann", "n": "3"}}
    (out,) = await map_records(
        MparticleToPushwoosh, {"reserved_names": "strip", "tag_prefix": "mp_"}, [record]
    )
    assert out == [
        {"type": "identify", "userId": "u", "traits": {"mp_firstname": "Ann", "mp_n": 3}}
    ]
    (raw,) = await map_records(MparticleToPushwoosh, {"detect_types": False}, [record])
    assert raw[0]["traits"] == {"First Name": "Ann", "n": "3"}


def test_options_are_validated():
    with pytest.raises(ValueError):
        MparticleToPushwoosh.Options.model_validate({"reserved_names": "upper"})
    with pytest.raises(ValueError):
        MparticleToPushwoosh.Options.model_validate({"tag_prefix": " mp"})


async def test_overriding_with_the_generic_fields_mapping():
    """The example of docs/integrations/mparticle-pushwoosh.md, section 4."""
    record = {
        "type": "identify",
        "userId": "u",
        "traits": {"$firstname": "Ann", "plan": "gold"},
        "context": {"mparticle": {"identities": {"customer_id": "u", "email": "a@b.c"}}},
    }
    (mapped,) = await map_records(MparticleToPushwoosh, {}, [record])
    (out,) = await map_records(
        FieldsMapping,
        {
            "when": "type == 'identify'",
            "set": {
                "traits.Subscription": "traits.plan",
                "traits.Email": "context.mparticle.identities.email",
            },
            "drop": ["traits.plan"],
        },
        mapped,
    )
    assert out[0]["traits"] == {"First Name": "Ann", "Subscription": "gold", "Email": "a@b.c"}
    track = {"type": "track", "userId": "u", "event": "Debug", "properties": {}}
    dropped, kept = await map_records(
        FilterMapping, {"when": "type != 'track' || event != 'Debug'"}, [track, record]
    )
    assert (dropped, kept) == ([], [record])
