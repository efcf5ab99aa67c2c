"""The ``segment.http`` source over real HTTP: Segment's routes, auth, limits, answers."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import requests
from pydantic import ValidationError

from connectord.plugins.segment.source import SegmentSource
from connectord.records import parse_time, problem

from .conftest import OTHER_KEY, WRITE_KEY

JSON = {"Content-Type": "application/json"}


def basic(key: str, colon: bool = True) -> dict[str, str]:
    token = base64.b64encode(f"{key}{':' if colon else ''}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def post(ingest, path, body, headers=None, raw=False):
    data = body if raw else orjson.dumps(body)
    response = requests.post(f"{ingest.url}/{path}", data=data, headers={**JSON, **(headers or {})})
    return response.status_code, response.json(), response.headers


def track(user="u1", **extra):
    return {"type": "track", "userId": user, "event": "Signed Up", **extra}


# --- accepted ---------------------------------------------------------------------------


def test_batch_with_body_write_key(ingest):
    status, body, _ = post(
        ingest,
        "v1/batch",
        {
            "batch": [track(messageId="m-1"), {"type": "identify", "anonymousId": "a1"}],
            "writeKey": WRITE_KEY,
            "context": {"library": {"name": "lib"}, "ip": "203.0.113.1"},
            "integrations": {"All": True},
        },
    )
    assert (status, body) == (200, {"success": True})
    first, second = ingest.records
    assert first["messageId"] == "m-1"
    assert len(second["messageId"]) == 36  # generated
    assert first["context"] == {"library": {"name": "lib"}, "ip": "203.0.113.1"}
    assert second["integrations"] == {"All": True}
    assert "writeKey" not in first
    assert first["receivedAt"] == second["receivedAt"]
    assert first["timestamp"] == first["receivedAt"]  # no timestamp given


def test_message_context_wins_over_batch_context(ingest):
    post(
        ingest,
        "v1/batch",
        {
            "batch": [track(context={"ip": "198.51.100.7"}, integrations={"Pendo": False})],
            "writeKey": WRITE_KEY,
            "context": {"ip": "203.0.113.1", "locale": "fr-FR"},
            "integrations": {"All": True},
        },
    )
    (record,) = ingest.records
    assert record["context"] == {"ip": "198.51.100.7", "locale": "fr-FR"}
    assert record["integrations"] == {"All": True, "Pendo": False}


@pytest.mark.parametrize(
    "headers",
    [basic(WRITE_KEY), basic(WRITE_KEY, colon=False), basic(OTHER_KEY)],
    ids=["basic", "basic-without-colon", "second-key"],
)
def test_http_basic_auth(ingest, headers):
    status, body, _ = post(ingest, "v1/batch", {"batch": [track()]}, headers)
    assert (status, body) == (200, {"success": True})


def test_bearer_token_with_body_write_key(ingest):
    headers = {"Authorization": "Bearer oauth-token"}
    status, _, _ = post(ingest, "v1/track", {**track(), "writeKey": WRITE_KEY}, headers)
    assert status == 200
    status, body, _ = post(ingest, "v1/track", track(), headers)
    assert status == 401 and body["code"] == "invalid_write_key"


def test_single_message_routes_set_the_type(ingest):
    auth = basic(WRITE_KEY)
    for kind, message in [
        ("identify", {"userId": "u1", "traits": {"plan": "pro"}}),
        ("track", {"userId": "u1", "event": "X"}),
        ("page", {"userId": "u1", "name": "Home"}),
        ("screen", {"userId": "u1", "name": "Home"}),
        ("group", {"userId": "u1", "groupId": "g1"}),
        ("alias", {"userId": "u1", "previousId": "a1"}),
    ]:
        status, body, _ = post(ingest, f"v1/{kind}", {**message, "type": "track"}, auth)
        assert (status, body) == (200, {"success": True}), kind
    assert [r["type"] for r in ingest.records] == [
        "identify",
        "track",
        "page",
        "screen",
        "group",
        "alias",
    ]


def test_import_is_an_alias_of_batch(ingest):
    status, _, _ = post(ingest, "v1/import", {"batch": [track()], "writeKey": WRITE_KEY})
    assert status == 200 and len(ingest.records) == 1


def test_gzip_bodies(ingest):
    data = gzip.compress(orjson.dumps({"batch": [track()] * 3, "writeKey": WRITE_KEY}))
    status, body, _ = post(ingest, "v1/batch", data, {"Content-Encoding": "gzip"}, raw=True)
    assert (status, body) == (200, {"success": True})
    assert len(ingest.records) == 3


def test_timestamp_rule_corrects_the_device_clock(ingest):
    device_time = "2026-11-23T10:00:00.000Z"
    sent_at = "2026-11-23T10:00:05.000Z"  # the device clock when it sent: 5 s later
    post(
        ingest,
        "v1/batch",
        {"batch": [track(timestamp=device_time)], "sentAt": sent_at, "writeKey": WRITE_KEY},
    )
    (record,) = ingest.records
    assert record["originalTimestamp"] == device_time
    assert record["sentAt"] == sent_at
    received = parse_time(record["receivedAt"])
    assert parse_time(record["timestamp"]) == received - timedelta(seconds=5)
    assert abs(received - datetime.now(UTC)) < timedelta(seconds=5)


def test_timestamp_without_sent_at_is_kept(ingest):
    post(ingest, "v1/track", {**track(timestamp="2026-11-23T11:00:00+01:00")}, basic(WRITE_KEY))
    (record,) = ingest.records
    assert record["timestamp"] == "2026-11-23T10:00:00.000Z"
    assert record["originalTimestamp"] == "2026-11-23T11:00:00+01:00"


def test_forwarded_segment_messages_keep_their_timestamp(ingest):
    message = track(
        originalTimestamp="2026-11-23T09:59:00.000Z",
        timestamp="2026-11-23T10:00:00.000Z",
        sentAt="2026-11-23T10:05:00.000Z",
    )
    post(ingest, "v1/track", message, basic(WRITE_KEY))
    assert ingest.records[0]["timestamp"] == "2026-11-23T10:00:00.000Z"


def test_ids_are_strings_and_direct_context_gets_the_ip(ingest):
    post(
        ingest,
        "v1/identify",
        {"userId": 42, "context": {"direct": True}, "traits": {}},
        basic(WRITE_KEY),
    )
    (record,) = ingest.records
    assert record["userId"] == "42"
    assert record["context"]["ip"] == "127.0.0.1"


# --- refused ---------------------------------------------------------------------------


def assert_error(result, status, code):
    got_status, body, _ = result
    assert got_status == status, body
    assert body["success"] is False
    assert body["code"] == code
    assert body["message"]
    return body


def test_bad_write_key(ingest):
    assert_error(
        post(ingest, "v1/batch", {"batch": [track()], "writeKey": "wrong-key-123"}),
        401,
        "invalid_write_key",
    )
    assert_error(post(ingest, "v1/batch", {"batch": [track()]}), 401, "invalid_write_key")
    assert_error(
        post(ingest, "v1/batch", {"batch": [track()]}, basic("wrong-key-123")),
        401,
        "invalid_write_key",
    )
    assert ingest.records == []


def test_invalid_json(ingest):
    body = assert_error(post(ingest, "v1/batch", b'{"batch": [', raw=True), 400, "invalid_json")
    assert "not valid JSON" in body["message"]
    assert_error(post(ingest, "v1/track", b"[1, 2]", raw=True), 400, "invalid_json")
    assert_error(post(ingest, "v1/batch", b"", raw=True), 400, "invalid_json")


def test_malformed_gzip(ingest):
    result = post(ingest, "v1/batch", b"not gzip", {"Content-Encoding": "gzip"}, raw=True)
    assert_error(result, 400, "malformed_body")


def test_oversize_batch_and_message(ingest):
    big = {"batch": [track(properties={"x": "y" * 1000})] * 520, "writeKey": WRITE_KEY}
    body = assert_error(post(ingest, "v1/batch", big), 400, "payload_too_large")
    assert "500 KB per batch" in body["message"]
    single = {**track(properties={"x": "y" * 33_000}), "writeKey": WRITE_KEY}
    assert_error(post(ingest, "v1/track", single), 400, "payload_too_large")
    assert ingest.records == []


def test_gzip_bomb_stops_at_the_decompressed_cap(ingest):
    bomb = gzip.compress(b'{"batch": [' + b" " * 5_000_000 + b"]}")
    assert len(bomb) < 10_000
    result = post(ingest, "v1/batch", bomb, {**basic(WRITE_KEY), "Content-Encoding": "gzip"}, True)
    assert_error(result, 400, "payload_too_large")


@pytest.mark.parametrize(
    ("path", "message", "reason"),
    [
        ("v1/track", {"event": "X"}, "track record needs userId or anonymousId"),
        ("v1/track", {"userId": "u1"}, "track record needs an event name"),
        ("v1/track", {"userId": "u1", "event": ""}, "track record needs an event name"),
        ("v1/group", {"userId": "u1"}, "group record needs a groupId"),
        ("v1/alias", {"userId": "u1"}, "alias record needs a previousId"),
        ("v1/batch", {"batch": [{"userId": "u1", "type": "login"}]}, "unknown record type 'login'"),
    ],
)
def test_messages_segment_would_drop_become_dead_letters(ingest, path, message, reason):
    """Segment answers 200 and drops these ("Errors", HTTP API docs); analytics.js drops
    on any 4xx too. They are kept as dead letters with the reason before the answer,
    never queued as records that break the record model."""
    status, body, _ = post(ingest, path, message, basic(WRITE_KEY))
    assert (status, body) == (200, {"success": True})
    assert ingest.records == []
    ((record, why),) = ingest.dead_letters
    assert why.startswith(reason) and problem(record) == why
    assert sum(ingest.source.invalid.values()) == 1


def test_odd_values_segment_documents_no_refusal_for_are_kept(ingest):
    messages = [
        track("u1", messageId="m" * 101),
        track("u2", timestamp="soon"),
        track("u3", context="web"),
    ]
    status, _, _ = post(
        ingest, "v1/batch", {"batch": messages, "context": {"ip": "1"}}, basic(WRITE_KEY)
    )
    assert status == 200
    long_id, bad_time, odd_context = ingest.records
    assert long_id["messageId"] == "m" * 101
    assert bad_time["originalTimestamp"] == "soon"
    assert bad_time["timestamp"] == bad_time["receivedAt"]
    assert odd_context["context"] == "web"
    assert ingest.source.invalid == {}


def test_batch_shape_errors_and_oversized_messages_refuse_the_request(ingest):
    """JSON errors and oversize are Segment's two 400s; nothing of the request is kept."""
    assert_error(
        post(ingest, "v1/batch", {"batch": {"type": "track"}}, basic(WRITE_KEY)),
        400,
        "invalid_batch",
    )
    body = assert_error(
        post(ingest, "v1/batch", {"batch": [track("u1"), "not a message"]}, basic(WRITE_KEY)),
        400,
        "invalid_batch",
    )
    assert "batch[1]" in body["message"]
    big = [track("u1"), track("u2", properties={"x": "y" * 33_000})]
    body = assert_error(
        post(ingest, "v1/batch", {"batch": big}, basic(WRITE_KEY)), 400, "message_too_large"
    )
    assert "batch[1]" in body["message"]
    assert ingest.records == []


