"""Records as table rows, the way Segment lays them out in a warehouse.

Public for plugins (``connectord.tables``): any destination that writes records as
rows — SQL warehouses, CSV or Parquet files — uses this one layout, so a table loaded
by one destination reads the same as one written by another, and column types are
chosen by the same rule (`value_type`, `widen`).

- ``track`` → ``tracks`` (every event) and one table per event name (its properties
  as columns); ``identify`` → ``identifies`` and ``users`` (latest traits per user);
  ``group`` → ``groups``; ``page``/``screen`` → ``pages``/``screens``; ``alias`` →
  ``aliases``; ``audience`` → ``audiences``; ``metric`` → ``metric_<name>``.
- Nested objects are flattened to ``parent_child`` columns, arrays stored as JSON text,
  camelCase names become snake_case, and names are made SQL-safe and stable.
- Each row has ``id`` (the record's ``messageId``; re-loading upserts instead of
  duplicating), ``_loaded_at`` and ``uuid_ts`` (Segment's name for the same load time).
- Ids are always text (`key_text`): a numeric ``messageId`` is its JSON text, a missing
  one is derived from the record's content, an id over `MAX_KEY_BYTES` is hashed. So two
  distinct records never share a row, and the key column never changes type.
- Two keys that land on the same column name (``firstName`` and ``first_name``) never
  overwrite each other: the later one goes, under its original key, into the row's
  `EXTRA` object (stored as one JSON column by the backends).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from .records import parse_time

MAX_NAME = 63  # PostgreSQL's identifier limit; SQLite has none
MAX_KEY_BYTES = 512  # Segment's string column size; far below PostgreSQL's index row limit
EXTRA = "_extra"  # one JSON column for values without a column of their own
MAX_DEPTH = 4
RESERVED_TABLES = frozenset(
    {"tracks", "identifies", "users", "groups", "pages", "screens", "aliases", "audiences"}
)
# Column types, named as PostgreSQL names them; other stores map them to their own.
BOOLEAN, BIGINT, DOUBLE, TIMESTAMPTZ, TEXT = (
    "boolean",
    "bigint",
    "double precision",
    "timestamp with time zone",
    "text",
)
_NUMERIC = frozenset({BIGINT, DOUBLE})
_ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d(:?\d\d)?)$")


def value_type(value: Any) -> str | None:
    """The PostgreSQL type a value asks for; ``None`` for NULL. Text is a time only if
    it is a real ISO 8601 instant (``2024-13-45T..`` stays text)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return BIGINT
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str) and is_time(value):
        return TIMESTAMPTZ
    return TEXT


@functools.lru_cache(maxsize=8192)  # load times and bulk timestamps repeat
def is_time(text: str) -> bool:
    """Whether text is a real ISO 8601 instant (a `TIMESTAMPTZ` value)."""
    if not _ISO_TIME.match(text):
        return False
    try:
        datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return False
    return True


def widen(current: str | None, incoming: str | None) -> str | None:
    """The narrowest type that holds both: bigint and double → double; any other mix
    → text. Used to type a new column from the values of one batch."""
    if current is None or current == incoming:
        return incoming if current is None else current
    if incoming is None:
        return current
    if current in _NUMERIC and incoming in _NUMERIC:
        return DOUBLE
    return TEXT


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_UNSAFE = re.compile(r"[^a-z0-9_]+")

_COMMON = (
    ("user_id", "userId"),
    ("anonymous_id", "anonymousId"),
    ("timestamp", "timestamp"),
    ("original_timestamp", "originalTimestamp"),
    ("sent_at", "sentAt"),
    ("received_at", "receivedAt"),
)


@functools.lru_cache(maxsize=65536)
def sql_name(text: str) -> str:
    """``"Order Completed"`` → ``order_completed``; ``"firstName"`` → ``first_name``.

    Cached: the same few hundred names come back for every row."""
    name = _CAMEL.sub("_", str(text).strip()).lower()
    name = _UNSAFE.sub("_", name).strip("_")
    name = re.sub(r"_+", "_", name) or "_"
    if name[0].isdigit():
        name = "_" + name
    if len(name) > MAX_NAME:  # keep names that differ after 63 characters apart
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}_{digest}"
    return name


