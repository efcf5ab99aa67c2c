"""Accept latency at a fixed offered rate while delivery runs (part of ``segment_pendo``).

The closed-loop phase of ``segment_pendo`` sends as fast as the system answers, so it
finishes accepting in well under a second, mostly before delivery gets going. What a
sender sees in production is different: messages arrive at some rate while the backlog
is being delivered. This phase offers ``rate`` messages per second in batches of 100 on
a fixed schedule (open loop: a batch goes out at its time whether or not earlier ones
were answered, so slow answers cannot hide by slowing the sender down) for ``seconds``,
and measures each batch's latency from send to ``200``. The sink's count before and
after tells how many messages were delivered meanwhile: delivery ran throughout if that
is a steady share of the offered rate.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class PacedMeasurement:
    offered_per_second: int
    batches: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    delivered_per_second: float
    """Messages the sink received per second during the phase: delivery's pace meanwhile."""


async def paced_load(
    url: str, bodies: list[bytes], *, write_key: str, rate: float, batch_size: int
) -> tuple[list[float], int]:
    """Post every body on a fixed schedule (``rate`` messages/s); return the latencies
    (seconds, from each request's start to its answer) and the count of non-200s."""
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": auth}
    interval = batch_size / rate
    latencies: list[float] = []
    errors = 0

    async def post(session: aiohttp.ClientSession, body: bytes) -> None:
        nonlocal errors
        started = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            errors += 1

    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)  # open loop: never queue behind the pool
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        tasks = []
        start = loop.time()
        for index, body in enumerate(bodies):
            await asyncio.sleep(max(0.0, start + index * interval - loop.time()))
            tasks.append(asyncio.create_task(post(session, body)))
        await asyncio.gather(*tasks)
    return sorted(latencies), errors


async def measure_paced(
    url: str,
    sink_count: Any,
    bodies: list[bytes],
    *,
    write_key: str,
    rate: float,
    batch_size: int,
) -> PacedMeasurement:
    """Run `paced_load` and count what the sink received meanwhile (``sink_count`` is
    an async callable returning the sink's running total)."""
    before = await sink_count()
    started = time.monotonic()
    latencies, errors = await paced_load(
        url, bodies, write_key=write_key, rate=rate, batch_size=batch_size
    )
    seconds = time.monotonic() - started
    delivered = await sink_count() - before
    return PacedMeasurement(
        offered_per_second=round(rate),
        batches=len(bodies),
        errors=errors,
        p50_ms=round(_percentile(latencies, 0.50) * 1000, 2),
        p99_ms=round(_percentile(latencies, 0.99) * 1000, 2),
        max_ms=round(latencies[-1] * 1000, 2) if latencies else float("nan"),
        delivered_per_second=round(delivered / seconds),
    )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]
