"""Transaction bodies for accounts, credits and plans: read, decide, write, in one session.

Each function runs inside ``run_transaction``. Snapshot isolation makes the
read-then-write safe: every body writes the customer document it decided on,
so a concurrent change to that document turns into a write conflict and a
rerun on fresh data, never a lost update.
"""

from bson.int64 import Int64
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from ledger.errors import AccountNotFound
from ledger.models import Account, CreditKind, CreditResult, Subscription
from ledger.mongo import outbox
from ledger.mongo.collections import Collections
from ledger.mongo.documents import (
    Document,
    account_from_doc,
    credit_doc,
    credit_from_doc,
    new_customer,
)
from ledger.mongo.rules import AllowanceUpdate, period_roll, plan_end, plan_update
from ledger.outbox import RechargeState, recharge_credit_id, recharge_credit_reason
from ledger.periods import AllowanceChange, audit_lines
from ledger.replays import credit_replay
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
    for line in audit_lines(org_id, change):
        await collections.credit_transactions.insert_one(
            credit_doc(
                line.transaction_id,
                org_id,
                line.kind,
                line.amount_units,
                line.debt_paid_units,
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


async def _account_after(
    collections: Collections,
    session: AsyncClientSession,
    customer: Document,
    update: AllowanceUpdate | None,
    reason: str,
    now_ms: int,
) -> Account:
    """The account as ``update`` leaves it; as it was when there is none (a stale change)."""
    if update is None:
        return account_from_doc(customer)
    return account_from_doc(
        await _apply_allowance_update(collections, session, customer["_id"], update, reason, now_ms)
    )


async def roll_period_if_due(
    collections: Collections, session: AsyncClientSession, customer: Document, now_ms: int
) -> Document:
    """Renew a locally renewed plan whose period has ended; once, however many notice."""
    update = period_roll(customer, now_ms)
    if update is None:
        return customer
    await _apply_allowance_update(
        collections, session, customer["_id"], update, "period renewed", now_ms
    )
    await outbox.rearm(collections, session, customer["_id"])
    return await load_customer(collections, customer["_id"], session)


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
    return None if doc is None else credit_replay(credit_from_doc(doc), org_id, kind, amount_units)


async def _write_credit(
    collections: Collections,
    session: AsyncClientSession,
    doc: Document,
    increments: dict[str, int],
    now_ms: int,
) -> CreditResult:
    """Move the customer's buckets and record the credit line that explains the move."""
    await collections.customers.update_one(
        {"_id": doc["org_id"]},
        {
            "$inc": {field: Int64(units) for field, units in increments.items()},
            "$set": {"updated_at_ms": Int64(now_ms)},
        },
        session=session,
    )
    await collections.credit_transactions.insert_one(doc, session=session)
    return CreditResult(credit_from_doc(doc), applied=True)


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
    increments = {
        f"{bucket}_credits_units": amount_units,
        f"{bucket}_used_units": paid,
        "debt_units": -paid,
    }
    doc = credit_doc(transaction_id, org_id, kind, amount_units, paid, reason, now_ms)
    result = await _write_credit(collections, session, doc, increments, now_ms)
    await outbox.rearm(collections, session, org_id)
    return result


async def complete_recharge(
    collections: Collections,
    session: AsyncClientSession,
    recharge_id: str,
    payment_intent_id: str,
    now_ms: int,
) -> CreditResult | None:
    """As the SQL routine: credit a paid recharge once, as a purchase."""
    recharge = await outbox.recharge_row(collections, session, recharge_id)
    if recharge is None or recharge.state is RechargeState.FAILED:
        return None
    result = await credit(
        collections,
        session,
        recharge_credit_id(recharge),
        recharge.org_id,
        CreditKind.PURCHASE,
        recharge.amount_units,
        recharge_credit_reason(payment_intent_id),
        now_ms,
    )
    if result.applied:
        await outbox.recharge_succeeded(collections, session, recharge, payment_intent_id, now_ms)
    return result


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
    increments = {
        "purchased_credits_units": -taken_back,
        "debt_units": amount_units - taken_back,
    }
    doc = credit_doc(refund_id, org_id, CreditKind.REFUND, -amount_units, 0, reason, now_ms)
    return await _write_credit(collections, session, doc, increments, now_ms)


async def set_subscription(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    plan: Subscription,
    now_ms: int,
) -> Account:
    customer = await load_customer(collections, org_id, session)
    reason = f"{plan.tier} period starting {plan.period_start.isoformat()}"
    account = await _account_after(
        collections, session, customer, plan_update(customer, plan, now_ms), reason, now_ms
    )
    await outbox.rearm(collections, session, org_id)
    return account


async def clear_subscription(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    as_of_ms: int,
    now_ms: int,
) -> Account:
    customer = await load_customer(collections, org_id, session)
    update = plan_end(customer, as_of_ms, now_ms)
    return await _account_after(
        collections, session, customer, update, "subscription ended", now_ms
    )
