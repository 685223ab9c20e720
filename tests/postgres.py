"""Throw-away PostgreSQL databases for the tests that run on the PostgreSQL ledger.

``TEST_POSTGRES_URL`` names a server the tests may create databases on
(``scripts/with-postgres.sh`` starts one and sets it; the test command always
does). Without it those tests are skipped: that happens only on a machine
where someone runs pytest by hand.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

SERVER_URL = os.environ.get("TEST_POSTGRES_URL")

needs_postgres = pytest.mark.skipif(
    SERVER_URL is None, reason="TEST_POSTGRES_URL is not set (scripts/with-postgres.sh sets it)"
)


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database, dropped (connections and all) afterwards."""
    assert SERVER_URL is not None, "only for tests marked needs_postgres"
    name = f"spu_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(SERVER_URL, name)
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
