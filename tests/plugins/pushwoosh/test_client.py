"""Request/response contracts of the Pushwoosh client (aioresponses, no network)."""

from __future__ import annotations

import io
import re
import zipfile

import aiohttp
import orjson
import pytest
from aioresponses import aioresponses
from yarl import URL

from connectord import AuthError, PermanentError, RetryableError
from connectord.plugins.pushwoosh.client import (
    ArgumentError,
    DeviceTokenMissing,
    PlanLimited,
    PushwooshClient,
    iter_tracking_rows,
    validate_application,
)
from connectord.plugins.pushwoosh.const import TagType

BASE = "https://api.example-pushwoosh.test"
EVENTS = "https://events.example-pushwoosh.test"
APP = "ABCDE-12345"
SERVER = "server-secret-token"
DEVICE = "device-secret-token"


@pytest.fixture
async def client():
    session = aiohttp.ClientSession()
    yield PushwooshClient(
        lambda: session,
        application=APP,
        api_token=SERVER,
        device_token=DEVICE,
        base_url=BASE,
        events_url=EVENTS,
        poll_interval=0.001,
        max_wait=0.5,
    )
    await session.close()


def sent(mock, method, url, n=0):
    """The body (decoded) and headers of the n-th call to ``url``."""
    call = mock.requests[(method, URL(url))][n]
    data = call.kwargs.get("data")
    return (orjson.loads(data) if data else None), dict(call.kwargs.get("headers") or {})


def ok(response=None):
    return {"status_code": 200, "status_message": "OK", "response": response}


# --- legacy envelope -----------------------------------------------------------------


async def test_device_api_calls_carry_the_device_token_header_not_auth(client):
    with aioresponses() as mock:
        mock.post(f"{BASE}/json/1.3/setTags", payload=ok())
        await client.set_tags({"Plan": "pro"}, user_id="u1")
        body, headers = sent(mock, "POST", f"{BASE}/json/1.3/setTags")
    assert body == {"request": {"application": APP, "userId": "u1", "tags": {"Plan": "pro"}}}
    assert headers["Authorization"] == f"Token {DEVICE}"
    assert headers["Content-Type"] == "application/json"


async def test_server_methods_carry_the_server_token_in_the_body(client):
    with aioresponses() as mock:
        mock.post(
            f"{BASE}/json/1.3/listTags",
            payload=ok({"tags": [{"name": "Age", "type": 1}, {"name": "Odd", "type": 99}]}),
        )
        tags = await client.list_tags()
        body, headers = sent(mock, "POST", f"{BASE}/json/1.3/listTags")
    assert body == {"request": {"auth": SERVER}}
    assert "Authorization" not in headers
    assert tags == {"Age": TagType.INTEGER}


async def test_post_event_always_sends_attributes(client):
    with aioresponses() as mock:
        mock.post(f"{BASE}/json/1.3/postEvent", payload=ok({"code": "61BC9-84DD0"}))
        code = await client.post_event(
            "Purchase", user_id="u1", hwid="hw1", timestamp_utc=1435228403, device_type=3
        )
        body, _ = sent(mock, "POST", f"{BASE}/json/1.3/postEvent")
    assert code == "61BC9-84DD0"
    assert body["request"] == {
        "application": APP,
        "userId": "u1",
        "hwid": "hw1",
        "event": "Purchase",
        "attributes": {},
        "timestampUTC": 1435228403,
        "device_type": 3,
    }


async def test_status_210_on_http_200_is_an_argument_error(client):
    with aioresponses() as mock:
        mock.post(
            f"{BASE}/json/1.3/postEvent",
            payload={"status_code": 210, "status_message": "Event not found", "response": None},
        )
        with pytest.raises(ArgumentError, match="argument error: Event not found") as caught:
            await client.post_event("Nope", user_id="u1")
    assert isinstance(caught.value, PermanentError)
    assert caught.value.status_message == "Event not found"


@pytest.mark.parametrize(
    ("http", "code", "error"),
    [
        (401, 401, AuthError),
        (403, 403, AuthError),
        (200, 401, AuthError),  # the envelope alone decides
        (200, 403, AuthError),
        (200, 500, RetryableError),
        (500, 500, RetryableError),
        (200, 429, RetryableError),
        (200, 404, PermanentError),
    ],
)
async def test_envelope_codes_map_to_delivery_errors(client, http, code, error):
    with aioresponses() as mock:
        mock.post(
            f"{BASE}/json/1.3/listFilters",
            status=http,
            payload={"status_code": code, "status_message": "refused", "response": None},
        )
        with pytest.raises(error) as caught:
            await client.list_filters()
    assert type(caught.value) is error or issubclass(type(caught.value), error)
    assert SERVER not in str(caught.value) and DEVICE not in str(caught.value)