def test_more_than_2500_messages_are_all_stored(ingest):
    batch = {"batch": [{"type": "track", "userId": "u", "event": "e"}] * 2501}
    status, body, _ = post(ingest, "v1/batch", batch, basic(WRITE_KEY))
    assert (status, body) == (200, {"success": True})
    assert len(ingest.records) == 2501


def test_queue_full_is_a_503_with_retry_after_in_segments_shape(ingest):
    ingest.queue_full = True
    status, body, headers = post(ingest, "v1/track", track(), basic(WRITE_KEY))
    assert status == 503
    assert body["success"] is False and body["code"] == "queue_full"
    assert int(headers["Retry-After"]) > 0


def test_unknown_paths_and_methods_in_segments_shape(ingest):
    assert_error(post(ingest, "v1/identity", track(), basic(WRITE_KEY)), 404, "not_found")
    response = requests.get(f"{ingest.url}/v1/batch")
    assert response.status_code == 405
    assert response.json()["success"] is False


def test_write_key_option_rules():
    assert SegmentSource.Options(write_key="abcdefgh1234").write_key
    with pytest.raises(ValidationError, match="at least 8 characters"):
        SegmentSource.Options(write_key="short")
    with pytest.raises(ValidationError, match="no ':'"):
        SegmentSource.Options(write_key=["good-key-1234", "bad:key:1234"])
    with pytest.raises(ValidationError, match="at least one write key"):
        SegmentSource.Options(write_key=[])


