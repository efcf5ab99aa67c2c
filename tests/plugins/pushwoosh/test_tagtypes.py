"""Tag type detection: unit cases and properties (pure, no I/O)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectord.plugins.pushwoosh.const import TagType
from connectord.plugins.pushwoosh.tagtypes import (
    INT64_MAX,
    TagConflict,
    detect,
    fit,
    type_tags,
)

INT, S, L, D, B, DEC, V = (
    TagType.INTEGER,
    TagType.STRING,
    TagType.LIST,
    TagType.DATE,
    TagType.BOOLEAN,
    TagType.DECIMAL,
    TagType.VERSION,
)


@pytest.mark.parametrize(
    ("value", "tag_type", "wire"),
    [
        (True, B, True),
        (False, B, False),
        (42, INT, 42),
        (-7, INT, -7),
        (0, INT, 0),
        (INT64_MAX + 1, S, str(INT64_MAX + 1)),
        (19.95, DEC, 19.95),
        (3.0, DEC, 3.0),
        (["a", "b"], L, ["a", "b"]),
        (["a", 1, True, None, {"k": 1}], L, ["a", "1", "true", '{"k":1}']),
        ((), L, []),
        ({"b": 1, "a": [2]}, S, '{"a":[2],"b":1}'),
        ("hello", S, "hello"),
        ("", S, ""),
        ("true", B, True),
        ("FALSE", B, False),
        ("42", INT, 42),
        ("-42", INT, -42),
        ("042", S, "042"),
        ("+42", S, "+42"),
        (" 42", S, " 42"),
        ("99999999999999999999", S, "99999999999999999999"),
        ("19.95", DEC, 19.95),
        ("-0.5", DEC, -0.5),
        ("1.", S, "1."),
        ("1.2.3", V, "1.2.3"),
        ("10.0.2.4711", V, "10.0.2.4711"),
        ("1.2.3.4.5", S, "1.2.3.4.5"),
        ("12345.1.1", S, "12345.1.1"),
        ("2024-10-02", D, "2024-10-02 00:00"),
        ("2024-10-02 22:11", D, "2024-10-02 22:11"),
        ("2024-10-02T22:11:59Z", D, "2024-10-02 22:11"),
        ("2024-10-02T22:11:00.123+02:00", D, "2024-10-02 20:11"),
        ("2024-13-02", S, "2024-13-02"),
        ("02/10/2024", S, "02/10/2024"),
        ("+4930123456", S, "+4930123456"),
    ],
)
def test_detects_type_and_wire_value(value, tag_type, wire):
    typed = detect(value)
    assert typed is not None
    assert (typed.type, typed.wire) == (tag_type, wire)


def test_null_clears_a_known_tag_and_skips_an_unknown_one():
    assert detect(None) is None
    assert type_tags({"a": None}, {}).wire == {}
    typed = type_tags({"a": None, "b": 1}, {"a": S})
    assert typed.wire == {"a": None, "b": 1} and typed.new_types == {"b": INT}


def test_strings_stay_strings_when_parsing_is_off():
    for text in ("42", "true", "1.2.3", "2024-10-02", "19.95"):
        assert detect(text, parse_strings=False).type == S


def test_non_finite_numbers_fit_no_tag():
    with pytest.raises(TagConflict, match="finite"):
        detect(float("nan"))


@pytest.mark.parametrize(
    ("value", "tag_type", "wire"),
    [
        (3, DEC, 3),  # an integer is a decimal
        ("42", S, "42"),  # a string fits a String tag as it is
        ("true", S, "true"),
        ("2024-10-02", S, "2024-10-02"),
        ("1.5", V, "1.5"),  # dotted numbers fit an existing Version tag
        ("7", V, "7"),
        ("42", INT, 42),
        ("19.95", DEC, 19.95),
    ],
)
def test_values_that_fit_an_existing_tag(value, tag_type, wire):
    assert fit(value, tag_type).wire == wire


@pytest.mark.parametrize(
    ("value", "tag_type", "message"),
    [
        ("forty", INT, 'value "forty" is String, but the tag is Integer'),
        (4.5, INT, "is Decimal, but the tag is Integer"),
        (42, S, "is Integer, but the tag is String"),
        (True, INT, "is Boolean, but the tag is Integer"),
        ("x", L, "is String, but the tag is List"),
        (["x"], S, "is List, but the tag is String"),
        (1700000000, D, "is Integer, but the tag is Date"),
        ("soon", D, "is String, but the tag is Date"),
        ("1.2.3.4.5", V, "is String, but the tag is Version"),
    ],
)
def test_conflicts_are_explained_not_coerced(value, tag_type, message):
    with pytest.raises(TagConflict, match=re.escape(message)):
        fit(value, tag_type)


def test_type_tags_reports_new_types_and_conflicts_per_tag():
    typed = type_tags(
        {"age": "forty", "plan": "pro", "score": 3, "since": "2024-01-01", "gone": None},
        {"age": INT, "score": DEC},
    )
    assert typed.conflicts == ["tag 'age': value \"forty\" is String, but the tag is Integer"]
    assert typed.wire == {"plan": "pro", "score": 3, "since": "2024-01-01 00:00"}
    assert typed.new_types == {"plan": S, "since": D}


# --- properties -----------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values, st.booleans())
def test_a_value_always_fits_the_type_detected_for_it(value, parse_strings):
    typed = detect(value, parse_strings=parse_strings)
    if typed is None:
        return
    again = fit(value, typed.type, parse_strings=parse_strings)
    assert again == typed


@given(json_values)
def test_detection_is_stable_on_its_own_wire_value(value):
    """Re-detecting what we send gives the same type: types never drift between runs."""
    typed = detect(value)
    if typed is None:
        return
    assert detect(typed.wire).type == typed.type
    orjson.dumps(typed.wire)  # always JSON


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integers_and_their_text_are_integer_tags(number):
    assert detect(number).type == INT
    assert detect(str(number)) == detect(number)


@given(st.lists(json_scalars, max_size=6))
def test_lists_become_lists_of_strings(items):
    typed = detect(items)
    assert typed.type == L
    assert all(isinstance(item, str) for item in typed.wire)
    assert len(typed.wire) == sum(item is not None for item in items)


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_dates_are_sent_in_utc_to_the_minute(moment):
    typed = detect(moment.isoformat())
    assert typed.type == D
    assert typed.wire == moment.strftime("%Y-%m-%d %H:%M")


@given(st.text())
def test_any_string_fits_a_string_tag_unchanged(text):
    assert fit(text, S).wire == text


@given(st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=8))
def test_first_detection_wins_and_later_records_must_fit(tags):
    """What one record creates, the next identical record fits without conflict."""
    first = type_tags(tags, {})
    assert first.conflicts == []
    second = type_tags(tags, first.new_types)
    assert second.conflicts == []
    assert second.new_types == {}
    assert second.wire == first.wire


def test_text_tags_keep_numeric_strings_as_text():
    typed = type_tags({"Zip": "02134", "Age": "42"}, {}, text_tags=frozenset({"Zip"}))
    assert typed.new_types == {"Zip": S, "Age": INT}
    assert typed.wire == {"Zip": "02134", "Age": 42}
    later = type_tags({"Zip": "33431"}, {"Zip": S}, text_tags=frozenset({"Zip"}))
    assert later.wire == {"Zip": "33431"} and not later.conflicts
