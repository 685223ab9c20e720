"""The SQLite backend's decisions, restated over customer documents.

The arithmetic itself lives in ``ledger.waterfall`` and ``ledger.periods`` and
is only called from here; what this module adds is which rule applies to a
document and which fields an update must ``$set``, so that the transaction
bodies in ``operations`` stay a plain read → decide → write sequence.
"""

from dataclasses import dataclass
from typing import Any

from bson.int64 import Int64

from ledger.clock import to_ms
from ledger.models import AccessKey, Account, Subscription
from ledger.mongo.documents import Document
from ledger.periods import (
    AllowanceChange,
    lapse_allowance,
    new_period_allowance,
    roll_forward_ms,
    same_period_allowance,
)
from ledger.waterfall import BucketSplit, payable_units, split_debit


@dataclass(frozen=True, slots=True)
class AllowanceUpdate:
    """What an allowance change writes on the customer and the audit lines it explains."""

    change: AllowanceChange
    fields: dict[str, Any]


def allowance_fields(change: AllowanceChange, now_ms: int) -> dict[str, Any]:
    return {
        "subscription_allowance_units": Int64(change.allowance_units),
        "subscription_used_units": Int64(change.used_units),
        "debt_units": Int64(change.debt_units),
        "updated_at_ms": Int64(now_ms),
    }


def _allowance_args(customer: Document) -> tuple[int, int]:
    return int(customer["subscription_allowance_units"]), int(customer["subscription_used_units"])


def roll_is_due(customer: Document, now_ms: int) -> bool:
    """A locally renewed plan whose period has ended must renew before it is spent from."""
    start, end = customer["period_start_ms"], customer["period_end_ms"]
    return (
        bool(customer["renews_locally"]) and start is not None and end is not None and now_ms >= end
    )


def period_roll(customer: Document, now_ms: int) -> AllowanceUpdate | None:
    """The renewal of a due local plan (None when not due): the full allowance returns."""
    if not roll_is_due(customer, now_ms):
        return None
    start_ms, end_ms = roll_forward_ms(
        int(customer["period_start_ms"]), int(customer["period_end_ms"]), now_ms
    )
    allowance, used = _allowance_args(customer)
    change = new_period_allowance(allowance, used, allowance, int(customer["debt_units"]))
    fields = allowance_fields(change, now_ms) | {
        "period_start_ms": Int64(start_ms),
        "period_end_ms": Int64(end_ms),
    }
    return AllowanceUpdate(change, fields)


def _is_stale(customer: Document, as_of_ms: int) -> bool:
    recorded = customer["subscription_as_of_ms"]
    return recorded is not None and as_of_ms < recorded


def plan_update(customer: Document, plan: Subscription, now_ms: int) -> AllowanceUpdate | None:
    """Apply ``plan`` unless a newer one is recorded (None); a later period start resets."""
    as_of_ms = to_ms(plan.as_of)
    if _is_stale(customer, as_of_ms):
        return None
    start_ms, end_ms = to_ms(plan.period_start), to_ms(plan.period_end)
    if end_ms <= start_ms:
        raise ValueError("a billing period must end after it starts")
    stored_start = customer["period_start_ms"]
    is_new_period = stored_start is None or start_ms > stored_start
    rule = new_period_allowance if is_new_period else same_period_allowance
    allowance, used = _allowance_args(customer)
    change = rule(allowance, used, plan.allowance_units, int(customer["debt_units"]))
    if not is_new_period:
        stored_end = customer["period_end_ms"]
        assert stored_end is not None, "a stored period start always has an end"
        start_ms, end_ms = int(stored_start), max(end_ms, int(stored_end))
    fields = allowance_fields(change, now_ms) | {
        "subscription_type": plan.tier,
        "subscription_status": plan.status,
        "subscription_price_id": plan.price_id,
        "subscription_item_id": plan.item_id,
        "period_start_ms": Int64(start_ms),
        "period_end_ms": Int64(end_ms),
        "subscription_as_of_ms": Int64(as_of_ms),
        "renews_locally": plan.renews_locally,
    }
    return AllowanceUpdate(change, fields)


def plan_end(customer: Document, as_of_ms: int, now_ms: int) -> AllowanceUpdate | None:
    """End the plan unless a newer change is recorded (None): the unused allowance lapses."""
    if _is_stale(customer, as_of_ms):
        return None
    allowance, used = _allowance_args(customer)
    change = lapse_allowance(allowance, used, int(customer["debt_units"]))
    fields = allowance_fields(change, now_ms) | {
        "subscription_type": "free",
        "subscription_status": "canceled",
        "subscription_price_id": None,
        "subscription_item_id": None,
        "period_start_ms": None,
        "period_end_ms": None,
        "subscription_as_of_ms": Int64(as_of_ms),
        "renews_locally": False,
    }
    return AllowanceUpdate(change, fields)


def bucket_left_units(account: Account) -> int:
    return (
        account.subscription_left_units + account.purchased_left_units + account.granted_left_units
    )


def settlement_split(
    actual_units: int, reserved_units: int, held_units: int, account: Account
) -> BucketSplit:
    """How a settled call is paid: its own hold plus what no other hold reserved; rest is debt.

    ``held_units`` are all unexpired open holds of the org, this one included
    while it has not expired; ``reserved_units`` is this hold's amount, or 0
    once it has expired (it then reserves nothing).
    """
    payable = payable_units(actual_units, reserved_units, bucket_left_units(account) - held_units)
    paid = split_debit(
        payable,
        account.subscription_left_units,
        account.purchased_left_units,
        account.granted_left_units,
    )
    return BucketSplit(
        paid.subscription_units,
        paid.purchased_units,
        paid.granted_units,
        paid.debt_units + actual_units - payable,
    )


def same_key(stored: AccessKey, key: AccessKey) -> bool:
    """Whether adding ``key`` again is the same add: same id, org and token hash."""
    return (stored.key_id, stored.org_id, stored.token_sha256) == (
        key.key_id,
        key.org_id,
        key.token_sha256,
    )
