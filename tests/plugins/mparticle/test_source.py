"""The ``mparticle.http`` source over real HTTP on 127.0.0.1, behind the daemon's HTTP
app, with the official ``mparticle`` package as one of the clients."""

from __future__ import annotations

import gzip

import mparticle
import orjson
import pytest
from mparticle.rest import ApiException

from connectord.plugins.mparticle.source import MparticleSource

from .conftest import (
    API_KEY,
    API_SECRET,
    FIREHOSE_SECRET,
    OPTIONS,
    WEBHOOK_AUTH,
    audience,
    basic,
    custom_event,
    events_batch,
    firehose_events,
    membership_change,
    profile,
)


def sdk(url: str, key: str = API_KEY, secret: str = API_SECRET) -> mparticle.EventsApi:
    config = mparticle.Configuration()
    config.host = url
    config.api_key = key
    config.api_secret = secret
    return mparticle.EventsApi(config)


def sdk_batch(customer_id: str) -> mparticle.Batch:
    batch = mparticle.Batch()
    batch.environment = "development"
    identities = mparticle.UserIdentities()
    identities.customerid = customer_id
    batch.user_identities = identities
    batch.user_attributes = {"$firstname": "Ann", "plan": "trial", "score": 7}
    screen = mparticle.ScreenViewEvent()
    screen.screen_name = "Home"
    batch.events = [
        mparticle.SessionStartEvent(),
        mparticle.AppEvent("Hello World", "navigation", custom_attributes={"k": "v", "n": 3}),
        screen,
    ]
    return batch


# --- Events API ---------------------------------------------------------------------------


def test_official_sdk_upload_and_bulk_upload(source_server):
    server = source_server()
    api = sdk(server.url("v2"))
    _, status, _ = api.upload_events_with_http_info(sdk_batch("c-1"))
    assert status == 202
    _, status, _ = api.bulk_upload_events_with_http_info([sdk_batch("c-2"), sdk_batch("c-3")])
    assert status == 202
    by_user = {}
    for record in server.records:
        by_user.setdefault(record["userId"], []).append(record["type"])
    assert by_user == {u: ["identify", "track", "screen"] for u in ("c-1", "c-2", "c-3")}
    identify = server.records[0]
    assert identify["traits"] == {"$firstname": "Ann", "plan": "trial", "score": 7}
    track = server.records[1]
    assert (track["event"], track["properties"]) == ("Hello World", {"k": "v", "n": 3})
    assert track["context"]["mparticle"]["environment"] == "development"


def test_official_sdk_sees_mparticle_auth_errors(source_server):
    server = source_server()
    with pytest.raises(ApiException) as err:
        sdk(server.url("v2"), secret="wrong").upload_events(sdk_batch("c-1"))
    assert err.value.status == 403
    assert orjson.loads(err.value.body) == {
        "errors": [{"code": "FORBIDDEN", "message": "the API key or secret is not valid"}]
    }
    assert server.records == []


def test_missing_credentials_are_401(source_server):
    server = source_server()
    status, _, body = server.post("v2/events", events_batch())
    assert status == 401
    assert body["errors"][0]["code"] == "UNAUTHORIZED"
    status, _, _ = server.post("v2/events", events_batch(), {"Authorization": "Basic !!"})
    assert status == 401
    assert server.records == []


def test_success_is_202_without_a_body(source_server):
    server = source_server()
    status, _, body = server.post("v2/events", events_batch(), basic())
    assert (status, body) == (202, None)
    assert len(server.records) == 3


def test_a_batch_with_a_bad_event_is_refused_whole(source_server):
    """/v2/events: 400 and nothing stored, so the corrected batch can be sent again
    without duplicating the events that were fine."""
    server = source_server()
    batch = events_batch()
    batch["events"].insert(1, {"event_type": "custom_event", "data": {"custom_event_type": "x"}})
    status, _, body = server.post("v2/events", batch, basic())
    assert status == 400
    assert body == {
        "errors": [
            {
                "code": "BAD_REQUEST",
                "message": 'batch, event 1 (custom_event): Required event field "event_name" '
                "is missing or empty.",
            }
        ]
    }
    assert server.records == []


def test_bulk_with_bad_batches_is_accepted_and_they_become_dead_letters(source_server):
    """As at mParticle: some batches fail, the request is still Accepted (202)."""
    server = source_server()
    good = events_batch()
    bad_event = events_batch(source_request_id="r-2")
    bad_event["events"].append({"event_type": "screen_view", "data": {}})
    status, _, body = server.post("v2/bulkevents", [good, [], {"mpid": "abc"}, bad_event], basic())
    assert (status, body) == (202, None)
    assert [r["type"] for r in server.accepted] == ["identify", "track", "screen"]
    assert [(d["reason"], d["part"]) for d in server.dead[:2]] == [
        ("batch 1: a batch must be a JSON object; found an array", []),
        ("batch 2: \"mpid\" must be a 64-bit integer; found 'abc'", {"mpid": "abc"}),
    ]
    assert server.dead[2]["part"] == bad_event
    assert server.dead[2]["reason"] == (
        'batch 3, event 2 (screen_view): Required event field "screen_name" is missing or empty.'
    )


