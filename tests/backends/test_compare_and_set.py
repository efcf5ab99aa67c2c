"""`compare_and_set` under concurrent writers: read-modify-write loses no update."""

from __future__ import annotations

import asyncio

from connectord.backends.postgres import PostgresBackend


async def test_concurrent_read_modify_write_loses_no_update(pg_url):
    nodes = [PostgresBackend(pg_url, pool_size=2) for _ in range(4)]
    for n in nodes:
        await n.open()
    conflicts = 0

    async def increment(store: PostgresBackend, times: int) -> None:
        nonlocal conflicts
        for _ in range(times):
            while True:
                current = (await store.get_state("relay", ["tags"])).get("tags")
                new = {"count": (current or {}).get("count", 0) + 1, "by": id(store)}
                if await store.compare_and_set("relay", "tags", current, new):
                    break
                conflicts += 1

    try:
        await asyncio.gather(*(increment(n, 25) for n in nodes for _ in range(2)))
        final = await nodes[0].get_state("relay", ["tags"])
    finally:
        for n in nodes:
            await n.close()
    assert final["tags"]["count"] == 4 * 2 * 25
    assert conflicts > 0  # the writers did race
