"""``files``: records into gzip CSV, JSON lines or Parquet files in a directory, or
objects in an S3 or GCS bucket (``url``; naming and uploads in `objects`, stores in
`buckets`, each stream's column order in `columns`).

Files are named like CleverTap's cloud data export, so loaders written for it
(BigQuery/GCS wildcards such as ``*-Charged-*.csv.gz``) keep working::

    <export id>-<run epoch>-<Stream-Name>-<yyyymmdd>-<part>-<database id>.<ext>

One stream per file label: the event name made file-safe (``Order Placed`` →
``Order-Placed``; names that become the same label share the stream, and the
``event_text`` column keeps each record's own name), ``Profiles`` for identify records,
``metric-<name>`` for metrics. A label is at most `MAX_LABEL` characters (longer ones end
in a hash of the whole name), never starts with a dot and never contains a path
separator, so no file is ever written outside ``directory``. ``yyyymmdd`` is the UTC day
of the record's ``timestamp``; ``part`` counts the files of one stream and day.

A batch is acknowledged only after all its files are complete under their final names:
each is written under a hidden temporary name of its own, fsynced, then published with
no-replace semantics (a hard link, which fails rather than overwrite), and the directory
fsynced. A final name is never reused: if it exists, the next part number is taken.

Columns are the warehouse's (``connectord.tables.record_row``). Each stream keeps one column
order, stored in the connector's state: columns that appear later are appended at the
end, so every part's header starts with the previous part's columns. A stream has at
most ``max_columns`` columns; the values of further keys go, by column name, into one
JSON column ``_extra`` (appended once, like any other column).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from connectord import Destination, PermanentError, Record, RetryableError
from connectord.records import now_iso, parse_time
from connectord.tables import record_row

from . import objects, writers
from .buckets import Bucket, BucketUrl, open_bucket
from .columns import ColumnBook
from .options import FilesOptions

EXTENSIONS = {"csv": "csv", "jsonl": "json", "parquet": "parquet"}
MAX_LABEL = 100  # the whole name stays far below NAME_MAX (255 bytes)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]+")
_RECORD_FAULT = frozenset({errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ})


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
    """``"Order Placed"`` → ``Order-Placed``, as CleverTap names export files. Only
    ``A-Za-z0-9_.-``, no leading or trailing dot or dash (so never ``.`` or ``..``),
    at most `MAX_LABEL` characters: a longer name keeps its start and ends in a hash
    of the whole name, so distinct long names stay distinct."""
    label = _UNSAFE.sub("-", stream.strip()).strip("-.") or "unnamed"
    if len(label) > MAX_LABEL:
        digest = hashlib.sha256(stream.encode()).hexdigest()[:12]
        label = f"{label[: MAX_LABEL - 13].rstrip('-.')}-{digest}"
    return label


def record_day(record: Record, fallback: str) -> str:
    moment = parse_time(record.get("timestamp"))
    return moment.strftime("%Y%m%d") if moment else fallback


@dataclass
class PartFile:
    stream: str  # the file label
    day: str
    part: int
    folder: Path
    temp: Path
    rows: list[dict[str, Any]]
    final: Path | None = None  # set once published


class FilesDestination(Destination):
    """Write records into gzip CSV, JSON lines or Parquet files, one per stream, day
    and batch, named like CleverTap's cloud export; atomically."""

    type = "files"
    max_batch_size: ClassVar[int] = 10_000
    Options = FilesOptions

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.bucket_url = BucketUrl.parse(options.url) if options.url else None
        self.bucket: Bucket | None = None
        self.spool: objects.Spool | None = None
        self.layout = "stream" if options.subfolders else options.layout
        self.directory = Path(options.directory or ".")
        if not self.directory.is_absolute():
            self.directory = context.base_dir / self.directory
        self.directory = Path(os.path.abspath(self.directory))
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
        self.columns = ColumnBook(context.state, options.max_columns)
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
        if self.bucket_url is not None:
            self.bucket = open_bucket(self.bucket_url, self.options, self._run)
            self.spool = objects.Spool()
        else:
            await self._run(self._prepare)

    def _prepare(self) -> None:
        """Create the directory and remove temporary files a crash left behind (they
        were never acknowledged: their records are delivered again)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.export_id}-"
        for stale in self.directory.rglob(f"{prefix}*{writers.TEMP_SUFFIX}"):
            writers.remove_quietly(stale)

    async def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
        self._pool.shutdown(wait=True)

    async def check(self) -> str:
        if self.bucket_url is not None:
            bucket = self.bucket or open_bucket(self.bucket_url, self.options, self._run)
            return await objects.probe(bucket)
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
        names: dict[str, str] = {}
        for record in records:
            _, row = record_row(record, loaded_at=loaded_at)
            stream = stream_name(record)
            label = file_label(stream)
            names.setdefault(label, stream)
            groups[(label, record_day(record, today))].append(row)
        await self.columns.learn(groups, names)
        if self.bucket is not None:
            await self._upload_all(groups)
            await self.columns.save()
            self.log.debug("files.batch.uploaded", objects=len(groups), records=len(records))
            return
        files = [self._part(label, day, rows) for (label, day), rows in groups.items()]
        try:
            await self._run(self._write_all, files)
        except OSError as err:
            raise file_error(self.directory, err) from err
        for part in files:
            self.parts[(part.stream, part.day)] = part.part + 1
        await self.columns.save()
        self.log.debug("files.batch.written", files=len(files), records=len(records))

    async def _upload_all(self, groups: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        """Encode and upload each part under its batch-derived name (see `objects`). An
        object left by an earlier attempt at the same batch is that batch: kept as is."""
        assert self.bucket is not None and self.bucket_url is not None
        for (label, day), rows in groups.items():
            name = (
                f"{self.export_id}-{objects.day_epoch(day)}-{label}-{day}-"
                f"{objects.batch_key(rows)}-{self.options.database_id}.{self.suffix}"
            )
            data = await self._run(self._encode, label, rows, name)
            key = objects.object_key(self.bucket_url, self.layout, label, day, name)
            if not await self.bucket.put_new(key, data):
                self.log.info("files.object.exists", key=key)

    def _encode(self, label: str, rows: list[dict[str, Any]], name: str) -> bytes:
        assert self.spool is not None
        path = Path(self.spool.file(name))
        try:
            self._write(PartFile(label, "", 0, path.parent, path, rows))
            return path.read_bytes()
        finally:
            writers.remove_quietly(path)

    def _part(self, label: str, day: str, rows: list[dict[str, Any]]) -> PartFile:
        folder = self.directory.joinpath(*objects.folder_parts(self.layout, label, day))
        if os.path.dirname(os.path.abspath(folder / "x")) != str(folder):
            raise PermanentError(f"stream {label!r} would leave {self.directory}")
        part = self.parts.get((label, day))
        if part is None:
            part = self._next_free_part(folder, label, day)
        name = self._name(label, day, part)
        temp = folder / f".{name}.{os.getpid()}-{time.monotonic_ns()}{writers.TEMP_SUFFIX}"
        return PartFile(label, day, part, folder, temp, rows)

    def _name(self, label: str, day: str, part: int) -> str:
        return (
            f"{self.export_id}-{self.run_epoch}-{label}-{day}-{part}-"
            f"{self.options.database_id}.{self.suffix}"
        )

    def _next_free_part(self, folder: Path, label: str, day: str) -> int:
        prefix = f"{self.export_id}-{self.run_epoch}-{label}-{day}-"
        taken = (
            [
                int(p.name[len(prefix) :].split("-", 1)[0])
                for p in folder.glob(f"{glob_escape(prefix)}*")
                if p.name[len(prefix) :].split("-", 1)[0].isdigit()
            ]
            if folder.exists()
            else []
        )
        return max(taken, default=-1) + 1

    def _write_all(self, files: list[PartFile]) -> None:
        """Write every temporary file, then publish them all, then fsync the
        directories. A failure anywhere removes this batch's files, published ones
        included (they were never acknowledged), so a retry cannot duplicate them."""
        try:
            for part in files:
                part.folder.mkdir(parents=True, exist_ok=True)
                self._write(part)
            for part in files:
                self._publish(part)
            for folder in {part.folder for part in files}:
                writers.fsync_directory(folder)
        except BaseException:
            for part in files:
                writers.remove_quietly(part.temp)
                if part.final is not None:
                    writers.remove_quietly(part.final)
            raise

    def _publish(self, part: PartFile) -> None:
        """Publish under the first free part number: never over an existing file."""
        while True:
            final = part.folder / self._name(part.stream, part.day, part.part)
            if writers.publish(part.temp, final):
                part.final = final
                return
            part.part += 1

    def _write(self, part: PartFile) -> None:
        columns = self.columns[part.stream].columns
        compress = self.options.compression == "gzip"
        if self.options.format == "csv":
            writers.write_csv(part.temp, columns, part.rows, compress=compress)
        elif self.options.format == "jsonl":
            writers.write_jsonl(part.temp, columns, part.rows, compress=compress)
        else:
            types = self.columns[part.stream].types
            writers.write_parquet(part.temp, columns, types, part.rows)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def file_error(directory: Path, err: OSError) -> Exception:
    """A name the file system refuses is the record's fault (dead letter once the
    framework isolated it); a full, read-only or failing disk is the store's (retry)."""
    message = f"cannot write files into {directory}: {err.strerror or err}"
    if err.errno in _RECORD_FAULT:
        return PermanentError(message)
    return RetryableError(message)