@pytest.mark.parametrize("http", [403, 200])
async def test_a_403_on_the_custom_plan_tags_api_is_a_plan_refusal(client, http):
    """listTags/addTag are "for Custom Plan subscriptions only"; their 403 is told apart
    from a refused token so the destination can fall back instead of stalling."""
    with aioresponses() as mock:
        mock.post(
            f"{BASE}/json/1.3/listTags",
            status=http,
            payload={
                "status_code": 403,
                "status_message": "Token restrictions forbid this operation",
                "response": None,
            },
        )
        with pytest.raises(PlanLimited, match="listTags refused"):
            await client.list_tags()


async def test_device_api_methods_never_get_the_server_token(client):
    """Without a Device API token nothing is sent: the server token is refused there."""
    client._device_token = None
    with aioresponses() as mock:
        with pytest.raises(DeviceTokenMissing, match="set device_token"):
            await client.set_tags({"Plan": "pro"}, user_id="u1")
        assert mock.requests == {}


async def test_429_carries_retry_after(client):
    with aioresponses() as mock:
        mock.post(
            f"{BASE}/json/1.3/setTags",
            status=429,
            headers={"Retry-After": "7"},
            body="slow down",
        )
        with pytest.raises(RetryableError) as caught:
            await client.set_tags({"a": 1}, user_id="u1")
    assert caught.value.retry_after == 7
    assert not isinstance(caught.value, AuthError)


async def test_gateway_errors_and_garbage_are_retryable(client):
    with aioresponses() as mock:
        mock.post(f"{BASE}/json/1.3/listTags", status=502, body="<html>bad gateway</html>")
        mock.post(f"{BASE}/json/1.3/listTags", status=200, body="<html>captive portal</html>")
        with pytest.raises(RetryableError, match="502"):
            await client.list_tags()
        with pytest.raises(RetryableError, match="without a status envelope"):
            await client.list_tags()


async def test_network_errors_are_retryable(client):
    with aioresponses() as mock:
        mock.post(f"{BASE}/json/1.3/listTags", exception=aiohttp.ClientConnectionError("down"))
        with pytest.raises(RetryableError, match="unreachable"):
            await client.list_tags()


async def test_add_tag_and_filters(client):
    with aioresponses() as mock:
        mock.post(f"{BASE}/json/1.3/addTag", payload=ok({"result": True}))
        mock.post(f"{BASE}/json/1.3/createFilter", payload=ok({"name": "VIP"}), repeat=True)
        mock.post(
            f"{BASE}/json/1.3/listFilters",
            payload=ok({"filters": [{"code": "52551-F2F42", "name": "VIP"}]}),
        )
        await client.add_tag("Since", TagType.DATE)
        assert await client.create_filter("VIP", 'T("a", in, ["VIP"])') == "VIP"
        await client.create_filter("HS", 'T("a", in, ["HS"])', with_application=True)
        assert await client.list_filters() == [{"code": "52551-F2F42", "name": "VIP"}]
        add, _ = sent(mock, "POST", f"{BASE}/json/1.3/addTag")
        create, _ = sent(mock, "POST", f"{BASE}/json/1.3/createFilter")
        high_speed, _ = sent(mock, "POST", f"{BASE}/json/1.3/createFilter", 1)
    assert add == {
        "request": {
            "auth": SERVER,
            "tag": {
                "name": "Since",
                "type": 4,
                "user_specific": True,
                "application_specific": False,
            },
        }
    }
    assert create["request"] == {
        "auth": SERVER,
        "name": "VIP",
        "filter_expression": 'T("a", in, ["VIP"])',
    }  # "application" is for High-Speed Setup accounts only
    assert high_speed["request"]["application"] == APP


# --- Audience API v2 -----------------------------------------------------------------


