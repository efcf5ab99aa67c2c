"""The out-of-order commit trap, reproduced on raw SQL and closed in `PostgresBackend`.

With two writers, PostgreSQL commits identity values out of id order. A reader that
keeps ``id > cursor`` and a range delete then loses a record that was never delivered.
"""

from __future__ import annotations

import asyncio
import random

import orjson
import psycopg
from psycopg import AsyncConnection

from connectord.backends import connector_lease
from connectord.backends.postgres import PostgresBackend


async def test_the_trap_is_real_without_the_queue_lock(backend, pg_url):
    """Control: plain inserts from two connections; the cursor reader skips id N."""
    async with (
        await AsyncConnection.connect(pg_url) as writer_a,
        await AsyncConnection.connect(pg_url, autocommit=True) as writer_b,
        await AsyncConnection.connect(pg_url, autocommit=True) as reader,
    ):
        insert = "INSERT INTO queue (connector, body, enqueued_at) VALUES ('t', %s, 0) RETURNING id"
        low = (await (await writer_a.execute(insert, [b"A"])).fetchone())[0]  # open
        high = (await (await writer_b.execute(insert, [b"B"])).fetchone())[0]  # committed
        assert low < high
        seen = await (
            await reader.execute(
                "SELECT id FROM queue WHERE connector = 't' AND id > 0 ORDER BY id"
            )
        ).fetchall()
        cursor = seen[-1][0]
        await writer_a.commit()
        later = await (
            await reader.execute(
                "SELECT id FROM queue WHERE connector = 't' AND id > %s ORDER BY id", [cursor]
            )
        ).fetchall()
        # The lower id committed after the reader moved past it: never read again.
        assert seen == [(high,)] and later == []
        # And a range delete of what was "read" drops it unseen.
        deleted = await reader.execute(
            "DELETE FROM queue WHERE connector = 't' AND id BETWEEN %s AND %s RETURNING id",
            [low, cursor],
        )
        assert sorted(r[0] for r in await deleted.fetchall()) == [low, high]


async def test_a_stalled_writer_holds_back_the_next_writer_not_the_reader(pg_url):
    """Writer A draws ids and stalls before commit (a third connection holds the
    connector's counters row); writer B of the same connector must wait before drawing
    ids; the reader meanwhile sees neither; afterwards it reads both, in order, and the
    cursor never passed a row that committed later."""
    a, b, r = (PostgresBackend(pg_url, pool_size=1) for _ in range(3))
    for s in (a, b, r):
        await s.open()
    try:
        await r.enqueue_many([("t", [b"0"])])  # counters row exists; cursor starts past it
        cursor = (await r.read_queue("t", 0, 10))[-1].id
        async with await AsyncConnection.connect(pg_url) as blocker:
            await blocker.execute("SELECT 1 FROM counters WHERE connector = 't' FOR UPDATE")
            task_a = asyncio.create_task(a.enqueue_many([("t", [b"A1", b"A2"])]))
            await wait_until_blocked(pg_url, 1)
            task_b = asyncio.create_task(b.enqueue_many([("t", [b"B1"])]))
            await wait_until_blocked(pg_url, 2)
            assert not task_a.done() and not task_b.done()
            # B waits before drawing an id: only A's two ids are drawn so far.
            assert await last_drawn_id(pg_url) == cursor + 2
            assert await r.read_queue("t", cursor, 10) == []
            await blocker.rollback()
        await asyncio.gather(task_a, task_b)
        rows = await r.read_queue("t", cursor, 10)
        assert [x.body for x in rows] == [b"A1", b"A2", b"B1"]
        assert [x.id for x in rows] == sorted(x.id for x in rows)
    finally:
        for s in (a, b, r):
            await s.close()


async def last_drawn_id(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        return conn.execute(
            "SELECT last_value FROM pg_sequences WHERE sequencename = "
            "(SELECT pg_get_serial_sequence('queue', 'id')::regclass::text)"
        ).fetchone()[0]


async def wait_until_blocked(pg_url: str, count: int) -> None:
    """Until ``count`` sessions of this database wait for a lock."""
    for _ in range(200):
        with psycopg.connect(pg_url) as conn:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchone()[0]
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} sessions never blocked")


async def test_two_concurrent_writers_and_a_cursor_reader_lose_nothing(pg_url):
    """Two nodes enqueue in many small transactions while a third drains with a cursor
    and completes by id: every record arrives, the queue ends empty."""
    writers = [PostgresBackend(pg_url, pool_size=2) for _ in range(2)]
    reader = PostgresBackend(pg_url, pool_size=2)
    for s in (*writers, reader):
        await s.open()
    epoch = await reader.acquire(connector_lease("t"), "reader", 60)
    sent: list[bytes] = []
    done = asyncio.Event()

    async def write(n: int, store: PostgresBackend) -> None:
        rng = random.Random(n)
        for i in range(60):
            bodies = [orjson.dumps([n, i, j]) for j in range(rng.randint(1, 5))]
            sent.extend(bodies)
            await store.enqueue_many([("t", bodies), ("other", [b"x"])])
            await asyncio.sleep(rng.random() * 0.003)

    async def read() -> list[bytes]:
        got: list[bytes] = []
        cursor = 0
        while True:
            finished = done.is_set()
            rows = await reader.read_queue("t", cursor, 7)
            if rows:
                cursor = rows[-1].id
                got.extend(r.body for r in rows)
                await reader.complete("t", [r.id for r in rows], [], len(rows), epoch=epoch)
            elif finished:
                return got
            else:
                await asyncio.sleep(0.001)

    try:
        reading = asyncio.create_task(read())
        await asyncio.gather(*(write(n, s) for n, s in enumerate(writers)))
        done.set()
        got = await reading
        assert sorted(got) == sorted(sent) and len(got) == len(set(got))
        assert await reader.queue_depth("t") == 0
        counters = await reader.counters("t")
        assert counters["received"] == counters["delivered"] == len(sent)
    finally:
        for s in (*writers, reader):
            await s.close()


async def test_multi_connector_enqueues_in_opposite_orders_do_not_deadlock(pg_url):
    """Enqueues naming the same connectors in opposite orders, new connectors included,
    neither deadlock nor lose records."""
    nodes = [PostgresBackend(pg_url, pool_size=2) for _ in range(2)]
    for n in nodes:
        await n.open()

    async def write(store: PostgresBackend, names: list[str]) -> None:
        for i in range(40):
            await store.enqueue_many([(f"{name}{i // 10}", [b"r"]) for name in names])

    try:
        await asyncio.wait_for(
            asyncio.gather(write(nodes[0], ["a", "b", "c"]), write(nodes[1], ["c", "b", "a"])),
            timeout=60,
        )
        depths = await nodes[0].queue_depth()
    finally:
        for n in nodes:
            await n.close()
    assert depths == {f"{name}{k}": 20 for name in "abc" for k in range(4)}
