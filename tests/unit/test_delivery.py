"""The delivery pipeline against an in-memory destination: retries, splits, rejects."""

from __future__ import annotations

import asyncio
import time

import pytest
import structlog

from connectord import (
    AuthError,
    DeliveryResult,
    Destination,
    Mapping,
    PermanentError,
    RecordRejected,
    RetryableError,
)
from connectord.backoff import Backoff
from connectord.delivery import BudgetExceeded, Pipeline, Stopping, Throttle


class MemoryDestination(Destination):
    """Accepts records into a list; a script of outcomes can be queued per call."""

    type = "memory"
    max_batch_size = 4

    def __init__(self, script=()):
        self.script = list(script)
        self.calls: list[list[dict]] = []
        self.accepted: list[dict] = []

    async def send(self, records):
        self.calls.append(list(records))
        if self.script:
            outcome = self.script.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            if callable(outcome):
                return outcome(records, self)
        poisoned = [r for r in records if r.get("properties", {}).get("poison")]
        if poisoned:
            raise PermanentError("HTTP 400: poisoned record")
        self.accepted.extend(records)
        return None


class Upper(Mapping):
    type = "upper"

    def __init__(self):
        pass

    def map(self, record):
        if record.get("event") == "reject-me":
            raise RecordRejected("not wanted")
        if record.get("event") == "crash":
            raise ZeroDivisionError("boom")
        if record.get("event") == "drop":
            return None
        if record.get("event") == "split":
            return [{**record, "event": "A"}, {**record, "event": "B"}]
        return {**record, "event": record["event"].upper()}


def track(i, **props):
    return {
        "type": "track",
        "userId": f"u{i}",
        "event": f"e{i}",
        "messageId": f"m{i}",
        "properties": props,
    }


def pipeline(destination, mappings=(), stop=None, initial=0.01):
    stop = stop or asyncio.Event()
    throttle = Throttle(Backoff(initial, 0.05), stop)
    return Pipeline("test", mappings, destination, throttle=throttle, log=structlog.get_logger())


async def test_batches_are_split_to_the_destination_limit():
    destination = MemoryDestination()
    outcome = await pipeline(destination).process([track(i) for i in range(10)])
    assert outcome.delivered == 10 and not outcome.dead
    assert [len(c) for c in destination.calls] == [4, 4, 2]


async def test_transient_errors_are_retried_until_accepted():
    destination = MemoryDestination([RetryableError("503"), RetryableError("timeout"), None])
    outcome = await pipeline(destination).process([track(1)])
    assert outcome.delivered == 1
    assert len(destination.calls) == 3


async def test_retry_after_is_honoured():
    destination = MemoryDestination([RetryableError("429", retry_after=0.3), None])
    started = time.monotonic()
    await pipeline(destination).process([track(1)])
    assert time.monotonic() - started >= 0.3


async def test_permanent_batch_errors_isolate_the_bad_records():
    destination = MemoryDestination()
    records = [track(i) for i in range(4)]
    records[2] = track(2, poison=True)
    outcome = await pipeline(destination).process(records)
    assert outcome.delivered == 3
    assert [d.reason for d in outcome.dead] == ["HTTP 400: poisoned record"]
    assert b'"m2"' in outcome.dead[0].record
    assert sorted(r["messageId"] for r in destination.accepted) == ["m0", "m1", "m3"]


async def test_per_record_results():
    def partial(records, destination):
        destination.accepted.append(records[0])
        return DeliveryResult(rejected={1: "bad email"}, retry={2})

    destination = MemoryDestination([partial])
    outcome = await pipeline(destination).process([track(0), track(1), track(2)])
    assert outcome.delivered == 2
    assert [d.reason for d in outcome.dead] == ["bad email"]
    assert destination.calls[1] == [track(2)], "only the record to retry is sent again"


async def test_unexpected_exceptions_are_treated_as_permanent_and_isolated():
    def crash_on_poison(records, destination):
        if any(r["properties"].get("poison") for r in records):
            raise KeyError("vendor surprise")
        destination.accepted.extend(records)

    destination = MemoryDestination([crash_on_poison] * 10)
    outcome = await pipeline(destination).process([track(0), track(1, poison=True)])
    assert outcome.delivered == 1
    assert "destination error: KeyError" in outcome.dead[0].reason


async def test_mappings_reject_drop_and_fan_out():
    destination = MemoryDestination()
    records = [
        track(0),
        {**track(1), "event": "reject-me"},
        {**track(2), "event": "drop"},
        {**track(3), "event": "split"},
        {**track(4), "event": "crash"},
    ]
    outcome = await pipeline(destination, [Upper()]).process(records)
    assert [r["event"] for r in destination.accepted] == ["E0", "A", "B"]
    assert outcome.delivered == 3 and outcome.dropped == 1
    reasons = {d.stage: d.reason for d in outcome.dead}
    assert reasons == {"mapping": reasons["mapping"]}
    assert len(outcome.dead) == 2
    assert any("not wanted" in d.reason for d in outcome.dead)
    assert any("ZeroDivisionError" in d.reason for d in outcome.dead)


async def test_invalid_records_are_dead_lettered_before_mapping():
    destination = MemoryDestination()
    outcome = await pipeline(destination).process(
        [{"type": "track", "userId": "u"}, {"type": "nonsense"}, track(1)]
    )
    assert outcome.delivered == 1
    assert [d.stage for d in outcome.dead] == ["validation", "validation"]
    assert "needs an event name" in outcome.dead[0].reason


async def test_budget_bounds_pull_retries():
    destination = MemoryDestination([RetryableError("down")] * 1000)
    with pytest.raises(BudgetExceeded, match="destination kept failing: down"):
        await pipeline(destination).process([track(1)], budget=0.2)


async def test_stop_interrupts_the_backoff():
    stop = asyncio.Event()
    destination = MemoryDestination([RetryableError("down")] * 1000)
    task = asyncio.create_task(pipeline(destination, stop=stop, initial=30).process([track(1)]))
    await asyncio.sleep(0.1)
    stop.set()
    with pytest.raises(Stopping):
        await asyncio.wait_for(task, 2)


async def test_one_probe_at_a_time_while_failing():
    """During an outage concurrent batches wait behind one probe instead of each retrying."""
    destination = MemoryDestination([RetryableError("down")] * 6)
    shared = pipeline(destination, initial=0.05)
    await asyncio.gather(*(shared.process([track(i)]) for i in range(8)))
    assert len(destination.accepted) == 8
    # 8 first attempts at most, then 1 probe per backoff step, not 8.
    assert len(destination.calls) <= 8 + 6


async def test_auth_errors_back_off_harder():
    throttle = Throttle(Backoff(1.0, 300.0), asyncio.Event())
    transient = throttle.failed(RetryableError("503"))
    throttle.succeeded()
    auth = throttle.failed(AuthError("401"))
    assert auth > transient and throttle.auth_failing


async def test_network_errors_are_retried_not_dead_lettered():
    import aiohttp

    destination = MemoryDestination(
        [aiohttp.ClientConnectionError("refused"), TimeoutError(), ConnectionResetError(), None]
    )
    outcome = await pipeline(destination).process([track(1)])
    assert outcome.delivered == 1 and not outcome.dead
    assert len(destination.calls) == 4
