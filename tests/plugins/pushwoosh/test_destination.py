"""The ``pushwoosh`` destination against the emulator over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectord import AuthError, RetryableError
from connectord.plugins.pushwoosh.destination import PushwooshDestination
from connectord.state import MemoryKeyValue
from connectord.testing import deliver, make_context
from tests.plugins.pushwoosh.emulator import BOOLEAN, DATE, DECIMAL, INTEGER, LIST, STRING, VERSION


def identify(user, **traits):
    return {"type": "identify", "userId": user, "traits": traits}


def track(user, event="Purchase", hwid=None, **properties):
    record = {
        "type": "track",
        "userId": user,
        "event": event,
        "properties": properties,
        "timestamp": "2026-11-20T10:00:00.000Z",
    }
    if hwid:
        record["context"] = {"device": {"id": hwid, "type": "android"}}
    return record


def audience(user, action, audience_id, name=None, source=None):
    return {
        "type": "audience",
        "action": action,
        "userId": user,
        "audience": {"id": audience_id, "name": name, "source": source},
    }


# --- identify -------------------------------------------------------------------------


async def test_identify_creates_typed_tags_and_sets_them_by_user(pushwoosh, destination_options):
    state = MemoryKeyValue()
    async with make_context(state=state) as context:
        result = await deliver(
            PushwooshDestination,
            destination_options(),
            [
                identify(
                    "u1",
                    age=42,
                    price=19.95,
                    vip=True,
                    plan="pro",
                    since="2024-10-02T22:11:00Z",
                    app_version="1.2.3",
                    interests=["golf", "jazz"],
                    zip="04109",
                    nothing=None,
                ),
                identify("u2", age="37", vip="false"),
            ],
            context=context,
        )
    assert result.rejected == {} and result.retry == set()
    assert pushwoosh.tags_of("u1") == {
        "age": 42,
        "price": 19.95,
        "vip": True,
        "plan": "pro",
        "since": "2024-10-02 22:11",
        "app_version": "1.2.3",
        "interests": ["golf", "jazz"],
        "zip": "04109",
    }
    assert pushwoosh.tags_of("u2") == {"age": 37, "vip": False}
    types = {name: pushwoosh.tag_type(name) for name in pushwoosh.tags_of("u1")}
    assert types == {
        "age": INTEGER,
        "price": DECIMAL,
        "vip": BOOLEAN,
        "plan": STRING,
        "since": DATE,
        "app_version": VERSION,
        "interests": LIST,
        "zip": STRING,
    }
    assert state.data["tag:age"] == INTEGER and state.data["tag:since"] == DATE
    assert len(pushwoosh.requests_to("/json/1.3/addTag")) == 8
    assert len(pushwoosh.requests_to("/json/1.3/setTags")) == 2
    assert pushwoosh.requests_to("/api/v2/audience/bulkSetTags") == []


async def test_a_type_conflict_dead_letters_only_its_record(pushwoosh, destination_options):
    pushwoosh.define_tag("age", INTEGER)
    result = await deliver(
        PushwooshDestination,
        destination_options(),
        [identify("u1", age="forty", plan="pro"), identify("u2", age=30, plan="basic")],
    )
    assert result.rejected == {
        0: "tag type conflict: tag 'age': value \"forty\" is String, but the tag is Integer"
    }
    assert pushwoosh.tags_of("u1") == {}  # nothing of the refused record is applied
    assert pushwoosh.tags_of("u2") == {"age": 30, "plan": "basic"}


async def test_the_first_detection_in_a_batch_decides(pushwoosh, destination_options):
    result = await deliver(
        PushwooshDestination,
        destination_options(),
        [identify("u1", score=5), identify("u2", score="high")],
    )
    assert pushwoosh.tag_type("score") == INTEGER
    assert list(result.rejected) == [1]
    assert "is String, but the tag is Integer" in result.rejected[1]


async def test_fifty_users_go_through_bulk_set_tags(pushwoosh, destination_options):
    """bulkSetTags has a documented minimum of 50 devices (help article 36360128237213)."""
    records = [identify(f"u{i}", level=i, tier="gold") for i in range(50)]
    result = await deliver(PushwooshDestination, destination_options(), records)
    assert result.rejected == {}
    assert pushwoosh.tags_of("u49") == {"level": 49, "tier": "gold"}
    assert pushwoosh.requests_to("/json/1.3/setTags") == []
    [bulk] = [r for r in pushwoosh.requests_to("/api/v2/audience/") if r.method == "POST"]
    assert len(bulk.json()["devices"]) == 50
    polls = [r for r in pushwoosh.requests if r.method == "GET"]
    assert len(polls) == 2  # pending, then completed


async def test_fewer_than_fifty_users_go_through_set_tags_one_by_one(
    pushwoosh, destination_options
):
    records = [identify(f"u{i}", level=i) for i in range(49)]
    records.append(identify("u0", tier="gold"))  # the same user twice: still 49 users
    result = await deliver(PushwooshDestination, destination_options(), records)
    assert result.rejected == {}
    assert pushwoosh.requests_to("/api/v2/audience/") == []
    assert len(pushwoosh.requests_to("/json/1.3/setTags")) == 50
    assert pushwoosh.tags_of("u0") == {"level": 0, "tier": "gold"}


def test_bulk_min_users_cannot_go_below_pushwooshs_minimum(destination_options):
    with pytest.raises(ValueError, match="greater than or equal to 50"):
        PushwooshDestination.Options(**destination_options(bulk_min_users=3))


async def test_set_tags_carries_the_hwid_when_the_record_names_its_device(
    pushwoosh, destination_options
):
    """setTags takes "HWIDs and UserIDs" (Tags API page): userId alone is valid, and the
    record's device id is added when it has one."""
    record = identify("u1", plan="pro")
    record["context"] = {"device": {"id": "hw-1"}}
    await deliver(PushwooshDestination, destination_options(), [record, identify("u2", a=1)])
    bodies = [r.json()["request"] for r in pushwoosh.requests_to("/json/1.3/setTags")]
    assert {b["userId"]: b.get("hwid") for b in bodies} == {"u1": "hw-1", "u2": None}


