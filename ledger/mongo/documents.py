"""Documents to ledger models and back: the one place that knows MongoDB field names.

Every integer is written as BSON int64 (``Int64``), so amounts never pass
through int32 arithmetic on the server; times are integer epoch milliseconds
(``*_ms``), the ledger clock's own unit, so ``$expr`` filters compare plain
numbers and both backends round times the same way.
"""

from dataclasses import dataclass
from typing import Any

from bson.int64 import Int64

from ledger.clock import from_ms, optional_from_ms, optional_to_ms, to_ms
from ledger.key_limits import BudgetPeriod, KeyLimits
from ledger.models import (
    AccessKey,
    Account,
    CreditKind,
    CreditTransaction,
    HoldState,
    UsageDetails,
    UsageRecord,
)
from ledger.waterfall import BucketSplit

Document = dict[str, Any]


def optional_int64(value: int | None) -> Int64 | None:
    return None if value is None else Int64(value)


def new_customer(
    org_id: str,
    free_grant_units: int,
    user_id: str | None,
    user_name: str | None,
    user_email: str | None,
    now_ms: int,
) -> Document:
    """A fresh ``payments_customers`` document: the free grant, no plan, no open holds."""
    zero = Int64(0)
    return {
        "_id": org_id,
        "user_id": user_id,
        "user_name": user_name,
        "user_email": user_email,
        "stripe_customer_id": None,
        "subscription_type": "free",
        "subscription_status": None,
        "subscription_price_id": None,
        "subscription_item_id": None,
        "subscription_allowance_units": zero,
        "subscription_used_units": zero,
        "period_start_ms": None,
        "period_end_ms": None,
        "purchased_credits_units": zero,
        "purchased_used_units": zero,
        "granted_credits_units": Int64(free_grant_units),
        "granted_used_units": zero,
        "debt_units": zero,
        "subscription_as_of_ms": None,
        "renews_locally": False,
        "created_at_ms": Int64(now_ms),
        "updated_at_ms": Int64(now_ms),
        "holds": [],
    }


def account_from_doc(doc: Document) -> Account:
    return Account(
        org_id=doc["_id"],
        user_id=doc["user_id"],
        user_name=doc["user_name"],
        user_email=doc["user_email"],
        stripe_customer_id=doc["stripe_customer_id"],
        subscription_type=doc["subscription_type"],
        subscription_status=doc["subscription_status"],
        subscription_price_id=doc["subscription_price_id"],
        subscription_item_id=doc["subscription_item_id"],
        subscription_allowance_units=int(doc["subscription_allowance_units"]),
        subscription_used_units=int(doc["subscription_used_units"]),
        period_start=optional_from_ms(doc["period_start_ms"]),
        period_end=optional_from_ms(doc["period_end_ms"]),
        purchased_credits_units=int(doc["purchased_credits_units"]),
        purchased_used_units=int(doc["purchased_used_units"]),
        granted_credits_units=int(doc["granted_credits_units"]),
        granted_used_units=int(doc["granted_used_units"]),
        debt_units=int(doc["debt_units"]),
        subscription_as_of=optional_from_ms(doc["subscription_as_of_ms"]),
        renews_locally=bool(doc["renews_locally"]),
        created_at=from_ms(doc["created_at_ms"]),
        updated_at=from_ms(doc["updated_at_ms"]),
    )


@dataclass(frozen=True, slots=True)
class OpenHold:
    """A hold embedded in its customer document while it is open."""

    request_id: str
    amount_units: int
    key_id: str | None
    created_at_ms: int
    expires_at_ms: int

    def to_doc(self) -> Document:
        return {
            "request_id": self.request_id,
            "amount_units": Int64(self.amount_units),
            "key_id": self.key_id,
            "created_at_ms": Int64(self.created_at_ms),
            "expires_at_ms": Int64(self.expires_at_ms),
        }

    @classmethod
    def from_doc(cls, doc: Document) -> "OpenHold":
        return cls(
            request_id=doc["request_id"],
            amount_units=int(doc["amount_units"]),
            key_id=doc["key_id"],
            created_at_ms=int(doc["created_at_ms"]),
            expires_at_ms=int(doc["expires_at_ms"]),
        )


def open_holds(customer: Document) -> list[OpenHold]:
    return [OpenHold.from_doc(entry) for entry in customer.get("holds") or []]


def find_open_hold(customer: Document, request_id: str) -> OpenHold | None:
    return next((hold for hold in open_holds(customer) if hold.request_id == request_id), None)


def held_units(customer: Document, now_ms: int) -> int:
    """Open holds that have not expired: an expired hold stops counting at once."""
    return sum(hold.amount_units for hold in open_holds(customer) if hold.expires_at_ms > now_ms)


def ended_hold(hold: OpenHold, org_id: str, state: HoldState, now_ms: int) -> Document:
    """A ``payments_holds`` document: the permanent record of a hold that ended."""
    return {
        "_id": hold.request_id,
        "org_id": org_id,
        "key_id": hold.key_id,
        "amount_units": Int64(hold.amount_units),
        "state": state.value,
        "created_at_ms": Int64(hold.created_at_ms),
        "expires_at_ms": Int64(hold.expires_at_ms),
        "ended_at_ms": Int64(now_ms),
    }


