"""Property-based tests (hypothesis) of the built-in store destinations: ``warehouse`` on
SQLite and on PostgreSQL, and ``files``.

Records of every shape the record model allows: ids of every JSON type (or none), event
names that collide once made SQL- or file-safe, path-like and very long names, very wide
records, very long values, keys that collide after snake_casing. The invariant, per
batch, within a bounded time: each record is either written (its row or line carries
its own ``anonymousId``, so nothing was merged into or overwritten by a neighbour) or
refused for good with a reason (`PermanentError` for the record alone, as the framework
isolates it: a dead letter). Never a `RetryableError` for a record-caused failure, never
another exception, never a file outside the directory, never a changed published file.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectord import PermanentError
from connectord.plugins.files.destination import FilesDestination
from connectord.plugins.warehouse.destination import WarehouseDestination
from connectord.records import problem
from connectord.state import MemoryKeyValue
from connectord.tables import content_id, key_text, record_row
from connectord.testing import make_context
from tests.chaos.support import report
from tests.plugins.clevertap.common import postgres_database

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
BOUND = 60.0  # seconds one batch may take, isolation of dead letters included
TRIED: dict[str, dict[str, int]] = {}

# --- strategies ----------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
message_ids = (
    st.none()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.text(min_size=1, max_size=30)
    | st.builds(lambda: uuid.uuid4().hex * 375)  # 12 KB
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=5), scalars, max_size=3)
)
COLLIDING = ["Order Placed", "Order-Placed", "order_placed", "OrderPlaced", "ORDER PLACED"]
PATHLIKE = ["..", ".", "../x", "../../etc/passwd", "/etc/passwd", ".hidden", "a/b", "a\\b"]
event_names = (
    st.sampled_from(COLLIDING + PATHLIKE + ["tracks", "users", "_discards", "E" * 300])
    | st.builds(lambda n, c: c * n, st.sampled_from([64, 300]), st.sampled_from("EéЖ-."))
    | st.text(min_size=1, max_size=30)
)


def _wide(size: int, kind: str) -> dict[str, Any]:
    value = {"int": 7, "float": 0.5, "text": "x" * 40, "bool": True}[kind]
    return {f"p{i}": value for i in range(size)}


properties = (
    st.dictionaries(st.text(max_size=12), json_values, max_size=6)
    | st.builds(
        _wide, st.sampled_from([450, 1300, 2100]), st.sampled_from(["int", "float", "text"])
    )
    | st.builds(lambda n: {"long": "v" * n}, st.sampled_from([3_000, 200_000]))
    | st.just({"firstName": 1, "first_name": "two", "First Name": 3.5, "first-name": None})
    | st.just({"price": 10})
    | st.just({"price": 9.99})
    | st.just({"price": "about ten"})
)


@st.composite
def records(draw) -> dict[str, Any]:
    kind = draw(st.sampled_from(["track", "track", "track", "identify", "page"]))
    record: dict[str, Any] = {"type": kind, "anonymousId": f"a-{uuid.uuid4().hex}"}
    message_id = draw(message_ids)
    if message_id is not None or draw(st.booleans()):
        record["messageId"] = message_id
    if draw(st.booleans()):
        record["userId"] = draw(message_ids.filter(lambda v: v is not None))
    if kind == "track":
        record["event"] = draw(event_names)
        record["properties"] = draw(properties)
    elif kind == "identify":
        record["traits"] = draw(properties)
    else:
        record["name"] = draw(event_names)
        record["properties"] = draw(properties)
    if draw(st.booleans()):
        record["timestamp"] = draw(
            st.sampled_from(["2024-01-01T00:00:00.000Z", "2024-02-30T00:00:00Z", "garbage"])
        )
    return record


def row_id(record: dict[str, Any]) -> str:
    message_id = record.get("messageId")
    return key_text(message_id) if message_id is not None else content_id(record)


batches = st.lists(records(), min_size=1, max_size=6, unique_by=row_id).filter(
    lambda batch: all(problem(r) is None for r in batch)
)

# --- delivering as the framework does ----------------------------------------------------------


async def outcome(destination: Any, batch: list[dict]) -> tuple[set[int], dict[int, str]]:
    """Send ``batch``; on `PermanentError` isolate each record alone, as the framework's
    split does. Anything else escaping (a retryable error, a bug) fails the test."""
    try:
        result = await destination.send(batch)
    except PermanentError:
        written, dead = set(), {}
        for index, record in enumerate(batch):
            try:
                single = await destination.send([record])
            except PermanentError as err:
                assert str(err), "a dead letter needs a reason"
                dead[index] = str(err)
                continue
            assert single is None or not single.retry
            if single is not None and single.rejected:
                dead[index] = single.rejected[0]
            else:
                written.add(index)
        return written, dead
    assert result is None or not result.retry, "a record-caused failure must not be retried"
    rejected = dict(result.rejected) if result is not None else {}
    assert all(rejected.values()), "a dead letter needs a reason"
    return set(range(len(batch))) - set(rejected), rejected


def tally(name: str, written: int, dead: dict[int, str]) -> None:
    counts = TRIED.setdefault(name, {"batches": 0, "written": 0, "dead": 0})
    counts["batches"] += 1
    counts["written"] += written
    counts["dead"] += len(dead)
    report(f"hostile destination {name}", **counts)
    for reason in dead.values():
        report(f"hostile destination {name} dead letter", reason=reason[:200])


async def deliver_timed(cls: type, options: dict, batch: list[dict], **context: Any) -> Any:
    started = time.monotonic()
    async with make_context("hostile", **context) as ctx:
        destination = cls(cls.Options.model_validate(options), ctx)
        await destination.start()
        try:
            written, dead = await outcome(destination, batch)
        finally:
            await destination.close()
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"one batch took {elapsed:.1f} s"
    return written, dead


# --- warehouse ---------------------------------------------------------------------------------


def stored_marker_sqlite(path: Path, table: str, key: str) -> Any:
    with sqlite3.connect(path) as db:
        found = db.execute(f'SELECT anonymous_id FROM "{table}" WHERE id = ?', [key]).fetchall()
    return found


def stored_marker_postgres(url: str, table: str, key: str) -> Any:
    with psycopg.connect(url) as db:
        return db.execute(
            psycopg.sql.SQL("SELECT anonymous_id FROM {} WHERE id = %s").format(
                psycopg.sql.Identifier(table)
            ),
            [key],
        ).fetchall()


def check_rows(batch: list[dict], written: set[int], lookup: Any) -> None:
    for index in written:
        record = batch[index]
        table, _ = record_row(record, loaded_at="2024-01-01T00:00:00Z")
        found = lookup(table, row_id(record))
        assert found == [(record["anonymousId"],)], (table, record.get("messageId"), found)


@EXAMPLES
@given(batch=batches)
def test_warehouse_sqlite_writes_or_dead_letters_every_record(tmp_path_factory, batch):
    path = tmp_path_factory.mktemp("wh") / "w.db"
    written, dead = asyncio.run(
        deliver_timed(WarehouseDestination, {"url": f"sqlite:///{path}"}, batch)
    )
    check_rows(batch, written, lambda t, k: stored_marker_sqlite(path, t, k))
    tally("warehouse sqlite", len(written), dead)


@pytest.fixture(scope="module")
def shared_postgres() -> Iterator[str]:
    """One database for every example: later batches meet the columns earlier ones
    typed (the type-mismatch policy under test)."""
    with postgres_database() as url:
        yield url


@EXAMPLES
@given(batch=batches)
def test_warehouse_postgres_writes_or_dead_letters_every_record(shared_postgres, batch):
    written, dead = asyncio.run(
        deliver_timed(WarehouseDestination, {"url": shared_postgres}, batch)
    )
    check_rows(batch, written, lambda t, k: stored_marker_postgres(shared_postgres, t, k))
    tally("warehouse postgres", len(written), dead)


# --- files -------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[Path, str]:
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


csv.field_size_limit(sys.maxsize)  # values of 200 KB are part of the test


def lines(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def files_home(tmp_path_factory) -> tuple[Path, MemoryKeyValue]:
    """One directory and one state for every example, as a long-running connector."""
    return tmp_path_factory.mktemp("files"), MemoryKeyValue()


@EXAMPLES
@given(batch=batches, subfolders=st.booleans())
def test_files_write_or_dead_letter_every_record_and_never_overwrite(files_home, batch, subfolders):
    root, state = files_home
    out = root / "out"
    before = snapshot(root)
    options = {"directory": "out", "subfolders": subfolders, "max_columns": 50}
    written, dead = asyncio.run(
        deliver_timed(FilesDestination, options, batch, base_dir=root, state=state)
    )
    after = snapshot(root)
    assert {p: h for p, h in after.items() if p in before} == before, "a file was changed"
    assert all(out in p.parents for p in after), "a file outside the directory"
    new_lines = [line for p in after if p not in before for line in lines(p)]
    markers = sorted(line["anonymous_id"] for line in new_lines)
    assert markers == sorted(batch[i]["anonymousId"] for i in written)
    for line in new_lines:
        assert len(line) <= 51 and orjson.loads(line.get("_extra") or "{}") is not None
    tally("files", len(written), dead)
