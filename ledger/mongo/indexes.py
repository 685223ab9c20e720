"""Every index the ledger relies on; ``create_indexes`` is the store's whole schema set-up.

Unique indexes carry the idempotency rules (a request id settles once, a
credit id credits once, a Stripe customer belongs to one org); the others
serve the usage queries and the expiry sweep. Creating an index that already
exists with the same options is a no-op, so running this at every start is safe.
"""

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from ledger.mongo.collections import (
    ACCESS_KEYS,
    CREDIT_TRANSACTIONS,
    CUSTOMERS,
    HOLDS,
    IDEMPOTENT_REPLIES,
    OUTBOX,
    RECHARGES,
    RESPONSE_OWNERS,
    USAGE_RECORDS,
)


def _unique(field: str, name: str, **options: Any) -> IndexModel:
    return IndexModel([(field, ASCENDING)], name=name, unique=True, **options)


def _by_time(name: str, *prefix: str) -> IndexModel:
    keys = [(field, ASCENDING) for field in (*prefix, "created_at_ms", "_id")]
    return IndexModel(keys, name=name)


INDEXES: dict[str, list[IndexModel]] = {
    CUSTOMERS: [
        _unique(
            "stripe_customer_id",
            "stripe_customer_unique",
            partialFilterExpression={"stripe_customer_id": {"$type": "string"}},
        ),
        # One open hold per request id across all orgs (a multikey unique index
        # does not police duplicates inside one document: the hold filter does).
        _unique(
            "holds.request_id",
            "open_hold_request_unique",
            partialFilterExpression={"holds.request_id": {"$exists": True}},
        ),
        IndexModel([("holds.expires_at_ms", ASCENDING)], name="open_hold_expiry"),
    ],
    CREDIT_TRANSACTIONS: [
        _unique("transaction_id", "credit_transaction_unique"),
        _by_time("credit_by_org_time", "org_id"),
    ],
    USAGE_RECORDS: [
        _unique("request_id", "usage_request_unique"),
        _by_time("usage_by_org_time", "org_id"),
        _by_time("usage_by_time"),
    ],
    HOLDS: [IndexModel([("state", ASCENDING), ("org_id", ASCENDING)], name="ended_hold_by_state")],
    OUTBOX: [
        IndexModel(
            [("topic", ASCENDING), ("state", ASCENDING), ("next_attempt_at_ms", ASCENDING)],
            name="outbox_due",
        ),
        _by_time("outbox_by_org_time", "org_id"),
    ],
    RECHARGES: [
        IndexModel(
            [("org_id", ASCENDING), ("month_start_ms", ASCENDING)], name="recharges_by_month"
        ),
        _by_time("recharges_by_org_time", "org_id"),
    ],
    ACCESS_KEYS: [
        _unique("key_id", "access_key_unique"),
        _unique("token_sha256", "access_key_hash_unique"),
        _by_time("access_key_by_org_time", "org_id"),
    ],
    RESPONSE_OWNERS: [_by_time("response_owner_by_time")],
    IDEMPOTENT_REPLIES: [
        # A settlement keeps its reply under the key its request claimed.
        _unique("request_id", "idempotent_reply_request_unique"),
        IndexModel([("expires_at_ms", ASCENDING)], name="idempotent_reply_expiry"),
    ],
}
"""``payments_processed_events`` needs none: its ``_id`` is the event id (a response owner's
is the response id)."""


async def create_indexes(database: AsyncDatabase[dict[str, Any]]) -> None:
    for name, models in INDEXES.items():
        await database[name].create_indexes(models)
