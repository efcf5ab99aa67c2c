"""``warehouse``: upsert records into SQL tables (SQLite now; see `backends`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field

from connectord import Destination, Options, Record, RetryableError
from connectord.records import now_iso

from .backends import Backend, open_backend, validate_url
from .schema import rows_for


class WarehouseDestination(Destination):
    """Write records into SQL tables (Segment warehouse layout), upserting on messageId."""

    type = "warehouse"
    max_batch_size: ClassVar[int] = 5000

    class Options(Options):
        url: Annotated[str, AfterValidator(validate_url)] = Field(
            "sqlite:///warehouse.db",
            description="`sqlite:///relative/to/config.db`, `sqlite:////absolute/path.db`.",
        )
        event_table_prefix: str = Field("", description='Prefix for per-event tables, e.g. "ct_".')
        tracks_table: bool = Field(
            True, description="Also write every track event to the shared `tracks` table."
        )

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"warehouse-{context.connector}")
        self._backend: Backend | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def start(self) -> None:
        self._backend = await self._run(open_backend, self.options.url, self.context.base_dir)

    async def close(self) -> None:
        if self._backend is not None:
            await self._run(self._backend.close)
        self._pool.shutdown(wait=True)

    async def check(self) -> str:
        backend = await self._run(open_backend, self.options.url, self.context.base_dir)
        await self._run(backend.close)
        return f"can write to {backend.describe()}"

    async def send(self, records: Sequence[Record]) -> None:
        rows = rows_for(
            list(records),
            loaded_at=now_iso(),
            event_prefix=self.options.event_table_prefix,
            tracks_table=self.options.tracks_table,
        )
        assert self._backend is not None, "start() was not called"
        try:
            await self._run(self._backend.write, rows)
        except self._backend.transient_errors as err:
            raise RetryableError(f"warehouse write failed: {err}") from err
        return None
