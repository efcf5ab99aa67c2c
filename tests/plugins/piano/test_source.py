"""``piano.segment`` against the Piano emulator over real HTTP."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectord import AuthError, PermanentError
from connectord.plugins.piano.source import PianoSegmentSource, diff, state_prefix
from connectord.state import MemoryKeyValue
from connectord.testing import make_context, run_source

from .conftest import API_KEY, SITE


async def run_and_commit(options, state, checkpoint=None):
    """One run as the daemon does it: read, then store each batch's state and checkpoint."""
    async with make_context(state=state) as context:
        records, batches = await run_source(
            PianoSegmentSource, options, checkpoint=checkpoint, context=context
        )
    for batch in batches:
        if batch.state:
            await state.set_many(batch.state)
        if batch.checkpoint is not None:
            checkpoint = batch.checkpoint
    return records, checkpoint


def changes(records):
    return sorted((r["audience"]["id"], r["action"], r["userId"]) for r in records)


async def test_membership_changes_become_adds_and_removes_only(piano, segment_options):
    state = MemoryKeyValue()
    options = {**segment_options, "segment_names": {"seg-a": "Engaged readers"}}
    piano.set_segment("seg-a", ["u1", "u2", "u3"])

    first, checkpoint = await run_and_commit(options, state)
    assert changes(first) == [
        ("seg-a", "add", "u1"),
        ("seg-a", "add", "u2"),
        ("seg-a", "add", "u3"),
    ]
    assert first[0]["audience"] == {"id": "seg-a", "name": "Engaged readers", "source": "piano"}
    assert checkpoint["segments"]["seg-a"]["members"] == 3

    piano.set_segment("seg-a", ["u2", "u3", "u4"])
    second, checkpoint = await run_and_commit(options, state, checkpoint)
    assert changes(second) == [("seg-a", "add", "u4"), ("seg-a", "remove", "u1")]

    third, _ = await run_and_commit(options, state, checkpoint)
    assert third == []

    piano.set_segment("seg-a", ["u1", "u2", "u3", "u4"])
    fourth, _ = await run_and_commit(options, state, checkpoint)
    assert changes(fourth) == [("seg-a", "add", "u1")]
    ids = [r["messageId"] for r in first + second + fourth]
    assert len(set(ids)) == len(ids), "a user who leaves and joins again gets a new id"


async def test_records_follow_the_record_model(piano, segment_options):
    from connectord.records import problem

    piano.set_segment("seg-a", ["u1"])
    records, _ = await run_and_commit(segment_options, MemoryKeyValue())
    (record,) = records
    assert problem(record) is None
    assert record["type"] == "audience" and record["action"] == "add"
    assert record["timestamp"].endswith("Z")
    assert "name" not in record["audience"]


async def test_reading_again_without_committing_repeats_the_same_ids(piano, segment_options):
    piano.set_segment("seg-a", ["u1", "u2"])
    state = MemoryKeyValue()
    async with make_context(state=state) as context:
        once, _ = await run_source(PianoSegmentSource, segment_options, context=context)
        twice, _ = await run_source(PianoSegmentSource, segment_options, context=context)
    assert [r["messageId"] for r in once] == [r["messageId"] for r in twice]


async def test_each_batch_carries_the_state_of_its_own_records(piano, segment_options):
    piano.set_segment("seg-a", [f"u{i:04}" for i in range(2500)])
    async with make_context() as context:
        _, batches = await run_source(PianoSegmentSource, segment_options, context=context)
    assert [len(b.records) for b in batches] == [1000, 1000, 500]
    prefix = state_prefix("seg-a")
    for batch in batches:
        assert set(batch.state) == {prefix + r["userId"] for r in batch.records}
    assert [b.checkpoint is not None for b in batches] == [False, False, True]


async def test_segments_are_paged(piano, segment_options):
    piano.set_segment("seg-a", [f"u{i}" for i in range(10)])
    records, _ = await run_and_commit({**segment_options, "page_size": 3}, MemoryKeyValue())
    assert len(records) == 10
    pages = [body["page-num"] for method, body in piano.data_calls if method == "getData"]
    assert pages == [1, 2, 3, 4]
    body = piano.data_calls[0][1]
    assert body["columns"] == ["pushwooshid", "m_visits"]
    assert body["segment"] == {
        "section": {"scope": "visitor_id", "segmentKey": "seg-a", "mode": "include"}
    }
    assert body["space"] == {"s": [SITE]}
    assert body["options"] == {"ignore_null_properties": True}


async def test_visitors_without_a_member_value_are_skipped(piano, segment_options):
    piano.set_segment("seg-a", ["u1"])
    piano.add_visitor("no-pushwoosh-id")
    piano.segments["seg-a"].visitors.add("no-pushwoosh-id")
    records, _ = await run_and_commit(segment_options, MemoryKeyValue())
    assert [r["userId"] for r in records] == ["u1"]


async def test_429_is_honoured(piano, segment_options):
    piano.set_segment("seg-a", ["u1"])
    piano.fail_next(
        2,
        status=429,
        headers={"Retry-After": "0.1"},
        body={"ErrorMessage": "too many", "ErrorType": "QuotasExceeded_TooManyRequests"},
    )
    records, _ = await run_and_commit(segment_options, MemoryKeyValue())
    assert [r["userId"] for r in records] == ["u1"]
    assert len(piano.requests_to("/v3/data/getData")) == 3


