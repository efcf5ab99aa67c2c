"""CleverTap records → connectord records: pure functions."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from connectord.plugins.clevertap import mapping
from connectord.records import problem

# Abridged from a real Get Events page (see the vendor reference).
RAW_EVENT = {
    "profile": {
        "objectId": "__068b9a97df22bfeif94391799493a0",
        "identity": "604c604a11814c1479673de0",
        "all_identities": ["604c604a11814c1479673de0", "someone@example.com"],
        "name": "Name Surname",
        "email": "someone@example.com",
        "phone": 911111111111,
        "platform": "Android",
        "push_token": "fcm:fCSD",
        "os_version": "15",
        "app_version": "9.0.3.4",
        "make": "Samsung",
        "model": "Sm-s821b",
        "profileData": {"firstname": "Ganesh", "signupon": "$D_1615618122"},
    },
    "ts": 20250607130935,
    "event_props": {
        "Fare": 5149,
        "Origin": "Chennai",
        "Leave Date": "$D_1749670800",
        "CT Source": "API",
    },
    "session_props": {"session_source": "Direct"},
}


def test_ts_is_read_in_the_account_time_zone_and_written_in_utc():
    assert mapping.ts_to_iso(20250607130935) == "2025-06-07T13:09:35.000Z"
    assert mapping.ts_to_iso("20250607130935", ZoneInfo("Asia/Kolkata")) == (
        "2025-06-07T07:39:35.000Z"
    )
    assert mapping.ts_to_iso(20251332000000) is None
    assert mapping.ts_to_iso("garbled") is None
    assert mapping.ts_to_iso(2025060713) is None


def test_date_values_become_iso_8601():
    assert mapping.clevertap_value("$D_1749670800") == "2025-06-11T19:40:00.000Z"
    assert mapping.clevertap_value("$D_x") == "$D_x"
    assert mapping.clevertap_value("plain") == "plain"
    assert mapping.clevertap_value(5) == 5


def test_event_record_keeps_identity_time_properties_and_session():
    record = mapping.event_record(RAW_EVENT, "Flight Booked", account_id="ACC-1")
    assert problem(record) is None
    assert record["type"] == "track"
    assert record["event"] == "Flight Booked"
    assert record["userId"] == "604c604a11814c1479673de0"
    assert record["anonymousId"] == "__068b9a97df22bfeif94391799493a0"
    assert record["timestamp"] == "2025-06-07T13:09:35.000Z"
    assert record["properties"] == {
        "Fare": 5149,
        "Origin": "Chennai",
        "Leave Date": "2025-06-11T19:40:00.000Z",
        "CT Source": "API",
    }
    context = record["context"]
    assert context["session_source"] == "Direct"
    assert context["os"] == {"name": "Android", "version": "15"}
    assert context["app"] == {"version": "9.0.3.4"}
    assert context["device"] == {"manufacturer": "Samsung", "model": "Sm-s821b"}
    assert context["clevertap"]["all_identities"][1] == "someone@example.com"
    assert "traits" not in context


def test_event_record_can_carry_the_profile_as_context_traits():
    record = mapping.event_record(RAW_EVENT, "Flight Booked", account_id="A-1", with_traits=True)
    traits = record["context"]["traits"]
    assert traits["email"] == "someone@example.com"
    assert traits["firstname"] == "Ganesh"
    assert traits["signupon"] == "2021-03-13T06:48:42.000Z"
    assert "objectId" not in traits and "push_token" not in traits


def test_event_message_ids_are_stable_and_distinguish_events():
    first = mapping.event_record(RAW_EVENT, "Flight Booked", account_id="A-1")
    again = mapping.event_record(dict(RAW_EVENT), "Flight Booked", account_id="A-1")
    assert first["messageId"] == again["messageId"]
    other_time = mapping.event_record(
        {**RAW_EVENT, "ts": 20250607130936}, "Flight Booked", account_id="A-1"
    )
    other_name = mapping.event_record(RAW_EVENT, "Flight Changed", account_id="A-1")
    other_account = mapping.event_record(RAW_EVENT, "Flight Booked", account_id="A-2")
    ids = {
        first["messageId"],
        other_time["messageId"],
        other_name["messageId"],
        other_account["messageId"],
    }
    assert len(ids) == 4


def test_anonymous_user_has_only_the_clevertap_id():
    raw = {**RAW_EVENT, "profile": {"objectId": "__abc", "platform": "iOS"}}
    record = mapping.event_record(raw, "App Launched", account_id="A-1")
    assert "userId" not in record
    assert record["anonymousId"] == "__abc"
    assert problem(record) is None


def test_charged_items_travel_in_properties():
    raw = {**RAW_EVENT, "items": [{"Items|product": "P1", "Items|price": 10}]}
    record = mapping.event_record(raw, "Charged", account_id="A-1")
    assert record["properties"]["items"] == [{"Items|product": "P1", "Items|price": 10}]


def test_profile_record_is_an_identify_with_traits():
    raw = {
        "identity": "cust-1",
        "objectId": "__obj1",
        "email": "c@example.com",
        "name": "C",
        "platform": "Android",
        "profileData": {"Plan": "pro", "Signup Date": "$D_1704067200"},
        "platformInfo": [{"platform": "Android", "objectId": "__obj1"}],
    }
    record = mapping.profile_record(raw, account_id="A-1", day=date(2024, 1, 2))
    assert problem(record) is None
    assert record["type"] == "identify"
    assert record["userId"] == "cust-1"
    assert record["anonymousId"] == "__obj1"
    assert record["traits"] == {
        "email": "c@example.com",
        "name": "C",
        "Plan": "pro",
        "Signup Date": "2024-01-01T00:00:00.000Z",
        "platform": "Android",
    }
    assert record["timestamp"] == "2024-01-02T00:00:00.000Z"
    assert record["context"]["clevertap"]["platformInfo"][0]["objectId"] == "__obj1"
    same_day = mapping.profile_record(raw, account_id="A-1", day=date(2024, 1, 2))
    next_day = mapping.profile_record(raw, account_id="A-1", day=date(2024, 1, 3))
    assert same_day["messageId"] == record["messageId"] != next_day["messageId"]


def test_profile_without_object_id_takes_it_from_platform_info():
    raw = {"identity": "x", "platformInfo": [{"objectId": "__p"}]}
    record = mapping.profile_record(raw, account_id="A-1", day=date(2024, 1, 1))
    assert record["anonymousId"] == "__p"


def test_event_count_metric():
    record = mapping.event_count_record("Charged", date(2024, 1, 5), 130, account_id="A-1")
    assert problem(record) is None
    assert record["metric"] == "event_count"
    assert record["period"] == "day"
    assert record["timestamp"] == "2024-01-05T00:00:00.000Z"
    assert record["dimensions"] == {"event": "Charged"}
    assert record["values"] == {"count": 130}
    again = mapping.event_count_record("Charged", date(2024, 1, 5), 131, account_id="A-1")
    assert again["messageId"] == record["messageId"]  # a corrected count replaces the old one


def test_campaign_report_metric_flattens_numbers():
    campaign = {
        "id": 1457432766,
        "name": "Spring",
        "scheduled_on": 201603171030,
        "status": "completed",
        "channel": "push",
    }
    report = {
        "status": "completed",
        "sent": 10,
        "clicked": 2,
        "platform": {"android": {"sent": 6}},
        "note": "x",
    }
    record = mapping.campaign_record(campaign, report, account_id="A-1")
    assert problem(record) is None
    assert record["values"] == {"sent": 10, "clicked": 2, "platform_android_sent": 6}
    assert record["dimensions"]["scheduled_on"] == "2016-03-17T10:30:00.000Z"
    assert record["timestamp"] == "2016-03-17T10:30:00.000Z"
    running = mapping.campaign_record({**campaign, "status": "running"}, None, account_id="A-1")
    assert running["values"] == {} and running["dimensions"]["status"] == "running"
    assert running["messageId"] == record["messageId"]


def test_scheduled_time_formats():
    assert mapping.scheduled_time(20160317103005) == "2016-03-17T10:30:05.000Z"
    assert mapping.scheduled_time(20160317) == "2016-03-17T00:00:00.000Z"
    assert mapping.scheduled_time(1458210600) == "2016-03-17T10:30:00.000Z"
    assert mapping.scheduled_time("soon") is None


def test_profile_count_metric():
    record = mapping.profile_count_record("Charged", date(2024, 1, 5), 42, account_id="A-1")
    assert problem(record) is None
    assert record["metric"] == "profile_count"
    assert record["timestamp"] == "2024-01-05T00:00:00.000Z"
    assert record["dimensions"] == {"event": "Charged"} and record["values"] == {"count": 42}
    events = mapping.event_count_record("Charged", date(2024, 1, 5), 42, account_id="A-1")
    assert events["messageId"] != record["messageId"]  # two metrics, two rows
