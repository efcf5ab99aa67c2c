"""A push connector delivers on its own loop: accepts are answered while delivery is busy.

The destination below holds the CPU (and the GIL) for a whole second in one ``send``
without awaiting, as a slow payload builder would. Sharing the ingest loop, no request
could be answered until it returned; on the delivery loop's thread, accepts go through
while it burns. Real SQLite, real HTTP over 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from connectord import Destination
from connectord.backends import connector_lease
from connectord.backends.sqlite import SqliteBackend
from connectord.config import load_config
from connectord.connector import ConnectorRuntime
from connectord.metrics import Metrics
from connectord.server import create_app

TOKEN = "t0ken-for-delivery-loop"
BURN_SECONDS = 1.0


class BusyDestination(Destination):
    """Burns the CPU for `BURN_SECONDS` in its first ``send``; counts what it got."""

    type = "test.busy"
    burning = threading.Event()
    burn_ended = 0.0
    received: list[str] = []
    threads: set[str] = set()

    async def send(self, records):
        cls = type(self)
        cls.threads.add(threading.current_thread().name)
        if not cls.burning.is_set():
            cls.burning.set()
            end = time.monotonic() + BURN_SECONDS
            while time.monotonic() < end:  # never awaits: holds the loop it runs on
                pass
            cls.burn_ended = time.monotonic()
        cls.received.extend(record["messageId"] for record in records)


def batch(start: int, count: int = 10) -> list[dict]:
    return [
        {"type": "track", "userId": f"u{i}", "event": "Tested", "messageId": f"m-{i}"}
        for i in range(start, start + count)
    ]


async def test_accepts_are_answered_while_delivery_burns_the_cpu(tmp_path: Path, register_plugin):
    registry = register_plugin(BusyDestination)
    config = tmp_path / "connectors.toml"
    config.write_text(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "test.busy" }}
"""
    )
    connector = load_config(config, registry).connectors["relay"]
    store = SqliteBackend(tmp_path / "state.db")
    await store.open()
    runtime = ConnectorRuntime(connector, store, base_dir=tmp_path)
    await runtime.start(drain=False)
    epoch = await store.acquire(connector_lease("relay"), "node-a", 60)
    assert epoch is not None
    runtime.own(epoch)  # delivery starts on the connector's own loop
    app = create_app(lambda: {"relay": runtime}, Metrics(), lambda: (True, {}))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/ingest/relay/"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answered: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=batch(0), headers=headers) as response:
                assert response.status == 200
            assert await asyncio.to_thread(BusyDestination.burning.wait, 10)
            for n in range(1, 6):
                async with session.post(url, json=batch(n * 10), headers=headers) as response:
                    assert response.status == 200, await response.text()
                answered.append(time.monotonic())
        deadline = time.monotonic() + 20
        while len(BusyDestination.received) < 60 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await runtime.stop(5)
        await runner.cleanup()
        await store.close()
    # Every accept was answered while the destination still held the CPU...
    assert BusyDestination.burn_ended > 0
    assert max(answered) < BusyDestination.burn_ended
    # ...because delivery ran on its own thread, and nothing was lost.
    assert BusyDestination.threads == {"connectord-deliver:relay"}
    assert sorted(BusyDestination.received) == sorted(f"m-{i}" for i in range(60))
    assert runtime.depth == 0


class CountingDestination(Destination):
    """Keeps what it got, and on which thread; its state write goes through the context."""

    type = "test.counting"
    received: list[str] = []
    threads: set[str] = set()

    async def send(self, records):
        type(self).threads.add(threading.current_thread().name)
        await self.context.state.set("last", records[-1]["messageId"])
        type(self).received.extend(record["messageId"] for record in records)


class WatchedBackend(SqliteBackend):
    """The real SQLite backend, noting the threads its queue and state writes come from."""

    callers: set[str] = set()

    async def complete(self, *args, **kwargs):
        self.callers.add(threading.current_thread().name)
        return await super().complete(*args, **kwargs)

    async def set_state(self, *args, **kwargs):
        self.callers.add(threading.current_thread().name)
        return await super().set_state(*args, **kwargs)


async def wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert condition()


async def test_disown_own_and_a_lost_lease_on_the_delivery_loop(tmp_path: Path, register_plugin):
    """Ownership moves while delivery runs on its own thread: disowning stops delivery,
    owning again resumes it on the same loop, and a write refused under a stale epoch
    reaches `on_lease_lost` on the main loop's thread. State calls made by the
    destination and the drain run on the main loop (the backend's)."""
    registry = register_plugin(CountingDestination)
    config = tmp_path / "connectors.toml"
    config.write_text(
        f"""
[connectors.relay]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
destination = {{ type = "test.counting" }}
"""
    )
    connector = load_config(config, registry).connectors["relay"]
    store = WatchedBackend(tmp_path / "state.db")
    await store.open()
    runtime = ConnectorRuntime(connector, store, base_dir=tmp_path)
    lost: list[str] = []
    runtime.on_lease_lost = lambda: lost.append(threading.current_thread().name)
    lease = connector_lease("relay")
    try:
        await runtime.start(drain=False)
        runtime.own(await store.acquire(lease, "node-a", 60))
        await runtime.enqueue(batch(0))
        await wait_for(lambda: runtime.depth == 0)
        await runtime.disown()
        await runtime.enqueue(batch(10))
        await asyncio.sleep(0.5)
        assert len(CountingDestination.received) == 10  # not owned: nothing delivered
        await store.release(lease, "node-a", runtime.epoch or 1)
        runtime.own(await store.acquire(lease, "node-a", 60))
        await wait_for(lambda: runtime.depth == 0)
        assert len(CountingDestination.received) == 20
        # Another node takes over behind this one's back: its next ack is refused.
        await store.release(lease, "node-a", runtime.epoch or 1)
        assert await store.acquire(lease, "node-b", 60) is not None
        await runtime.enqueue(batch(20))
        await wait_for(lambda: bool(lost))
        assert runtime.epoch is None
    finally:
        await runtime.stop(5)
    assert lost == [threading.main_thread().name]
    assert CountingDestination.threads == {"connectord-deliver:relay"}
    assert store.callers == {threading.main_thread().name}
    assert await store.get_state("relay/test.counting", ["last"]) == {"last": "m-29"}
    assert await store.queue_depth("relay") == 10  # refused: left for the new owner
    await store.close()