async def test_never_more_than_five_calls_in_flight(piano, segment_options):
    piano.latency = 0.1
    keys = [f"seg-{i}" for i in range(8)]
    for key in keys:
        piano.set_segment(key, [f"{key}-u{i}" for i in range(5)])
    records, _ = await run_and_commit(
        {**segment_options, "segments": keys, "page_size": 2}, MemoryKeyValue()
    )
    assert len(records) == 40
    assert piano.max_in_flight == 5
    assert piano.quota_refusals == 0


async def test_an_unknown_segment_fails_the_run_but_not_the_others(piano, segment_options):
    piano.set_segment("seg-a", ["u1"])
    state = MemoryKeyValue()
    options = {**segment_options, "segments": ["seg-a", "missing"]}
    async with make_context(state=state) as context:
        source = PianoSegmentSource(PianoSegmentSource.Options.model_validate(options), context)
        emitted = []
        with pytest.raises(PermanentError) as err:
            async for batch in source.read(None):
                emitted.extend(batch.records)
    assert [r["userId"] for r in emitted] == ["u1"]
    assert "segment 'missing'" in str(err.value)
    assert "SegmentNotFound" in str(err.value)


async def test_a_segment_too_large_to_read_whole_emits_no_removals(piano, segment_options):
    state = MemoryKeyValue()
    piano.set_segment("seg-a", ["u1", "u2"])
    await run_and_commit(segment_options, state)
    piano.set_segment("seg-a", [f"x{i}" for i in range(5)])
    with pytest.raises(PermanentError, match="more than 4 rows"):
        await run_and_commit({**segment_options, "page_size": 2, "max_members": 4}, state)
    assert sorted(k.rsplit(":", 1)[1] for k in await state.scan("")) == ["u1", "u2"]


async def test_a_refused_key_is_an_auth_error(piano, segment_options):
    piano.api_keys = {"OTHER_key": {SITE}}
    with pytest.raises(AuthError, match="HTTP 401"):
        await run_and_commit(segment_options, MemoryKeyValue())


async def test_check_reports_each_segment(piano, segment_options):
    piano.set_segment("seg-a", ["u1", "u2"])
    async with make_context() as context:
        source = PianoSegmentSource(
            PianoSegmentSource.Options.model_validate(segment_options), context
        )
        assert await source.check() == "api_key accepted for site 123456; segments: seg-a (2 rows)"


async def test_check_names_what_failed(piano, segment_options):
    piano.set_segment("seg-a", ["u1"])
    options = {**segment_options, "segments": ["seg-a", "gone"]}
    async with make_context() as context:
        source = PianoSegmentSource(PianoSegmentSource.Options.model_validate(options), context)
        with pytest.raises(PermanentError, match=r"segment 'gone' cannot be read.*SegmentNotFound"):
            await source.check()
        piano.api_keys = {}
        with pytest.raises(AuthError, match=r"api_key was refused.*HTTP 401"):
            await source.check()


async def test_check_names_an_unknown_member_column(piano, segment_options):
    piano.set_segment("seg-a", ["u1"])
    options = {**segment_options, "member_column": "nosuch"}
    async with make_context() as context:
        source = PianoSegmentSource(PianoSegmentSource.Options.model_validate(options), context)
        with pytest.raises(PermanentError, match="InvalidColumn: unknown column nosuch"):
            await source.check()


def test_diff_is_pure_and_ordered():
    records, state = diff(
        "s", None, 1, {"b", "a", "c"}, {"a": 1, "d": 2, "c": -1, "e": -3}, "2026-01-01T00:00:00Z"
    )
    assert [(r["action"], r["userId"]) for r in records] == [
        ("add", "b"),
        ("add", "c"),
        ("remove", "d"),
    ]
    assert state == {"b": 1, "c": 2, "d": -2}


@pytest.mark.parametrize(
    "key", ["nounderscore", "_secret", "access_", "access_ secret", "Basic abc_def"]
)
def test_malformed_api_keys_are_refused_without_echoing_them(key):
    with pytest.raises(ValidationError) as err:
        PianoSegmentSource.Options.model_validate({"site_id": 1, "api_key": key, "segments": ["s"]})
    text = str(err.value)
    assert "'<access key>_<secret key>'" in text
    assert key not in text.split("input_value=")[0]


def test_segment_options_are_validated():
    base = {"site_id": 1, "api_key": API_KEY}
    with pytest.raises(ValidationError, match="listed twice: a"):
        PianoSegmentSource.Options.model_validate({**base, "segments": ["a", "a"]})
    with pytest.raises(ValidationError, match="not in segments: b"):
        PianoSegmentSource.Options.model_validate(
            {**base, "segments": ["a"], "segment_names": {"b": "B"}}
        )
    with pytest.raises(ValidationError, match="member_column is a Piano property key"):
        PianoSegmentSource.Options.model_validate(
            {**base, "segments": ["a"], "member_column": "Pushwoosh ID"}
        )