async def test_bulk_set_tags_is_posted_flat_and_polled_until_completed(client):
    status_url = re.compile(rf"^{re.escape(BASE)}/api/v2/audience/bulkSetTags/req-1\?.*$")
    devices = [{"user_id": "u1", "list_operator": "set", "tags": {"Plan": "pro"}}]
    with aioresponses() as mock:
        mock.post(
            f"{BASE}/api/v2/audience/bulkSetTags",
            payload={"request_id": "req-1", "status": "Pending"},
        )
        mock.get(status_url, payload={"request_id": "req-1", "status": "Pending"})
        mock.get(status_url, payload={"request_id": "req-1", "status": "Processing"})
        mock.get(
            status_url,
            payload={
                "request_id": "req-1",
                "status": "Completed",
                "devices": [{"user_id": "u1", "status": "ok"}],
            },
        )
        request_id = await client.bulk_set_tags(devices)
        status = await client.bulk_set_tags_wait(request_id)
        body, headers = sent(mock, "POST", f"{BASE}/api/v2/audience/bulkSetTags")
        polls = [k for k in mock.requests if k[0] == "GET"]
    assert body == {
        "application": APP,
        "auth": SERVER,
        "create_missing_tags": False,
        "devices": devices,
    }
    assert "Authorization" not in headers
    assert status["devices"] == [{"user_id": "u1", "status": "ok"}]
    assert len(polls) == 1 and polls[0][1].query["detailed"] == "true"
    assert len(mock.requests[polls[0]]) == 3
    assert mock.requests[polls[0]][0].kwargs["headers"]["Authorization"] == f"Token {SERVER}"


async def test_bulk_set_tags_errors(client):
    status_url = re.compile(rf"^{re.escape(BASE)}/api/v2/audience/bulkSetTags/req-2\?.*$")
    with aioresponses() as mock:
        mock.post(
            f"{BASE}/api/v2/audience/bulkSetTags",
            status=400,
            payload={"message": "invalid request"},
        )
        mock.post(
            f"{BASE}/api/v2/audience/bulkSetTags", status=401, payload={"message": "unauthorized"}
        )
        mock.get(status_url, payload={"status": "Failed", "error": "boom"})
        mock.get(status_url, payload={"status": "Pending"}, repeat=True)
        with pytest.raises(PermanentError, match="invalid request"):
            await client.bulk_set_tags([{"user_id": "u"}])
        with pytest.raises(AuthError, match="unauthorized"):
            await client.bulk_set_tags([{"user_id": "u"}])
        with pytest.raises(PermanentError, match="req-2 failed: boom"):
            await client.bulk_set_tags_wait("req-2")
        with pytest.raises(RetryableError, match="still pending"):
            await client.bulk_set_tags_wait("req-2")


# --- scheduled requests and the tracking log ------------------------------------------


def tracking_zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("log.csv", text)
    return buffer.getvalue()


async def test_tracking_log_request_poll_and_download(client, tmp_path):
    file_url = "https://static.example-pushwoosh.test/logs/day.zip"
    data = tracking_zip(
        "timestamp;tracking_code;target_id;hwid;status;description;campaign;platform\n"
        "2026-11-20 10:00:00;TC1;u1;hw1;delivered;ok;CAMP-1;3\n"
        "\n"
        "2026-11-20 10:05:00;TC1;u1;hw1;opened;clicked;CAMP-1;3\n"
    )
    with aioresponses() as mock:
        mock.post(f"{BASE}/json/1.3/getTrackingLog", payload=ok({"request_id": "r-9"}))
        mock.post(
            f"{BASE}/json/1.3/getResults",
            payload={"status_code": 210, "status_message": "not ready", "response": None},
        )
        mock.post(f"{BASE}/json/1.3/getResults", payload=ok({"fileName": file_url}))
        mock.get(file_url, body=data)
        url = await client.tracking_log_url("2026-11-20")
        target = tmp_path / "log.zip"
        with target.open("wb") as out:
            size = await client.download(url, out, max_bytes=10_000)
        request, _ = sent(mock, "POST", f"{BASE}/json/1.3/getTrackingLog")
        poll, _ = sent(mock, "POST", f"{BASE}/json/1.3/getResults", 1)
        _, file_headers = sent(mock, "GET", file_url)
    assert request == {"request": {"date": "2026-11-20", "auth": SERVER}}
    assert poll == {"request": {"request_id": "r-9", "auth": SERVER}}
    assert "Authorization" not in file_headers  # no credentials to the file host
    assert size == len(data)
    rows = list(iter_tracking_rows(target))
    assert rows[0]["status"] == "delivered" and rows[0]["campaign"] == "CAMP-1"
    assert rows[1]["description"] == "clicked" and rows[1]["platform"] == "3"
    assert len(rows) == 2


