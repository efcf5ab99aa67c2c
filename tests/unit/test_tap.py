"""The tap hub: what the pipeline publishes, bounded per watcher, secrets redacted."""

from __future__ import annotations

import asyncio
import io
import time
from types import SimpleNamespace

import orjson
import pytest
import structlog
from aiohttp import web

from connectord import Destination, Mapping
from connectord.backoff import Backoff
from connectord.delivery import Pipeline, Throttle
from connectord.log import set_secrets
from connectord.tap import TapHub, hub, stream_to


class Accept(Destination):
    type = "accept"

    def __init__(self):
        self.got = []

    async def send(self, records):
        self.got.extend(records)


class Rename(Mapping):
    type = "rename"

    def __init__(self):
        pass

    def map(self, record):
        return {**record, "event": "Renamed"}


@pytest.fixture
async def aiohttp_free_server():
    """Serve one handler on a free 127.0.0.1 port; return a config that points there."""
    runners = []

    async def start(handler):
        app = web.Application()
        app.router.add_get("/ui/api/tap/{name}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        daemon = SimpleNamespace(listen=f"127.0.0.1:{port}", admin_token=None)
        return SimpleNamespace(daemon=daemon, path="connectors.toml")

    yield start
    for runner in runners:
        await runner.cleanup()


def track(i, **props):
    return {
        "type": "track",
        "userId": f"u{i}",
        "event": "E",
        "messageId": f"m{i}",
        "properties": props,
    }


def pipeline(destination, mappings=()):
    throttle = Throttle(Backoff(0.01, 0.05), asyncio.Event())
    return Pipeline("t", mappings, destination, throttle=throttle, log=structlog.get_logger())


def lines(sub):
    out = []
    while not sub.queue.empty():
        out.append(orjson.loads(sub.queue.get_nowait()))
    return out


async def test_pipeline_publishes_before_and_after_mappings():
    raw, mapped = hub.subscribe("t", "raw"), hub.subscribe("t", "mapped")
    try:
        await pipeline(Accept(), [Rename()]).process([track(1), track(2)])
    finally:
        hub.unsubscribe(raw)
        hub.unsubscribe(mapped)
    assert [r["event"] for r in lines(raw)] == ["E", "E"]
    assert [r["event"] for r in lines(mapped)] == ["Renamed", "Renamed"]
    assert not hub.watching("t", "raw") and not hub.watching("t", "mapped")


def test_slow_watcher_loses_records_not_delivery_time():
    taps = TapHub()
    sub = taps.subscribe("c", "raw", limit=10)
    started = time.perf_counter()
    taps.publish("c", "raw", [track(i) for i in range(1000)])
    assert time.perf_counter() - started < 1.0  # never waits for the reader
    assert sub.queue.qsize() == 10
    assert sub.dropped == 990


def test_nobody_watching_costs_no_serialization():
    taps = TapHub()

    def never():
        raise AssertionError("records were iterated with nobody watching")
        yield

    taps.publish("c", "mapped", never())


def test_each_watcher_has_its_own_buffer():
    taps = TapHub()
    slow, fast = taps.subscribe("c", "raw", limit=1), taps.subscribe("c", "raw", limit=5)
    taps.publish("c", "raw", [track(i) for i in range(3)])
    assert (slow.dropped, fast.dropped) == (2, 0)
    assert len(lines(fast)) == 3


def test_configured_secrets_are_redacted():
    taps = TapHub()
    sub = taps.subscribe("c", "raw")
    set_secrets(["hunter2-secret-value"])
    try:
        taps.publish("c", "raw", [track(1, password="hunter2-secret-value")])
    finally:
        set_secrets([])
    line = sub.queue.get_nowait()
    assert b"hunter2" not in line
    assert orjson.loads(line)["properties"]["password"] == "**********"


async def test_cli_stream_separates_records_from_notes(aiohttp_free_server):
    async def stream(request):
        response = web.StreamResponse()
        await response.prepare(request)
        for item in (
            {"_tap": {"connector": "c", "stage": "raw", "buffer": 1000, "dropped": 0}},
            track(1),
            {"_tap": {"dropped": 7}},
            {"_tap": {"dropped": 7}},
            track(2),
        ):
            await response.write(orjson.dumps(item) + b"\n")
        return response

    config = await aiohttp_free_server(stream)
    out, notes = io.StringIO(), io.StringIO()
    await asyncio.to_thread(stream_to, config, "c", mapped=False, out=out, notes=notes)
    assert [orjson.loads(x)["userId"] for x in out.getvalue().splitlines()] == ["u1", "u2"]
    assert "tapping c (raw records" in notes.getvalue()
    assert notes.getvalue().count("7 records dropped") == 1
