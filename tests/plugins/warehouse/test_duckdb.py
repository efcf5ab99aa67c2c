"""What only the DuckDB file backend does: one writer process, a file released between
loads so BI tools can attach it read-only, and DuckDB's errors told apart."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pytest

from connectord import PermanentError, RetryableError
from connectord.plugins.warehouse.destination import WarehouseDestination
from connectord.plugins.warehouse.duckdb_backend import duckdb_error
from connectord.testing import deliver, make_context


def track(i: int, **props) -> dict:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"u{i}",
        "messageId": f"m{i}",
        "timestamp": "2024-01-01T00:00:00.000Z",
        "properties": {"total": i, **props},
    }


async def test_check_writes_and_rolls_back(tmp_path):
    async with make_context(base_dir=tmp_path) as context:
        destination = WarehouseDestination(
            WarehouseDestination.Options.model_validate({"url": "duckdb:///bi.duckdb"}), context
        )
        assert "DuckDB file" in await destination.check()
    with duckdb.connect(str(tmp_path / "bi.duckdb"), read_only=True) as db:
        assert db.execute("SELECT table_name FROM information_schema.tables").fetchall() == []


READER = """
import sys, time, duckdb
deadline = time.monotonic() + 30
while True:
    try:
        db = duckdb.connect(sys.argv[1], read_only=True)
        break
    except duckdb.IOException:  # the writer still holds the file
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
print(db.execute("SELECT count(*) FROM order_completed").fetchone()[0], flush=True)
sys.stdin.readline()
"""


async def test_a_reader_attaches_when_loads_pause_and_a_held_file_is_retried(tmp_path):
    path = tmp_path / "bi.duckdb"
    options = {"url": f"duckdb:///{path}"}
    async with make_context(base_dir=tmp_path) as context:
        destination = WarehouseDestination(
            WarehouseDestination.Options.model_validate(options), context
        )
        await destination.start()
        destination._backend.release_after = 0.3
        await destination.send([track(1)])
        await destination.send([track(2)])  # back to back: the file stays open
        started = time.monotonic()
        # a BI tool in another process: it can attach once the loads pause
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert reader.stdout.readline().strip() == "2"
            assert time.monotonic() - started >= 0.2  # not before the pause
            with pytest.raises(RetryableError, match="DuckDB unavailable"):
                await destination.send([track(3)])  # the reader holds the file's lock
        finally:
            reader.communicate("\n", timeout=30)
        await destination.send([track(3)])  # the reader is gone: the retry goes through
        await destination.close()
    with duckdb.connect(str(path), read_only=True) as db:
        assert db.execute("SELECT id FROM order_completed ORDER BY id").fetchall() == [
            ("m1",),
            ("m2",),
            ("m3",),
        ]


def test_errors_the_rows_cause_are_permanent_and_the_files_are_retryable(tmp_path):
    db = duckdb.connect(str(tmp_path / "x.duckdb"))
    db.execute("CREATE TABLE k (id VARCHAR PRIMARY KEY, n BIGINT)")
    with pytest.raises(duckdb.Error) as conversion:
        db.execute("INSERT INTO k VALUES ('a', CAST(? AS BIGINT))", ["not a number"])
    assert isinstance(duckdb_error(duckdb, conversion.value), PermanentError)
    db.execute("INSERT INTO k VALUES ('a', 1)")
    with pytest.raises(duckdb.Error) as duplicate:
        db.execute("INSERT INTO k VALUES ('a', 2)")
    assert isinstance(duckdb_error(duckdb, duplicate.value), PermanentError)
    (tmp_path / "not-duckdb").write_text("plain text, not a database file")
    with pytest.raises(duckdb.Error) as not_a_database:
        duckdb.connect(str(tmp_path / "not-duckdb"))
    assert isinstance(duckdb_error(duckdb, not_a_database.value), RetryableError)
    assert duckdb_error(duckdb, ValueError("x")) is None


async def test_a_file_that_is_not_duckdb_is_refused_at_start(tmp_path):
    path = tmp_path / "bi.duckdb"
    path.write_text("plain text, not a database file")
    with pytest.raises(RetryableError, match="warehouse unavailable"):
        await deliver(WarehouseDestination, {"url": f"duckdb:///{path}"}, [track(1)])
