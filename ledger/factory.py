"""Choose a backend from the store URL: ``sqlite:///path`` (default), ``postgresql://…``
(or ``postgres://…``) or ``mongodb://…``; each is imported only when used."""

import importlib.util
from urllib.parse import urlsplit

from ledger.clock import Clock, system_clock
from ledger.location import SQLITE_PREFIX
from ledger.store import LedgerStore

DEFAULT_MONGO_DATABASE = "spu_gateway"
"""Used when the MongoDB URL names no database (``mongodb://host/?replicaSet=rs0``)."""


def open_store(url: str, *, clock: Clock = system_clock) -> LedgerStore:
    """Build (not yet open) the store a URL names."""
    if url.startswith(SQLITE_PREFIX):
        from ledger.sqlite import SqliteLedger

        return SqliteLedger(url.removeprefix(SQLITE_PREFIX), clock=clock)
    if url.startswith(("postgresql://", "postgres://")):
        if importlib.util.find_spec("psycopg_pool") is None:
            raise ValueError(
                "a PostgreSQL ledger needs psycopg, which is not installed: install the gateway's"
                " [postgresql] extra (SPU_EXTRAS=postgresql ./scripts/run.sh)"
            )
        from ledger.postgres import PostgresLedger

        return PostgresLedger(url, clock=clock)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        if importlib.util.find_spec("pymongo") is None:
            raise ValueError(
                "a MongoDB ledger needs pymongo, which is not installed: install the gateway's"
                " [mongodb] extra (SPU_EXTRAS=mongodb ./scripts/run.sh)"
            )
        from ledger.mongo import MongoLedger

        database = urlsplit(url).path.lstrip("/") or DEFAULT_MONGO_DATABASE
        return MongoLedger(url, database=database, clock=clock)
    raise ValueError(
        f"unsupported ledger URL {url!r}: use sqlite:///path, postgresql://… or mongodb://…"
    )
