"""Benchmark: a per-event destination that allows N requests/s and answers 429 beyond.

The real daemon (``connectord run``) moves Segment ``track`` messages to the ``pendo``
destination, one ``POST /data/track`` per message, against a sink that meters requests
with a token bucket: N tokens per second, room for N (one second of burst), empty at the
start of each measurement. A request without a token gets ``429`` with
``Retry-After: 1``: one second refills the bucket, so a client that honours it loses
nothing. (Pendo documents no rate limit for /data/track; the bucket stands for any vendor
that has one.)

For N = 200 and N = 2,000 it runs the daemon twice: ``request_concurrency = "adaptive"``
and a fixed 32 (the old default: 16 track calls per batch, 2 batches in flight). The
figures are the delivered rate as a share of N and the share of requests answered 429.
The goal for adaptive: at least 90 % of N delivered, under 2 % of requests refused.
Adaptive meets it by pacing requests at the rate it learns from the 429s
(`connectord.pacing`); concurrency alone cannot, as even one request in flight exceeds
200/s when answers are fast.

Run it through ``bench/run.py`` (``make bench``), or alone:
``python bench/rate_limited.py [--rates 200,2000] [--seconds 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import segment_pendo as base
from benchkit import free_port, stop, wait_port
from messages import BATCH_SIZE, batch_bodies
from pendo_sink import TRACK_SECRET, SinkProtocol

FIXED = 32


@dataclass
class Result:
    rate: int
    mode: str
    offered: int
    delivered: int
    refused: int
    seconds: float
    delivered_per_second: float
    share_of_rate: float
    refused_share: float
    dead_letters_or_lost: int


class BucketProtocol(SinkProtocol):
    """The Pendo stand-in with a token bucket in front of it."""

    rate = 200.0
    tokens = 0.0
    stamp = 0.0
    ok = 0
    limited = 0

    def respond(self, request_line: str, headers: dict[str, str]) -> None:
        assert self.transport is not None
        cls = BucketProtocol
        extra = b""
        if request_line.startswith("GET /_count"):
            body, status = f"{cls.ok} {cls.limited}".encode(), b"200 OK"
        elif request_line.startswith("GET /_reset"):
            cls.ok = cls.limited = 0
            cls.tokens, cls.stamp = 0.0, time.monotonic()
            body, status = b"reset", b"200 OK"
        elif headers.get("x-pendo-integration-key") != TRACK_SECRET:
            body, status = b"bad key", b"401 Unauthorized"
        else:
            now = time.monotonic()
            cls.tokens = min(cls.rate, cls.tokens + (now - cls.stamp) * cls.rate)
            cls.stamp = now
            if cls.tokens >= 1:
                cls.tokens -= 1
                cls.ok += 1
                body, status = b"OK", b"200 OK"
            else:
                cls.limited += 1
                body, status = b"Too Many Requests", b"429 Too Many Requests"
                extra = b"Retry-After: 1\r\n"
        self.transport.write(
            b"HTTP/1.1 "
            + status
            + b"\r\n"
            + extra
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )


async def serve_bucket(port: int, rate: float) -> None:
    BucketProtocol.rate = rate
    BucketProtocol.stamp = time.monotonic()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BucketProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def daemon_config(directory: Path, port: int, sink: str, mode: str) -> Path:
    path = base.daemon_config(directory, port, sink)
    setting = '"adaptive"' if mode == "adaptive" else str(FIXED)
    with path.open("a", encoding="utf-8") as file:
        file.write(f"\n[connectors.bench.delivery]\nrequest_concurrency = {setting}\n")
    return path


async def counts(session: aiohttp.ClientSession, sink: str) -> tuple[int, int]:
    async with session.get(f"{sink}/_count") as response:
        ok, limited = (await response.text()).split()
        return int(ok), int(limited)


async def measure(rate: int, mode: str, seconds: float, pin: bool) -> Result:
    """Offer ``rate * seconds`` messages at once, then wait until the sink has them all
    (or twice the time they need at the rate)."""
    from connectord.testing import DaemonProcess

    settings = base.Settings(messages=int(rate * seconds) // 100 * 100, pin=pin)
    sink_port = free_port()
    with base.on_cpu(base.DRIVER_CPU, settings):
        sink_process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--role", "bucket", str(sink_port), str(rate)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    sink = f"http://127.0.0.1:{sink_port}"
    try:
        wait_port(sink_port)
        with tempfile.TemporaryDirectory(prefix="connectord-bench-") as tmp:
            port = free_port()
            daemon = DaemonProcess(daemon_config(Path(tmp), port, sink, mode), ready_timeout=90)
            with base.on_cpu(base.SUT_CPU, settings):
                daemon.start(wait=False)
            daemon.wait_ready()
            try:
                return await _run(rate, mode, seconds, settings, daemon.url, sink)
            finally:
                daemon.stop()
    finally:
        stop(sink_process)


async def _run(
    rate: int, mode: str, seconds: float, settings: base.Settings, url: str, sink: str
) -> Result:
    bodies = batch_bodies(settings.messages // BATCH_SIZE)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sink}/_reset") as response:
            await response.read()
        started = time.monotonic()
        deadline = started + seconds * 2 + 2
        accepted, _, _ = await base.load(f"{url}/ingest/bench/v1/batch", bodies, settings, deadline)
        ok, limited = await counts(session, sink)
        finished = time.monotonic()
        while ok < accepted and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            now_ok, limited = await counts(session, sink)
            if now_ok != ok:
                finished = time.monotonic()
            ok = now_ok
    took = finished - started
    per_second = ok / took
    return Result(
        rate=rate,
        mode=mode,
        offered=accepted,
        delivered=ok,
        refused=limited,
        seconds=round(took, 2),
        delivered_per_second=round(per_second),
        share_of_rate=round(per_second / rate, 3),
        refused_share=round(limited / max(1, ok + limited), 4),
        dead_letters_or_lost=accepted - ok,
    )


async def run(rates: list[int], seconds: float, pin: bool) -> dict[str, Any]:
    if pin and base.can_pin(base.Settings(pin=pin)):
        os.sched_setaffinity(0, {base.DRIVER_CPU})
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    results = []
    for rate in rates:
        for mode in ("adaptive", "fixed"):
            results.append(await measure(rate, mode, seconds, pin))
    return {
        "benchmark": "rate_limited",
        "fixed_concurrency": FIXED,
        "results": [asdict(r) for r in results],
        "seconds": round(time.monotonic() - started, 1),
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def report(result: dict[str, Any]) -> str:
    out = [
        "Segment track -> daemon -> per-event sink allowing N requests/s (token bucket, "
        f"429 + Retry-After: 1 beyond); adaptive vs fixed {result['fixed_concurrency']}",
        f"{'N':>6} {'mode':>9} {'delivered/s':>12} {'% of N':>7} {'429 share':>10} "
        f"{'delivered':>10} {'offered':>8}",
    ]
    for r in result["results"]:
        out.append(
            f"{r['rate']:>6} {r['mode']:>9} {r['delivered_per_second']:>12} "
            f"{r['share_of_rate'] * 100:>6.1f}% {r['refused_share'] * 100:>9.2f}% "
            f"{r['delivered']:>10} {r['offered']:>8}"
        )
    before, after = result["load_average"]
    out.append(
        f"(benchmark took {result['seconds']} s; 1-minute load average {before} before, "
        f"{after} after, on {os.cpu_count()} CPUs: other work on the machine slows the "
        "daemon, and N = 2,000 needs most of a core)"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["bench", "bucket"], default="bench")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--rates", default="200,2000")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    options = parser.parse_args(argv)
    if options.role == "bucket":
        asyncio.run(serve_bucket(int(options.args[0]), float(options.args[1])))
        return {}
    rates = [int(r) for r in options.rates.split(",")]
    result = asyncio.run(run(rates, options.seconds, not options.no_pin))
    print(report(result), flush=True)
    return result


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
