"""``MongoLedger`` behaviour that needs no running server."""

import socket
from dataclasses import fields

import pytest

from ledger.errors import LedgerUnavailable
from ledger.factory import open_store
from ledger.mongo import MongoLedger
from ledger.mongo.collections import Collections
from ledger.mongo.store import SERVER_SELECTION_TIMEOUT_MS, _connect


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_the_factory_builds_a_mongo_ledger_for_mongodb_urls() -> None:
    assert isinstance(open_store("mongodb://localhost:27017"), MongoLedger)


async def test_calls_before_open_are_unavailable() -> None:
    ledger = MongoLedger("mongodb://localhost:27017")

    with pytest.raises(LedgerUnavailable):
        await ledger.ping()
    with pytest.raises(LedgerUnavailable):
        await ledger.hold("org-1", 1, "req-1", 60)
    await ledger.close()


async def test_open_against_an_unreachable_server_is_unavailable() -> None:
    url = f"mongodb://127.0.0.1:{_closed_port()}/?serverSelectionTimeoutMS=200"
    ledger = MongoLedger(url, database="unreachable")

    with pytest.raises(LedgerUnavailable):
        await ledger.open()
    with pytest.raises(LedgerUnavailable):
        await ledger.ping()


async def test_a_server_selection_timeout_in_the_url_wins_over_the_default() -> None:
    told = _connect("mongodb://localhost:27017/?serverSelectionTimeoutMS=250")
    default = _connect("mongodb://localhost:27017")
    try:
        assert told.options.server_selection_timeout == 0.25
        assert default.options.server_selection_timeout == SERVER_SELECTION_TIMEOUT_MS / 1000
    finally:
        await told.close()
        await default.close()


async def test_invalid_arguments_are_refused_before_any_server_is_asked() -> None:
    ledger = MongoLedger("mongodb://localhost:27017")

    with pytest.raises(ValueError):
        await ledger.create_account("org-1", free_grant_units=-1)
    with pytest.raises(ValueError):
        await ledger.credit_purchase("cs_1", "org-1", 0)
    with pytest.raises(ValueError):
        await ledger.refund_purchase("re_1", "org-1", 0, "oops")


async def test_every_collection_writes_with_majority_even_if_the_url_asks_for_less() -> None:
    client = _connect("mongodb://localhost:27017/?w=1")
    try:
        collections = Collections.of(client["ledger"])
        for field in fields(Collections):
            collection = getattr(collections, field.name)
            assert collection.write_concern.document == {"w": "majority"}, field.name
    finally:
        await client.close()
