"""``segment.to_pendo``: the pure per-record mapping and the batch with group memory."""

from __future__ import annotations

import pytest

from connectord.plugins.segment.mapping import (
    SegmentToPendo,
    group_membership,
    pendo_enabled,
    to_pendo,
    visitor_id,
)
from connectord.plugins.transform.mapping import FieldsMapping
from connectord.state import MemoryKeyValue
from connectord.testing import make_context, map_records


def track(user="u1", **extra):
    return {"type": "track", "userId": user, "event": "Clicked", **extra}


def group(user="u1", account="acme"):
    return {"type": "group", "userId": user, "groupId": account, "traits": {"name": "Acme"}}


# --- pure ------------------------------------------------------------------------------


def test_user_id_is_the_visitor():
    assert to_pendo(track()) == track()
    assert visitor_id({"userId": 7}, anonymous_visitors=False) == "7"


def test_anonymous_users_are_dropped_unless_enabled():
    record = {"type": "track", "anonymousId": "anon-1", "event": "Clicked"}
    assert to_pendo(record) is None
    mapped = to_pendo(record, anonymous_visitors=True)
    assert mapped["userId"] == "_PENDO_T_anon-1"
    assert mapped["anonymousId"] == "anon-1"
    assert "userId" not in record  # the input is not changed


def test_group_keeps_account_metadata_even_without_a_visitor():
    record = {"type": "group", "anonymousId": "anon-1", "groupId": "acme", "traits": {}}
    assert to_pendo(record) == record


def test_account_from_context_group_id_or_the_last_group_call():
    with_context = track(context={"groupId": "own", "ip": "1.2.3.4"})
    assert to_pendo(with_context, account="last") == with_context
    mapped = to_pendo(track(context={"ip": "1.2.3.4"}), account="last")
    assert mapped["context"] == {"ip": "1.2.3.4", "groupId": "last"}
    assert to_pendo({"type": "page", "userId": "u1"}, account="a")["context"] == {"groupId": "a"}
    assert "context" not in to_pendo(group(), account="other")


def test_alias_and_foreign_types_are_dropped():
    assert to_pendo({"type": "alias", "userId": "u1", "previousId": "a"}) is None
    audience = {"type": "audience", "userId": "u1", "action": "add", "audience": {"id": "1"}}
    assert to_pendo(audience) is None


@pytest.mark.parametrize(
    ("integrations", "enabled"),
    [
        (None, True),
        ({}, True),
        ({"All": True}, True),
        ({"Pendo": False}, False),
        ({"All": False}, False),
        ({"All": False, "Pendo": True}, True),
        ({"All": False, "Pendo": {"apiKey": "x"}}, True),
        ({"All": True, "Pendo": False}, False),
    ],
)
def test_integrations_switch(integrations, enabled):
    assert pendo_enabled({"integrations": integrations}, "Pendo") is enabled
    assert (to_pendo(track(integrations=integrations)) is not None) is enabled


def test_group_membership():
    assert group_membership(group(), anonymous_visitors=False) == ("u1", "acme")
    anonymous = {"type": "group", "anonymousId": "x", "groupId": "acme"}
    assert group_membership(anonymous, anonymous_visitors=False) is None
    assert group_membership(anonymous, anonymous_visitors=True) == ("_PENDO_T_x", "acme")
    assert group_membership(track(), anonymous_visitors=False) is None


# --- batches with state ----------------------------------------------------------------


async def test_last_group_call_in_the_batch_and_across_batches():
    state = MemoryKeyValue()
    async with make_context(state=state) as context:
        first = await map_records(
            SegmentToPendo,
            {},
            [track("u1"), group("u1", "acme"), track("u1"), track("u2")],
            context=context,
        )
        assert [r[0].get("context", {}).get("groupId") for r in first] == [
            None,  # before the group call
            None,  # the group record itself
            "acme",
            None,
        ]
        assert state.data == {"account:u1": "acme"}
        # a new mapping instance (a restart) reads the stored membership
        second = await map_records(SegmentToPendo, {}, [track("u1")], context=context)
        assert second[0][0]["context"] == {"groupId": "acme"}


async def test_a_later_group_call_replaces_the_account():
    state = MemoryKeyValue()
    async with make_context(state=state) as context:
        mapping = SegmentToPendo(SegmentToPendo.Options(), context)
        await mapping.map_batch([group("u1", "old")])
        _, (during,) = await mapping.map_batch([group("u1", "new"), track("u1")])
        out = await mapping.map_batch([track("u1")])
    assert during["context"]["groupId"] == "new"
    assert out[0][0]["context"]["groupId"] == "new"
    assert state.data == {"account:u1": "new"}


async def test_cached_accounts_spare_the_state_reads():
    class CountingState(MemoryKeyValue):
        reads = 0

        async def get_many(self, keys):
            self.reads += 1
            return await super().get_many(keys)

    state = CountingState()
    async with make_context(state=state) as context:
        mapping = SegmentToPendo(SegmentToPendo.Options(), context)
        for _ in range(3):
            await mapping.map_batch([track("u1"), track("u2")])
    assert state.reads == 1


async def test_remember_groups_off_uses_no_state():
    state = MemoryKeyValue()
    async with make_context(state=state) as context:
        out = await map_records(
            SegmentToPendo, {"remember_groups": False}, [group(), track()], context=context
        )
    assert "context" not in out[1][0]
    assert state.data == {}


async def test_fields_mapping_overrides_the_defaults():
    """The documented override: account from a property, a property dropped."""
    mapped = await map_records(
        SegmentToPendo, {}, [track(properties={"workspace": "w-9", "products": [1, 2]})]
    )
    (record,) = mapped[0]
    out = await map_records(
        FieldsMapping,
        {
            "when": "type == 'track'",
            "set": {"context.groupId": "properties.workspace"},
            "drop": ["properties.products"],
        },
        [record],
    )
    assert out[0][0]["context"] == {"groupId": "w-9"}
    assert out[0][0]["properties"] == {"workspace": "w-9"}


def test_identify_traits_are_completed_by_context_traits():
    rudder = {"type": "identify", "userId": "u1", "context": {"traits": {"plan": "pro"}}}
    assert to_pendo(rudder)["traits"] == {"plan": "pro"}
    both = {**rudder, "traits": {"plan": "team", "email": "a@example.com"}}
    assert to_pendo(both)["traits"] == {"plan": "team", "email": "a@example.com"}
    assert "traits" not in to_pendo({"type": "identify", "userId": "u1"})
    assert to_pendo({**rudder, "traits": "odd"})["traits"] == "odd"  # the destination refuses
