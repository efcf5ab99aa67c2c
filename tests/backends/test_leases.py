"""Leases on the database's clock, and epochs as fencing tokens."""

from __future__ import annotations

import asyncio

import pytest
from psycopg import AsyncConnection

from connectord.backends import DeadLetter, StaleEpoch, connector_lease
from connectord.backends.leases import fence
from connectord.backends.postgres import PostgresBackend

LEASE = connector_lease("c")


async def test_acquire_renew_expire_steal(backend):
    first = await backend.acquire(LEASE, "node-a", 0.3)
    assert first == 1
    assert await backend.acquire(LEASE, "node-b", 30) is None
    assert await backend.renew(LEASE, "node-a", first, 0.3)
    await asyncio.sleep(0.4)  # node-a paused past its ttl
    assert await backend.holder(LEASE) is None
    second = await backend.acquire(LEASE, "node-b", 30)
    assert second == first + 1
    assert not await backend.renew(LEASE, "node-a", first, 30)  # it must stop working
    await backend.release(LEASE, "node-a", first)  # a late release changes nothing
    assert (await backend.holder(LEASE)).node == "node-b"


async def test_reacquiring_its_own_lease_moves_the_epoch(backend):
    """A restarted process with the same node name fences out its previous incarnation."""
    first = await backend.acquire(LEASE, "node-a", 30)
    again = await backend.acquire(LEASE, "node-a", 30)
    assert again == first + 1
    assert not await backend.renew(LEASE, "node-a", first, 30)


async def test_renewing_after_expiry_works_while_nobody_took_over(backend):
    epoch = await backend.acquire(LEASE, "node-a", 0.1)
    await asyncio.sleep(0.2)
    assert await backend.renew(LEASE, "node-a", epoch, 30)
    assert (await backend.holder(LEASE)).epoch == epoch


async def test_racing_nodes_get_one_epoch(pg_url):
    nodes = [PostgresBackend(pg_url, pool_size=1) for _ in range(5)]
    for n in nodes:
        await n.open()
    try:
        got = await asyncio.gather(
            *(n.acquire(LEASE, f"node-{i}", 30) for i, n in enumerate(nodes))
        )
    finally:
        for n in nodes:
            await n.close()
    assert sorted(got, key=lambda e: e or 0) == [None, None, None, None, 1]


async def snapshot(backend: PostgresBackend) -> tuple:
    return (
        await backend.checkpoint("c"),
        await backend.scan_state("c/src"),
        await backend.dead_letters("c"),
        await backend.counters("c"),
        await backend.run(1),
        [r.id for r in await backend.read_queue("c", 0, 100)],
    )


async def test_a_stale_epoch_changes_nothing(backend):
    old = await backend.acquire(LEASE, "node-a", 0.1)
    run_id = await backend.start_run("c", "scheduled")
    assert run_id == 1
    await backend.enqueue_many([("c", [b"1", b"2"])])
    await backend.commit_pull_batch(
        "c",
        epoch=old,
        checkpoint={"page": 1},
        state_namespace="c/src",
        state={"k": 1},
        dead=[],
        delivered=2,
        received=2,
        run_id=run_id,
    )
    await asyncio.sleep(0.2)
    assert await backend.acquire(LEASE, "node-b", 30) == old + 1
    before = await snapshot(backend)
    rows = await backend.read_queue("c", 0, 10)
    with pytest.raises(StaleEpoch):
        await backend.commit_pull_batch(
            "c",
            epoch=old,
            checkpoint={"page": 2},
            state_namespace="c/src",
            state={"k": 2},
            dead=[DeadLetter("c", b"{}", "bad")],
            delivered=5,
            received=6,
            run_id=run_id,
        )
    with pytest.raises(StaleEpoch):
        await backend.complete(
            "c", [r.id for r in rows], [DeadLetter("c", b"{}", "bad")], 1, epoch=old
        )
    assert await snapshot(backend) == before
    # The new holder's epoch works.
    assert await backend.complete("c", [r.id for r in rows], [], 2, epoch=old + 1) == 2


async def test_a_steal_waits_for_a_fenced_write_in_flight(backend, pg_url):
    """The fence locks the lease row FOR SHARE: an acquisition cannot slip in between
    the epoch check and the write it guards."""
    epoch = await backend.acquire(LEASE, "node-a", 0.1)
    async with await AsyncConnection.connect(pg_url) as conn:
        await fence(conn, "c", epoch)  # a fenced transaction, still open
        await asyncio.sleep(0.2)  # the lease expires meanwhile
        steal = asyncio.create_task(backend.acquire(LEASE, "node-b", 30))
        await asyncio.sleep(0.3)
        assert not steal.done()
        await conn.commit()
    assert await steal == epoch + 1
