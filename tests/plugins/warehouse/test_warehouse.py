"""The ``warehouse`` destination on real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import psycopg
import pytest

from connectord import AuthError, RetryableError
from connectord.plugins.warehouse.backends import column_types
from connectord.plugins.warehouse.destination import WarehouseDestination
from connectord.tables import TEXT, value_type, widen
from connectord.testing import deliver, make_context
from tests.plugins.clevertap.common import postgres_database
from tests.plugins.warehouse.stores import query


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def track(i: int, event: str = "Order Completed", **props) -> dict:
    return {
        "type": "track",
        "event": event,
        "userId": f"u{i % 3}",
        "messageId": f"m{i}",
        "timestamp": f"2024-01-01T00:00:{i % 60:02d}.000Z",
        "properties": {"total": i, **props},
    }


# --- types ------------------------------------------------------------------------------


def test_value_types_and_widening():
    assert value_type(True) == "boolean"
    assert value_type(3) == "bigint"
    assert value_type(2.5) == "double precision"
    assert value_type("2024-01-01T00:00:00.000Z") == "timestamp with time zone"
    assert value_type("2024-01-01") == "text"
    assert value_type(None) is None
    assert widen("bigint", "double precision") == "double precision"
    assert widen("double precision", "bigint") == "double precision"
    assert widen("bigint", "text") == TEXT
    assert widen("boolean", "bigint") == TEXT
    assert widen("timestamp with time zone", "text") == TEXT
    assert widen(None, "bigint") == "bigint"
    assert widen("bigint", None) == "bigint"
    assert column_types([{"id": 1, "a": None}, {"id": 2, "a": 3}], "id") == {
        "id": "text",
        "a": "bigint",
    }


# --- SQLite -----------------------------------------------------------------------------


def rows(path, sql):
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


async def test_sqlite_upserts_adds_columns_and_keeps_values_of_other_types(tmp_path):
    options = {"url": "sqlite:///w.db"}
    async with make_context(base_dir=tmp_path) as context:
        await deliver(WarehouseDestination, options, [track(1), track(2)], context=context)
        again = [track(1), track(2, coupon="X", ref=7), track(3, ref="R-7")]
        await deliver(WarehouseDestination, options, again, context=context)
    db = tmp_path / "w.db"
    assert rows(db, "SELECT id, total, coupon, ref FROM order_completed ORDER BY id") == [
        ("m1", 1, None, None),
        ("m2", 2, "X", "7"),  # the batch brought text too: the column is TEXT
        ("m3", 3, None, "R-7"),
    ]
    assert rows(db, "SELECT count(*) FROM tracks") == [(3,)]


async def test_sqlite_traits_are_additive_within_and_across_batches(tmp_path):
    batch = [
        {"type": "identify", "userId": "u1", "messageId": "i1", "traits": {"email": "a@x"}},
        {"type": "identify", "userId": "u1", "messageId": "i2", "traits": {"plan": "pro"}},
    ]
    await deliver(WarehouseDestination, {"url": f"sqlite:///{tmp_path}/w.db"}, batch)
    assert rows(tmp_path / "w.db", "SELECT id, email, plan FROM users") == [("u1", "a@x", "pro")]


async def test_sqlite_check_writes_and_rolls_back(tmp_path):
    async with make_context(base_dir=tmp_path) as context:
        destination = WarehouseDestination(
            WarehouseDestination.Options.model_validate({"url": "sqlite:///w.db"}), context
        )
        assert "SQLite file" in await destination.check()
    assert rows(tmp_path / "w.db", "SELECT name FROM sqlite_master") == []


async def test_sqlite_locked_database_is_retryable(tmp_path):
    path = tmp_path / "w.db"
    await deliver(WarehouseDestination, {"url": f"sqlite:///{path}"}, [track(1)])
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        async with make_context(base_dir=tmp_path) as context:
            destination = WarehouseDestination(
                WarehouseDestination.Options.model_validate({"url": f"sqlite:///{path}"}), context
            )
            await destination.start()
            destination._backend.db.conn.execute("PRAGMA busy_timeout = 50")
            with pytest.raises(RetryableError, match="locked"):
                await destination.send([track(2)])
            await destination.close()
    finally:
        blocker.rollback()
        blocker.close()


# --- typed stores: PostgreSQL and DuckDB (the `typed_url` fixture) ---------------------


def pg(url, sql, *args):
    with psycopg.connect(url) as db:
        return db.execute(sql, args).fetchall()


async def test_typed_tables_types_upserts_and_discards(typed_url):
    options = {"url": typed_url, "schema": "bi"}
    first = [track(1, price=5, paid=True), track(2, price=6, paid=False)]
    await deliver(WarehouseDestination, options, first)
    types = dict(
        query(
            typed_url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'bi' AND table_name = 'order_completed'",
        )
    )
    assert types["id"] == "text"
    assert types["total"] == "bigint"
    assert types["price"] == "bigint"
    assert types["paid"] == "boolean"
    assert types["timestamp"] == types["_loaded_at"] == "timestamp with time zone"

    second = [track(2, price=6.5), track(3, price="about 7", paid="yes", note="new")]
    await deliver(WarehouseDestination, options, second)
    types = dict(
        query(
            typed_url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'bi' AND table_name = 'order_completed'",
        )
    )
    # A column's type is set once; values that do not fit are kept in _discards.
    assert types["price"] == "bigint" and types["paid"] == "boolean" and types["note"] == "text"
    assert query(typed_url, "SELECT id, price, paid, note FROM bi.order_completed ORDER BY id") == [
        ("m1", 5, True, None),
        ("m2", None, False, None),
        ("m3", None, None, "new"),
    ]
    assert query(
        typed_url,
        "SELECT row_id, table_name, column_name, column_value FROM bi._discards "
        "ORDER BY row_id, column_name",
    ) == [
        ("m2", "order_completed", "price", "6.5"),
        ("m3", "order_completed", "paid", "yes"),
        ("m3", "order_completed", "price", "about 7"),
    ]
    assert query(typed_url, "SELECT count(*) FROM bi.tracks") == [(3,)]


async def test_typed_column_types_never_change(typed_url):
    options = {"url": typed_url}
    await deliver(WarehouseDestination, options, [track(1, amount=10, label="x")])
    await deliver(WarehouseDestination, options, [track(2, amount=10.0, label=7)])
    await deliver(WarehouseDestination, options, [track(3, amount=10.25)])
    assert query(typed_url, "SELECT id, amount, label FROM order_completed ORDER BY id") == [
        ("m1", 10, "x"),
        ("m2", 10, "7"),  # lossless: 10.0 is the bigint 10, 7 is the text "7"
        ("m3", None, None),
    ]
    assert query(typed_url, "SELECT row_id, column_value FROM _discards") == [("m3", "10.25")]


async def test_typed_reloading_a_day_does_not_duplicate(typed_url):
    batch = [track(i) for i in range(50)]
    for _ in range(2):
        await deliver(WarehouseDestination, {"url": typed_url}, batch)
    assert query(typed_url, "SELECT count(*), count(DISTINCT id) FROM order_completed") == [
        (50, 50)
    ]


async def test_typed_users_are_additive(typed_url):
    batch = [
        {"type": "identify", "userId": "u1", "messageId": "i1", "traits": {"email": "a@x"}},
        {"type": "identify", "userId": "u1", "messageId": "i2", "traits": {"plan": "pro"}},
    ]
    await deliver(WarehouseDestination, {"url": typed_url}, batch)
    await deliver(
        WarehouseDestination,
        {"url": typed_url},
        [{"type": "identify", "userId": "u1", "messageId": "i3", "traits": {"plan": "team"}}],
    )
    assert query(typed_url, "SELECT id, email, plan FROM users") == [("u1", "a@x", "team")]


async def test_postgres_check_and_errors(postgres_url, tmp_path):
    async with make_context(base_dir=tmp_path) as context:
        good = WarehouseDestination(
            WarehouseDestination.Options.model_validate({"url": postgres_url, "schema": "s1"}),
            context,
        )
        assert "PostgreSQL 127.0.0.1:5432" in await good.check()
        assert pg(postgres_url, "SELECT to_regclass('s1._connectord_check')") == [(None,)]

        unknown_role = postgres_url.replace("postgres@", "no_such_role@")
        bad = WarehouseDestination(
            WarehouseDestination.Options.model_validate({"url": unknown_role}), context
        )
        with pytest.raises(AuthError):
            await bad.check()

        down = WarehouseDestination(
            WarehouseDestination.Options.model_validate(
                {"url": "postgresql://postgres@127.0.0.1:1/x"}
            ),
            context,
        )
        with pytest.raises(RetryableError) as caught:
            await down.check()
        assert not isinstance(caught.value, AuthError)


def test_url_validation():
    parse = WarehouseDestination.Options.model_validate
    assert parse({"url": "postgresql://u@h/db"}).url == "postgresql://u@h/db"
    assert parse({"url": "postgres://u@h:5433/db", "schema": "bi"}).db_schema == "bi"
    assert parse({"url": "duckdb:///bi.duckdb"}).url == "duckdb:///bi.duckdb"
    assert parse({"url": "duckdb:////srv/bi.duckdb"}).url == "duckdb:////srv/bi.duckdb"
    with pytest.raises(ValueError, match="unsupported"):
        parse({"url": "mysql://u@h/db"})
    with pytest.raises(ValueError, match=r"duckdb:///path\.duckdb"):
        parse({"url": "motherduck:bi"})
    for wrong in ("duckdb://bi.duckdb", "duckdb:///", "duckdb:///dir/", "sqlite://w.db"):
        with pytest.raises(ValueError, match=r"relative\.db"):
            parse({"url": wrong})
    with pytest.raises(ValueError, match="keeps nothing"):
        parse({"url": "duckdb:///:memory:"})
    with pytest.raises(ValueError):
        parse({"url": "postgresql://u@h/db", "schema": "bad-name"})
