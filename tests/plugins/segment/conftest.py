"""Fixtures for the Segment source: the source mounted in the daemon's own HTTP app."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog
from aiohttp import web

from connectord import PluginContext, QueueFull, cors
from connectord.connector import serialize
from connectord.metrics import Metrics
from connectord.plugins.segment.source import SegmentSource
from connectord.records import now_iso
from connectord.server import create_app
from connectord.state import MemoryKeyValue
from connectord.testing import EmulatorServer

WRITE_KEY = "segment-write-key-for-tests"
OTHER_KEY = "second-write-key-for-tests"


class IngestServer(EmulatorServer):
    """Serves like the daemon does: request bodies reach the source still compressed, so
    that its decompression cap applies."""

    async def _start(self) -> None:
        self._runner = web.AppRunner(
            self.app, access_log=None, shutdown_timeout=1, auto_decompress=False
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]


class Ingest:
    """`segment.http` behind `connectord.server.create_app` on 127.0.0.1, with a queue in
    memory: what the daemon serves, minus SQLite."""

    def __init__(self, options: dict) -> None:
        self.records: list[dict] = []
        self.dead_letters: list[tuple[dict, str]] = []
        self.queue_full = False
        context = PluginContext(
            connector="seg",
            log=structlog.get_logger().bind(connector="seg"),
            state=MemoryKeyValue(),
            base_dir=Path.cwd(),
            http=lambda: None,
            enqueue=self.enqueue,
            dead_letter=self.dead_letter,
        )
        self.source = SegmentSource(SegmentSource.Options.model_validate(options), context)
        runtime = SimpleNamespace(
            routes={(r.method, r.path): r.handler for r in self.source.routes()},
            started=True,
            source=self.source,
            log=context.log,
        )
        app = create_app(lambda: {"seg": runtime}, Metrics(), lambda: (True, {}))
        app.middlewares.append(cors.middleware(lambda name: SegmentSource.cors_headers))
        self.server = IngestServer(app)

    async def enqueue(self, records: list[dict]) -> None:
        if self.queue_full:
            raise QueueFull("seg", 10)
        serialize(records, now_iso())  # what the daemon does before its SQLite insert
        self.records.extend(records)

    async def dead_letter(self, parts: list[tuple[dict, str]]) -> None:
        self.dead_letters.extend(parts)

    @property
    def url(self) -> str:
        return f"{self.server.url}/ingest/seg"


@pytest.fixture
def ingest():
    harness = Ingest({"write_key": [WRITE_KEY, OTHER_KEY]})
    harness.server.start()
    yield harness
    harness.server.stop()
