"""A worker process for the cross-process lease tests: ``python sqlite_lease_worker.py
STATE NODE TTL WRITES``.

It waits for the connector lease, then loops: one fenced write (checkpoint + completing
the oldest queue row) while it has writes left, then a renewal. When a renewal fails it
still tries one write with its old epoch, as a daemon that ignored the failed renewal
would, and reports whether the fence refused it. Events go to stdout as JSON lines.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import orjson

from connectord.backends import StaleEpoch, connector_lease
from connectord.backends.sqlite import SqliteBackend

LEASE = connector_lease("c")


def say(event: str, **fields: object) -> None:
    line = orjson.dumps({"event": event, "pid": os.getpid(), "at": time.time(), **fields})
    sys.stdout.write(line.decode() + "\n")
    sys.stdout.flush()


async def write(db: SqliteBackend, node: str, epoch: int, n: int) -> None:
    await db.commit_pull_batch(
        "c",
        epoch=epoch,
        checkpoint={"node": node, "epoch": epoch, "n": n},
        state_namespace="c/src",
        state={"last": node},
        dead=[],
        delivered=0,
        received=0,
    )
    rows = await db.read_queue("c", 0, 1)
    await db.complete("c", [r.id for r in rows], [], len(rows), epoch=epoch)


async def main(state: str, node: str, ttl: float, writes: int) -> int:
    db = SqliteBackend(state)
    await db.open()
    say("started")
    while (epoch := await db.acquire(LEASE, node, ttl)) is None:
        await asyncio.sleep(0.02)
    say("acquired", epoch=epoch)
    n = 0
    while True:
        if n < writes:
            await write(db, node, epoch, n)
            n += 1
            say("wrote", epoch=epoch, n=n)
        elif n == writes:
            say("idle", epoch=epoch)
            n += 1
        if not await db.renew(LEASE, node, epoch, ttl):
            say("lost", epoch=epoch)
            try:
                await write(db, node, epoch, n)
            except StaleEpoch:
                say("stale", epoch=epoch)
                return 0
            say("wrote-stale", epoch=epoch)
            return 1
        say("renewed", epoch=epoch)
        await asyncio.sleep(ttl / 5)


if __name__ == "__main__":
    path, name, lease_ttl, count = sys.argv[1:5]
    sys.exit(asyncio.run(main(path, name, float(lease_ttl), int(count))))