def test_webhook_batches_as_a_bare_array_with_basic_auth(ingest):
    status, body, _ = post(ingest, "v1/batch", [track("u1"), track("u2")], basic(WRITE_KEY))
    assert (status, body) == (200, {"success": True})
    assert [r["userId"] for r in ingest.records] == ["u1", "u2"]
    assert_error(post(ingest, "v1/batch", [track("u3")]), 401, "invalid_write_key")
    assert_error(post(ingest, "v1/track", [track("u3")], basic(WRITE_KEY)), 400, "invalid_json")


def test_a_message_too_deep_to_store_refuses_the_request(ingest):
    deep = b'{"type":"track","userId":"u2","event":"e","properties":' + b'{"a":' * 300 + b"1"
    deep += b"}" * 301
    body = b'{"writeKey":"%s","batch":[%s,%s,%s]}' % (
        WRITE_KEY.encode(),
        orjson.dumps(track("u1")),
        deep,
        orjson.dumps(track("u3")),
    )
    assert_error(post(ingest, "v1/batch", body, raw=True), 400, "invalid_json")
    assert ingest.records == []


def test_analytics_js_routes_and_cors(ingest):
    """The browser library posts text/plain to the short routes, cross-origin."""
    message = {
        "userId": "u1",
        "event": "Clicked",
        "writeKey": WRITE_KEY,
        "sentAt": "2026-11-23T10:00:00.000Z",
    }
    headers = {"Content-Type": "text/plain", "Origin": "https://app.example.com"}
    response = requests.post(f"{ingest.url}/v1/t", data=orjson.dumps(message), headers=headers)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    batch = {"batch": [{**message, "type": "page"}], "writeKey": WRITE_KEY}
    response = requests.post(f"{ingest.url}/v1/b", data=orjson.dumps(batch), headers=headers)
    assert response.status_code == 200
    assert [r["type"] for r in ingest.records] == ["track", "page"]
    preflight = requests.options(
        f"{ingest.url}/v1/batch",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    allowed = preflight.headers["Access-Control-Allow-Headers"]
    for header in ("Content-Type", "Content-Encoding", "Authorization", "X-Retry-Count"):
        assert header in allowed  # X-Retry-Count: analytics-next on every retry
    refused = requests.post(f"{ingest.url}/v1/t", data=b"{}", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    unknown = requests.post(f"{ingest.url}/v1/nope", data=b"{}", headers=headers)
    assert unknown.status_code == 404
    assert unknown.headers["Access-Control-Allow-Origin"] == "*"
    ingest.queue_full = True
    full = requests.post(f"{ingest.url}/v1/t", data=orjson.dumps(message), headers=headers)
    assert full.status_code == 503
    assert full.headers["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in full.headers["Access-Control-Expose-Headers"]


def test_framework_answers_carry_the_sources_cors_headers():
    """The daemon's own 503 while a connector (re)starts, and its preflight answer, come
    with the headers the source declares (`connectord.cors`), from its configuration."""
    from types import SimpleNamespace

    from connectord import cors
    from connectord.metrics import Metrics
    from connectord.server import create_app
    from connectord.testing import EmulatorServer

    plugin = SimpleNamespace(cls=SegmentSource)
    connector = SimpleNamespace(enabled=True, is_push=True, source=SimpleNamespace(plugin=plugin))
    config = SimpleNamespace(connectors={"seg": connector})
    app = create_app(lambda: {}, Metrics(), lambda: (True, {}), lambda name: name == "seg")
    cors.install(app, lambda: config)
    with EmulatorServer(app) as server:
        starting = requests.post(f"{server.url}/ingest/seg/v1/t", data=b"{}")
        assert starting.status_code == 503
        assert starting.headers["Access-Control-Allow-Origin"] == "*"
        assert "Retry-After" in starting.headers["Access-Control-Expose-Headers"]
        assert "Access-Control-Allow-Headers" not in starting.headers  # preflight only
        preflight = requests.options(
            f"{server.url}/ingest/seg/v1/t",
            headers={
                "Origin": "https://shop.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
            },
        )
        assert preflight.status_code == 204
        assert "X-Retry-Count" in preflight.headers["Access-Control-Allow-Headers"]
        unknown = requests.post(f"{server.url}/ingest/other/v1/t", data=b"{}")
        assert unknown.status_code == 404
        assert "Access-Control-Allow-Origin" not in unknown.headers  # nothing declared it
