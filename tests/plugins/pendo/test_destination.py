"""The ``pendo`` destination against the Pendo emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from connectord import AuthError, RetryableError
from connectord.plugins.pendo.destination import PendoDestination
from connectord.testing import deliver, make_context
from tests.plugins.pendo.emulator import READ_ONLY_KEY

from .conftest import group, identify, track


async def test_events_visitors_and_accounts_arrive(pendo, options):
    records = [
        identify("u1", email="ada@example.com", address={"city": "Lyon"}, crm_tier="gold"),
        group("acme", "u1", name="Acme", plan="enterprise", arr=120000),
        track("u1", context={"groupId": "acme", "ip": "203.0.113.9"}),
        {
            "type": "page",
            "userId": "u1",
            "name": "Pricing",
            "properties": {"url": "https://example.com/pricing"},
            "timestamp": "2026-11-23T10:00:01Z",
        },
    ]
    result = await deliver(PendoDestination, options, records)
    assert result.rejected == {} and result.retry == set()
    assert pendo.visitor("u1") == {
        "email": "ada@example.com",
        "address_city": "Lyon",
        "crm_tier": "gold",
    }
    assert pendo.visitors["u1"]["custom"] == {"crm_tier": "gold"}
    assert pendo.account("acme") == {"name": "Acme", "plan": "enterprise", "arr": 120000}
    assert [(e["event"], e["visitorId"], e.get("accountId")) for e in pendo.events] == [
        ("Signed Up", "u1", "acme"),
        ("Viewed Pricing Page", "u1", None),
    ]
    first = pendo.events[0]
    assert first["timestamp"] == 1795428000000
    assert first["context"] == {"ip": "203.0.113.9"}
    assert not first["properties_too_large"]
    # agent values were created with ?create=true, custom ones without
    metadata = pendo.requests_to("/api/v1/metadata")
    assert {(r.path, r.query.get("create")) for r in metadata} == {
        ("/api/v1/metadata/visitor/agent/value", "true"),
        ("/api/v1/metadata/visitor/custom/value", None),
        ("/api/v1/metadata/account/agent/value", "true"),
        ("/api/v1/metadata/account/custom/value", None),
    }


async def test_one_bulk_call_per_kind_and_later_traits_win(pendo, options):
    records = [identify(f"u{i}", plan="free") for i in range(50)]
    records.append(identify("u7", plan="pro"))
    result = await deliver(PendoDestination, options, records)
    assert result.rejected == {}
    assert len(pendo.requests_to("/api/v1/metadata/visitor/agent/value")) == 1
    assert pendo.visitor("u7") == {"plan": "pro"}
    assert len(pendo.visitors) == 50


async def test_pages_are_acknowledged_without_a_call_when_page_events_is_off(pendo, options):
    options["page_events"] = False
    result = await deliver(
        PendoDestination, options, [{"type": "screen", "userId": "u1", "name": "Home"}]
    )
    assert result.rejected == {} and pendo.requests == []


async def test_names_pendo_cannot_display_are_fixed_not_the_records(pendo, options):
    """Pendo keeps such events (support.pendo.io 360032294291): so do we, with the name
    renamed or dropped, each name logged once and counted."""
    records = [
        track("u1", properties={"Order ID": 7}),
        track("u2", properties={"Order ID": 8, "c" * 40: 1}),
        track("u3", properties={"blob": "x" * 600}),
        identify("u4", **{"First Name": "Ada"}),
        {"type": "alias", "userId": "u5", "previousId": "a5"},
        track("u6"),
    ]
    counted: list[str] = []
    async with make_context() as context:
        context.count = lambda event, n=1: counted.extend([event] * n)
        destination = PendoDestination(PendoDestination.Options.model_validate(options), context)
        with capture_logs() as logs:
            result = await destination.send(records)
            await destination.send([track("u7", properties={"Order ID": 9})])
            await destination.send(records[:1])  # a retry is not counted twice
    assert set(result.rejected) == {4}
    assert "alias records have no Pendo equivalent" in result.rejected[4]
    events = {e["visitorId"]: e for e in pendo.events}
    assert events["u1"]["properties"] == {"Order_ID": 7}
    assert events["u2"]["properties"] == {"Order_ID": 8}
    assert events["u3"]["properties_too_large"] is True
    assert all(e["hidden_properties"] == [] for e in pendo.events)
    assert pendo.visitor("u4") == {"First_Name": "Ada"}
    assert pendo.unusable_fields == set()
    assert destination.fixes.counts == {"renamed": 4, "dropped": 1, "properties_too_large": 1}
    assert sorted(counted) == ["pendo_name_dropped"] + ["pendo_name_renamed"] * 4 + [
        "pendo_properties_too_large"
    ]
    names = [(e["event"], e.get("name")) for e in logs if e["event"].startswith("pendo.n")]
    assert names == [
        ("pendo.name.renamed", "Order ID"),  # once, though three records had it
        ("pendo.name.dropped", "c" * 40),
        ("pendo.name.renamed", "First Name"),
    ]
    (large,) = [e for e in logs if e["event"] == "pendo.properties.too_large"]
    assert large["event_name"] == "Signed Up" and large["bytes"] > 512


async def test_missing_visitors_without_create(pendo, options):
    options["create_missing"] = False
    pendo.visitors["known"] = {"agent": {}}
    result = await deliver(PendoDestination, options, [identify("known", a=1), identify("new")])
    assert set(result.rejected) == {1}
    assert "'new' does not exist in Pendo" in result.rejected[1]
    assert "create_missing = true" in result.rejected[1]
    assert pendo.visitor("known") == {"a": 1}


async def test_pendo_errors_become_per_record_rejections(pendo, options):
    pendo.fail_ids["a2"] = "account is locked"
    records = [group("a1", name="One"), group("a2", name="Two"), group("a3", name="Three")]
    result = await deliver(PendoDestination, options, records)
    assert result.rejected == {1: "pendo: account 'a2': account is locked"}
    assert set(pendo.accounts) == {"a1", "a3"}


async def test_undefined_custom_field_is_refused_by_pendo(pendo, options):
    options["account_custom_fields"] = ["arr", "churn_risk"]
    result = await deliver(PendoDestination, options, [group("a1", churn_risk="high")])
    assert "'churn_risk' is not a custom account field" in result.rejected[0]


async def test_unattributed_failures_are_narrowed_down(pendo, options):
    pendo.unattributed_errors = True
    pendo.fail_ids["u5"] = "value too long"
    records = [identify(f"u{i}", n=i) for i in range(8)]
    result = await deliver(PendoDestination, options, records)
    assert list(result.rejected) == [5]
    assert "reported 1 failure(s) without naming the ids" in result.rejected[5]
    assert set(pendo.visitors) == {f"u{i}" for i in range(8)} - {"u5"}


async def test_rate_limited_events_are_retried_after_retry_after(pendo, options):
    pendo.fail_next(1, status=429, headers={"Retry-After": "3"}, paths=("/data/track",))
    options["track_concurrency"] = 1
    records = [identify("u1", plan="pro"), track("u1"), track("u2"), track("u3")]
    result = await deliver(PendoDestination, options, records)
    # the first event hit the 429, the others were held back rather than sent into it
    assert result.retry == {1, 2, 3}
    assert result.retry_after == 3.0
    assert result.rejected == {}
    assert pendo.visitor("u1") == {"plan": "pro"}
    assert pendo.events == []


async def test_a_batch_that_only_failed_is_raised_for_backoff(pendo, options):
    pendo.fail_next(1, status=503, headers={"Retry-After": "5"})
    with pytest.raises(RetryableError) as raised:
        await deliver(PendoDestination, options, [identify("u1"), identify("u2")])
    assert raised.value.retry_after == 5.0


async def test_wrong_credentials_are_auth_errors(pendo, options):
    options["track_secret"] = options["integration_key"]  # the wrong key for /data/track
    with pytest.raises(AuthError, match="HTTP 401"):
        await deliver(PendoDestination, options, [track()])
    options["integration_key"] = READ_ONLY_KEY
    with pytest.raises(AuthError, match="HTTP 403"):
        await deliver(PendoDestination, options, [identify("u1")])


async def test_records_needing_a_missing_credential_are_rejected(pendo, options):
    del options["integration_key"]
    result = await deliver(PendoDestination, options, [identify("u1"), track("u1")])
    assert list(result.rejected) == [0]
    assert "integration_key is not set" in result.rejected[0]
    assert len(pendo.events) == 1


async def test_check_verifies_the_integration_key(pendo, options):
    async with make_context() as context:
        destination = PendoDestination(PendoDestination.Options(**options), context)
        assert "integration key accepted" in await destination.check()
        bad = PendoDestination(
            PendoDestination.Options(**{**options, "integration_key": "nope-nope"}), context
        )
        with pytest.raises(AuthError):
            await bad.check()


def test_options_need_a_credential_and_valid_custom_names():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="set track_secret"):
        PendoDestination.Options()
    with pytest.raises(ValidationError, match="custom field 'Tier 1'"):
        PendoDestination.Options(integration_key="k", visitor_custom_fields=["Tier 1"])


async def test_pendo_rate_limit_is_honoured(pendo, options):
    pendo.rate_limit = 3  # calls per second on /data/track
    options["track_concurrency"] = 1
    result = await deliver(PendoDestination, options, [track(f"u{i}") for i in range(6)])
    assert len(pendo.events) == 3
    assert result.retry == {3, 4, 5}
    assert result.retry_after == 1.0
