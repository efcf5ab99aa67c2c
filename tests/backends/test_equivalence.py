"""PostgresBackend and the SQLite `Store` agree on random operation sequences.

Queue and dead letters only: what a user can observe (depths, the bodies read, dead
letters with their reasons, counters) must be the same whichever backend keeps them.
Ids differ between the two databases, so they are compared by position, never by value.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectord.backends import DeadLetter, connector_lease
from connectord.backends.postgres import PostgresBackend
from connectord.state import Store

CONNECTORS = 2
enqueue = st.tuples(st.just("enqueue"), st.integers(0, CONNECTORS - 1), st.integers(1, 6))
deliver = st.tuples(
    st.just("deliver"), st.integers(0, CONNECTORS - 1), st.integers(1, 8), st.integers(0, 255)
)
pick = st.one_of(st.none(), st.lists(st.integers(0, 7), max_size=4))
replay = st.tuples(st.just("replay"), st.integers(0, CONNECTORS - 1), pick)
purge = st.tuples(st.just("purge"), st.integers(0, CONNECTORS - 1), pick)
refuse = st.tuples(st.just("refuse"), st.integers(0, CONNECTORS - 1), st.integers(1, 3))
operations = st.lists(st.one_of(enqueue, deliver, replay, purge, refuse), min_size=1, max_size=25)


class Pair:
    """The same operations on both backends; each step returns what each observed."""

    def __init__(self, pg: PostgresBackend, sqlite: Store, prefix: str) -> None:
        self.pg, self.sqlite, self.prefix = pg, sqlite, prefix
        self.serial = 0
        self.epochs: dict[str, int] = {}

    def name(self, index: int) -> str:
        return f"{self.prefix}-{index}"

    async def step(self, op: tuple) -> tuple:
        kind, connector = op[0], self.name(op[1])
        if kind == "enqueue":
            bodies = [orjson.dumps({"n": self.serial + i}) for i in range(op[2])]
            self.serial += op[2]
            await self.pg.enqueue_many([(connector, bodies)])
            self.sqlite.enqueue_many([(connector, bodies)])
            return (), ()
        if kind == "refuse":  # dead letters straight from ingest
            dead = [DeadLetter(connector, orjson.dumps({"r": i}), "invalid") for i in range(op[2])]
            await self.pg.add_dead_letters(connector, dead)
            self.sqlite.add_dead_letters(connector, dead)
            return (), ()
        if kind == "deliver":
            return await self._deliver(connector, op[2], op[3])
        return await self._dead_op(kind, connector, op[2])

    async def _deliver(self, connector: str, limit: int, mask: int) -> tuple:
        pg_rows = await self.pg.read_queue(connector, 0, limit)
        sq_rows = self.sqlite.read_queue(connector, 0, limit)
        if not pg_rows or not sq_rows:
            return [r.body for r in pg_rows], [r.body for r in sq_rows]
        dead = [
            DeadLetter(connector, r.body, f"rejected {i}")
            for i, r in enumerate(pg_rows)
            if mask >> i & 1
        ]
        delivered = len(pg_rows) - len(dead)
        if connector not in self.epochs:
            self.epochs[connector] = await self.pg.acquire(connector_lease(connector), "n", 60)
        await self.pg.complete(
            connector, [r.id for r in pg_rows], dead, delivered, epoch=self.epochs[connector]
        )
        self.sqlite.complete(connector, sq_rows[0].id, sq_rows[-1].id, dead, delivered)
        return [r.body for r in pg_rows], [r.body for r in sq_rows]

    async def _dead_op(self, kind: str, connector: str, positions: list[int] | None) -> tuple:
        pg_ids = [d["id"] for d in await self.pg.dead_letters(connector)]
        sq_ids = [d["id"] for d in self.sqlite.dead_letters(connector)]
        chosen = None if positions is None else [p for p in positions if p < len(pg_ids)]
        pg_pick = None if chosen is None else [pg_ids[p] for p in chosen]
        sq_pick = None if chosen is None else [sq_ids[p] for p in chosen if p < len(sq_ids)]
        if kind == "replay":
            return (
                await self.pg.replay_dead_letters(connector, pg_pick),
                self.sqlite.replay_dead_letters(connector, sq_pick),
            )
        return (
            await self.pg.purge_dead_letters(connector, pg_pick),
            self.sqlite.purge_dead_letters(connector, sq_pick),
        )

    async def observe(self) -> tuple[list, list]:
        pg, sq = [], []
        for index in range(CONNECTORS):
            c = self.name(index)
            pg.append(
                (
                    await self.pg.queue_depth(c),
                    [r.body for r in await self.pg.read_queue(c, 0, 1000)],
                    await self.pg.dead_letter_count(c),
                    [(d["record"], d["reason"]) for d in await self.pg.dead_letters(c)],
                    _counts(await self.pg.counters(c)),
                )
            )
            sq.append(
                (
                    self.sqlite.queue_depth(c),
                    [r.body for r in self.sqlite.read_queue(c, 0, 1000)],
                    self.sqlite.dead_letter_count(c),
                    [(d["record"], d["reason"]) for d in self.sqlite.dead_letters(c)],
                    _counts(self.sqlite.counters(c)),
                )
            )
        return pg, sq


def _counts(counters: dict) -> tuple:
    return counters["received"], counters["delivered"], counters["rejected"]


async def run_both(pg_url: str, ops: list[tuple]) -> None:
    pg = PostgresBackend(pg_url, pool_size=1, migrate=False)
    await pg.open()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = Store(Path(tmp) / "state.db")
        try:
            pair = Pair(pg, sqlite, uuid.uuid4().hex[:8])
            for op in ops:
                from_pg, from_sqlite = await pair.step(op)
                assert from_pg == from_sqlite, op
                observed_pg, observed_sqlite = await pair.observe()
                assert observed_pg == observed_sqlite, op
        finally:
            sqlite.close()
            await pg.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_postgres_and_sqlite_agree_on_queue_and_dead_letters(migrated_pg_url, ops):
    asyncio.run(run_both(migrated_pg_url, ops))
