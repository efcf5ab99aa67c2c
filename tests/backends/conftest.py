"""Fixtures for the state backends: a PostgreSQL server for the session, a fresh database
and an opened `PostgresBackend` per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from connectord.backends.postgres import PostgresBackend
from tests.backends.pgserver import LOCAL_ADMIN, database, ensure_server


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """The local server on 127.0.0.1:5432 if it answers, else a throwaway one."""
    with ensure_server(LOCAL_ADMIN) as url:
        yield url


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    with database(pg_admin_url) as url:
        yield url


@pytest.fixture
async def backend(pg_url: str) -> AsyncIterator[PostgresBackend]:
    store = PostgresBackend(pg_url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def migrated_pg_url(pg_url: str) -> str:
    """A fresh database with the schema in place (for tests that open many backends)."""
    import asyncio

    async def migrate() -> None:
        store = PostgresBackend(pg_url)
        await store.open()
        await store.close()

    asyncio.run(migrate())
    return pg_url
