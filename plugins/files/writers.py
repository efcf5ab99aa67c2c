"""Write one part file atomically: a hidden temporary name, fsync, rename, fsync the
directory. Pure file I/O on the calling thread; the destination runs it on its own."""

from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import io
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from connectord.tables import BIGINT, BOOLEAN, DOUBLE, TIMESTAMPTZ

FILE_MODE = 0o640
TEMP_SUFFIX = ".tmp"


def temp_path(final: Path) -> Path:
    """``.<name>.tmp`` beside the final file: hidden, and no ``*.csv.gz`` wildcard or
    loader matches it."""
    return final.with_name(f".{final.name}{TEMP_SUFFIX}")


def _open_new(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # exactly 0640, whatever the umask
    return fd


def csv_text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if isinstance(value, str) else str(value)


def write_csv(
    path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]], *, compress: bool
) -> None:
    """CSV with a header row; gzip-compressed unless told otherwise."""
    with os.fdopen(_open_new(path), "wb") as raw:
        stream: Any = (
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) if compress else raw
        )
        with contextlib.ExitStack() as stack:
            if compress:
                stack.enter_context(stream)
            text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
            writer = csv.writer(text, lineterminator="\n")
            # With "\n" line ends the csv module leaves a bare "\r" unquoted, and every
            # reader splits the row there: rows holding one are written fully quoted.
            quoted = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
            writer.writerow(columns)
            for row in rows:
                cells = [csv_text(row.get(c)) for c in columns]
                (quoted if any("\r" in cell for cell in cells) else writer).writerow(cells)
            text.flush()
            text.detach()
        raw.flush()
        os.fsync(raw.fileno())


def write_jsonl(
    path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]], *, compress: bool
) -> None:
    """One JSON object per line, keys in the stream's column order."""
    lines = b"".join(orjson.dumps({c: row[c] for c in columns if c in row}) + b"\n" for row in rows)
    data = gzip.compress(lines, compresslevel=6, mtime=0) if compress else lines
    with os.fdopen(_open_new(path), "wb") as raw:
        raw.write(data)
        raw.flush()
        os.fsync(raw.fileno())


def write_parquet(
    path: Path, columns: Sequence[str], types: dict[str, str], rows: Sequence[dict[str, Any]]
) -> None:
    """Parquet (snappy) with typed columns: see `arrow_type`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [pa.field(c, arrow_type(types.get(c))) for c in columns]
    arrays = [
        pa.array([arrow_value(row.get(f.name), types.get(f.name)) for row in rows], type=f.type)
        for f in fields
    ]
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    with os.fdopen(_open_new(path), "wb") as raw:
        pq.write_table(table, raw, compression="snappy")
        raw.flush()
        os.fsync(raw.fileno())


def arrow_type(kind: str | None) -> Any:
    """The warehouse's column types in Arrow: boolean, int64, double, timestamp[ms, UTC]
    for ISO 8601 text, string for everything else."""
    import pyarrow as pa

    return {
        BOOLEAN: pa.bool_(),
        BIGINT: pa.int64(),
        DOUBLE: pa.float64(),
        TIMESTAMPTZ: pa.timestamp("ms", tz="UTC"),
    }.get(kind or "", pa.string())


def arrow_value(value: Any, kind: str | None) -> Any:
    if value is None:
        return None
    if kind == TIMESTAMPTZ:
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    if kind == DOUBLE:
        return float(value)
    if kind in (BIGINT, BOOLEAN):
        return value
    return value if isinstance(value, str) else csv_text(value)


def publish(temp: Path, final: Path) -> bool:
    """Give ``temp`` the name ``final`` unless that name exists; ``False`` if it does.

    A hard link fails with ``EEXIST`` rather than replace (``link(2)``), unlike
    ``rename``. On file systems without hard links, an exclusively created
    placeholder claims the name before the rename. The directory is fsynced by the
    caller once per batch."""
    try:
        os.link(temp, final)
    except FileExistsError:
        return False
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        try:
            os.close(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        except FileExistsError:
            return False
        os.replace(temp, final)
        return True
    os.unlink(temp)
    return True


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
