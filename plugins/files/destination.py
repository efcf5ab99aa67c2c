"""``files``: records into gzip CSV, JSON lines or Parquet files in a directory.

Files are named like CleverTap's cloud data export, so loaders written for it
(BigQuery/GCS wildcards such as ``*-Charged-*.csv.gz``) keep working::

    <export id>-<run epoch>-<Stream-Name>-<yyyymmdd>-<part>-<database id>.<ext>

One stream per event name (``Order Placed`` → ``Order-Placed``), ``Profiles`` for
identify records, ``metric-<name>`` for metrics; ``yyyymmdd`` is the UTC day of the
record's ``timestamp``; ``part`` counts the files of one stream and day written by one
run (every delivered batch adds a part). A batch is acknowledged only after all its
files are complete under their final names: each is written under a hidden temporary
name, fsynced, renamed, and the directory fsynced.

Columns are the warehouse's (``schema.record_row``). Each stream keeps one column
order, stored in the connector's state: columns that appear later are appended at the
end, so every part's header starts with the previous part's columns.
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from connectord import Destination, Options, PermanentError, Record, RetryableError
from connectord.plugins.warehouse.backends import value_type, widen
from connectord.plugins.warehouse.schema import record_row
from connectord.records import now_iso, parse_time

from . import writers

EXTENSIONS = {"csv": "csv", "jsonl": "json", "parquet": "parquet"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")


def stream_name(record: Record) -> str:
    """The stream a record's file belongs to."""
    kind = record.get("type")
    if kind == "track":
        return str(record.get("event") or "Unknown Event")
    if kind == "identify":
        return "Profiles"
    if kind == "metric":
        return f"metric-{record.get('metric')}"
    return str(kind)


def file_label(stream: str) -> str:
    """``"Order Placed"`` → ``Order-Placed``, as CleverTap names export files."""
    return _UNSAFE.sub("-", stream.strip()).strip("-") or "unnamed"


def record_day(record: Record, fallback: str) -> str:
    moment = parse_time(record.get("timestamp"))
    return moment.strftime("%Y%m%d") if moment else fallback


@dataclass
class StreamColumns:
    """A stream's column order and (for Parquet) column types, as stored in state."""

    columns: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)

    def learn(self, rows: Sequence[dict[str, Any]]) -> bool:
        """Append new columns, widen types; ``True`` if anything changed."""
        changed = False
        known = set(self.columns)
        for row in rows:
            for column, value in row.items():
                if column not in known:
                    known.add(column)
                    self.columns.append(column)
                    changed = True
                kind = value_type(value)
                if kind is None:
                    continue
                current = self.types.get(column)
                wider = widen(current, kind)
                if wider != current and wider is not None:
                    self.types[column] = wider
                    changed = True
        return changed

    def dump(self) -> dict[str, Any]:
        return {"columns": self.columns, "types": self.types}


@dataclass
class PartFile:
    stream: str
    day: str
    part: int
    final: Path
    temp: Path
    rows: list[dict[str, Any]]


