"""Tag values and the tracking-log file, as the Pushwoosh emulator handles them (pure).

Tag type ids and value formats: https://docs.pushwoosh.com/developer/api-reference/tags
and the Device API's registerDevice example. The tracking-log file: eight
``;``-separated, quoted columns
(https://docs.pushwoosh.com/developer/api-reference/statistics-api/push-tracking).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any

import orjson

from tests.plugins.pushwoosh.emulator_v2 import ArgumentError

INTEGER, STRING, LIST, DATE, BOOLEAN, DECIMAL, VERSION = 1, 2, 3, 4, 5, 6, 7
TYPE_NAMES = {
    INTEGER: "Integer",
    STRING: "String",
    LIST: "List",
    DATE: "Date",
    BOOLEAN: "Boolean",
    DECIMAL: "Decimal",
    VERSION: "Version",
}
_DATE_VALUE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?$")
_VERSION_VALUE = re.compile(r"^\d{1,4}(\.\d{1,4}){0,3}$")
TRACKING_COLUMNS = (
    "timestamp",
    "tracking_code",
    "target_id",
    "hwid",
    "status",
    "description",
    "appCode",
    "payload",
)
TRACKING_HEADER = "//" + ";".join(TRACKING_COLUMNS)
"""The documented header line (developer/api-reference/statistics-api/push-tracking)."""


# --- tag values ---------------------------------------------------------------------------


def inferred_type(value: Any) -> int:
    """The type Pushwoosh gives a tag it creates on the fly from a JSON value."""
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return DECIMAL
    if isinstance(value, list):
        return LIST
    return STRING


def check_value(name: str, kind: int, value: Any) -> None:
    ok = {
        INTEGER: isinstance(value, int) and not isinstance(value, bool),
        STRING: isinstance(value, str),
        LIST: isinstance(value, list) and all(isinstance(v, str) for v in value),
        DATE: (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, str) and bool(_DATE_VALUE.match(value))),
        BOOLEAN: isinstance(value, bool),
        DECIMAL: isinstance(value, (int, float)) and not isinstance(value, bool),
        VERSION: isinstance(value, str) and bool(_VERSION_VALUE.match(value)),
    }[kind]
    if not ok:
        raise ArgumentError(
            f"Tag {name} has type {TYPE_NAMES[kind]}; value {orjson.dumps(value).decode()} "
            "does not match"
        )


def tracking_zip(rows: list[dict[str, str]]) -> bytes:
    """A tracking-log ZIP: one ``;``-separated CSV with the eight documented columns,
    quoted as in the documented example (timestamp and payload in quotes, ``""``)."""
    text = io.StringIO()
    text.write(TRACKING_HEADER + "\n")
    writer = csv.writer(text, delimiter=";", quotechar='"', lineterminator="\n")
    for row in rows:
        writer.writerow(row.get(c, "") for c in TRACKING_COLUMNS)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tracking_log.csv", text.getvalue())
    return buffer.getvalue()
