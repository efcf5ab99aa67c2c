"""The push tracking log file: a ZIP of ``;``-separated, quoted CSV (pure parsing).

Pushwoosh documents eight columns, in this order
(https://docs.pushwoosh.com/developer/api-reference/statistics-api/push-tracking)::

    //timestamp;tracking_code;target_id;hwid;status;description;appCode;payload
    "2021-04-20 13:01:01";T-D6C2-…;09913CFD-…;09913CFD-…;delivered;Success;C90C0-0E786;"{""aps"":…}"

- the header line may start with ``//``; fields may be quoted, with ``""`` for a quote
  inside (``payload`` is JSON, full of ``;`` and quotes), so this is real CSV, not
  ``split(";")``;
- ``target_id`` is the *device identifier* the push was addressed to (a hwid or a push
  token), never a user id;
- older logs have only the first six columns; a header line, when present, decides.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

TRACKING_COLUMNS = (
    "timestamp",
    "tracking_code",
    "target_id",
    "hwid",
    "status",
    "description",
    "appcode",
    "payload",
)
"""Columns of the push tracking log CSV, in the documented order (lower-cased)."""

_HEADER_MARKERS = {"tracking_code", "status"}


def iter_tracking_rows(path: Path | IO[bytes]) -> Iterator[dict[str, str]]:
    """Rows of a tracking-log ZIP (a path or a seekable file), every CSV member."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            with archive.open(info) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                yield from csv_rows(text)


def csv_rows(text: IO[str]) -> Iterator[dict[str, str]]:
    """Rows of one tracking-log CSV as dicts keyed by lower-cased column names.

    Without a header the documented order applies; cells beyond the known columns are
    kept under ``extra_<n>`` rather than glued onto another column.
    """
    reader = csv.reader(text, delimiter=";", quotechar='"', doublequote=True, strict=False)
    header: list[str] | None = None
    for index, row in enumerate(reader):
        if not row or all(not cell.strip() for cell in row):
            continue
        if index == 0 and _is_header(row):
            header = [cell.strip().lstrip("/").strip().lower() for cell in row]
            continue
        names = header or list(TRACKING_COLUMNS)
        item = {name: cell.strip() for name, cell in zip(names, row, strict=False)}
        for extra, cell in enumerate(row[len(names) :], start=len(names)):
            item[f"extra_{extra}"] = cell.strip()
        yield item


def _is_header(row: list[str]) -> bool:
    cells = {cell.strip().lstrip("/").strip().lower() for cell in row}
    return cells >= _HEADER_MARKERS


def parse_payload(value: str | None) -> Any:
    """The ``payload`` column as JSON when it is JSON, else the text (or ``None``)."""
    if not value:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
