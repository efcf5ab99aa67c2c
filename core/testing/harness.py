"""Exercise one plugin class without a daemon: sources, mappings, destinations."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import structlog

from ..api import Batch, DeliveryResult, Destination, Mapping, PluginContext, PullSource, Record
from ..http import new_session
from ..state import MemoryKeyValue


@contextlib.asynccontextmanager
async def make_context(
    connector: str = "test", *, base_dir: Path | None = None, state: Any = None
) -> AsyncIterator[PluginContext]:
    """A `PluginContext` with in-memory state and a real HTTP session (closed on exit)."""
    session: aiohttp.ClientSession | None = None

    def http() -> aiohttp.ClientSession:
        nonlocal session
        if session is None:
            session = new_session(timeout=30)
        return session

    try:
        yield PluginContext(
            connector=connector,
            log=structlog.get_logger().bind(connector=connector),
            state=state if state is not None else MemoryKeyValue(),
            base_dir=base_dir or Path.cwd(),
            http=http,
        )
    finally:
        if session is not None:
            await session.close()


def _options(cls: type, options: dict[str, Any] | Any) -> Any:
    return cls.Options.model_validate(options) if isinstance(options, dict) else options


class SourceRun(NamedTuple):
    """What `run_source` read; unpacks as ``records, batches``."""

    records: list[Record]
    batches: list[Batch]

    @property
    def checkpoints(self) -> list[Any]:
        """Each batch's checkpoint, in order (``None`` where a batch kept the old one)."""
        return [batch.checkpoint for batch in self.batches]

    @property
    def checkpoint(self) -> Any:
        """The checkpoint the daemon would hold after this run: the last one set."""
        found = [c for c in self.checkpoints if c is not None]
        return found[-1] if found else None

    @property
    def state(self) -> dict[str, Any]:
        """The state the batches asked to store, merged in order (``None`` deletes)."""
        merged: dict[str, Any] = {}
        for batch in self.batches:
            for key, value in (batch.state or {}).items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        return merged


async def run_source(
    cls: type[PullSource],
    options: dict[str, Any] | Any,
    *,
    checkpoint: Any = None,
    context: PluginContext | None = None,
    max_batches: int | None = None,
) -> SourceRun:
    """Read a pull source from ``checkpoint``; return all records and the batches.

    The result unpacks as ``records, batches``; ``.checkpoint`` is what the daemon would
    store after the run, ``.checkpoints`` each batch's. Run it again from that
    checkpoint to test resuming. Exceptions the source raises propagate.
    """
    async with contextlib.AsyncExitStack() as stack:
        if context is None:
            context = await stack.enter_async_context(make_context())
        source = cls(_options(cls, options), context)
        await source.start()
        stack.push_async_callback(source.close)
        batches: list[Batch] = []
        async with contextlib.aclosing(source.read(checkpoint)) as reader:
            async for batch in reader:
                batches.append(batch)
                if max_batches is not None and len(batches) >= max_batches:
                    break
    return SourceRun([r for b in batches for r in b.records], batches)


async def deliver(
    cls: type[Destination],
    options: dict[str, Any] | Any,
    records: Sequence[Record],
    *,
    context: PluginContext | None = None,
) -> DeliveryResult:
    """Send records to a destination class in chunks of its ``max_batch_size``.

    Returns the combined result with indices into ``records``; exceptions propagate.
    """
    async with contextlib.AsyncExitStack() as stack:
        if context is None:
            context = await stack.enter_async_context(make_context())
        destination = cls(_options(cls, options), context)
        await destination.start()
        stack.push_async_callback(destination.close)
        combined = DeliveryResult()
        size = max(1, destination.max_batch_size)
        for start in range(0, len(records), size):
            result = await destination.send(list(records[start : start + size]))
            if result is None:
                continue
            combined.rejected.update({start + i: r for i, r in result.rejected.items()})
            combined.retry.update(start + i for i in result.retry)
            combined.retry_after = result.retry_after or combined.retry_after
        return combined


async def map_records(
    cls: type[Mapping],
    options: dict[str, Any] | Any,
    records: Sequence[Record],
    *,
    context: PluginContext | None = None,
) -> list[list[Record] | Exception]:
    """Run a mapping's `map_batch`; for each input, its outputs or its error."""
    async with contextlib.AsyncExitStack() as stack:
        if context is None:
            context = await stack.enter_async_context(make_context())
        mapping = cls(_options(cls, options), context)
        await mapping.start()
        stack.push_async_callback(mapping.close)
        return await mapping.map_batch(list(records))
