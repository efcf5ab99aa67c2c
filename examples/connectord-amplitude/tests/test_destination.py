"""The destination against the emulator over real HTTP: batches and every error shape."""

from __future__ import annotations

import pytest
from connectord import AuthError, PermanentError, RetryableError
from connectord.testing import deliver, identify, track

from connectord_amplitude.destination import AmplitudeDestination


async def test_batches_are_uploaded_with_insert_ids(emulator, destination_options):
    records = [track(properties={"n": i}, user_id=f"user-{i:03d}") for i in range(2500)]
    result = await deliver(AmplitudeDestination, destination_options, records)
    assert (result.rejected, result.retry) == ({}, set())
    assert len(emulator.ingested) == 2500
    assert len(emulator.requests_to("/2/httpapi")) == 3  # batch_size 1000
    body = emulator.last_request("/2/httpapi").json()
    assert body["api_key"] and "options" not in body
    assert emulator.ingested[0]["insert_id"] == records[0]["messageId"]


async def test_the_batch_endpoint(emulator, destination_options):
    options = {**destination_options, "endpoint": "batch", "batch_size": 2000}
    records = [track(user_id=f"user-{i:04d}") for i in range(2000)]
    await deliver(AmplitudeDestination, options, records)
    assert len(emulator.requests_to("/batch")) == 1
    assert len(emulator.ingested) == 2000


async def test_resending_is_deduplicated_by_insert_id(emulator, destination_options):
    records = [track(user_id="user-1"), identify("user-1")]
    await deliver(AmplitudeDestination, destination_options, records)
    await deliver(AmplitudeDestination, destination_options, records)
    assert len(emulator.ingested) == 2
    assert emulator.duplicates == 2


async def test_local_rejects_never_reach_amplitude(emulator, destination_options):
    records = [track(user_id="user-1"), {"type": "group", "userId": "user-1", "groupId": "g"}]
    result = await deliver(AmplitudeDestination, destination_options, records)
    assert list(result.rejected) == [1]
    assert [e["event_type"] for e in emulator.last_request("/2/httpapi").json()["events"]] == [
        "Order Completed"
    ]


async def test_a_400_naming_events_rejects_them_and_resends_the_rest(emulator, destination_options):
    emulator.silenced_devices.add("device-silenced")
    records = [
        track(user_id="user-0001"),
        track(user_id=None, anonymousId="device-silenced"),
        track(user_id="user-0003"),
    ]
    result = await deliver(AmplitudeDestination, destination_options, records)
    assert result.rejected == {1: "amplitude refused the event: device_id silenced by Amplitude"}
    assert result.retry == set()
    assert [e["user_id"] for e in emulator.ingested] == ["user-0001", "user-0003"]
    assert len(emulator.requests_to("/2/httpapi")) == 2  # refused, then the rest


async def test_invalid_fields_named_by_amplitude_are_rejected(emulator, destination_options):
    # A mapping could produce a field Amplitude refuses; force one through the emulator.
    emulator.fail_next(
        status=400,
        body={
            "code": 400,
            "error": "Invalid field values on some events",
            "events_with_invalid_fields": {"time": [0]},
            "events_with_invalid_id_lengths": {"user_id": [1]},
        },
    )
    records = [track(user_id="user-1"), track(user_id="user-2"), track(user_id="user-3")]
    result = await deliver(AmplitudeDestination, destination_options, records)
    assert result.rejected == {
        0: "amplitude refused the event: invalid time",
        1: "amplitude refused the event: user_id is shorter than the minimum ID length",
    }
    assert [e["user_id"] for e in emulator.ingested] == ["user-3"]


async def test_a_429_retries_throttled_users_later_and_sends_the_others_now(
    emulator, destination_options
):
    emulator.throttled_users.add("user-busy")
    records = [track(user_id="user-calm"), track(user_id="user-busy"), identify("user-calm")]
    result = await deliver(AmplitudeDestination, destination_options, records)
    assert result.rejected == {}
    assert result.retry == {1}
    assert result.retry_after == 30
    assert [e["event_type"] for e in emulator.ingested] == ["Order Completed", "$identify"]


async def test_a_429_without_event_indices_retries_the_whole_batch(emulator, destination_options):
    emulator.throttle_next(retry_after=12, body={"code": 429, "error": "Too many requests"})
    with pytest.raises(RetryableError) as caught:
        await deliver(AmplitudeDestination, destination_options, [track()])
    assert caught.value.retry_after == 12


async def test_a_413_is_permanent_so_the_framework_splits_the_batch(emulator, destination_options):
    big = "x" * 1000
    records = [track(user_id=f"user-{i:04d}", properties={"a": big, "b": big}) for i in range(600)]
    with pytest.raises(PermanentError, match="413: Payload too large"):
        await deliver(AmplitudeDestination, destination_options, records)
    assert emulator.ingested == []


async def test_an_invalid_api_key_is_an_auth_error(destination_options):
    with pytest.raises(AuthError, match="Invalid API key"):
        await deliver(AmplitudeDestination, {**destination_options, "api_key": "wrong"}, [track()])


async def test_server_errors_and_dropped_connections_are_retryable(emulator, destination_options):
    emulator.fail_next(status=503)
    with pytest.raises(RetryableError, match="503"):
        await deliver(AmplitudeDestination, destination_options, [track()])
    emulator.fail_next(disconnect=True)
    with pytest.raises(RetryableError, match="unreachable"):
        await deliver(AmplitudeDestination, destination_options, [track()])
    assert emulator.ingested == []


async def test_min_id_length_is_sent_as_an_option(emulator, destination_options):
    options = {**destination_options, "min_id_length": 3}
    await deliver(AmplitudeDestination, options, [track(user_id="abc")])
    assert emulator.last_request("/2/httpapi").json()["options"] == {"min_id_length": 3}
    assert emulator.ingested[0]["user_id"] == "abc"