class FilesDestination(Destination):
    """Write records into gzip CSV, JSON lines or Parquet files, one per stream, day
    and batch, named like CleverTap's cloud export; atomically."""

    type = "files"
    max_batch_size: ClassVar[int] = 10_000

    class Options(Options):
        directory: str = Field(
            description="Directory for the files (relative to the config file); created if missing."
        )
        format: Literal["csv", "jsonl", "parquet"] = Field(
            "csv",
            description='"csv" (gzip CSV with a header), "jsonl" (JSON lines) or "parquet" '
            "(needs the `parquet` extra).",
        )
        compression: Literal["gzip", "none"] = Field(
            "gzip", description="For csv and jsonl: gzip (`.csv.gz`, `.json.gz`) or none."
        )
        export_id: int | None = Field(
            None,
            ge=0,
            description="First part of every file name (CleverTap's export request id). "
            "Default: a number derived from the connector name.",
        )
        database_id: int = Field(0, ge=0, description="Last part of every file name.")
        subfolders: bool = Field(
            False, description="One sub-folder per stream, as CleverTap's S3 export lays out."
        )

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.directory = Path(options.directory)
        if not self.directory.is_absolute():
            self.directory = context.base_dir / self.directory
        self.export_id = (
            options.export_id
            if options.export_id is not None
            else zlib.crc32(context.connector.encode())
        )
        self.run_epoch = int(time.time())
        suffix = EXTENSIONS[options.format]
        if options.format != "parquet" and options.compression == "gzip":
            suffix += ".gz"
        self.suffix = suffix
        self.streams: dict[str, StreamColumns] = {}
        self.parts: dict[tuple[str, str], int] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"files-{context.connector}")

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def start(self) -> None:
        if self.options.format == "parquet":
            try:
                import pyarrow.parquet  # noqa: F401
            except ImportError as err:
                raise PermanentError(
                    "format = \"parquet\" needs pyarrow: pip install 'connectord[parquet]'"
                ) from err
        await self._run(self._prepare)

    def _prepare(self) -> None:
        """Create the directory and remove temporary files a crash left behind (they
        were never acknowledged: their records are delivered again)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.export_id}-"
        for stale in self.directory.rglob(f"{prefix}*{writers.TEMP_SUFFIX}"):
            writers.remove_quietly(stale)

    async def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def check(self) -> str:
        await self._run(self._probe)
        return f"can write files into {self.directory}"

    def _probe(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        probe = self.directory / f".connectord-check-{time.time_ns()}{writers.TEMP_SUFFIX}"
        writers.write_jsonl(probe, ["probe"], [{"probe": 1}], compress=False)
        writers.remove_quietly(probe)

    # --- delivery -------------------------------------------------------------------------

    async def send(self, records: Sequence[Record]) -> None:
        loaded_at = now_iso()
        today = loaded_at[:10].replace("-", "")
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            _, row = record_row(record, loaded_at=loaded_at)
            groups[(stream_name(record), record_day(record, today))].append(row)
        changed = await self._learn_columns(groups)
        files = [self._part(stream, day, rows) for (stream, day), rows in groups.items()]
        try:
            await self._run(self._write_all, files)
        except OSError as err:
            raise RetryableError(f"cannot write files into {self.directory}: {err}") from err
        for part in files:
            self.parts[(part.stream, part.day)] = part.part + 1
        if changed:
            await self.context.state.set_many(
                {f"columns:{stream}": self.streams[stream].dump() for stream in changed}
            )
        self.log.debug("files.batch.written", files=len(files), records=len(records))

    async def _learn_columns(self, groups: dict[tuple[str, str], list[dict[str, Any]]]) -> set[str]:
        streams = {stream for stream, _ in groups}
        unknown = [s for s in streams if s not in self.streams]
        if unknown:
            stored = await self.context.state.get_many([f"columns:{s}" for s in unknown])
            for stream in unknown:
                saved = stored.get(f"columns:{stream}") or {}
                self.streams[stream] = StreamColumns(
                    list(saved.get("columns", [])), dict(saved.get("types", {}))
                )
        changed = set()
        for (stream, _), rows in groups.items():
            if self.streams[stream].learn(rows):
                changed.add(stream)
        return changed

    def _part(self, stream: str, day: str, rows: list[dict[str, Any]]) -> PartFile:
        label = file_label(stream)
        folder = self.directory / label if self.options.subfolders else self.directory
        part = self.parts.get((stream, day))
        if part is None:
            part = self._next_free_part(folder, label, day)
        name = (
            f"{self.export_id}-{self.run_epoch}-{label}-{day}-{part}-"
            f"{self.options.database_id}.{self.suffix}"
        )
        final = folder / name
        return PartFile(stream, day, part, final, writers.temp_path(final), rows)

    def _next_free_part(self, folder: Path, label: str, day: str) -> int:
        prefix = f"{self.export_id}-{self.run_epoch}-{label}-{day}-"
        taken = (
            [
                int(p.name[len(prefix) :].split("-", 1)[0])
                for p in folder.glob(f"{prefix}*")
                if p.name[len(prefix) :].split("-", 1)[0].isdigit()
            ]
            if folder.exists()
            else []
        )
        return max(taken, default=-1) + 1

    def _write_all(self, files: list[PartFile]) -> None:
        """Write every temporary file, then rename them all, then fsync the
        directories: a failure before the renames leaves nothing visible."""
        written: list[PartFile] = []
        try:
            for part in files:
                part.final.parent.mkdir(parents=True, exist_ok=True)
                self._write(part)
                written.append(part)
        except BaseException:
            for part in [*written, *files[len(written) :]]:
                writers.remove_quietly(part.temp)
            raise
        for part in written:
            writers.publish(part.temp, part.final)
        for folder in {part.final.parent for part in written}:
            writers.fsync_directory(folder)

    def _write(self, part: PartFile) -> None:
        columns = self.streams[part.stream].columns
        compress = self.options.compression == "gzip"
        if self.options.format == "csv":
            writers.write_csv(part.temp, columns, part.rows, compress=compress)
        elif self.options.format == "jsonl":
            writers.write_jsonl(part.temp, columns, part.rows, compress=compress)
        else:
            types = self.streams[part.stream].types
            writers.write_parquet(part.temp, columns, types, part.rows)
