"""The ledger stores tests run on: a SQLite file always, a PostgreSQL database when a server
is given.

``TEST_POSTGRES_URL`` names a server the tests may create databases on
(``scripts/with-postgres.sh`` starts a throw-away one and sets it; the test
command always does). Without it the PostgreSQL cases are skipped: that
happens only where someone runs pytest by hand.
"""

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

SERVER_URL = os.environ.get("TEST_POSTGRES_URL")

needs_postgres = pytest.mark.skipif(
    SERVER_URL is None, reason="TEST_POSTGRES_URL is not set (scripts/with-postgres.sh sets it)"
)

SQL_BACKENDS = ["sqlite", pytest.param("postgresql", marks=needs_postgres)]
"""Parameters of a test that runs on both SQL backends."""

MONGODB_URL = os.environ.get("TEST_MONGODB_URL")
LEDGER_BACKENDS = [*SQL_BACKENDS, *(["mongodb"] if MONGODB_URL else [])]
"""Every backend of the contract suite: MongoDB too when ``TEST_MONGODB_URL`` names a server."""


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped (connections and all) afterwards."""
    assert SERVER_URL is not None, "only for tests marked needs_postgres"
    name = f"spu_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(SERVER_URL)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_store_url(backend: str, folder: Path) -> Iterator[str]:
    """The ledger URL of an empty store: a file in ``folder``, or a fresh database."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'ledger.db'}"
        return
    if backend == "mongodb":
        assert MONGODB_URL is not None
        name = f"spu_test_{uuid.uuid4().hex[:12]}"
        url = urlunsplit(urlsplit(MONGODB_URL)._replace(path=f"/{name}"))
        try:
            yield url
        finally:
            from ledger.mongo import MongoLedger

            asyncio.run(MongoLedger(url, database=name).drop_database())
        return
    with fresh_database() as url:
        yield url


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """What the store holds, read past the ledger's code (both dialects take the same SQL)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            return connection.execute(sql).fetchall()
    with psycopg.connect(url) as server:
        return server.execute(sql).fetchall()
