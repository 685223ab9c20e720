"""The waterfall: the order in which buckets pay for a debit.

Pure arithmetic, no I/O, so both backends share exactly one rule and it can
be tested exhaustively with property tests.
"""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BucketSplit:
    """How a debit was paid, in units, per bucket; ``debt_units`` is the unpaid rest."""

    subscription_units: int = 0
    purchased_units: int = 0
    granted_units: int = 0
    debt_units: int = 0

    @property
    def paid_units(self) -> int:
        return self.subscription_units + self.purchased_units + self.granted_units

    @property
    def total_units(self) -> int:
        return self.paid_units + self.debt_units


def split_debit(
    amount_units: int,
    subscription_left_units: int,
    purchased_left_units: int,
    granted_left_units: int,
) -> BucketSplit:
    """Split ``amount_units`` over subscription → purchased → granted; the rest is debt."""
    if amount_units < 0:
        raise ValueError("a debit cannot be negative")
    remaining = amount_units
    parts: list[int] = []
    for left in (subscription_left_units, purchased_left_units, granted_left_units):
        take = min(remaining, max(left, 0))
        parts.append(take)
        remaining -= take
    return BucketSplit(parts[0], parts[1], parts[2], remaining)


def debt_payoff(credit_units: int, debt_units: int) -> int:
    """How much of a new credit goes to paying recorded debt first."""
    return min(max(credit_units, 0), max(debt_units, 0))


def payable_units(actual_units: int, hold_units: int, free_units: int) -> int:
    """How much of a settled amount the buckets may pay.

    A call may cost more than its hold; it may then use the org's free balance
    (what no other open hold has reserved) and nothing more, so other callers'
    reservations stay covered. The rest becomes debt.
    """
    return min(actual_units, hold_units + max(free_units, 0))


class BucketsLeft(Protocol):
    """What each bucket still holds: an account, or a backend's own read of one."""

    @property
    def subscription_left_units(self) -> int: ...

    @property
    def purchased_left_units(self) -> int: ...

    @property
    def granted_left_units(self) -> int: ...


def settlement_split(
    actual_units: int, reserved_units: int, held_units: int, buckets: BucketsLeft
) -> BucketSplit:
    """How a settled call is paid: its own hold plus what no other hold reserved; rest is debt.

    ``held_units`` are all unexpired open holds of the org, this one included
    while it has not expired; ``reserved_units`` is this hold's amount, or 0
    once it has expired (it then reserves nothing).
    """
    left_units = (
        buckets.subscription_left_units + buckets.purchased_left_units + buckets.granted_left_units
    )
    payable = payable_units(actual_units, reserved_units, left_units - held_units)
    paid = split_debit(
        payable,
        buckets.subscription_left_units,
        buckets.purchased_left_units,
        buckets.granted_left_units,
    )
    return BucketSplit(
        paid.subscription_units,
        paid.purchased_units,
        paid.granted_units,
        paid.debt_units + actual_units - payable,
    )