async def test_bulk_per_user_failures_become_dead_letters(pushwoosh, destination_options):
    """A tag retyped in Pushwoosh after the destination learned it: only that user fails."""
    state = MemoryKeyValue()
    async with make_context(state=state) as context:
        options = destination_options()
        destination = PushwooshDestination(PushwooshDestination.Options(**options), context)
        await destination.send([identify("u0", code=1, name="a")])  # learns the catalog
        pushwoosh.tag_types["code"] = STRING  # changed behind our back
        others = [identify(f"v{i}", name="x") for i in range(49)]
        result = await destination.send([identify("u1", code=3), *others])
    assert list(result.rejected) == [0]
    assert "bulkSetTags refused the tags of user 'u1'" in result.rejected[0]
    assert "Tag code has type String" in result.rejected[0]
    assert pushwoosh.tags_of("v48") == {"name": "x"}


def test_the_device_token_is_required(destination_options):
    """The Device API takes only the Device API token; without one, a config error
    (not a stream of refused calls at run time)."""
    options = destination_options()
    del options["device_token"]
    with pytest.raises(ValueError, match="device_token"):
        PushwooshDestination.Options(**options)


async def test_a_null_trait_clears_the_tag(pushwoosh, destination_options):
    options = destination_options()
    await deliver(PushwooshDestination, options, [identify("u1", plan="pro", age=3)])
    assert pushwoosh.tags_of("u1") == {"plan": "pro", "age": 3}
    result = await deliver(
        PushwooshDestination, options, [identify("u1", plan=None, never_seen=None)]
    )
    assert not result.rejected
    assert pushwoosh.tags_of("u1") == {"age": 3}


async def test_traits_can_be_renamed_and_excluded(pushwoosh, destination_options):
    options = destination_options(tag_names={"country": "Country"}, exclude_traits=["email"])
    await deliver(
        PushwooshDestination, options, [identify("u1", country="DE", email="a@example.com")]
    )
    assert pushwoosh.tags_of("u1") == {"Country": "DE"}


async def test_types_are_remembered_without_the_tags_api(pushwoosh, destination_options):
    """With create_tags off the state alone keeps types consistent across restarts."""
    state = MemoryKeyValue()
    options = destination_options(create_tags=False)
    async with make_context(state=state) as context:
        await deliver(PushwooshDestination, options, [identify("u1", n=1)], context=context)
    async with make_context(state=state) as context:
        result = await deliver(
            PushwooshDestination, options, [identify("u2", n="many")], context=context
        )
    assert state.data["tag:n"] == INTEGER
    assert "is String, but the tag is Integer" in result.rejected[0]
    assert pushwoosh.requests_to("/json/1.3/listTags") == []
    assert pushwoosh.requests_to("/json/1.3/addTag") == []


