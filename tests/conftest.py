"""Fixtures shared across test folders."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stores import LEDGER_BACKENDS, SQL_BACKENDS, fresh_store_url


@pytest.fixture(params=SQL_BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store on each SQL backend: a SQLite file, and a PostgreSQL database."""
    with fresh_store_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=LEDGER_BACKENDS)
def any_ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store on every backend of the contract suite."""
    with fresh_store_url(request.param, tmp_path) as url:
        yield url
