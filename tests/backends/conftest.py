"""Fixtures for the state backends: an opened `PostgresBackend` per test (the server and
the fresh database, ``pg_admin_url`` and ``pg_url``, come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectord.backends.postgres import PostgresBackend


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
