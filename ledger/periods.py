"""Billing-period rules shared by every backend: pure functions of amounts and times."""

import uuid
from dataclasses import dataclass
from typing import NamedTuple

from ledger.clock import to_ms
from ledger.models import CreditKind, Subscription
from ledger.waterfall import debt_payoff


@dataclass(frozen=True, slots=True)
class AllowanceChange:
    """The new allowance columns and the audit lines that explain the change."""

    allowance_units: int
    used_units: int
    debt_units: int
    lapsed_units: int
    """Unused allowance that ended with the old period (recorded as a negative credit)."""
    credited_units: int
    """Allowance added (recorded as a positive credit; may first pay off debt)."""
    debt_paid_units: int


def new_period_allowance(
    old_allowance_units: int, old_used_units: int, new_allowance_units: int, debt_units: int
) -> AllowanceChange:
    """A new period: the old period's unused allowance lapses and the full allowance returns."""
    paid = debt_payoff(new_allowance_units, debt_units)
    return AllowanceChange(
        allowance_units=new_allowance_units,
        used_units=paid,
        debt_units=debt_units - paid,
        lapsed_units=old_allowance_units - old_used_units,
        credited_units=new_allowance_units,
        debt_paid_units=paid,
    )


def same_period_allowance(
    old_allowance_units: int, old_used_units: int, new_allowance_units: int, debt_units: int
) -> AllowanceChange:
    """A plan change inside a period keeps what was used; an allowance never drops below it."""
    effective = max(new_allowance_units, old_used_units)
    delta = effective - old_allowance_units
    paid = debt_payoff(delta, debt_units)
    return AllowanceChange(
        allowance_units=effective,
        used_units=old_used_units + paid,
        debt_units=debt_units - paid,
        lapsed_units=max(-delta, 0),
        credited_units=max(delta, 0),
        debt_paid_units=paid,
    )


def lapse_allowance(
    old_allowance_units: int, old_used_units: int, debt_units: int
) -> AllowanceChange:
    """The plan ended: whatever allowance is left lapses; debt stays owed."""
    return AllowanceChange(0, 0, debt_units, old_allowance_units - old_used_units, 0, 0)


def roll_forward_ms(period_start_ms: int, period_end_ms: int, now_ms: int) -> tuple[int, int]:
    """Advance a locally renewed period by whole lengths until it contains ``now_ms``."""
    length_ms = period_end_ms - period_start_ms
    if length_ms <= 0:
        raise ValueError("a billing period must have a positive length")
    if now_ms < period_end_ms:
        return period_start_ms, period_end_ms
    skipped = (now_ms - period_end_ms) // length_ms + 1
    start = period_start_ms + skipped * length_ms
    return start, start + length_ms


@dataclass(frozen=True, slots=True)
class PlanPeriod:
    """A plan applied to an account: its allowance change and the period it now runs in."""

    change: AllowanceChange
    start_ms: int
    end_ms: int


def is_stale(recorded_as_of_ms: int | None, as_of_ms: int) -> bool:
    """A plan change older than the one recorded is ignored (Stripe delivers out of order)."""
    return recorded_as_of_ms is not None and as_of_ms < recorded_as_of_ms


def plan_period(
    plan: Subscription,
    *,
    stored_start_ms: int | None,
    stored_end_ms: int | None,
    allowance_units: int,
    used_units: int,
    debt_units: int,
) -> PlanPeriod:
    """A later period start resets the allowance; the same period keeps its start and what
    was used, and never ends earlier than recorded."""
    start_ms, end_ms = to_ms(plan.period_start), to_ms(plan.period_end)
    if end_ms <= start_ms:
        raise ValueError("a billing period must end after it starts")
    if stored_start_ms is None or start_ms > stored_start_ms:
        change = new_period_allowance(allowance_units, used_units, plan.allowance_units, debt_units)
        return PlanPeriod(change, start_ms, end_ms)
    assert stored_end_ms is not None, "a stored period start always has an end"
    change = same_period_allowance(allowance_units, used_units, plan.allowance_units, debt_units)
    return PlanPeriod(change, stored_start_ms, max(end_ms, stored_end_ms))


def renewed_period(
    start_ms: int,
    end_ms: int,
    now_ms: int,
    *,
    allowance_units: int,
    used_units: int,
    debt_units: int,
) -> PlanPeriod:
    """A locally renewed plan past its end: the period that contains ``now_ms``, full allowance."""
    new_start_ms, new_end_ms = roll_forward_ms(start_ms, end_ms, now_ms)
    change = new_period_allowance(allowance_units, used_units, allowance_units, debt_units)
    return PlanPeriod(change, new_start_ms, new_end_ms)


class AuditLine(NamedTuple):
    """One credit transaction that explains part of an allowance change."""

    transaction_id: str
    kind: CreditKind
    amount_units: int
    debt_paid_units: int


def audit_lines(org_id: str, change: AllowanceChange) -> list[AuditLine]:
    """The lapse and the credit of an allowance change, each only when not zero.

    Random ids are unique because the change itself happens once: every backend
    decides it on the account it writes in the same atomic operation.
    """
    lines = []
    if change.lapsed_units:
        lines.append(
            AuditLine(
                f"allowance_expired:{org_id}:{uuid.uuid4().hex}",
                CreditKind.ALLOWANCE_EXPIRED,
                -change.lapsed_units,
                0,
            )
        )
    if change.credited_units:
        lines.append(
            AuditLine(
                f"allowance:{org_id}:{uuid.uuid4().hex}",
                CreditKind.ALLOWANCE,
                change.credited_units,
                change.debt_paid_units,
            )
        )
    return lines
