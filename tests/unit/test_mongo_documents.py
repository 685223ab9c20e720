"""MongoDB documents ↔ ledger models, without a server."""

from datetime import UTC, datetime
from typing import Any

from bson.int64 import Int64

from ledger.models import AccessKey, CreditKind, HoldState, UsageDetails
from ledger.mongo.documents import (
    OpenHold,
    account_from_doc,
    credit_doc,
    credit_from_doc,
    ended_hold,
    find_open_hold,
    held_units,
    key_doc,
    key_from_doc,
    new_customer,
    usage_doc,
    usage_from_doc,
)
from ledger.waterfall import BucketSplit

NOW_MS = 1_800_000_000_123
DETAILS = UsageDetails(
    model="gpt-4o",
    provider="openai",
    key_id="key-1",
    prompt_tokens=100,
    completion_tokens=50,
    total_tokens=150,
    cost_pico_usd=3_000_000_000_000,
    latency_ms=420,
)


def _ints(doc: Any) -> list[int]:
    if isinstance(doc, dict):
        return [value for item in doc.values() for value in _ints(item)]
    if isinstance(doc, list):
        return [value for item in doc for value in _ints(item)]
    return [doc] if isinstance(doc, int) and not isinstance(doc, bool) else []


def test_a_new_customer_is_an_account_with_only_its_free_grant() -> None:
    account = account_from_doc(new_customer("org-1", 5_000, "u-1", "Ada", "a@x.io", NOW_MS))

    assert account.org_id == "org-1"
    assert (account.user_id, account.user_name, account.user_email) == ("u-1", "Ada", "a@x.io")
    assert account.granted_left_units == account.net_balance_units == 5_000
    assert account.subscription_type == "free"
    assert account.stripe_customer_id is None and account.period_start is None
    assert account.created_at == account.updated_at == datetime.fromtimestamp(NOW_MS / 1000, UTC)


def test_every_stored_integer_is_int64_so_sums_never_overflow_int32() -> None:
    hold = OpenHold("req-1", 7, None, NOW_MS, NOW_MS + 60_000)
    docs = [
        new_customer("org-1", 1, None, None, None, NOW_MS),
        hold.to_doc(),
        ended_hold(hold, "org-1", HoldState.SETTLED, NOW_MS),
        usage_doc("req-1", "org-1", 7, BucketSplit(granted_units=7), DETAILS, NOW_MS),
        credit_doc("grant:k", "org-1", CreditKind.GRANT, 7, 0, "promo", NOW_MS),
    ]

    for doc in docs:
        assert _ints(doc), doc
        assert all(isinstance(value, Int64) for value in _ints(doc)), doc


def test_a_usage_record_round_trips_with_its_split_and_details() -> None:
    split = BucketSplit(1, 2, 3, 4)

    record = usage_from_doc(usage_doc("req-1", "org-1", 10, split, DETAILS, NOW_MS))

    assert (record.request_id, record.org_id, record.charged_units) == ("req-1", "org-1", 10)
    assert record.split == split
    assert record.details == DETAILS
    assert record.created_at == datetime.fromtimestamp(NOW_MS / 1000, UTC)


def test_a_credit_transaction_round_trips() -> None:
    doc = credit_doc("refund:re_1", "org-1", CreditKind.REFUND, -20, 0, "chargeback", NOW_MS)

    transaction = credit_from_doc(doc)

    assert transaction.transaction_id == "refund:re_1"
    assert (transaction.kind, transaction.amount_units) == (CreditKind.REFUND, -20)
    assert (transaction.debt_paid_units, transaction.reason) == (0, "chargeback")


def test_an_access_key_round_trips_and_is_stored_unrevoked() -> None:
    created = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
    key = AccessKey(
        key_id="key-1",
        org_id="org-1",
        prefix="spu_abcd",
        token_sha256="a" * 64,
        name="ci",
        created_at=created,
        expires_at=datetime(2027, 2, 15, tzinfo=UTC),
        revoked_at=created,
    )

    stored = key_from_doc(key_doc(key))

    assert stored.revoked_at is None
    assert stored == AccessKey(**{**_fields(key), "revoked_at": None})


def _fields(key: AccessKey) -> dict[str, Any]:
    return {name: getattr(key, name) for name in AccessKey.__dataclass_fields__}


def test_held_units_count_only_holds_that_expire_after_now() -> None:
    customer = new_customer("org-1", 100, None, None, None, 0)
    customer["holds"] = [
        OpenHold("live", 30, None, 0, NOW_MS + 1).to_doc(),
        OpenHold("at-expiry", 20, None, 0, NOW_MS).to_doc(),
        OpenHold("expired", 10, None, 0, NOW_MS - 1).to_doc(),
    ]

    assert held_units(customer, NOW_MS) == 30
    assert held_units(customer, NOW_MS - 1) == 50
    assert find_open_hold(customer, "at-expiry") == OpenHold("at-expiry", 20, None, 0, NOW_MS)
    assert find_open_hold(customer, "absent") is None


def test_a_customer_without_holds_holds_nothing() -> None:
    customer = new_customer("org-1", 100, None, None, None, 0)
    del customer["holds"]

    assert held_units(customer, NOW_MS) == 0


def test_an_ended_hold_is_keyed_by_its_request_id_and_keeps_its_terms() -> None:
    hold = OpenHold("req-1", 30, "key-1", NOW_MS, NOW_MS + 60_000)

    record = ended_hold(hold, "org-1", HoldState.RELEASED, NOW_MS + 5)

    assert record["_id"] == "req-1"
    assert (record["org_id"], record["state"], record["key_id"]) == ("org-1", "released", "key-1")
    assert (record["amount_units"], record["expires_at_ms"]) == (30, NOW_MS + 60_000)
    assert record["ended_at_ms"] == NOW_MS + 5