def test_a_dead_lettered_batch_does_not_keep_the_api_key(source_server):
    server = source_server()
    bad = {"mpid": "abc", "api_key": API_KEY}
    status, _, _ = server.post("v2/bulkevents", [events_batch(), bad], basic())
    assert status == 202
    assert [d["part"] for d in server.dead] == [{"mpid": "abc"}]


def test_bulk_with_no_valid_batch_is_400_and_stores_nothing(source_server):
    server = source_server()
    status, _, body = server.post("v2/bulkevents", [[], {"mpid": "abc"}], basic())
    assert status == 400
    assert [e["message"] for e in body["errors"]] == [
        "batch 0: a batch must be a JSON object; found an array",
        "batch 1: \"mpid\" must be a 64-bit integer; found 'abc'",
    ]
    assert server.records == []


def test_official_sdk_sees_202_for_a_partly_invalid_bulk_upload(source_server):
    server = source_server()
    api = sdk(server.url("v2"))
    broken = sdk_batch("c-9")
    broken.user_attributes = {"bio": "x" * 4097}  # over mParticle's 4096-character limit
    _, status, _ = api.bulk_upload_events_with_http_info([sdk_batch("c-8"), broken])
    assert status == 202
    assert {r["userId"] for r in server.accepted} == {"c-8"}
    (dead,) = server.dead
    assert dead["reason"].startswith("batch 1, user_attributes:")
    assert dead["part"]["user_identities"] == {"customerid": "c-9"}
    bad = [{"environment": "qa", "events": []}]
    with pytest.raises(ApiException) as caught:
        api.bulk_upload_events(bad)  # type: ignore[arg-type]
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("path", "payload", "status", "code", "text"),
    [
        ("v2/events", b"{not json", 400, "BAD_REQUEST", "not valid JSON"),
        ("v2/events", b"", 400, "BAD_REQUEST", "request body is empty"),
        ("v2/events", [], 400, "BAD_REQUEST", "Send arrays of batches to v2/bulkevents"),
        ("v2/bulkevents", {}, 400, "BAD_REQUEST", "bulkevents expects a JSON array"),
        ("v2/bulkevents", [{}] * 101, 400, "BAD_REQUEST", "the limit is 100"),
    ],
)
def test_unreadable_requests(source_server, path, payload, status, code, text):
    server = source_server()
    got, _, body = server.post(path, payload, basic())
    assert got == status
    assert body["errors"][0]["code"] == code
    assert text in body["errors"][0]["message"]
    assert server.records == []


def test_requests_over_256_kb_are_refused(source_server):
    server = source_server()
    big = events_batch(events=[custom_event(custom_attributes={"k": "x" * 4000})] * 70)
    data = orjson.dumps(big)
    assert len(data) > 256 * 1024
    status, _, body = server.post("v2/events", data, basic())
    assert status == 413
    assert body["errors"][0]["code"] == "REQUEST_TOO_LARGE"
    assert server.records == []
    squeezed = gzip.compress(data)  # small on the wire, too big once inflated
    status, _, _ = server.post("v2/events", squeezed, {**basic(), "Content-Encoding": "gzip"})
    assert status == 413


def test_gzip_bodies_are_accepted(source_server):
    server = source_server()
    data = gzip.compress(orjson.dumps(events_batch()))
    status, _, _ = server.post("v2/events", data, {**basic(), "Content-Encoding": "gzip"})
    assert status == 202
    assert len(server.records) == 3


def test_queue_full_is_503_with_retry_after_and_nothing_kept(source_server):
    server = source_server()
    server.full = True
    status, headers, body = server.post("v2/events", events_batch(), basic())
    assert status == 503
    assert headers["Retry-After"] == "30"
    assert body["errors"][0]["code"] == "SERVICE_UNAVAILABLE"
    assert server.records == []


def test_only_configured_endpoints_are_served(source_server):
    server = source_server({"firehose_secret": FIREHOSE_SECRET})
    status, _, body = server.post("v2/events", events_batch(), basic())
    assert status == 404
    assert "/ingest/mp/firehose" in body["errors"][0]["message"]


# --- Firehose -----------------------------------------------------------------------------


def test_firehose_with_the_secret_in_account_settings(source_server):
    server = source_server()
    status, headers, body = server.post("firehose", firehose_events())
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert body["type"] == "event_processing_response"
    assert body["id"] == "549c81be-ada5-468e-9f14-a5ace3919bab"
    assert [r["type"] for r in server.records] == ["identify", "track"]


