"""The bounded transaction retry and the failure mapping, on a session double."""

from typing import Any

import pytest
from pymongo import ReadPreference
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteConcernError,
    WTimeoutError,
)

from ledger.errors import LedgerUnavailable
from ledger.mongo import transactions
from ledger.mongo.collections import WRITE_TIMEOUT_MS
from ledger.mongo.transactions import (
    MAX_COMMIT_ATTEMPTS,
    MAX_TRANSACTION_ATTEMPTS,
    run_once_per_id,
    run_transaction,
    translate_failures,
)


def _labelled(label: str, code: int = 112) -> OperationFailure:
    return OperationFailure("WriteConflict", code, {"errorLabels": [label]})


class SessionDouble:
    """Records the transaction calls ``run_transaction`` makes; commits fail as told."""

    def __init__(self, commit_errors: list[Exception] | None = None) -> None:
        self.commit_errors = commit_errors or []
        self.in_transaction = False
        self.starts = self.commits = self.aborts = 0
        self.options: dict[str, Any] = {}

    async def __aenter__(self) -> "SessionDouble":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def start_transaction(self, **options: Any) -> None:
        self.in_transaction, self.options = True, options
        self.starts += 1

    async def commit_transaction(self) -> None:
        self.commits += 1
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self.in_transaction = False

    async def abort_transaction(self) -> None:
        self.aborts += 1
        self.in_transaction = False


class ClientDouble:
    def __init__(self, session: SessionDouble) -> None:
        self.session = session

    def start_session(self) -> SessionDouble:
        return self.session


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transactions, "backoff_s", lambda attempt: 0.0)


def _body(failures: list[Exception]) -> Any:
    runs: list[object] = []

    async def body(session: SessionDouble) -> str:
        runs.append(session)
        if failures:
            raise failures.pop(0)
        return "done"

    body.runs = runs  # type: ignore[attr-defined]
    return body


async def test_a_transient_conflict_reruns_the_body_until_it_commits() -> None:
    session = SessionDouble()
    body = _body([_labelled("TransientTransactionError")] * 2)

    result = await run_transaction(ClientDouble(session), body)  # type: ignore[arg-type]

    assert result == "done"
    assert (len(body.runs), session.starts, session.aborts, session.commits) == (3, 3, 2, 1)


async def test_transactions_read_a_snapshot_on_the_primary_and_commit_with_a_bounded_majority() -> (
    None
):
    session = SessionDouble()

    await run_transaction(ClientDouble(session), _body([]))  # type: ignore[arg-type]

    assert session.options["read_concern"].level == "snapshot"
    assert session.options["write_concern"].document == {
        "w": "majority",
        "wtimeout": WRITE_TIMEOUT_MS,
    }
    assert session.options["read_preference"] == ReadPreference.PRIMARY


async def test_a_commit_whose_majority_timed_out_is_unavailable_after_the_bound() -> None:
    timed_out = []
    for _ in range(MAX_COMMIT_ATTEMPTS):
        error = WTimeoutError(
            "waiting for replication timed out", 64, {"errInfo": {"wtimeout": True}}
        )
        error._add_error_label("UnknownTransactionCommitResult")
        timed_out.append(error)
    session = SessionDouble(timed_out)

    with pytest.raises(LedgerUnavailable):
        await run_transaction(ClientDouble(session), _body([]))  # type: ignore[arg-type]

    assert session.commits == MAX_COMMIT_ATTEMPTS


async def test_a_concurrent_duplicate_id_reruns_the_transaction_for_the_idempotent_answer() -> None:
    session = SessionDouble()
    body = _body([DuplicateKeyError("E11000 duplicate key: credit_transaction_unique")])

    assert await run_once_per_id(ClientDouble(session), body) == "done"  # type: ignore[arg-type]

    assert (len(body.runs), session.aborts, session.commits) == (2, 1, 1)


async def test_a_duplicate_id_that_persists_is_not_hidden() -> None:
    session = SessionDouble()
    body = _body([DuplicateKeyError("E11000")] * 2)

    with pytest.raises(DuplicateKeyError):
        await run_once_per_id(ClientDouble(session), body)  # type: ignore[arg-type]


async def test_a_body_that_keeps_conflicting_is_unavailable_after_the_bound() -> None:
    session = SessionDouble()
    body = _body([_labelled("TransientTransactionError")] * (MAX_TRANSACTION_ATTEMPTS + 5))

    with pytest.raises(LedgerUnavailable):
        await run_transaction(ClientDouble(session), body)  # type: ignore[arg-type]

    assert len(body.runs) == MAX_TRANSACTION_ATTEMPTS
    assert session.commits == 0


async def test_any_other_error_aborts_and_propagates_without_a_rerun() -> None:
    session = SessionDouble()
    body = _body([DuplicateKeyError("E11000")])

    with pytest.raises(DuplicateKeyError):
        await run_transaction(ClientDouble(session), body)  # type: ignore[arg-type]

    assert (len(body.runs), session.aborts, session.commits) == (1, 1, 0)


async def test_an_unknown_commit_result_retries_the_commit_not_the_body() -> None:
    session = SessionDouble([AutoReconnect("lost", errors=None)])
    session.commit_errors[0]._add_error_label("UnknownTransactionCommitResult")  # type: ignore[attr-defined]
    body = _body([])

    assert await run_transaction(ClientDouble(session), body) == "done"  # type: ignore[arg-type]

    assert (len(body.runs), session.commits) == (1, 2)


async def test_a_commit_still_unknown_after_the_bound_is_unavailable() -> None:
    errors: list[Exception] = [
        _labelled("UnknownTransactionCommitResult", 91) for _ in range(MAX_COMMIT_ATTEMPTS)
    ]
    session = SessionDouble(errors)

    with pytest.raises(LedgerUnavailable):
        await run_transaction(ClientDouble(session), _body([]))  # type: ignore[arg-type]

    assert session.commits == MAX_COMMIT_ATTEMPTS


async def test_a_transient_commit_failure_reruns_the_whole_transaction() -> None:
    session = SessionDouble([_labelled("TransientTransactionError")])
    body = _body([])

    assert await run_transaction(ClientDouble(session), body) == "done"  # type: ignore[arg-type]

    assert (len(body.runs), session.commits) == (2, 2)


def _failing(error: Exception) -> Any:
    @translate_failures
    async def operation() -> None:
        raise error

    return operation


@pytest.mark.parametrize(
    "error",
    [
        ServerSelectionTimeoutError("no primary"),
        AutoReconnect("connection reset"),
        ExecutionTimeout("operation exceeded time limit", 50),
        WTimeoutError("waiting for replication timed out", 64, {"errInfo": {"wtimeout": True}}),
        WriteConcernError("not enough data-bearing nodes", 100),
    ],
)
async def test_an_unreachable_or_timed_out_server_is_ledger_unavailable(error: Exception) -> None:
    with pytest.raises(LedgerUnavailable):
        await _failing(error)()


async def test_other_driver_errors_pass_through_unchanged() -> None:
    with pytest.raises(DuplicateKeyError):
        await _failing(DuplicateKeyError("E11000"))()
