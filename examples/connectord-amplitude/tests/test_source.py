"""The Export API source against the emulator over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from connectord import AuthError, PermanentError, RetryableError
from connectord.testing import ConfigError, assert_valid_records, run_source, validate_config

from connectord_amplitude.source import AmplitudeExportSource


def at(hour: int) -> datetime:
    return datetime(2026, 1, 10, hour, tzinfo=UTC)


async def test_reads_hour_by_hour_up_to_the_available_hour(emulator, export_options, fixed_clock):
    emulator.add_exportable(3, hour=at(2))
    emulator.add_exportable(2, hour=at(9))
    emulator.add_exportable(4, hour=at(10))  # not exportable yet at 12:30
    run = await run_source(AmplitudeExportSource, export_options)
    assert len(run.records) == 5
    assert_valid_records(run.records)
    assert run.checkpoint == "20260110T10"
    starts = [r.query["start"] for r in emulator.requests_to("/api/2/export")]
    assert starts == [f"20260110T{h:02d}" for h in range(10)]


async def test_resumes_from_the_checkpoint(emulator, export_options, fixed_clock):
    emulator.add_exportable(2, hour=at(8))
    emulator.add_exportable(1, hour=at(9))
    run = await run_source(AmplitudeExportSource, export_options, checkpoint="20260110T09")
    assert len(run.records) == 1
    assert run.checkpoint == "20260110T10"
    again = await run_source(AmplitudeExportSource, export_options, checkpoint=run.checkpoint)
    assert again.records == [] and again.batches == []


async def test_wider_windows_and_small_batches(emulator, export_options, fixed_clock):
    emulator.add_exportable(7, hour=at(1))
    options = {**export_options, "hours_per_request": 6, "batch_size": 3}
    run = await run_source(AmplitudeExportSource, options)
    assert [len(b.records) for b in run.batches] == [3, 3, 1, 0, 0]
    assert run.checkpoints == [None, None, None, "20260110T06", "20260110T10"]
    windows = [(r.query["start"], r.query["end"]) for r in emulator.requests]
    assert windows == [("20260110T00", "20260110T05"), ("20260110T06", "20260110T09")]


async def test_event_type_filter(emulator, export_options, fixed_clock):
    emulator.add_exportable(2, hour=at(3))
    emulator.add_exportable(1, hour=at(3), event_type="$identify")
    run = await run_source(AmplitudeExportSource, {**export_options, "event_types": ["$identify"]})
    assert [r["type"] for r in run.records] == ["identify"]


async def test_transient_errors_are_retried_and_lasting_ones_fail_the_run(
    emulator, export_options, fixed_clock
):
    emulator.add_exportable(1, hour=at(0))
    emulator.fail_next(status=504)
    assert len((await run_source(AmplitudeExportSource, export_options)).records) == 1
    emulator.fail_next(5, status=503)
    with pytest.raises(RetryableError):
        await run_source(AmplitudeExportSource, export_options)


async def test_a_400_too_large_and_wrong_keys(emulator, export_options, fixed_clock):
    emulator.fail_next(status=400, body=b"too large")
    with pytest.raises(PermanentError, match="lower hours_per_request"):
        await run_source(AmplitudeExportSource, export_options)
    with pytest.raises(AuthError):
        await run_source(AmplitudeExportSource, {**export_options, "secret_key": "wrong"})


def test_start_must_be_an_hour():
    with pytest.raises(ConfigError) as caught:
        validate_config(
            """
[connectors.export]
schedule = "every 1h"
source = { type = "amplitude.export", api_key = "k", secret_key = "s", start = "2026-01-10" }
destination = { type = "warehouse" }
"""
        )
    (issue,) = caught.value.issues
    assert issue.path[-1] == "start"
    assert "YYYYMMDDTHH" in issue.message
