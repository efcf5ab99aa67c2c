"""The destination against the emulator over real HTTP."""

from __future__ import annotations

import pytest
from connectord import AuthError, PermanentError, RetryableError
from connectord.testing import deliver, identify, track

from connectord_myvendor.const import TRACK_PATH
from connectord_myvendor.destination import MyVendorDestination


async def test_records_arrive_as_events_in_batches(emulator, options):
    records = [track(properties={"n": i}) for i in range(600)]
    result = await deliver(MyVendorDestination, options, records)
    assert result.rejected == {} and result.retry == set()
    assert len(emulator.tracked) == 600
    assert len(emulator.requests_to(TRACK_PATH)) == 2  # 500 + 100


async def test_records_that_cannot_be_sent_are_rejected_by_index(emulator, options):
    records = [
        track(),
        {"type": "group", "userId": "u", "groupId": "g"},
        track(event=""),  # the vendor refuses an empty name
        identify(),
    ]
    result = await deliver(MyVendorDestination, options, records)
    assert set(result.rejected) == {1, 2}
    assert "found 'group'" in result.rejected[1]
    assert result.rejected[2] == "myvendor refused the event: missing name"
    assert [e["name"] for e in emulator.tracked] == ["Order Completed", "identify"]


async def test_rate_limits_are_retryable_with_retry_after(emulator, options):
    emulator.throttle_next(retry_after=30)
    with pytest.raises(RetryableError) as caught:
        await deliver(MyVendorDestination, options, [track()])
    assert caught.value.retry_after == 30


async def test_server_errors_timeouts_and_dropped_connections_are_retryable(emulator, options):
    emulator.fail_next(status=502)
    with pytest.raises(RetryableError):
        await deliver(MyVendorDestination, options, [track()])
    emulator.fail_next(disconnect=True)
    with pytest.raises(RetryableError, match="unreachable"):
        await deliver(MyVendorDestination, options, [track()])


async def test_a_refused_request_is_permanent_and_a_wrong_key_is_auth(emulator, options):
    emulator.fail_next(status=400, body={"error": "bad"})
    with pytest.raises(PermanentError):
        await deliver(MyVendorDestination, options, [track()])
    with pytest.raises(AuthError):
        await deliver(MyVendorDestination, {**options, "api_key": "wrong"}, [track()])