# --- events ---------------------------------------------------------------------------


async def test_track_posts_events_with_user_hwid_attributes_and_time(
    pushwoosh, destination_options
):
    result = await deliver(
        PushwooshDestination,
        destination_options(),
        [
            track("u1", hwid="hw-1", total=12.5, meta={"a": 1}, skip=None),
            {"type": "track", "userId": "u2", "event": "Bare"},
            {"type": "screen", "userId": "u1", "name": "Home", "properties": {"x": 1}},
        ],
    )
    assert result.rejected == {}
    first, screen = pushwoosh.events_of("u1")
    assert first["event"] == "Purchase"
    assert first["hwid"] == "hw-1"
    assert first["attributes"] == {"total": 12.5, "meta": '{"a":1}'}
    assert first["timestampUTC"] == int(datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp())
    assert first["device_type"] == 3
    assert screen["event"] == "Screen Viewed" and screen["attributes"] == {"x": 1, "name": "Home"}
    [bare] = pushwoosh.events_of("u2")
    assert bare["attributes"] == {}  # always present, even when empty


async def test_records_without_user_id_are_dead_lettered(pushwoosh, destination_options):
    result = await deliver(
        PushwooshDestination,
        destination_options(),
        [
            {"type": "track", "anonymousId": "a1", "event": "X"},
            {"type": "identify", "anonymousId": "a1", "traits": {"a": 1}},
            {"type": "group", "userId": "u1", "groupId": "g"},
        ],
    )
    assert result.rejected[0] == "track record has no userId; Pushwoosh keys users by user id"
    assert result.rejected[1].startswith("identify record has no userId")
    assert "not group" in result.rejected[2]
    assert pushwoosh.events == []


async def test_unknown_events_are_refused_one_by_one(pushwoosh, destination_options):
    pushwoosh.require_known_events = True
    pushwoosh.define_events("Purchase")
    result = await deliver(
        PushwooshDestination,
        destination_options(),
        [track("u1"), track("u1", event="Unknown"), track("u2")],
    )
    assert result.rejected == {1: "Pushwoosh postEvent: argument error: Event Unknown not found"}
    assert sorted(e["userId"] for e in pushwoosh.events) == ["u1", "u2"]


async def test_transient_failures(pushwoosh, destination_options):
    # nothing delivered: the batch is retried as a whole with the vendor's Retry-After
    pushwoosh.fail_next(1, status=429, headers={"Retry-After": "3"}, paths=("/json/1.3/postEvent",))
    with pytest.raises(RetryableError) as caught:
        await deliver(PushwooshDestination, destination_options(concurrency=1), [track("u1")])
    assert caught.value.retry_after == 3
    # some delivered: only the failed user's records are retried, nothing is re-sent
    pushwoosh.events.clear()
    pushwoosh.fail_next(
        1,
        status=200,
        body={"status_code": 500, "status_message": "Internal error", "response": None},
        paths=("/json/1.3/postEvent",),
    )
    result = await deliver(
        PushwooshDestination,
        destination_options(concurrency=1),
        [track("u1", n=1), track("u1", n=2), track("u2", n=3)],
    )
    assert result.retry == {0, 1}
    assert [e["attributes"]["n"] for e in pushwoosh.events] == [3]


async def test_wrong_tokens_are_auth_errors(pushwoosh, destination_options):
    with pytest.raises(AuthError, match="401"):
        await deliver(PushwooshDestination, destination_options(device_token="nope"), [track("u1")])
    swapped = destination_options(device_token=pushwoosh.api_token)
    with pytest.raises(AuthError, match="Device API token"):  # the server token is refused
        await deliver(PushwooshDestination, swapped, [track("u1")])
    with pytest.raises(AuthError):
        await deliver(
            PushwooshDestination, destination_options(api_token="nope"), [identify("u1", a=1)]
        )
    assert pushwoosh.events == [] and pushwoosh.user_tags == {}


async def test_batch_events_path_isolates_refused_events(pushwoosh, destination_options):
    pushwoosh.require_known_events = True
    pushwoosh.define_events("Purchase")
    records = [track(f"u{i}", n=i) for i in range(250)]
    records[137] = track("u137", event="Unknown")
    result = await deliver(PushwooshDestination, destination_options(events_api="batch"), records)
    assert list(result.rejected) == [137]
    assert "event Unknown not found" in result.rejected[137]
    assert len(pushwoosh.events) == 249
    assert {e["via"] for e in pushwoosh.events} == {"batch"}
    delivered = sorted(e["attributes"]["n"] for e in pushwoosh.events)
    assert delivered == [i for i in range(250) if i != 137]  # none twice


