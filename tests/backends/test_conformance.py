"""One suite, both backends: every `StateBackend` method observed the same way.

Each test runs on a fresh SQLite file and on a fresh PostgreSQL database, so ids (which
both number from 1) are compared by value. Concurrency tests open several backends on
the same state, as several daemons (or worker processes) would.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from connectord.backends import DeadLetter, StaleEpoch, StateBackend, connector_lease
from connectord.backends.factory import backend_from_url

LEASE = connector_lease("c")
Opener = Callable[[], Awaitable[StateBackend]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def opener(request, tmp_path) -> AsyncIterator[Opener]:
    """Opens backends on one shared state (a file, or a database); closes them after."""
    if request.param == "sqlite":
        state = str(tmp_path / "state.db")
    else:
        state = request.getfixturevalue("pg_url")
    opened: list[StateBackend] = []

    async def open_one() -> StateBackend:
        backend = backend_from_url(state, pool_size=2)
        await backend.open()
        opened.append(backend)
        return backend

    try:
        yield open_one
    finally:
        for backend in opened:
            await backend.close()


@pytest.fixture
async def db(opener: Opener) -> StateBackend:
    return await opener()


def body(n: int) -> bytes:
    return orjson.dumps({"n": n})


async def test_it_is_a_state_backend(db):
    assert isinstance(db, StateBackend)


async def test_queue_reads_in_order_and_completes_exact_ids(db):
    await db.enqueue_many([("c", [body(1), body(2), body(3)]), ("d", [body(9)])])
    await db.enqueue_many([("c", [body(4)]), ("empty", [])])
    rows = await db.read_queue("c", 0, 10)
    assert [(r.id, r.body) for r in rows] == [
        (1, body(1)),
        (2, body(2)),
        (3, body(3)),
        (5, body(4)),
    ]
    assert [r.id for r in await db.read_queue("c", 2, 2)] == [3, 5]
    assert await db.queue_depth("c") == 4
    assert await db.queue_depth() == {"c": 4, "d": 1}
    epoch = await db.acquire(LEASE, "node-a", 30)
    # Not a range: 2 stays although it lies between 1 and 3; unknown ids are ignored.
    dead = [DeadLetter("c", body(3), "rejected", "destination")]
    assert await db.complete("c", [1, 3, 99], dead, 1, epoch=epoch) == 2
    assert [r.id for r in await db.read_queue("c", 0, 10)] == [2, 5]
    counters = await db.counters("c")
    assert (counters["received"], counters["delivered"], counters["rejected"]) == (4, 1, 1)
    assert counters["last_received_at"] and counters["last_delivered_at"]
    assert await db.counters("nobody") == {
        "received": 0,
        "delivered": 0,
        "rejected": 0,
        "last_received_at": None,
        "last_delivered_at": None,
    }


async def test_concurrent_enqueues_are_all_durable(db):
    await asyncio.gather(*(db.enqueue_many([("c", [body(i)])]) for i in range(50)))
    bodies = sorted(orjson.loads(r.body)["n"] for r in await db.read_queue("c", 0, 100))
    assert bodies == list(range(50))


async def test_dead_letters_add_list_replay_purge(db):
    dead = [DeadLetter("c", body(i), f"invalid {i}", "ingest") for i in range(5)]
    await db.add_dead_letters("c", dead)
    assert await db.dead_letter_count("c") == 5
    assert await db.dead_letter_count() == {"c": 5}
    listed = await db.dead_letters("c", limit=2, after=1)
    assert [(d["id"], d["record"], d["reason"], d["stage"]) for d in listed] == [
        (2, {"n": 1}, "invalid 1", "ingest"),
        (3, {"n": 2}, "invalid 2", "ingest"),
    ]
    assert isinstance(listed[0]["created_at"], float)
    assert await db.replay_dead_letters("c", [2, 4, 77]) == 2
    assert [r.body for r in await db.read_queue("c", 0, 10)] == [body(1), body(3)]
    assert await db.purge_dead_letters("c", [1]) == 1
    assert await db.replay_dead_letters("c") == 2
    assert await db.purge_dead_letters("c") == 0
    assert await db.dead_letter_count("c") == 0
    counters = await db.counters("c")
    assert (counters["received"], counters["rejected"]) == (5, 1)  # a purge stays rejected


async def test_checkpoints_and_pull_batches(db):
    epoch = await db.acquire(LEASE, "node-a", 30)
    run_id = await db.start_run("c", "scheduled")
    assert await db.checkpoint("c") is None
    await db.commit_pull_batch(
        "c",
        epoch=epoch,
        checkpoint={"cursor": "p2"},
        state_namespace="c/source",
        state={"seen": [1, 2], "gone": None},
        dead=[DeadLetter("c", body(0), "unmapped", "mapping")],
        delivered=3,
        received=4,
        run_id=run_id,
    )
    await db.commit_pull_batch(
        "c",
        epoch=epoch,
        checkpoint=None,  # no checkpoint: the old one stays
        state_namespace="c/source",
        state=None,
        dead=[],
        delivered=1,
        received=1,
        run_id=run_id,
    )
    assert await db.checkpoint("c") == {"cursor": "p2"}
    assert await db.checkpoints() == {"c": {"cursor": "p2"}}
    assert await db.scan_state("c/source") == {"seen": [1, 2]}
    run = await db.run(run_id)
    assert (run.records_in, run.records_out, run.rejected) == (5, 4, 1)
    assert (await db.dead_letters("c"))[0]["stage"] == "mapping"
    await db.reset_checkpoint("c")
    assert await db.checkpoint("c") is None


async def test_runs(db):
    first = await db.start_run("c", "scheduled")
    second = await db.start_run("c", "manual")
    await db.finish_run(first, status="succeeded", records_in=3, records_out=2, rejected=1)
    assert await db.abandon_running("c") == 1
    assert await db.abandon_running("c") == 0
    latest = await db.last_runs("c", limit=5)
    assert [(r.id, r.kind, r.status) for r in latest] == [
        (second, "manual", "interrupted"),
        (first, "scheduled", "succeeded"),
    ]
    done = await db.run(first)
    assert (done.records_in, done.records_out, done.rejected, done.error) == (3, 2, 1, None)
    assert await db.last_success("c") == done.ended_at
    assert await db.last_success("other") is None
    assert await db.run(999) is None


async def test_run_requests(db):
    assert not await db.pending_run_requests(["c"])
    request = await db.request_run("c", full_refresh=True)
    other = await db.request_run("d")
    assert await db.pending_run_requests(["c", "x"])
    assert await db.take_run_requests(["c", "x"]) == [(request, "c", True)]
    assert await db.take_run_requests(["c"]) == []
    run_id = await db.start_run("c", "manual")
    await db.serve_run_request(request, run_id)
    served = await db.run_request(request)
    assert (served["connector"], served["run_id"]) == ("c", run_id)
    assert served["taken_at"] >= served["requested_at"]
    assert (await db.run_request(other))["taken_at"] is None
    assert await db.run_request(999) is None


async def test_plugin_state(db):
    await db.set_state("c/src", {"a:1": {"x": 1}, "a:2": [1], "b:1": "s"})
    assert await db.get_state("c/src", ["a:1", "b:1", "missing"]) == {"a:1": {"x": 1}, "b:1": "s"}
    assert await db.scan_state("c/src", "a:") == {"a:1": {"x": 1}, "a:2": [1]}
    await db.set_state("c/src", {"a:1": None, "b:1": 2})
    assert await db.scan_state("c/src") == {"a:2": [1], "b:1": 2}
    await db.set_state("c/dst", {"k": 1})
    await db.set_state("d/src", {"k": 1})
    assert await db.clear_state("c/") == 3
    assert await db.scan_state("d/src") == {"k": 1}


async def test_compare_and_set_semantics(db):
    assert await db.compare_and_set("ns", "k", None, None)  # absent, stays absent
    assert await db.compare_and_set("ns", "k", None, {"b": 1, "a": 2})
    assert not await db.compare_and_set("ns", "k", None, {"other": 1})
    assert not await db.compare_and_set("ns", "k", {"a": 3}, 1)
    assert await db.compare_and_set("ns", "k", {"a": 2, "b": 1}, [1])  # key order is no matter
    assert await db.get_state("ns", ["k"]) == {"k": [1]}
    assert not await db.compare_and_set("ns", "k", None, None)  # present
    assert await db.compare_and_set("ns", "k", [1], None)
    assert await db.get_state("ns", ["k"]) == {}


async def test_compare_and_set_under_concurrent_writers(opener):
    nodes = [await opener() for _ in range(3)]
    conflicts = 0

    async def increment(store: StateBackend, times: int) -> None:
        nonlocal conflicts
        for _ in range(times):
            while True:
                current = (await store.get_state("relay", ["tags"])).get("tags")
                new = {"count": (current or {}).get("count", 0) + 1}
                if await store.compare_and_set("relay", "tags", current, new):
                    break
                conflicts += 1
                await asyncio.sleep(random.random() / 1000)

    await asyncio.gather(*(increment(n, 20) for n in nodes for _ in range(2)))
    assert (await nodes[0].get_state("relay", ["tags"]))["tags"]["count"] == 3 * 2 * 20
    assert conflicts > 0  # the writers did race


async def test_leases_expire_and_move_with_a_higher_epoch(db):
    first = await db.acquire(LEASE, "node-a", 0.3)
    assert first == 1
    assert await db.acquire(LEASE, "node-b", 30) is None
    assert await db.renew(LEASE, "node-a", first, 0.3)
    held = await db.holder(LEASE)
    assert (held.name, held.node, held.epoch) == (LEASE, "node-a", 1)
    assert 0 < held.expires_in <= 0.3
    await asyncio.sleep(0.4)
    assert await db.holder(LEASE) is None
    second = await db.acquire(LEASE, "node-b", 30)
    assert second == first + 1
    assert not await db.renew(LEASE, "node-a", first, 30)
    await db.release(LEASE, "node-a", first)  # a late release changes nothing
    assert (await db.holder(LEASE)).node == "node-b"
    await db.release(LEASE, "node-b", second)
    assert await db.holder(LEASE) is None
    assert await db.acquire(LEASE, "node-a", 30) == second + 1  # the epoch never repeats


async def test_reacquiring_and_renewing_after_expiry(db):
    first = await db.acquire(LEASE, "node-a", 0.1)
    again = await db.acquire(LEASE, "node-a", 0.1)
    assert again == first + 1
    assert not await db.renew(LEASE, "node-a", first, 30)
    await asyncio.sleep(0.2)
    assert await db.renew(LEASE, "node-a", again, 30)  # nobody took it meanwhile
    assert (await db.holder(LEASE)).epoch == again


async def test_racing_nodes_get_one_epoch(opener):
    nodes = [await opener() for _ in range(4)]
    got = await asyncio.gather(*(n.acquire(LEASE, f"node-{i}", 30) for i, n in enumerate(nodes)))
    assert sorted(got, key=lambda e: e or 0) == [None, None, None, 1]


async def test_heartbeats(db):
    await db.heartbeat("node-b", 30)
    await db.heartbeat("node-a", 0.2)
    assert await db.live_nodes() == ["node-a", "node-b"]
    await asyncio.sleep(0.3)
    assert await db.live_nodes() == ["node-b"]
    await db.heartbeat("node-a", 30)
    assert await db.live_nodes() == ["node-a", "node-b"]


async def test_a_node_that_leaves_is_not_live_until_its_next_heartbeat(db):
    await db.heartbeat("node-a", 30)
    await db.heartbeat("node-b", 30)
    await db.leave("node-a")
    assert await db.live_nodes() == ["node-b"]
    await db.leave("node-a")  # leaving twice is harmless
    await db.heartbeat("node-a", 30)
    assert await db.live_nodes() == ["node-a", "node-b"]


async def test_leaving_spares_a_newer_incarnation_of_the_same_node(opener):
    """A worker restarted under a fixed node name heartbeats while the old one still
    stops: the old one leaving must not take the new one out of the live nodes."""
    old, new = await opener(), await opener()
    await old.heartbeat("w/1", 30)
    await asyncio.sleep(0.01)
    await new.heartbeat("w/1", 30)
    await old.leave("w/1")
    assert await new.live_nodes() == ["w/1"]
    await new.leave("w/1")
    assert await new.live_nodes() == []


async def snapshot(db: StateBackend) -> tuple:
    return (
        await db.checkpoint("c"),
        await db.scan_state("c/src"),
        await db.dead_letters("c"),
        await db.counters("c"),
        await db.run(1),
        [r.id for r in await db.read_queue("c", 0, 100)],
    )


async def test_a_stale_epoch_changes_nothing(db):
    old = await db.acquire(LEASE, "node-a", 0.1)
    run_id = await db.start_run("c", "scheduled")
    await db.enqueue_many([("c", [body(1), body(2)])])
    batch = {"state_namespace": "c/src", "dead": [], "delivered": 2, "received": 2}
    await db.commit_pull_batch("c", epoch=old, checkpoint={"p": 1}, state={"k": 1}, **batch)
    await asyncio.sleep(0.2)
    assert await db.acquire(LEASE, "node-b", 30) == old + 1
    before = await snapshot(db)
    ids = [r.id for r in await db.read_queue("c", 0, 10)]
    dead = [DeadLetter("c", b"{}", "bad")]
    with pytest.raises(StaleEpoch):
        await db.commit_pull_batch(
            "c", epoch=old, checkpoint={"p": 2}, state={"k": 2}, run_id=run_id, **batch
        )
    with pytest.raises(StaleEpoch):
        await db.complete("c", ids, dead, 1, epoch=old)
    with pytest.raises(StaleEpoch):  # an epoch nobody ever held
        await db.complete("c", ids, [], 2, epoch=old + 5)
    with pytest.raises(StaleEpoch):  # another connector's lease does not count
        await db.complete("other", [], [], 0, epoch=old + 1)
    assert await snapshot(db) == before
    assert await db.complete("c", ids, [], 2, epoch=old + 1) == 2


async def test_the_queue_never_loses_an_id(opener):
    """Writers on several backends enqueue while one holder drains with a cursor and
    completes by id; at the end every record was delivered exactly once."""
    writers = [await opener() for _ in range(3)]
    reader = await opener()
    epoch = await reader.acquire(LEASE, "drainer", 60)
    total, per_batch = 3 * 40, 3
    done = asyncio.Event()

    async def write(store: StateBackend, index: int) -> None:
        for n in range(index * 40, (index + 1) * 40, per_batch):
            top = min(n + per_batch, (index + 1) * 40)
            await store.enqueue_many([("c", [body(i) for i in range(n, top)])])
            await asyncio.sleep(random.random() / 500)

    async def drain() -> list[int]:
        seen: list[int] = []
        cursor = 0
        while not (done.is_set() and await reader.queue_depth("c") == 0):
            rows = await reader.read_queue("c", cursor, 7)
            if not rows:
                await asyncio.sleep(0.002)
                continue
            assert all(r.id > cursor for r in rows)
            cursor = rows[-1].id
            seen.extend(orjson.loads(r.body)["n"] for r in rows)
            assert await reader.complete(
                "c", [r.id for r in rows], [], len(rows), epoch=epoch
            ) == len(rows)
        return seen

    drainer = asyncio.create_task(drain())
    await asyncio.gather(*(write(w, i) for i, w in enumerate(writers)))
    done.set()
    seen = await asyncio.wait_for(drainer, 60)
    assert sorted(seen) == list(range(total))
    assert (await reader.counters("c"))["delivered"] == total


async def test_concurrent_enqueues_share_transactions_and_all_land(db):
    """Group commit: 60 requests at once cost a few transactions, not 60, and each
    caller returns only once its own records are committed."""
    groups: list[int] = []
    write = db._group._write

    async def counting(items):
        groups.append(len(items))
        await write(items)

    db._group._write = counting
    await asyncio.gather(*(db.enqueue_many([("g", [body(n)])]) for n in range(60)))
    assert sum(groups) == 60 and len(groups) <= 5, groups
    rows = await db.read_queue("g", 0, 100)
    assert sorted(orjson.loads(r.body)["n"] for r in rows) == list(range(60))
