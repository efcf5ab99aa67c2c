"""``piano.collect`` against the Piano emulator over real HTTP."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectord import AuthError, ConnectordError, RetryableError
from connectord.plugins.piano.destination import PianoCollectDestination
from connectord.testing import deliver, free_port, make_context

from .conftest import DOMAIN, SITE


def track(user, event="pw_siteopened", **extra):
    return {
        "type": "track",
        "event": event,
        "userId": user,
        "messageId": f"m-{user}-{event}",
        "timestamp": "2026-11-23T10:00:00.000Z",
        "properties": {"src_medium": "push", **extra},
    }


async def test_track_arrives_with_idclient_name_properties_and_client_headers(
    piano, collect_options
):
    record = track("pw-user-1", pushwooshid="pw-user-1", device_type="Mobile")
    record["context"] = {
        "piano": {"idclient": "piano-visitor-1"},
        "ip": "203.0.113.7",
        "userAgent": "PushwooshSDK/6.0 (iPhone)",
    }
    result = await deliver(PianoCollectDestination, collect_options, [record])
    assert result.rejected == {} and result.retry == set()
    (event,) = piano.collected
    assert event.site == SITE
    assert event.idclient == "piano-visitor-1"
    assert event.name == "pw_siteopened"
    assert event.data["pushwooshid"] == "pw-user-1"
    assert event.data["src_medium"] == "push"
    assert event.data["device_type"] == "Mobile"
    assert event.data["user_id"] == "pw-user-1"
    assert event.data["device_timestamp_utc"] == 1795428000.0  # seconds, as the JS SDK
    assert event.data["user_recognition"] is False
    assert piano.limit_breaches == []
    assert event.data["visitor_privacy_mode"] == "optin"
    assert event.data["visitor_privacy_consent"] is True
    assert event.headers["User-Agent"] == "PushwooshSDK/6.0 (iPhone)"
    assert event.headers["X-Forwarded-For"] == "203.0.113.7"
    assert event.headers["Content-Type"] == "text/plain;charset=UTF-8"


async def test_one_request_per_visitor_per_batch(piano, collect_options):
    records = [track(f"u{i % 3}", event=f"e{i}") for i in range(12)]
    await deliver(PianoCollectDestination, collect_options, records)
    assert piano.collect_requests == 3
    assert len(piano.collected) == 12
    by_visitor = {}
    for event in piano.collected:
        by_visitor.setdefault(event.idclient, []).append(event.name)
    assert by_visitor == {
        "u0": ["e0", "e3", "e6", "e9"],
        "u1": ["e1", "e4", "e7", "e10"],
        "u2": ["e2", "e5", "e8", "e11"],
    }


async def test_a_visitor_with_many_events_is_sent_in_requests_of_fifty(piano, collect_options):
    records = [track("busy", event=f"e{i}") for i in range(120)]
    await deliver(PianoCollectDestination, collect_options, records)
    assert piano.collect_requests == 3
    assert [e.name for e in piano.collected] == [f"e{i}" for i in range(120)]


async def test_page_and_screen_arrive_as_page_display(piano, collect_options):
    records = [
        {"type": "page", "userId": "u", "name": "Pricing", "properties": {"url": "https://x/p"}},
        {"type": "screen", "anonymousId": "a", "name": "Home"},
    ]
    await deliver(PianoCollectDestination, collect_options, records)
    pages = piano.events_named("page.display")
    assert [(e.idclient, e.data["page"]) for e in pages] == [("u", "Pricing"), ("a", "Home")]
    assert pages[0].data["page_url"] == "https://x/p"


async def test_unsupported_types_and_invalid_keys_are_dead_lettered_with_reasons(
    piano, collect_options
):
    long = "k" * 41
    records = [
        {"type": "identify", "userId": "u", "traits": {"plan": "pro"}},
        track("u", **{long: 3}),
        track("u", event="kept"),
        track("u", event="normalised only on request", **{"m_revenue": 3}),
    ]
    result = await deliver(PianoCollectDestination, collect_options, records)
    assert set(result.rejected) == {0, 1}
    assert "takes track, page and screen records, not 'identify'" in result.rejected[0]
    assert "is longer than 40 characters" in result.rejected[1]
    assert [e.name for e in piano.collected] == ["kept", "normalised only on request"]
    normalising = {**collect_options, "keys": "normalise"}
    result = await deliver(PianoCollectDestination, normalising, [records[3]])
    assert "property 'm_revenue' starts with 'm_'" in result.rejected[0]
    assert piano.limit_breaches == []


async def test_drop_mode_sends_the_event_without_the_bad_key(piano, collect_options):
    records = [track("u", **{"k" * 41: 3, "ok": 1})]
    result = await deliver(
        PianoCollectDestination, {**collect_options, "invalid_keys": "drop"}, records
    )
    assert result.rejected == {}
    (event,) = piano.collected
    assert event.data == {**event.data, "ok": 1} and "k" * 41 not in event.data
    assert piano.limit_breaches == []


async def test_optout_mode_sends_anonymous_events(piano, collect_options):
    await deliver(
        PianoCollectDestination,
        {**collect_options, "privacy_mode": "optout"},
        [track("u", plan="pro")],
    )
    (event,) = piano.collected
    assert event.idclient == "OPT-OUT"
    assert set(event.data) == {
        "device_timestamp_utc",
        "visitor_privacy_mode",
        "visitor_privacy_consent",
    }
    assert event.data["visitor_privacy_mode"] == "optout"


async def test_exempt_mode_withholds_custom_events(piano, collect_options):
    records = [track("u"), {"type": "page", "userId": "u", "name": "Home"}]
    result = await deliver(
        PianoCollectDestination, {**collect_options, "privacy_mode": "exempt"}, records
    )
    assert result.rejected == {} and result.retry == set()
    assert [e.name for e in piano.collected] == ["page.display"]
    assert "user_id" not in piano.collected[0].data


async def test_an_outage_retries_the_whole_batch(piano, collect_options):
    piano.fail_next(5, status=503, headers={"Retry-After": "3"})
    with pytest.raises(RetryableError) as err:
        await deliver(PianoCollectDestination, collect_options, [track("a"), track("b")])
    assert err.value.retry_after == 3
    assert piano.collected == []


async def test_refused_credentials_surface_as_auth_error(piano, collect_options):
    piano.fail_next(1, status=403, body={"error": "forbidden"})
    with pytest.raises(AuthError):
        await deliver(PianoCollectDestination, collect_options, [track("a")])


async def test_one_failing_visitor_is_retried_alone(piano, collect_options):
    piano.fail_next(1, status=503)
    records = [track("a", event="x"), track("b", event="y"), track("a", event="z")]
    result = await deliver(PianoCollectDestination, collect_options, records)
    assert result.rejected == {}
    assert result.retry in ({0, 2}, {1})
    delivered = {e.name for e in piano.collected}
    assert delivered == ({"y"} if result.retry == {0, 2} else {"x", "z"})


async def test_a_refused_request_is_split_to_find_the_event_at_fault(piano, collect_options):
    piano.fail_next(1, status=400, body={"error": "bad event"})
    records = [track("a", event=f"e{i}") for i in range(3)]
    result = await deliver(PianoCollectDestination, collect_options, records)
    assert result.rejected == {} and result.retry == set()
    assert sorted(e.name for e in piano.collected) == ["e0", "e1", "e2"]
    assert piano.collect_requests == 2  # the refused request is not counted
    assert len(piano.requests_to("/event")) == 3


async def test_check_proves_the_collection_host_answers(collect_options):
    async with make_context() as context:
        destination = PianoCollectDestination(
            PianoCollectDestination.Options.model_validate(collect_options), context
        )
        assert "answers" in await destination.check()


async def test_check_names_the_collection_domain_when_unreachable():
    options = {
        "site_id": SITE,
        "collection_domain": DOMAIN,
        "base_url": f"http://127.0.0.1:{free_port()}",
    }
    async with make_context() as context:
        destination = PianoCollectDestination(
            PianoCollectDestination.Options.model_validate(options), context
        )
        with pytest.raises(ConnectordError, match="check collection_domain"):
            await destination.check()


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("https://abcdefg.pa-cd.com", "write 'abcdefg.pa-cd.com' without https://"),
        ("abcdefg.pa-cd.com/event", "must not carry a path"),
        ("abcdefg.pa-cd.com:443", "must not carry a port"),
        ("not a domain", "is not a host name"),
    ],
)
def test_collection_domain_must_be_a_bare_host(domain, message):
    with pytest.raises(ValidationError, match=message):
        PianoCollectDestination.Options.model_validate({"site_id": 1, "collection_domain": domain})


def test_collection_domain_is_normalised():
    options = PianoCollectDestination.Options.model_validate(
        {"site_id": 1, "collection_domain": " ABCDEFG.pa-cd.com "}
    )
    assert options.collection_domain == "abcdefg.pa-cd.com"
