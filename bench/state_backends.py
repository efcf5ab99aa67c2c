"""Queue throughput of the state backends: SQLite `Store` vs `PostgresBackend`.

    .venv/bin/python bench/state_backends.py [--url postgresql://postgres@127.0.0.1/postgres]
                                             [--records 20000] [--batch 100] [--read 500]

Measures enqueue (transactions of ``--batch`` records, as the daemon's group commit makes
them) and read + complete (batches of ``--read``, completed by id), on one connector.
PostgreSQL runs in a new database that is dropped afterwards; the server's own
durability settings (printed) decide what a commit costs there.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import psycopg

from connectord.backends import connector_lease
from connectord.backends.postgres import PostgresBackend
from connectord.state import Store


def bodies(count: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "type": "track",
                "event": "Bench",
                "messageId": f"m{i}",
                "properties": {"i": i, "pad": "x" * 200},
            }
        )
        for i in range(count)
    ]


def rate(records: int, seconds: float) -> str:
    return f"{records / seconds:>10,.0f} records/s  ({seconds:.2f} s)"


def bench_sqlite(records: list[bytes], batch: int, read: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "state.db")
        started = time.perf_counter()
        for i in range(0, len(records), batch):
            store.enqueue_many([("bench", records[i : i + batch])])
        enqueue = time.perf_counter() - started
        started = time.perf_counter()
        while rows := store.read_queue("bench", 0, read):
            store.complete("bench", rows[0].id, rows[-1].id, [], len(rows))
        drain = time.perf_counter() - started
        store.close()
    return {"enqueue": enqueue, "drain": drain}


async def bench_postgres(
    url: str, records: list[bytes], batch: int, read: int, writers: int
) -> dict[str, float]:
    store = PostgresBackend(url, pool_size=max(2, writers))
    await store.open()
    try:
        chunks = [records[i : i + batch] for i in range(0, len(records), batch)]
        started = time.perf_counter()
        for chunk in chunks:
            await store.enqueue_many([("bench", chunk)])
        enqueue = time.perf_counter() - started
        epoch = await store.acquire(connector_lease("bench"), "bench", 600)
        assert epoch is not None
        started = time.perf_counter()
        while rows := await store.read_queue("bench", 0, read):
            await store.complete("bench", [r.id for r in rows], [], len(rows), epoch=epoch)
        drain = time.perf_counter() - started

        async def writer(part: list[list[bytes]]) -> None:
            for chunk in part:
                await store.enqueue_many([("bench", chunk)])

        started = time.perf_counter()
        await asyncio.gather(*(writer(chunks[n::writers]) for n in range(writers)))
        concurrent = time.perf_counter() - started
    finally:
        await store.close()
    return {"enqueue": enqueue, "drain": drain, "concurrent": concurrent}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--read", type=int, default=500)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args(argv)
    records = bodies(args.records)
    name = f"connectord_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        settings = [
            admin.execute(f"SHOW {s}").fetchone()[0]
            for s in ("server_version", "fsync", "synchronous_commit")
        ]
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        sqlite = bench_sqlite(records, args.batch, args.read)
        pg_url = args.url.rsplit("/", 1)[0] + f"/{name}"
        pg = asyncio.run(bench_postgres(pg_url, records, args.batch, args.read, args.writers))
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    n = len(records)
    print(
        f"{n} records of {len(records[0])} bytes, enqueue transactions of {args.batch}, "
        f"reads of {args.read}"
    )
    print(f"PostgreSQL {settings[0]} (fsync={settings[1]}, synchronous_commit={settings[2]})")
    print(f"sqlite   enqueue          {rate(n, sqlite['enqueue'])}")
    print(f"postgres enqueue          {rate(n, pg['enqueue'])}")
    print(f"postgres enqueue x{args.writers:<2}      {rate(n, pg['concurrent'])}")
    print(f"sqlite   read+complete    {rate(n, sqlite['drain'])}")
    print(f"postgres read+complete    {rate(n, pg['drain'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
