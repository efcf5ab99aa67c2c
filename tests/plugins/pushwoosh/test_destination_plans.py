"""The ``pushwoosh`` destination: token families, plan-limited calls and the notices
that tell the operator what to create by hand (against the emulator, real HTTP)."""

from __future__ import annotations

import pytest

from connectord import AuthError
from connectord.plugins.pushwoosh.destination import PushwooshDestination
from connectord.state import MemoryKeyValue
from connectord.testing import deliver, make_context
from tests.plugins.pushwoosh.test_destination import audience, identify

# --- online check ---------------------------------------------------------------------


async def test_check_verifies_each_token_against_its_own_api_family(pushwoosh, destination_options):
    async with make_context() as context:

        def build(**overrides):
            options = PushwooshDestination.Options(**destination_options(**overrides))
            return PushwooshDestination(options, context)

        assert await build().check() == (
            "api_token accepted by the server API (listFilters) for ABCDE-12345; "
            "device_token accepted by the Device API (getTags)"
        )
        with pytest.raises(AuthError, match="api_token rejected by the server API") as caught:
            await build(application="ZZZZZ-00000").check()
        assert "device_token rejected by the Device API (getTags)" in str(caught.value)
        with pytest.raises(AuthError) as caught:
            await build(device_token="bad").check()
        assert str(caught.value).startswith("device_token rejected by the Device API (getTags)")
        assert "api_token" not in str(caught.value)
        with pytest.raises(AuthError) as caught:  # the server token where the device one goes
            await build(device_token=pushwoosh.api_token).check()
        assert "device_token rejected by the Device API (getTags)" in str(caught.value)
        assert pushwoosh.api_token not in str(caught.value)
        with pytest.raises(AuthError) as caught:
            await build(api_token=pushwoosh.device_token).check()
        assert str(caught.value).startswith("api_token rejected by the server API (listFilters)")
        pushwoosh.plan = "basic"
        assert "Tags API not in this plan" in await build().check()


async def test_without_the_custom_plan_tags_are_delivered_and_the_operator_told(
    pushwoosh, destination_options
):
    """listTags/addTag are Custom-plan only: refused once, then tags still go out, types
    are kept locally and what to create by hand is a notice (shown by status)."""
    pushwoosh.plan = "basic"
    state = MemoryKeyValue()
    options = destination_options()
    async with make_context(state=state) as context:
        result = await deliver(
            PushwooshDestination, options, [identify("u1", plan="pro", seats=5)], context=context
        )
        assert result.rejected == {}
        result = await deliver(
            PushwooshDestination, options, [identify("u2", seats="many")], context=context
        )
    assert pushwoosh.tags_of("u1") == {"plan": "pro", "seats": 5}
    assert "is String, but the tag is Integer" in result.rejected[0]  # types kept locally
    assert len(pushwoosh.requests_to("/json/1.3/listTags")) == 1  # not asked again
    assert pushwoosh.requests_to("/json/1.3/addTag") == []
    assert state.data["notice:tags"] == {"plan": "String", "seats": "Integer"}
    assert "listTags refused" in state.data["notice:tags_api"]


async def test_without_the_custom_plan_audiences_still_reach_their_segments(
    pushwoosh, destination_options
):
    pushwoosh.plan = "basic"
    state = MemoryKeyValue()
    async with make_context(state=state) as context:
        result = await deliver(
            PushwooshDestination,
            destination_options(),
            [audience(f"u{i}", "add", "42", "High value", "mparticle") for i in range(3)],
            context=context,
        )
    assert result.rejected == {}
    assert pushwoosh.members_of("High value (mParticle)") == {"u0", "u1", "u2"}
    [create] = pushwoosh.requests_to("/json/1.3/createFilter")
    assert "application" not in create.json()["request"]  # High-Speed Setup only
    assert state.data["notice:tags"] == {"connectord_audiences": "List"}


async def test_a_segment_pushwoosh_will_not_create_becomes_a_notice(pushwoosh, destination_options):
    """createFilter refused (here: application sent without High-Speed Setup): the
    memberships are still delivered, the segment is left to the operator, explained."""
    state = MemoryKeyValue()
    options = destination_options(high_speed_setup=True)
    async with make_context(state=state) as context:
        result = await deliver(
            PushwooshDestination, options, [audience("u1", "add", "7", "VIP")], context=context
        )
    assert result.rejected == {}
    assert pushwoosh.filters == {}
    assert pushwoosh.tags_of("u1") == {"connectord_audiences": ["VIP (connectord)"]}
    notice = state.data["notice:segment:VIP (connectord)"]
    assert 'T("connectord_audiences", in, ["VIP (connectord)"])' in notice
    assert "High-Speed Setup" in notice
    pushwoosh.high_speed_setup = True
    async with make_context(state=state) as context:
        await deliver(PushwooshDestination, options, [audience("u2", "add", "7", "VIP")])
        await deliver(
            PushwooshDestination, options, [audience("u2", "add", "7", "VIP")], context=context
        )
    assert "VIP (connectord)" in pushwoosh.filters
    assert "notice:segment:VIP (connectord)" not in state.data


async def test_fifty_audience_changes_use_bulk_list_operators(pushwoosh, destination_options):
    records = [audience(f"u{i}", "add", "9", "Big") for i in range(50)]
    result = await deliver(PushwooshDestination, destination_options(), records)
    assert result.rejected == {}
    [bulk] = [r for r in pushwoosh.requests_to("/api/v2/audience/") if r.method == "POST"]
    assert {d["list_operator"] for d in bulk.json()["devices"]} == {"append"}
    assert len(pushwoosh.members_of("Big (connectord)")) == 50


async def test_after_an_upgrade_the_tags_api_is_used_again_and_notices_clear(
    pushwoosh, destination_options
):
    """A refused Tags API is asked again a day later; what now exists is no longer listed."""
    pushwoosh.plan = "basic"
    state = MemoryKeyValue()
    options = destination_options()
    async with make_context(state=state) as context:
        await deliver(PushwooshDestination, options, [identify("u1", plan="pro")], context=context)
    assert state.data["notice:tags"] == {"plan": "String"}
    pushwoosh.plan = "custom"
    pushwoosh.define_tag("plan", 2)  # created by hand, as the notice asked
    state.data["plan:tags_api_refused_at"] -= 25 * 3600
    async with make_context(state=state) as context:
        result = await deliver(
            PushwooshDestination, options, [identify("u2", plan="max", age=3)], context=context
        )
    assert result.rejected == {}
    assert [
        r.json()["request"]["tag"]["name"] for r in pushwoosh.requests_to("/json/1.3/addTag")
    ] == ["age"]
    assert not any(key.startswith("notice:") for key in state.data)
    assert "plan:tags_api_refused_at" not in state.data
