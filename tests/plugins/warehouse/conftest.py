from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.plugins.warehouse.stores import TYPED_STORES, typed_store


@pytest.fixture(params=TYPED_STORES)
def typed_url(request, tmp_path) -> Iterator[str]:
    """Each typed store in turn: the same test runs on PostgreSQL and on DuckDB."""
    with typed_store(request.param, tmp_path) as url:
        yield url
