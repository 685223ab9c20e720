"""Transaction bodies for accounts, credits and plans: read, decide, write, in one session.

Each function runs inside ``run_transaction``. Snapshot isolation makes the
read-then-write safe: every body writes the customer document it decided on,
so a concurrent change to that document turns into a write conflict and a
rerun on fresh data, never a lost update.
"""

import uuid

from bson.int64 import Int64
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from ledger.errors import AccountNotFound, IdempotencyConflict
from ledger.models import Account, CreditKind, CreditResult, Subscription
from ledger.mongo.collections import Collections
from ledger.mongo.documents import (
    Document,
    account_from_doc,
    credit_doc,
    credit_from_doc,
    new_customer,
)
from ledger.mongo.rules import AllowanceUpdate, period_roll, plan_end, plan_update
from ledger.periods import AllowanceChange
from ledger.waterfall import debt_payoff


async def load_customer(
    collections: Collections, org_id: str, session: AsyncClientSession | None
) -> Document:
    """Read a customer, in a transaction's session or (``None``) on its own."""
    doc = await collections.customers.find_one({"_id": org_id}, session=session)
    if doc is None:
        raise AccountNotFound(org_id)
    return doc


async def _record_allowance_change(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    change: AllowanceChange,
    reason: str,
    now_ms: int,
) -> None:
    """Audit lines for an allowance change; random ids are unique because the change itself
    is decided once, on the document this transaction writes."""
    if change.lapsed_units:
        await collections.credit_transactions.insert_one(
            credit_doc(
                f"allowance_expired:{org_id}:{uuid.uuid4().hex}",
                org_id,
                CreditKind.ALLOWANCE_EXPIRED,
                -change.lapsed_units,
                0,
                reason,
                now_ms,
            ),
            session=session,
        )
    if change.credited_units:
        await collections.credit_transactions.insert_one(
            credit_doc(
                f"allowance:{org_id}:{uuid.uuid4().hex}",
                org_id,
                CreditKind.ALLOWANCE,
                change.credited_units,
                change.debt_paid_units,
                reason,
                now_ms,
            ),
            session=session,
        )


