"""Hostile records into the ``warehouse``: ids of any JSON type, wide and long records,
type changes under a view. Each record ends in a row (or a dead letter with a reason),
never merged into a neighbour and never retried forever."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator

import orjson
import psycopg
import pytest
from sqlite_utils import Database

from connectord import PermanentError, RetryableError
from connectord.plugins.warehouse.backends import DEFAULT_BUDGET
from connectord.plugins.warehouse.destination import WarehouseDestination
from connectord.plugins.warehouse.errors import postgres_error, sqlite_error
from connectord.tables import MAX_KEY_BYTES, key_text
from connectord.testing import deliver
from tests.plugins.clevertap.common import postgres_database
from tests.plugins.warehouse.stores import execute, first_row, query


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def rows(path, sql, *args):
    with sqlite3.connect(path) as db:
        return db.execute(sql, args).fetchall()


def pg(url, sql, *args):
    with psycopg.connect(url) as db:
        return db.execute(sql, args).fetchall()


def pg_exec(url, sql):
    with psycopg.connect(url) as db:
        db.execute(sql)


def track(message_id, i: int, event: str = "Clicked", **props) -> dict:
    record = {
        "type": "track",
        "event": event,
        "userId": f"u{i}",
        "timestamp": f"2024-01-01T00:00:{i % 60:02d}.000Z",
        "properties": {"n": i, **props},
    }
    if message_id is not None:
        record["messageId"] = message_id
    return record


# --- finding 1: null and numeric messageIds ------------------------------------------------


async def test_null_message_ids_are_never_merged_and_reloading_does_not_duplicate(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    batch = [{**track(None, i), "messageId": None} for i in range(50)]
    for _ in range(2):  # a re-delivery upserts the same rows
        result = await deliver(WarehouseDestination, {"url": url}, batch)
        assert not result.rejected and not result.retry
    assert rows(tmp_path / "w.db", "SELECT count(*), count(DISTINCT id) FROM clicked") == [(50, 50)]
    assert rows(tmp_path / "w.db", "SELECT count(*) FROM tracks") == [(50,)]


async def test_a_numeric_first_message_id_does_not_type_the_key_column(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    await deliver(WarehouseDestination, {"url": url}, [track(7, 0)])
    later = [track(f"m{i}", i) for i in range(1, 20)] + [track(2.5, 20), track(True, 21)]
    await deliver(WarehouseDestination, {"url": url}, later)
    key_type = rows(tmp_path / "w.db", "SELECT type FROM pragma_table_info('clicked') WHERE pk")
    assert key_type == [("TEXT",)]
    ids = {r[0] for r in rows(tmp_path / "w.db", "SELECT id FROM clicked")}
    assert ids == {"7", "2.5", "true"} | {f"m{i}" for i in range(1, 20)}


async def test_a_table_an_earlier_version_keyed_on_integer_is_repaired_under_its_view(tmp_path):
    path = tmp_path / "w.db"
    db = Database(path)
    db["clicked"].insert({"id": 1, "n": 5, "_loaded_at": "2024-01-01T00:00:00Z"}, pk="id")
    db.execute("CREATE VIEW clicks AS SELECT id, n FROM clicked")
    db.close()
    await deliver(WarehouseDestination, {"url": f"sqlite:///{path}"}, [track("abc", 1)])
    assert rows(path, "SELECT type FROM pragma_table_info('clicked') WHERE pk") == [("TEXT",)]
    assert sorted(rows(path, "SELECT id, n FROM clicks")) == [("1", 5), ("abc", 1)]


async def test_ids_are_text_whatever_their_json_type(typed_url):
    batch = [track(5, 0), track(None, 1), track(None, 2), track({"a": 1}, 3), track("5x", 4)]
    await deliver(WarehouseDestination, {"url": typed_url}, batch)
    assert query(typed_url, "SELECT count(*), count(DISTINCT id) FROM clicked") == [(5, 5)]


# --- finding 3: records that can never succeed -------------------------------------------


async def test_2100_properties_fit_sqlite_within_the_column_budget(tmp_path):
    path = tmp_path / "w.db"
    props = {f"p{i}": i for i in range(2100)}
    started = time.monotonic()
    await deliver(WarehouseDestination, {"url": f"sqlite:///{path}"}, [track("w1", 1, **props)])
    elapsed = time.monotonic() - started
    columns = [r[0] for r in rows(path, "SELECT name FROM pragma_table_info('clicked')")]
    assert len(columns) == DEFAULT_BUDGET
    (extra,) = rows(path, "SELECT _extra FROM clicked")[0]
    stored = {c: rows(path, f'SELECT "{c}" FROM clicked')[0][0] for c in columns if c[0] == "p"}
    assert {**stored, **orjson.loads(extra)} == props  # every value kept, once
    assert elapsed < 10, elapsed


async def test_colliding_keys_beyond_the_budget_both_stay(tmp_path):
    path = tmp_path / "w.db"
    options = {"url": f"sqlite:///{path}", "max_columns": 20}
    await deliver(WarehouseDestination, options, [track("a", 1, **{f"p{i}": i for i in range(30)})])
    await deliver(WarehouseDestination, options, [track("b", 2, firstName=1, first_name=2)])
    (extra,) = rows(path, "SELECT _extra FROM clicked WHERE id = 'b'")[0]
    assert sorted(orjson.loads(extra).values()) == [1, 2]


@pytest.mark.parametrize(
    "props",
    [
        pytest.param({f"c{i}": "x" * 40 for i in range(1700)}, id="1700 text columns"),
        pytest.param({f"d{i}": i + 0.5 for i in range(1200)}, id="1200 doubles"),
    ],
)
async def test_wide_records_fit_typed_stores(typed_url, props):
    await deliver(WarehouseDestination, {"url": typed_url}, [track("w1", 1, **props)])
    (count,) = query(
        typed_url,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'clicked'",
    )[0]
    assert count == DEFAULT_BUDGET
    row = first_row(typed_url, "clicked")
    extra = orjson.loads(row.pop("_extra"))
    assert {**{k: v for k, v in row.items() if k in props}, **extra} == props


async def test_a_12_kb_message_id_and_user_id_are_stored_under_a_hashed_key(typed_url):
    # random hex: PostgreSQL cannot compress it below its index row limit (2704 bytes)
    long_id, long_user = os.urandom(6_000).hex(), os.urandom(6_000).hex()
    batch = [
        track(long_id, 1),
        {"type": "identify", "userId": long_user, "messageId": "i1", "traits": {"a": 1}},
    ]
    await deliver(WarehouseDestination, {"url": typed_url}, batch)
    assert query(typed_url, "SELECT id FROM clicked") == [(key_text(long_id),)]
    assert len(key_text(long_id)) < MAX_KEY_BYTES
    assert query(typed_url, "SELECT id FROM users") == [(key_text(long_user),)]
    assert query(typed_url, "SELECT user_id FROM identifies") == [(long_user,)]
    await deliver(WarehouseDestination, {"url": typed_url}, batch)  # reload: upserts
    assert query(typed_url, "SELECT count(*) FROM clicked") == [(1,)]


def test_sqlite_errors_the_rows_cause_are_permanent_and_the_files_are_retryable(tmp_path):
    db = sqlite3.connect(tmp_path / "x.db")
    with pytest.raises(sqlite3.OperationalError) as too_many:
        db.execute(f"CREATE TABLE t ({', '.join(f'c{i}' for i in range(2100))})")
    assert isinstance(sqlite_error(too_many.value), PermanentError)
    assert "too many columns" in str(sqlite_error(too_many.value))
    db.execute("CREATE TABLE k (id INTEGER PRIMARY KEY)")
    with pytest.raises(sqlite3.Error) as mismatch:
        db.execute("INSERT INTO k VALUES ('text')")
    assert isinstance(sqlite_error(mismatch.value), PermanentError)
    db.commit()
    blocker = sqlite3.connect(tmp_path / "x.db", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(tmp_path / "x.db", timeout=0)
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("INSERT INTO k VALUES (1)")
    assert isinstance(sqlite_error(locked.value), RetryableError)
    blocker.rollback()


def test_postgres_limits_a_row_exceeds_are_permanent(postgres_url):
    columns = ", ".join(f"d{i} double precision" for i in range(1200))
    with psycopg.connect(postgres_url) as db:
        db.execute(f"CREATE TABLE wide ({columns})")
        with pytest.raises(psycopg.Error) as too_big:
            db.execute(f"INSERT INTO wide VALUES ({', '.join(['1.5'] * 1200)})")
        assert too_big.value.sqlstate.startswith("54")
    error = postgres_error(psycopg, too_big.value)
    assert isinstance(error, PermanentError) and "row is too big" in str(error)
    with psycopg.connect(postgres_url) as db:
        db.execute("CREATE TABLE k (id text PRIMARY KEY)")
        with pytest.raises(psycopg.Error) as index_row:
            db.execute("INSERT INTO k VALUES (%s)", [orjson.dumps(list(range(3000))).decode()])
    assert isinstance(postgres_error(psycopg, index_row.value), PermanentError)


async def test_a_nul_character_does_not_cost_a_typed_store_the_record(typed_url):
    record = track("nul\0id", 1, note="a\0b")
    await deliver(WarehouseDestination, {"url": typed_url}, [record])
    assert query(typed_url, "SELECT id, note FROM clicked") == [("nul\ufffdid", "a\ufffdb")]


# --- finding 4: a column's type never changes; a view over the table never blocks a load ---


async def test_a_float_after_an_integer_under_a_dbt_style_view(typed_url):
    page = {"type": "page", "userId": "u1", "name": "Pricing"}
    options = {"url": typed_url}
    await deliver(
        WarehouseDestination, options, [{**page, "messageId": "p1", "properties": {"price": 10}}]
    )
    execute(typed_url, "CREATE VIEW stg_pages AS SELECT id, price, uuid_ts FROM pages")
    await deliver(
        WarehouseDestination, options, [{**page, "messageId": "p2", "properties": {"price": 9.99}}]
    )
    assert query(typed_url, "SELECT id, price FROM stg_pages ORDER BY id") == [
        ("p1", 10),
        ("p2", None),
    ]
    assert query(
        typed_url, "SELECT row_id, table_name, column_name, column_value FROM _discards"
    ) == [("p2", "pages", "price", "9.99")]
    assert query(
        typed_url,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'pages' AND column_name = 'price'",
    ) == [("bigint",)]


async def test_uuid_ts_is_added_to_tables_loaded_before_it_existed(typed_url):
    options = {"url": typed_url}
    await deliver(WarehouseDestination, options, [track("m1", 1)])
    execute(typed_url, "ALTER TABLE clicked DROP COLUMN uuid_ts")
    execute(typed_url, "CREATE VIEW recent AS SELECT id, _loaded_at FROM clicked")
    await deliver(WarehouseDestination, options, [track("m2", 2)])
    assert query(typed_url, "SELECT id, uuid_ts = _loaded_at FROM clicked ORDER BY id") == [
        ("m1", True),
        ("m2", True),
    ]
    assert query(
        typed_url,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'clicked' AND column_name = 'uuid_ts'",
    ) == [("timestamp with time zone",)]


# --- the SQLite-only findings above, on the typed stores -----------------------------------


async def test_null_message_ids_are_never_merged_on_typed_stores(typed_url):
    batch = [{**track(None, i), "messageId": None} for i in range(50)]
    for _ in range(2):  # a re-delivery upserts the same rows
        result = await deliver(WarehouseDestination, {"url": typed_url}, batch)
        assert not result.rejected and not result.retry
    assert query(typed_url, "SELECT count(*), count(DISTINCT id) FROM clicked") == [(50, 50)]


async def test_a_numeric_first_message_id_does_not_type_the_key_column_of_typed_stores(
    typed_url,
):
    await deliver(WarehouseDestination, {"url": typed_url}, [track(7, 0)])
    later = [track(f"m{i}", i) for i in range(1, 20)] + [track(2.5, 20), track(True, 21)]
    await deliver(WarehouseDestination, {"url": typed_url}, later)
    assert query(
        typed_url,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'clicked' AND column_name = 'id'",
    ) == [("text",)]
    ids = {r[0] for r in query(typed_url, "SELECT id FROM clicked")}
    assert ids == {"7", "2.5", "true"} | {f"m{i}" for i in range(1, 20)}


async def test_colliding_keys_beyond_the_budget_both_stay_on_typed_stores(typed_url):
    options = {"url": typed_url, "max_columns": 20}
    await deliver(WarehouseDestination, options, [track("a", 1, **{f"p{i}": i for i in range(30)})])
    await deliver(WarehouseDestination, options, [track("b", 2, firstName=1, first_name=2)])
    (extra,) = query(typed_url, "SELECT _extra FROM clicked WHERE id = 'b'")[0]
    assert sorted(orjson.loads(extra).values()) == [1, 2]
    (count,) = query(
        typed_url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'clicked'"
    )[0]
    assert count == 20