DOCUMENTED_LINE = (
    '"2021-04-20 13:01:01";T-D6C2-ABC2228F-C9C305A9;09913CFD-74AD-4A8C-B06E-CCA51200ADDC;'
    "09913CFD-74AD-4A8C-B06E-CCA51200ADDC;delivered;Success;C90C0-0E786;"
    '"{""aps"":{""alert"":""text"",""badge"":0,""sound"":""""},""md"":{""uid"":11793546856,'
    '""user_id"":""09913CFD-74AD-4A8C-B06E-CCA51200ADDC""},""p"":""Zh"",""pw_msg"":""1""}"'
)
"""The example line of docs.pushwoosh.com/developer/api-reference/statistics-api/push-tracking."""


def test_the_documented_eight_column_line_parses_with_its_quoted_payload(tmp_path):
    path = tmp_path / "log.zip"
    header = "//timestamp;tracking_code;target_id;hwid;status;description;appCode;payload\n"
    path.write_bytes(tracking_zip(header + DOCUMENTED_LINE + "\n"))
    [row] = list(iter_tracking_rows(path))
    assert row["timestamp"] == "2021-04-20 13:01:01"
    assert row["description"] == "Success"  # not glued to appCode and payload
    assert row["appcode"] == "C90C0-0E786"
    assert orjson.loads(row["payload"])["aps"] == {"alert": "text", "badge": 0, "sound": ""}


def test_tracking_rows_without_header_use_the_documented_order(tmp_path):
    path = tmp_path / "log.zip"
    path.write_bytes(tracking_zip(DOCUMENTED_LINE + "\n1700000000;TC9;;hw9;sent;\n"))
    rows = list(iter_tracking_rows(path))
    assert rows[0]["appcode"] == "C90C0-0E786" and rows[0]["payload"].startswith('{"aps"')
    assert rows[1] == {  # an older six-column line
        "timestamp": "1700000000",
        "tracking_code": "TC9",
        "target_id": "",
        "hwid": "hw9",
        "status": "sent",
        "description": "",
    }


async def test_results_not_ready_in_time_are_retryable(client):
    with aioresponses() as mock:
        mock.post(
            f"{BASE}/json/1.3/getResults",
            payload={"status_code": 210, "status_message": "not ready", "response": None},
            repeat=True,
        )
        with pytest.raises(RetryableError, match="not ready after"):
            await client.wait_results("r-1", method="getTrackingLog")


async def test_download_is_capped(client, tmp_path):
    with aioresponses() as mock:
        mock.get("https://files.test/big.zip", body=b"x" * 5000)
        with (tmp_path / "f").open("wb") as out, pytest.raises(PermanentError, match="limit"):
            await client.download("https://files.test/big.zip", out, max_bytes=1000)


# --- statistics and batch events ------------------------------------------------------


async def test_messages_list_contract(client):
    with aioresponses() as mock:
        mock.post(f"{BASE}/api/v2/messages:list", payload={"total": 0, "items": []})
        page = await client.list_messages("2026-11-01", "2026-11-02", page=2, per_page=500)
        body, headers = sent(mock, "POST", f"{BASE}/api/v2/messages:list")
    assert page == {"total": 0, "items": []}
    assert headers["Authorization"] == f"Token {SERVER}"
    assert body == {
        "request": {
            "filters": {
                "application": APP,
                "date_range": {"date_from": "2026-11-01", "date_to": "2026-11-02"},
            },
            "params": {"with_details": True, "with_metrics": True},
            "per_page": 500,
            "page": 2,
        }
    }


async def test_batch_events_contract_and_refusal(client):
    url = f"{EVENTS}/integration-segment/v1/post-events"
    with aioresponses() as mock:
        mock.post(url, payload={"status": "success"})
        mock.post(
            url,
            status=400,
            payload={"action": "post event", "status": "failure", "error": {"message": "bad"}},
        )
        await client.post_events_batch([{"name": "A", "user_id": "u1"}])
        with pytest.raises(PermanentError, match="bad"):
            await client.post_events_batch([{"name": "B"}])
        body, headers = sent(mock, "POST", url)
    assert body == {"events": [{"name": "A", "user_id": "u1"}]}
    assert headers["Authorization"] == f"Token {SERVER}"
    assert headers["X-PW-Appcode"] == APP


def test_application_codes_are_validated():
    assert validate_application("ABCDE-12345") == "ABCDE-12345"
    for bad in ("abcde-12345", "ABCDE12345", "ABCD-12345", "ABCDE-123456", ""):
        with pytest.raises(ValueError, match="XXXXX-XXXXX"):
            validate_application(bad)
