"""``connectord tap``: watch the records flowing through a connector, as JSON lines.

The delivery pipeline calls `publish` with each batch it processes, once before the
mappings (``raw``) and once after (``mapped``). With nobody watching that is one
dictionary lookup. Each watcher has a bounded buffer: when it reads slower than records
flow, the records that do not fit are dropped *for that watcher* and counted, and
delivery never waits for it. Records are serialized with every configured secret
redacted before they leave the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from .log import redact

Stage = Literal["raw", "mapped"]
STAGES: tuple[Stage, ...] = ("raw", "mapped")
BUFFER = 1000
"""Records a watcher may lag behind before the newest ones are dropped for it."""


@dataclass(eq=False)
class Subscription:
    """One watcher of one connector at one stage."""

    connector: str
    stage: Stage
    limit: int = BUFFER
    dropped: int = 0
    delivered: int = 0
    queue: asyncio.Queue[bytes] = field(init=False)
    loop: asyncio.AbstractEventLoop | None = field(init=False)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.limit)
        self.loop = _running_loop()

    def offer(self, line: bytes) -> None:
        """Buffer a line; from another loop's thread (a push connector's delivery loop)
        it is handed over thread-safely: asyncio queues belong to one loop."""
        loop = self.loop
        if loop is not None and _running_loop() is not loop:
            with contextlib.suppress(RuntimeError):  # the watcher's loop is closed
                loop.call_soon_threadsafe(self._put, line)
            return
        self._put(line)

    def _put(self, line: bytes) -> None:
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            self.dropped += 1

    async def next(self, wait: float) -> bytes | None:
        """The next line, or ``None`` after ``wait`` seconds without one."""
        try:
            line = await asyncio.wait_for(self.queue.get(), wait)
        except TimeoutError:
            return None
        self.delivered += 1
        return line


class TapHub:
    """Who watches which connector; the pipeline publishes, watchers subscribe."""

    def __init__(self) -> None:
        self._subs: dict[tuple[str, Stage], set[Subscription]] = {}

    def subscribe(self, connector: str, stage: Stage, limit: int = BUFFER) -> Subscription:
        sub = Subscription(connector, stage, limit)
        self._subs.setdefault((connector, stage), set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get((sub.connector, sub.stage))
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[(sub.connector, sub.stage)]

    def watching(self, connector: str, stage: Stage) -> bool:
        return (connector, stage) in self._subs

    def publish(self, connector: str, stage: Stage, records: Iterable[Any]) -> None:
        """Hand records to the watchers, never waiting; a no-op when nobody watches."""
        subs = self._subs.get((connector, stage))
        if not subs:
            return
        for record in records:
            line = orjson.dumps(redact(record), default=str) + b"\n"
            for sub in tuple(subs):
                sub.offer(line)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


hub = TapHub()
"""The process's hub: the pipeline publishes into it, the HTTP endpoint subscribes."""


def publish(connector: str, stage: Stage, records: Iterable[Any]) -> None:
    """Called by the delivery pipeline; see `TapHub.publish`."""
    hub.publish(connector, stage, records)


def stream_to(config: Any, name: str, *, mapped: bool, out: Any, notes: Any) -> None:
    """``connectord tap``: copy the daemon's tap stream of ``name`` to ``out`` as JSON
    lines; subscription and drop reports go to ``notes`` (stderr)."""
    from .ui.client import open_url, tap_path

    dropped = 0
    with open_url(config, tap_path(name, mapped), timeout=60) as response:
        for line in response:
            if not line.startswith(b'{"_tap":'):
                out.write(line.decode())
                out.flush()
                continue
            meta = orjson.loads(line)["_tap"]
            if "stage" in meta:
                notes.write(
                    f"tapping {meta['connector']} ({meta['stage']} records; up to "
                    f"{meta['buffer']} buffered, more are dropped rather than slowing "
                    "delivery)\n"
                )
            elif meta.get("dropped", 0) > dropped:
                dropped = meta["dropped"]
                notes.write(f"tap: {dropped} records dropped so far (reading too slowly)\n")
            notes.flush()
