"""Serve one push source over real HTTP on 127.0.0.1, without a daemon.

The source's routes are mounted by the daemon's own HTTP app (``/ingest/<connector>/``,
404/405 answers, `IngestError` rendered through the source's ``error_response``), and
``enqueue`` collects what the source committed, so a test checks both the HTTP answer
and the records that would be on disk.

>>> async with push_source(MySource, {"token": "t"}) as push:
...     status, body = await push.post("v1/batch", {"batch": [...]}, headers=auth)
...     assert push.records[0]["event"] == "Signed Up"
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer

from .. import records as record_model
from ..api import PluginContext, PushSource, Record
from ..errors import QueueFull
from ..metrics import Metrics
from ..server import create_app
from .harness import _options, make_context


@dataclass
class PushHarness:
    """A running push source: its HTTP client, its committed records, its base URL."""

    source: PushSource
    client: TestClient
    connector: str
    records: list[Record] = field(default_factory=list)
    dead_letters: list[tuple[Any, str]] = field(default_factory=list)
    requests_committed: int = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/ingest/<connector>/`` for clients outside the loop."""
        return str(self.client.make_url(f"/ingest/{self.connector}/"))

    def path(self, tail: str = "") -> str:
        return f"/ingest/{self.connector}/{tail.lstrip('/')}"

    async def post(
        self,
        tail: str,
        payload: Any = None,
        *,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, Any]:
        """POST JSON (or raw ``data``); return the status and the decoded JSON answer."""
        body = data if data is not None else orjson.dumps(payload)
        send_headers = {"Content-Type": "application/json", **(headers or {})}
        async with self.client.post(self.path(tail), data=body, headers=send_headers) as answer:
            raw = await answer.read()
        try:
            return answer.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return answer.status, raw


class _Runtime:
    """The part of a connector runtime the daemon's HTTP app looks at."""

    def __init__(self, source: PushSource, context: PluginContext) -> None:
        self.source = source
        self.log = context.log
        self.started = True
        self.routes = {(r.method.upper(), r.path.strip("/")): r.handler for r in source.routes()}


@contextlib.asynccontextmanager
async def push_source(
    cls: type[PushSource],
    options: dict[str, Any] | Any,
    *,
    connector: str = "test",
    queue_limit: int | None = None,
    context: PluginContext | None = None,
) -> AsyncIterator[PushHarness]:
    """Start ``cls`` with ``options`` behind the daemon's HTTP app on a free port.

    :param queue_limit: once this many records are committed, ``enqueue`` raises
        `QueueFull` (the daemon's bounded queue), so the source's 503 path can be tested.
    """
    async with contextlib.AsyncExitStack() as stack:
        if context is None:
            context = await stack.enter_async_context(make_context(connector))
        holder: dict[str, PushHarness] = {}

        async def enqueue(records: list[Record]) -> None:
            harness = holder["harness"]
            if queue_limit is not None and len(harness.records) + len(records) > queue_limit:
                raise QueueFull(connector, queue_limit)
            now = record_model.now_iso()
            for record in records:  # what the daemon fills in before committing
                record.setdefault("messageId", record_model.new_message_id())
                record.setdefault("receivedAt", now)
                record.setdefault("timestamp", record["receivedAt"])
            harness.records.extend(orjson.loads(orjson.dumps(records)))
            harness.requests_committed += 1

        async def dead_letter(parts: list[tuple[Any, str]]) -> None:
            copied = orjson.loads(orjson.dumps(parts))  # as stored: JSON, not live objects
            holder["harness"].dead_letters.extend((part, reason) for part, reason in copied)

        context.enqueue = enqueue
        context.dead_letter = dead_letter
        source = cls(_options(cls, options), context)
        await source.start()
        stack.push_async_callback(source.close)
        runtime = _Runtime(source, context)
        app = create_app(lambda: {connector: runtime}, Metrics(), lambda: (True, {}))  # type: ignore[dict-item]
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        stack.push_async_callback(client.close)
        holder["harness"] = PushHarness(source, client, connector)
        yield holder["harness"]
