"""The shared plan rules (``ledger.periods``), applied to customer documents.

The rules themselves are the ones the SQLite backend calls; what this module
adds is reading their inputs from a document and which fields an update must
``$set``, so that the transaction bodies in ``operations`` stay a plain
read → decide → write sequence.
"""

from dataclasses import dataclass
from typing import Any

from bson.int64 import Int64

from ledger.clock import to_ms
from ledger.models import Subscription
from ledger.mongo.documents import Document
from ledger.periods import (
    AllowanceChange,
    is_stale,
    lapse_allowance,
    plan_period,
    renewed_period,
)


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
    allowance, used = _allowance_args(customer)
    period = renewed_period(
        int(customer["period_start_ms"]),
        int(customer["period_end_ms"]),
        now_ms,
        allowance_units=allowance,
        used_units=used,
        debt_units=int(customer["debt_units"]),
    )
    fields = allowance_fields(period.change, now_ms) | {
        "period_start_ms": Int64(period.start_ms),
        "period_end_ms": Int64(period.end_ms),
    }
    return AllowanceUpdate(period.change, fields)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def plan_update(customer: Document, plan: Subscription, now_ms: int) -> AllowanceUpdate | None:
    """Apply ``plan`` unless a newer one is recorded (None); a later period start resets."""
    as_of_ms = to_ms(plan.as_of)
    if is_stale(_optional_int(customer["subscription_as_of_ms"]), as_of_ms):
        return None
    allowance, used = _allowance_args(customer)
    period = plan_period(
        plan,
        stored_start_ms=_optional_int(customer["period_start_ms"]),
        stored_end_ms=_optional_int(customer["period_end_ms"]),
        allowance_units=allowance,
        used_units=used,
        debt_units=int(customer["debt_units"]),
    )
    fields = allowance_fields(period.change, now_ms) | {
        "subscription_type": plan.tier,
        "subscription_status": plan.status,
        "subscription_price_id": plan.price_id,
        "subscription_item_id": plan.item_id,
        "period_start_ms": Int64(period.start_ms),
        "period_end_ms": Int64(period.end_ms),
        "subscription_as_of_ms": Int64(as_of_ms),
        "renews_locally": plan.renews_locally,
    }
    return AllowanceUpdate(period.change, fields)


def plan_end(customer: Document, as_of_ms: int, now_ms: int) -> AllowanceUpdate | None:
    """End the plan unless a newer change is recorded (None): the unused allowance lapses."""
    if is_stale(_optional_int(customer["subscription_as_of_ms"]), as_of_ms):
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
