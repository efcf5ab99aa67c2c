"""Pushwoosh tracking-log days read concurrently (``max_concurrency``), delivered and
checkpointed in day order, over real HTTP against the emulator."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

from connectord.plugins.pushwoosh.source import PushwooshTrackingLog
from connectord.testing import make_context
from tests.plugins.pushwoosh.emulator import PushwooshEmulator

APPLICATION = "ABCDE-12345"
TOKEN = "server-token-for-tests"


def day(days_ago: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days_ago)).isoformat()


async def read_all(source: PushwooshTrackingLog) -> list:
    return [batch async for batch in source.read(None)]


async def test_days_overlap_up_to_the_cap_and_checkpoints_stay_in_order(emulator_server):
    emulator = PushwooshEmulator(application=APPLICATION, api_token=TOKEN, device_token="d")
    url = emulator_server(emulator).url
    for days_ago in range(1, 8):
        at = datetime.combine(datetime.now(UTC).date() - timedelta(days=days_ago), time(10), UTC)
        emulator.add_tracking(at, "TC-1", f"u{days_ago}", f"hw{days_ago}", "sent", "ok")
    options = PushwooshTrackingLog.Options(
        application=APPLICATION,
        api_token=TOKEN,
        base_url=url,
        poll_interval=0.01,
        max_wait=5,
        initial_days=7,
        max_concurrency=3,
    )
    async with make_context() as context:
        source = PushwooshTrackingLog(options, context)
        original = source.client.tracking_log_url
        running = peak = 0

        async def counted(text: str) -> str:  # the real call, with the overlap measured
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                await asyncio.sleep(0.05)
                return await original(text)
            finally:
                running -= 1

        source.client.tracking_log_url = counted
        batches = await read_all(source)
    assert peak == 3
    checkpoints = [b.checkpoint["day"] for b in batches if b.checkpoint]
    assert checkpoints == [day(n) for n in range(7, 0, -1)]
    targets = [r["context"]["device"]["id"] for b in batches for r in b.records]
    assert len(targets) == 7
