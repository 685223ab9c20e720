"""Per-org figures for ``verify``, read in one snapshot transaction.

Limits: a transaction must finish within the server's
``transactionLifetimeLimitSeconds`` (60 s by default) and its snapshot must
stay in the storage engine's history window, so a very large ledger should be
verified against a secondary or a restored backup rather than the live primary.
"""

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from ledger.models import KeyBudgetFigures, OrgLedgerFigures
from ledger.mongo import keys
from ledger.mongo.collections import Collections
from ledger.mongo.documents import account_from_doc, held_units
from ledger.mongo.queries import (
    Pipeline,
    credited_by_org_pipeline,
    settled_by_org_pipeline,
    usage_by_org_pipeline,
)
from ledger.waterfall import BucketSplit


async def _by_org(
    collection: AsyncCollection[dict[str, Any]], pipeline: Pipeline, session: AsyncClientSession
) -> dict[str, dict[str, Any]]:
    cursor = await collection.aggregate(pipeline, session=session)
    return {row["_id"]: row for row in await cursor.to_list()}


async def ledger_figures(
    collections: Collections, session: AsyncClientSession, now_ms: int
) -> list[OrgLedgerFigures]:
    credited = await _by_org(collections.credit_transactions, credited_by_org_pipeline(), session)
    usage = await _by_org(collections.usage_records, usage_by_org_pipeline(), session)
    settled = await _by_org(collections.holds, settled_by_org_pipeline(), session)
    customers = await collections.customers.find({}, session=session).sort("_id", 1).to_list()
    budgeted = await collections.access_keys.find(
        {"budget_units": {"$ne": None}}, session=session
    ).to_list()
    key_budgets: dict[str, list[KeyBudgetFigures]] = {}
    for key in budgeted:
        key_budgets.setdefault(key["org_id"], []).append(
            await keys.budget_figures(collections, session, key)
        )
    figures = []
    for customer in customers:
        org_id = customer["_id"]
        used = usage.get(org_id, {})
        ended = settled.get(org_id, {})
        figures.append(
            OrgLedgerFigures(
                account=account_from_doc(customer),
                credited_units=int(credited.get(org_id, {}).get("credited_units", 0)),
                debited_units=int(used.get("debited_units", 0)),
                usage_record_count=int(used.get("records", 0)),
                settled_hold_count=int(ended.get("holds", 0)),
                settled_hold_units=int(ended.get("units", 0)),
                held_units=held_units(customer, now_ms),
                split_sums=BucketSplit(
                    int(used.get("subscription_units", 0)),
                    int(used.get("purchased_units", 0)),
                    int(used.get("granted_units", 0)),
                    int(used.get("debt_units", 0)),
                ),
                key_budgets=tuple(key_budgets.get(org_id, ())),
            )
        )
    return figures