def json_text(value: Any, *, sort: bool = False) -> str:
    """JSON text of any JSON value; integers beyond 64 bits (valid JSON, which orjson
    refuses) go through the standard library instead of failing the record."""
    try:
        option = orjson.OPT_SORT_KEYS if sort else None
        return orjson.dumps(value, default=str, option=option).decode()
    except TypeError:
        return json.dumps(value, default=str, sort_keys=sort, ensure_ascii=False)


def key_text(value: Any) -> str:
    """An id as the text a key column holds: strings as they are, other JSON values as
    their JSON text (``5`` → ``"5"``); ids longer than `MAX_KEY_BYTES` as
    ``sha256:<hex>`` of that text (deterministic, so re-loading still upserts)."""
    text = value if isinstance(value, str) else json_text(value)
    if len(text) > MAX_KEY_BYTES // 4 and len(text.encode()) > MAX_KEY_BYTES:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def content_id(record: dict[str, Any]) -> str:
    """The id of a record without a ``messageId``: a digest of its content, so distinct
    records get distinct rows and a re-delivery of the same record upserts."""
    body = json_text(record, sort=True).encode()
    return "content:" + hashlib.sha256(body).hexdigest()[:40]


@dataclass
class Rows:
    """Rows grouped by table, with the key each table upserts on."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def add(self, table: str, row: dict[str, Any], key: str = "id") -> None:
        self.tables.setdefault(table, []).append(row)
        self.keys[table] = key


def flatten(
    value: Any, prefix: str = "", depth: int = 0, out: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"a": {"bC": 1}, "l": [1]}`` → ``{"a_b_c": 1, "l": "[1]"}``."""
    out = {} if out is None else out
    if not isinstance(value, dict):
        return out
    for key, item in value.items():
        name = _column_name(prefix, key)
        kind = item.__class__
        if kind is dict and item and depth < MAX_DEPTH:
            flatten(item, name, depth + 1, out)
            continue
        cellvalue = item if kind in _PLAIN else cell(item)
        if name in out:  # another key already maps to this column: keep both values
            spill(out, f"{prefix}.{key}" if prefix else str(key), cellvalue)
        else:
            out[name] = cellvalue
    return out


def spill(row: dict[str, Any], key: str, value: Any) -> None:
    """Keep ``value`` in the row's `EXTRA` object under ``key`` (never overwriting)."""
    put_extra(row.setdefault(EXTRA, {}), key, value)


def put_extra(extra: dict[str, Any], key: str, value: Any) -> None:
    """``extra[key] = value``, or under ``key'`` (``key''``, ...) if ``key`` is taken:
    two values that share a name both stay."""
    while key in extra:
        key += "'"
    extra[key] = value


_PLAIN = frozenset({str, float, bool, type(None)})
"""Types a column holds as they are (ints need a range check: see `cell`)."""


@functools.lru_cache(maxsize=65536)
def _column_name(prefix: str, key: Any) -> str:
    return sql_name(f"{prefix}_{sql_name(key)}" if prefix else key)