def usage_doc(
    request_id: str,
    org_id: str,
    charged_units: int,
    split: BucketSplit,
    details: UsageDetails,
    now_ms: int,
) -> Document:
    return {
        "request_id": request_id,
        "org_id": org_id,
        "key_id": details.key_id,
        "model": details.model,
        "provider": details.provider,
        "operation": details.operation,
        "source": details.source,
        "prompt_tokens": Int64(details.prompt_tokens),
        "completion_tokens": Int64(details.completion_tokens),
        "total_tokens": Int64(details.total_tokens),
        "cost_pico_usd": Int64(details.cost_pico_usd),
        "charged_units": Int64(charged_units),
        "subscription_units": Int64(split.subscription_units),
        "purchased_units": Int64(split.purchased_units),
        "granted_units": Int64(split.granted_units),
        "debt_units": Int64(split.debt_units),
        "latency_ms": Int64(details.latency_ms),
        "status": details.status,
        "created_at_ms": Int64(now_ms),
    }


def usage_from_doc(doc: Document) -> UsageRecord:
    return UsageRecord(
        request_id=doc["request_id"],
        org_id=doc["org_id"],
        charged_units=int(doc["charged_units"]),
        split=BucketSplit(
            int(doc["subscription_units"]),
            int(doc["purchased_units"]),
            int(doc["granted_units"]),
            int(doc["debt_units"]),
        ),
        details=UsageDetails(
            model=doc["model"],
            provider=doc["provider"],
            key_id=doc["key_id"],
            operation=doc["operation"],
            source=doc["source"],
            prompt_tokens=int(doc["prompt_tokens"]),
            completion_tokens=int(doc["completion_tokens"]),
            total_tokens=int(doc["total_tokens"]),
            cost_pico_usd=int(doc["cost_pico_usd"]),
            latency_ms=int(doc["latency_ms"]),
            status=doc["status"],
        ),
        created_at=from_ms(doc["created_at_ms"]),
    )


def credit_doc(
    transaction_id: str,
    org_id: str,
    kind: CreditKind,
    amount_units: int,
    debt_paid_units: int,
    reason: str,
    now_ms: int,
) -> Document:
    return {
        "transaction_id": transaction_id,
        "org_id": org_id,
        "kind": kind.value,
        "amount_units": Int64(amount_units),
        "debt_paid_units": Int64(debt_paid_units),
        "reason": reason,
        "created_at_ms": Int64(now_ms),
    }


def credit_from_doc(doc: Document) -> CreditTransaction:
    return CreditTransaction(
        transaction_id=doc["transaction_id"],
        org_id=doc["org_id"],
        kind=CreditKind(doc["kind"]),
        amount_units=int(doc["amount_units"]),
        debt_paid_units=int(doc["debt_paid_units"]),
        reason=doc["reason"],
        created_at=from_ms(doc["created_at_ms"]),
    )


def limits_from_doc(doc: Document) -> KeyLimits:
    """Keys stored before limits existed have none of these fields: no limits."""
    return KeyLimits(
        None if doc.get("budget_units") is None else int(doc["budget_units"]),
        BudgetPeriod(doc.get("budget_period") or BudgetPeriod.TOTAL),
        None if doc.get("rpm") is None else int(doc["rpm"]),
        None if doc.get("tpm") is None else int(doc["tpm"]),
    )


def limits_fields(
    limits: KeyLimits, *, set_at_ms: int, committed_units: int, window_start: int | None, spent: int
) -> Document:
    return {
        "budget_units": optional_int64(limits.budget_units),
        "budget_period": limits.budget_period.value,
        "rpm": optional_int64(limits.rpm),
        "tpm": optional_int64(limits.tpm),
        "limits_set_at_ms": Int64(set_at_ms),
        "limits_committed_units": Int64(committed_units),
        "window_start_ms": optional_int64(window_start),
        "window_spent_units": Int64(spent),
    }


def key_doc(key: AccessKey) -> Document:
    """A new key is stored unrevoked, whatever ``revoked_at`` says (as in SQLite)."""
    created_ms = to_ms(key.created_at)
    budgeted = key.limits.budget_units is not None
    return {
        "key_id": key.key_id,
        "org_id": key.org_id,
        "prefix": key.prefix,
        "token_sha256": key.token_sha256,
        "name": key.name,
        "created_at_ms": Int64(created_ms),
        "expires_at_ms": optional_int64(optional_to_ms(key.expires_at)),
        "revoked_at_ms": None,
        **limits_fields(
            key.limits,
            set_at_ms=created_ms,
            committed_units=0,
            window_start=created_ms if budgeted else None,
            spent=0,
        ),
    }


def key_from_doc(doc: Document) -> AccessKey:
    return AccessKey(
        key_id=doc["key_id"],
        org_id=doc["org_id"],
        prefix=doc["prefix"],
        token_sha256=doc["token_sha256"],
        name=doc["name"],
        created_at=from_ms(doc["created_at_ms"]),
        expires_at=optional_from_ms(doc["expires_at_ms"]),
        revoked_at=optional_from_ms(doc["revoked_at_ms"]),
        limits=limits_from_doc(doc),
    )