def test_firehose_with_a_bearer_secret(source_server):
    server = source_server()
    message = firehose_events(account={"account_id": 1, "account_settings": {}})
    status, _, body = server.post(
        "firehose", message, {"Authorization": f"Bearer {FIREHOSE_SECRET}"}
    )
    assert status == 200 and body["type"] == "event_processing_response"


@pytest.mark.parametrize(
    ("settings", "headers", "status"),
    [
        ({}, {}, 401),
        ({"connectord_secret": "nope"}, {}, 403),
        ({}, {"Authorization": "Bearer nope"}, 403),
        ({"connectord_secret": FIREHOSE_SECRET.upper()}, {}, 403),
    ],
)
def test_firehose_refuses_wrong_secrets(source_server, settings, headers, status):
    server = source_server()
    message = firehose_events(account={"account_id": 1, "account_settings": settings})
    got, _, body = server.post("firehose", message, headers)
    assert got == status
    assert body["errors"][0]["code"] == ("UNAUTHORIZED" if status == 401 else "FORBIDDEN")
    assert server.records == []


def test_firehose_verification_and_registration(source_server):
    server = source_server()
    status, _, body = server.post("firehose", firehose_events(events=[]))
    assert (status, body["type"]) == (200, "event_processing_response")
    status, _, body = server.post("firehose", membership_change([]))
    assert (status, body["type"], body["suspend_subscription"]) == (
        200,
        "audience_membership_change_response",
        False,
    )
    registration = {"type": "module_registration_request", "id": "r", "timestamp_ms": 1}
    status, _, body = server.post(
        "firehose", registration, {"Authorization": f"Bearer {FIREHOSE_SECRET}"}
    )
    assert (status, body["type"]) == (200, "module_registration_response")
    assert server.records == []


def test_firehose_partial_membership_change(source_server):
    server = source_server()
    message = membership_change(
        [profile("u-1", "1", audience("add")), {"mpid": "x", "audiences": []}]
    )
    status, _, body = server.post("firehose", message)
    assert (status, body["type"]) == (200, "audience_membership_change_response")
    assert [(r["type"], r["action"]) for r in server.accepted] == [("audience", "add")]
    (dead,) = server.dead
    assert dead["reason"] == "user_profiles[1]: \"mpid\" must be a 64-bit integer; found 'x'"
    assert dead["part"] == {"mpid": "x", "audiences": []}


def test_firehose_unknown_message_type(source_server):
    server = source_server()
    message = {**firehose_events(), "type": "dsr_processing_request"}
    status, _, body = server.post("firehose", message)
    assert status == 400
    assert "unsupported Firehose message type" in body["errors"][0]["message"]


# --- Webhook ------------------------------------------------------------------------------


def outbound_batch(customer: str = "h.jekyll.md"):
    batch = events_batch()
    batch["user_identities"] = [{"identity_type": "customer_id", "identity": customer}]
    return batch


def test_webhook_output(source_server):
    server = source_server()
    status, _, body = server.post("webhook", outbound_batch(), {"Authorization": WEBHOOK_AUTH})
    assert (status, body) == (202, None)
    assert {r["userId"] for r in server.records} == {"h.jekyll.md"}


def test_webhook_auth(source_server):
    server = source_server()
    assert server.post("webhook", outbound_batch())[0] == 401
    assert server.post("webhook", outbound_batch(), {"Authorization": "Bearer x"})[0] == 403
    assert server.records == []


def test_webhook_bad_event_keeps_the_rest(source_server):
    server = source_server()
    batch = outbound_batch()
    batch["events"].append({"event_type": "screen_view", "data": {}})
    status, _, body = server.post("webhook", batch, {"Authorization": WEBHOOK_AUTH})
    assert (status, body) == (202, None)
    assert len(server.accepted) == 3
    (dead,) = server.dead
    assert dead["reason"].endswith('Required event field "screen_name" is missing or empty.')
    assert dead["part"] == {"event_type": "screen_view", "data": {}}


# --- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"api_key": "k"}, "set both api_key and api_secret"),
        ({}, "every push endpoint authenticates"),
        ({**OPTIONS, "user_id": "passport"}, "unknown mParticle identity 'passport'"),
        ({**OPTIONS, "other_events": "keep"}, "drop"),
        ({**OPTIONS, "firehose_secret": "  "}, "is empty; remove the option"),
    ],
)
def test_options_are_validated(options, text):
    with pytest.raises(ValueError) as err:
        MparticleSource.Options.model_validate(options)
    assert text in str(err.value)


def test_user_id_option_accepts_other_spellings():
    options = MparticleSource.Options.model_validate({**OPTIONS, "user_id": "customerid"})
    assert options.user_id == "customer_id"
    options = MparticleSource.Options.model_validate({**OPTIONS, "user_id": "other2"})
    assert options.user_id == "other_id_2"
