"""Billing-period rules shared by every backend: pure functions of amounts and times."""

from dataclasses import dataclass

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