async def _apply_allowance_update(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    update: AllowanceUpdate,
    reason: str,
    now_ms: int,
) -> Document:
    after = await collections.customers.find_one_and_update(
        {"_id": org_id},
        {"$set": update.fields},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    assert after is not None, "the customer was read in this same transaction"
    await _record_allowance_change(collections, session, org_id, update.change, reason, now_ms)
    return after


async def roll_period_if_due(
    collections: Collections, session: AsyncClientSession, customer: Document, now_ms: int
) -> Document:
    """Renew a locally renewed plan whose period has ended; once, however many notice."""
    update = period_roll(customer, now_ms)
    if update is None:
        return customer
    return await _apply_allowance_update(
        collections, session, customer["_id"], update, "period renewed", now_ms
    )


async def roll_period(
    collections: Collections, session: AsyncClientSession, org_id: str, now_ms: int
) -> None:
    await roll_period_if_due(
        collections, session, await load_customer(collections, org_id, session), now_ms
    )


async def create_account(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    free_grant_units: int,
    user_id: str | None,
    user_name: str | None,
    user_email: str | None,
    now_ms: int,
) -> Account:
    fresh = new_customer(org_id, free_grant_units, user_id, user_name, user_email, now_ms)
    del fresh["_id"]  # an upsert takes it from the filter
    inserted = await collections.customers.update_one(
        {"_id": org_id}, {"$setOnInsert": fresh}, upsert=True, session=session
    )
    if inserted.upserted_id is not None and free_grant_units:
        await collections.credit_transactions.insert_one(
            credit_doc(
                f"free_tier:{org_id}",
                org_id,
                CreditKind.FREE_TIER,
                free_grant_units,
                0,
                "free tier",
                now_ms,
            ),
            session=session,
        )
    return account_from_doc(await load_customer(collections, org_id, session))


async def _existing_credit(
    collections: Collections,
    session: AsyncClientSession,
    transaction_id: str,
    org_id: str,
    kind: CreditKind,
    amount_units: int,
) -> CreditResult | None:
    doc = await collections.credit_transactions.find_one(
        {"transaction_id": transaction_id}, session=session
    )
    if doc is None:
        return None
    transaction = credit_from_doc(doc)
    if (transaction.org_id, transaction.kind, transaction.amount_units) != (
        org_id,
        kind,
        amount_units,
    ):
        raise IdempotencyConflict("credit", transaction_id, "different org, kind or amount")
    return CreditResult(transaction, applied=False)


async def credit(
    collections: Collections,
    session: AsyncClientSession,
    transaction_id: str,
    org_id: str,
    kind: CreditKind,
    amount_units: int,
    reason: str,
    now_ms: int,
) -> CreditResult:
    """Add purchased or granted credit once per id; recorded debt is paid first."""
    already = await _existing_credit(
        collections, session, transaction_id, org_id, kind, amount_units
    )
    if already is not None:
        return already
    customer = await load_customer(collections, org_id, session)
    bucket = "purchased" if kind is CreditKind.PURCHASE else "granted"
    paid = debt_payoff(amount_units, int(customer["debt_units"]))
    await collections.customers.update_one(
        {"_id": org_id},
        {
            "$inc": {
                f"{bucket}_credits_units": Int64(amount_units),
                f"{bucket}_used_units": Int64(paid),
                "debt_units": Int64(-paid),
            },
            "$set": {"updated_at_ms": Int64(now_ms)},
        },
        session=session,
    )
    doc = credit_doc(transaction_id, org_id, kind, amount_units, paid, reason, now_ms)
    await collections.credit_transactions.insert_one(doc, session=session)
    return CreditResult(credit_from_doc(doc), applied=True)


async def refund_purchase(
    collections: Collections,
    session: AsyncClientSession,
    refund_id: str,
    org_id: str,
    amount_units: int,
    reason: str,
    now_ms: int,
) -> CreditResult:
    """Take back unspent purchased credit; what was already spent becomes debt."""
    already = await _existing_credit(
        collections, session, refund_id, org_id, CreditKind.REFUND, -amount_units
    )
    if already is not None:
        return already
    customer = await load_customer(collections, org_id, session)
    purchased_left = int(customer["purchased_credits_units"]) - int(
        customer["purchased_used_units"]
    )
    taken_back = min(amount_units, purchased_left)
    await collections.customers.update_one(
        {"_id": org_id},
        {
            "$inc": {
                "purchased_credits_units": Int64(-taken_back),
                "debt_units": Int64(amount_units - taken_back),
            },
            "$set": {"updated_at_ms": Int64(now_ms)},
        },
        session=session,
    )
    doc = credit_doc(refund_id, org_id, CreditKind.REFUND, -amount_units, 0, reason, now_ms)
    await collections.credit_transactions.insert_one(doc, session=session)
    return CreditResult(credit_from_doc(doc), applied=True)


async def set_subscription(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    plan: Subscription,
    now_ms: int,
) -> Account:
    customer = await load_customer(collections, org_id, session)
    update = plan_update(customer, plan, now_ms)
    if update is None:
        return account_from_doc(customer)
    reason = f"{plan.tier} period starting {plan.period_start.isoformat()}"
    return account_from_doc(
        await _apply_allowance_update(collections, session, org_id, update, reason, now_ms)
    )


async def clear_subscription(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    as_of_ms: int,
    now_ms: int,
) -> Account:
    customer = await load_customer(collections, org_id, session)
    update = plan_end(customer, as_of_ms, now_ms)
    if update is None:
        return account_from_doc(customer)
    return account_from_doc(
        await _apply_allowance_update(
            collections, session, org_id, update, "subscription ended", now_ms
        )
    )
