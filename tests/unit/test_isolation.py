"""A record a destination fails forever with a *retryable* error (a misclassified
vendor answer) is isolated and dead-lettered once the destination is shown to accept
the others; a destination that is down for everyone is only retried."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import structlog

from connectord import Destination, RetryableError
from connectord.backoff import Backoff
from connectord.delivery import BudgetExceeded, Parked, Pipeline, Strikes, Throttle


def track(i: int, poison: bool = False) -> dict:
    return {
        "type": "track",
        "userId": f"u{i}",
        "event": "e",
        "messageId": f"m{i}",
        "properties": {"poison": poison},
    }


class Misclassifying(Destination):
    """Answers 'retry later' for any batch holding a poisoned record (or for all batches
    while ``down``), like a vendor error the plugin wrongly thinks is transient."""

    type = "misclassifying"
    max_batch_size = 100

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.accepted: list[str] = []
        self.calls = 0

    async def send(self, records):
        self.calls += 1
        if self.down or any(r["properties"]["poison"] for r in records):
            raise RetryableError("vendor answered HTTP 500: cannot parse record")
        self.accepted.extend(r["messageId"] for r in records)


def pipeline(destination: Destination, isolate_after: int = 3) -> Pipeline:
    throttle = Throttle(Backoff(0.001, 0.004), asyncio.Event())
    return Pipeline(
        "c",
        [],
        destination,
        throttle=throttle,
        log=structlog.get_logger(),
        isolate_after=isolate_after,
    )


@pytest.mark.parametrize("poisoned", [[0], [7], [3, 12], [0, 1, 2], list(range(0, 40, 5))])
async def test_records_at_fault_are_isolated_and_the_rest_delivered(poisoned):
    destination = Misclassifying()
    records = [track(i, poison=i in poisoned) for i in range(40)]
    outcome = await asyncio.wait_for(pipeline(destination).process(records), 10)
    assert sorted(destination.accepted) == sorted(f"m{i}" for i in range(40) if i not in poisoned)
    assert outcome.delivered == 40 - len(poisoned)
    dead_ids = sorted(orjson.loads(d.record)["messageId"] for d in outcome.dead)
    assert dead_ids == sorted(f"m{i}" for i in poisoned)
    for dead in outcome.dead:
        assert "isolated as the record at fault" in dead.reason
        assert "cannot parse record" in dead.reason


async def test_a_destination_down_for_everyone_is_retried_never_dead_lettered():
    destination = Misclassifying(down=True)
    records = [track(i) for i in range(16)]
    with pytest.raises(BudgetExceeded):
        await pipeline(destination, isolate_after=2).process(records, budget=1.0)
    assert destination.calls > 20, "it kept trying (and split, which costs nothing)"
    assert destination.accepted == []


async def test_an_outage_hands_records_back_instead_of_dead_lettering_them():
    destination = Misclassifying(down=True)
    records = [track(i) for i in range(4)]
    strikes = [Strikes() for _ in records]
    with pytest.raises(Parked) as held:
        await asyncio.wait_for(
            pipeline(destination, isolate_after=2).process(records, strikes=strikes, park=True),
            10,
        )
    assert held.value.unfinished == {0, 1, 2, 3}
    assert held.value.outcome.dead == []
    assert not any(s.at_fault(0.0, 2) for s in strikes), "no evidence against any record"


async def test_a_lone_record_at_fault_is_dead_lettered_once_others_get_through():
    # The record failed alone with nothing else flowing (held back), then the
    # destination accepted other records while it kept failing.
    destination = Misclassifying()
    pipe = pipeline(destination, isolate_after=3)
    strikes = [Strikes()]
    with pytest.raises(Parked):
        await pipe.process([track(0, poison=True)], strikes=strikes, park=True)
    for round_ in range(3):
        await pipe.process([track(100 + round_)])  # other records go through
        try:
            outcome = await pipe.process([track(0, poison=True)], strikes=strikes, park=True)
        except Parked:
            continue
        break
    assert len(outcome.dead) == 1 and strikes[0].alone >= 3