def cell(value: Any) -> Any:
    """A value a column can hold: scalars as they are, the rest as JSON text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            return str(value)
        return value
    return json_text(value)


_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def timestamp_text(value: Any) -> Any:
    """Times as ISO 8601 UTC text, so that both SQLite and PostgreSQL sort them right."""
    if value.__class__ is str and _CANONICAL_TIME.fullmatch(value):
        # The records' own format (``iso``): same result as the general path, faster.
        return value[:19] + "Z" if value[20:23] == "000" else value[:23] + "000Z"
    moment = parse_time(value) if value is not None else None
    return moment.isoformat().replace("+00:00", "Z") if moment else value


def _base(record: dict[str, Any], loaded_at: str) -> dict[str, Any]:
    message_id = record.get("messageId")
    row: dict[str, Any] = {
        "id": key_text(message_id) if message_id is not None else content_id(record)
    }
    for column, key in _COMMON:
        value = record.get(key)
        if value is not None:
            row[column] = (
                timestamp_text(value) if column.endswith(("timestamp", "_at")) else cell(value)
            )
    flatten(record.get("context") or {}, "context", 0, row)
    row["_loaded_at"] = loaded_at
    row["uuid_ts"] = loaded_at
    return row


def _merge(row: dict[str, Any], payload: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Add payload columns; a name the base row already uses gets ``prefix_``; a name
    still taken keeps its value in `EXTRA`."""
    flat = flatten(payload)
    collided = flat.pop(EXTRA, None)
    if EXTRA in row:  # the base row's object may be shared with another table's row
        row[EXTRA] = dict(row[EXTRA])
    for column, value in flat.items():
        name = sql_name(f"{prefix}_{column}") if column in row else column
        if name in row:
            spill(row, column, value)
        else:
            row[name] = value
    for key, value in (collided or {}).items():
        spill(row, key, value)
    return row


def event_table(event: str, prefix: str = "") -> str:
    name = sql_name(f"{prefix}{event}")
    return f"{name}_events"[:MAX_NAME] if name in RESERVED_TABLES else name


def rows_for(
    records: list[dict[str, Any]],
    *,
    loaded_at: str,
    event_prefix: str = "",
    tracks_table: bool = True,
) -> Rows:
    """Lay a batch of records out as rows per table."""
    rows = Rows()
    for record in records:
        add_record(rows, record, loaded_at, event_prefix, tracks_table)
    return rows


def record_row(
    record: dict[str, Any], *, loaded_at: str, event_prefix: str = ""
) -> tuple[str, dict[str, Any]]:
    """The one table and row that hold a record on its own (no ``tracks``/``users``
    copies): a track's event table, ``identifies``, ``metric_<name>``, ... Used by
    stores that write a file per stream instead of tables."""
    rows = Rows()
    add_record(rows, record, loaded_at, event_prefix, False)
    table = next(iter(rows.tables))
    return table, rows.tables[table][0]


def add_record(
    rows: Rows, record: dict[str, Any], loaded_at: str, event_prefix: str, tracks_table: bool
) -> None:
    kind = record.get("type")
    base = _base(record, loaded_at)
    if kind == "track":
        event = str(record.get("event"))
        common = {**base, "event": event_table(event, event_prefix), "event_text": event}
        if tracks_table:
            rows.add("tracks", dict(common))
        rows.add(
            event_table(event, event_prefix),
            _merge(common, record.get("properties") or {}, "property"),
        )
    elif kind == "identify":
        traits = record.get("traits") or {}
        rows.add("identifies", _merge(dict(base), traits, "trait"))
        user = record.get("userId")
        if user is not None:
            user_row = _merge(
                {
                    "id": key_text(user),
                    "_loaded_at": loaded_at,
                    "uuid_ts": loaded_at,
                    "received_at": base.get("received_at"),
                },
                traits,
                "trait",
            )
            rows.add("users", user_row)
    elif kind == "group":
        rows.add(
            "groups",
            _merge(
                {**base, "group_id": cell(record.get("groupId"))},
                record.get("traits") or {},
                "trait",
            ),
        )
    elif kind in ("page", "screen"):
        row = {**base, "name": record.get("name"), "category": record.get("category")}
        rows.add(f"{kind}s", _merge(row, record.get("properties") or {}, "property"))
    elif kind == "alias":
        rows.add("aliases", {**base, "previous_id": cell(record.get("previousId"))})
    elif kind == "audience":
        audience = record.get("audience") or {}
        row = {
            **base,
            "audience_id": cell(audience.get("id")),
            "audience_name": audience.get("name"),
            "action": record.get("action"),
        }
        rows.add("audiences", _merge(row, record.get("traits") or {}, "trait"))
    elif kind == "metric":
        row = {**base, "metric": record.get("metric"), "period": record.get("period")}
        _merge(row, record.get("dimensions") or {}, "dimension")
        _merge(row, record.get("values") or {}, "value")
        rows.add(sql_name(f"metric_{record.get('metric')}"), row)
