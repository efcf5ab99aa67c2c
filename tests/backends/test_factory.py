"""`backend_from_url`: which backend a ``[daemon] state`` value names, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectord.backends.factory import backend_from_url
from connectord.backends.postgres import PostgresBackend
from connectord.backends.sqlite import SqliteBackend
from connectord.errors import StateError


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("state.db", Path("state.db")),
        ("/var/lib/connectord/state.db", Path("/var/lib/connectord/state.db")),
        ("sqlite:///state.db", Path("state.db")),
        ("sqlite:////var/lib/connectord/state.db", Path("/var/lib/connectord/state.db")),
        ("C:\\connectord\\state.db", Path("C:\\connectord\\state.db")),
        ("  ./with spaces.db ", Path("with spaces.db")),
    ],
)
def test_paths_and_sqlite_urls_are_sqlite(value, path):
    backend = backend_from_url(value)
    assert isinstance(backend, SqliteBackend)
    assert backend.path == path


def test_a_path_object_is_sqlite(tmp_path):
    assert backend_from_url(tmp_path / "s.db").path == tmp_path / "s.db"


@pytest.mark.parametrize(
    "url", ["postgresql://connectord@db:5432/connectord", "postgres://u:pw@db/c"]
)
def test_postgres_urls_are_postgres(url):
    backend = backend_from_url(url)
    assert isinstance(backend, PostgresBackend)
    assert backend.url == url


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (
            "http://user:hunter2@example.com/state?token=s3cret",
            "'http' URL (http://***@example.com/state?***)",
        ),
        ("mysql://root:hunter2@db/connectord", "'mysql' URL (mysql://***@db/connectord)"),
        ("file:///var/lib/state.db", "'file' URL"),
        ("duckdb:///state.duckdb", "'duckdb' URL"),
    ],
)
def test_other_urls_are_refused_by_name(value, found):
    with pytest.raises(StateError) as refused:
        backend_from_url(value)
    message = str(refused.value)
    assert "expected an SQLite state file" in message
    assert "postgresql://" in message
    assert found in message
    assert "hunter2" not in message and "s3cret" not in message


@pytest.mark.parametrize("value", ["", "   ", "sqlite:///", "sqlite:///:memory:"])
def test_no_file_is_refused(value):
    with pytest.raises(StateError, match="expected"):
        backend_from_url(value)


async def test_the_sqlite_backend_opens_the_file(tmp_path):
    backend = backend_from_url(f"sqlite:///{tmp_path}/nested/state.db")
    await backend.open()
    try:
        await backend.enqueue_many([("c", [b"{}"])])
        assert await backend.queue_depth("c") == 1
    finally:
        await backend.close()
    assert (tmp_path / "nested" / "state.db").exists()
