"""``MongoLedger`` behaviour that needs no running server."""

import socket
from dataclasses import fields
from datetime import UTC, datetime

import pytest
from pymongo import ReadPreference
from pymongo.errors import DuplicateKeyError

from ledger.errors import LedgerUnavailable
from ledger.factory import open_store
from ledger.models import CreditKind, CreditResult, CreditTransaction
from ledger.mongo import MongoLedger, transactions
from ledger.mongo.collections import WRITE_TIMEOUT_MS, Collections
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


async def test_every_collection_writes_with_a_bounded_majority_even_if_the_url_asks_for_less() -> (
    None
):
    client = _connect("mongodb://localhost:27017/?w=1")
    try:
        collections = Collections.of(client["ledger"])
        for field in fields(Collections):
            collection = getattr(collections, field.name)
            assert collection.write_concern.document == {
                "w": "majority",
                "wtimeout": WRITE_TIMEOUT_MS,
            }, field.name
    finally:
        await client.close()


async def test_every_collection_reads_from_the_primary_even_if_the_url_names_a_secondary() -> None:
    client = _connect("mongodb://localhost:27017/?readPreference=secondary")
    try:
        assert client.read_preference == ReadPreference.SECONDARY
        collections = Collections.of(client["ledger"])
        for field in fields(Collections):
            assert getattr(collections, field.name).read_preference == ReadPreference.PRIMARY
    finally:
        await client.close()


async def test_a_credit_racing_a_duplicate_of_its_id_answers_as_a_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first run of the credit's transaction meets the other write's committed id; the
    second finds the credit already there and answers it as a replay."""
    replay = CreditResult(
        CreditTransaction("grant:k1", "org-1", CreditKind.GRANT, 5, 0, "bonus", datetime.now(UTC)),
        applied=False,
    )
    runs: list[object] = []

    async def transaction(client: object, work: object) -> CreditResult:
        runs.append(work)
        if len(runs) == 1:
            raise DuplicateKeyError("E11000 duplicate key error: credit_transaction_unique")
        return replay

    monkeypatch.setattr(transactions, "run_transaction", transaction)
    ledger = MongoLedger("mongodb://localhost:27017")
    ledger._client, ledger._collections = object(), object()  # type: ignore[assignment]

    assert await ledger.grant("org-1", 5, "bonus", "k1") == replay
    assert len(runs) == 2
