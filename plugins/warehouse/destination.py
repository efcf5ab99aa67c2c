"""``warehouse``: upsert records into SQL tables in SQLite, DuckDB or PostgreSQL (see
`backends`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field

from connectord import ConnectordError, Destination, Options, Record, RetryableError, Secret
from connectord.records import now_iso
from connectord.tables import rows_for

from .backends import DEFAULT_BUDGET, Backend, open_backend, open_error, validate_url


class WarehouseDestination(Destination):
    """Write records into SQL tables (Segment warehouse layout), upserting on messageId."""

    type = "warehouse"
    max_batch_size: ClassVar[int] = 5000

    class Options(Options):
        url: Annotated[str, AfterValidator(validate_url)] = Field(
            "sqlite:///warehouse.db",
            description="`sqlite:///relative/to/config.db`, `sqlite:////absolute/path.db`, "
            "`duckdb:///bi.duckdb` (needs the `duckdb` extra), or "
            "`postgresql://user@host:5432/database` (needs the `postgres` extra).",
        )
        db_schema: str = Field(
            "public",
            alias="schema",
            pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
            description="PostgreSQL and DuckDB: the schema for the tables (created if "
            "missing; DuckDB's default schema is `main`).",
        )
        password: Secret | None = Field(
            None, description="PostgreSQL password, kept out of `url` (or `password_file`)."
        )
        event_table_prefix: str = Field("", description='Prefix for per-event tables, e.g. "ct_".')
        tracks_table: bool = Field(
            True, description="Also write every track event to the shared `tracks` table."
        )
        max_columns: int = Field(
            DEFAULT_BUDGET,
            ge=20,
            le=1000,
            description="Columns per table at most; the values of further properties go, "
            "by column name, into one JSON text column `_extra`.",
        )

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"warehouse-{context.connector}")
        self._backend: Backend | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _open(self) -> Backend:
        password = self.options.password
        return open_backend(
            self.options.url,
            self.context.base_dir,
            schema=self.options.db_schema,
            password=password.get_secret_value() if password is not None else None,
            budget=self.options.max_columns,
        )

    async def _open_or_raise(self) -> Backend:
        try:
            return await self._run(self._open)
        except ConnectordError:
            raise
        except Exception as err:
            raise open_error(err) from err

    async def start(self) -> None:
        self._backend = await self._open_or_raise()

    async def close(self) -> None:
        if self._backend is not None:
            await self._run(self._backend.close)
        self._pool.shutdown(wait=True)

    async def check(self) -> str:
        backend = await self._open_or_raise()
        try:
            await self._run(backend.probe)
        except Exception as err:
            raise (backend.delivery_error(err) or err) from err
        finally:
            await self._run(backend.close)
        return f"can connect to and write into {backend.describe()}"

    async def send(self, records: Sequence[Record]) -> None:
        rows = rows_for(
            list(records),
            loaded_at=now_iso(),
            event_prefix=self.options.event_table_prefix,
            tracks_table=self.options.tracks_table,
        )
        if self._backend is None:  # start() failed earlier (store down): try again now
            self._backend = await self._open_or_raise()
        try:
            discarded = await self._run(self._backend.write, rows)
        except Exception as err:
            error = self._backend.delivery_error(err)
            if error is None:
                raise
            if isinstance(error, RetryableError):
                self.log.warning("warehouse.write.retry", error=str(error))
            raise error from err
        if discarded:  # stored, but not in their columns: operators should know
            self.log.info("warehouse.values.discarded", count=discarded, table="_discards")
        return None