async def test_batch_events_carry_device_and_time(pushwoosh, destination_options):
    await deliver(
        PushwooshDestination, destination_options(events_api="batch"), [track("u1", hwid="h1")]
    )
    [event] = pushwoosh.events
    assert event["hwid"] == "h1"
    assert event["device_platform"] == "android"
    assert event["timestamp"] == "2026-11-20T10:00:00.000Z"


# --- audiences ------------------------------------------------------------------------


async def test_audience_membership_follows_adds_and_removes(pushwoosh, destination_options):
    state = MemoryKeyValue()
    options = destination_options()
    async with make_context(state=state) as context:
        result = await deliver(
            PushwooshDestination,
            options,
            [
                audience("u1", "add", "42", "High value", "mparticle"),
                audience("u2", "add", "42", "High value", "mparticle"),
                audience("u1", "add", "seg-7", "Readers", "piano"),
                audience("u3", "add", "a-1", None, None),
            ],
            context=context,
        )
        assert result.rejected == {}
        assert pushwoosh.members_of("High value (mParticle)") == {"u1", "u2"}
        assert pushwoosh.members_of("seg-7 (Piano Autogenerated)") == {"u1"}
        assert pushwoosh.members_of("a-1 (connectord)") == {"u3"}
        assert pushwoosh.tag_type("connectord_audiences") == LIST
        await deliver(
            PushwooshDestination,
            options,
            [
                audience("u1", "remove", "42", "High value", "mparticle"),
                audience("u4", "add", "42", "High value", "mparticle"),
            ],
            context=context,
        )
    assert pushwoosh.members_of("High value (mParticle)") == {"u2", "u4"}
    assert pushwoosh.members_of("seg-7 (Piano Autogenerated)") == {"u1"}
    assert pushwoosh.tags_of("u1")["connectord_audiences"] == ["seg-7 (Piano Autogenerated)"]
    assert len(pushwoosh.requests_to("/json/1.3/createFilter")) == 3  # once per segment
    assert state.data["filter:High value (mParticle)"]["audience_id"] == "42"


async def test_an_existing_filter_is_adopted_not_duplicated(pushwoosh, destination_options):
    pushwoosh.filters["VIP (mParticle)"] = {
        "code": "52551-F2F42",
        "name": "VIP (mParticle)",
        "filter_expression": 'T("connectord_audiences", in, ["VIP (mParticle)"])',
    }
    result = await deliver(
        PushwooshDestination,
        destination_options(),
        [audience("u1", "add", "1", "VIP", "mparticle")],
    )
    assert result.rejected == {}
    assert pushwoosh.requests_to("/json/1.3/createFilter") == []
    assert pushwoosh.members_of("VIP (mParticle)") == {"u1"}


async def test_an_audience_tag_of_the_wrong_type_is_explained(pushwoosh, destination_options):
    pushwoosh.define_tag("connectord_audiences", STRING)
    result = await deliver(
        PushwooshDestination, destination_options(), [audience("u1", "add", "1", "VIP")]
    )
    assert "is String in Pushwoosh, but segment membership needs a List tag" in result.rejected[0]


async def test_mixed_batch(pushwoosh, destination_options):
    result = await deliver(
        PushwooshDestination,
        destination_options(),
        [
            identify("u1", plan="pro"),
            track("u1"),
            audience("u1", "add", "9", "Fans", "mparticle"),
            {"type": "metric", "metric": "push_stats", "values": {"a": 1}},
        ],
    )
    assert list(result.rejected) == [3]
    assert pushwoosh.tags_of("u1") == {"plan": "pro", "connectord_audiences": ["Fans (mParticle)"]}
    assert len(pushwoosh.events_of("u1")) == 1


def test_options_validate_the_application_code(destination_options):
    with pytest.raises(ValueError, match="XXXXX-XXXXX"):
        PushwooshDestination.Options(**destination_options(application="abc"))


async def test_identify_without_tags_makes_no_call(pushwoosh, destination_options):
    result = await deliver(
        PushwooshDestination,
        destination_options(),
        [identify("u1"), identify("u2", gone=None), {"type": "identify", "userId": "u3"}],
    )
    assert result.rejected == {} and result.retry == set()
    assert pushwoosh.requests_to("/json/1.3/setTags") == []
    assert pushwoosh.requests_to("/api/v2/audience/") == []
