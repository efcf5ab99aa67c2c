"""The pull source against the emulator over real HTTP."""

from __future__ import annotations

import pytest
from connectord import AuthError, RetryableError
from connectord.testing import ConfigError, assert_valid_records, run_source, validate_config

from connectord_myvendor.const import EVENTS_PATH
from connectord_myvendor.source import MyVendorEventsSource


async def test_reads_every_page_and_checkpoints_the_last_id(emulator, options):
    emulator.add_events(250)
    run = await run_source(MyVendorEventsSource, {**options, "page_size": 100})
    assert len(run.records) == 250
    assert run.checkpoints == [100, 200, 250]
    assert_valid_records(run.records)
    assert len(emulator.requests_to(EVENTS_PATH)) == 3


async def test_resumes_after_the_checkpoint(emulator, options):
    emulator.add_events(5)
    first = await run_source(MyVendorEventsSource, options)
    emulator.add_events(2)
    second = await run_source(MyVendorEventsSource, options, checkpoint=first.checkpoint)
    assert [r["properties"]["n"] for r in second.records] == [6, 7]
    assert second.checkpoint == 7


async def test_nothing_new_leaves_the_checkpoint_alone(emulator, options):
    run = await run_source(MyVendorEventsSource, options, checkpoint=3)
    assert run.records == [] and run.checkpoint is None


async def test_a_transient_failure_is_retried(emulator, options):
    emulator.add_events(3)
    emulator.throttle_next(retry_after=0)
    run = await run_source(MyVendorEventsSource, options)
    assert len(run.records) == 3


async def test_a_lasting_outage_fails_the_run(emulator, options):
    emulator.fail_next(5, status=503)
    with pytest.raises(RetryableError, match="503"):
        await run_source(MyVendorEventsSource, options)


async def test_a_wrong_key_is_an_auth_error(options):
    with pytest.raises(AuthError):
        await run_source(MyVendorEventsSource, {**options, "api_key": "wrong"})


def test_connectord_check_explains_a_bad_option():
    with pytest.raises(ConfigError) as caught:
        validate_config(
            """
[connectors.export]
schedule = "every 15m"
source = { type = "myvendor.events", api_key = "k", page_size = 5000 }
destination = { type = "warehouse" }
"""
        )
    (issue,) = caught.value.issues
    assert issue.path[-1] == "page_size"
    assert issue.message == "expected less than or equal to 1000"
    assert issue.line == 4
