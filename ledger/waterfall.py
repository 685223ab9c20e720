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
    *,
    unpayable_units: int = 0,
) -> BucketSplit:
    """Split ``amount_units`` over subscription → purchased → granted; the rest is debt,
    and so are ``unpayable_units`` that no bucket may pay (``settlement_split``)."""
    if amount_units < 0:
        raise ValueError("a debit cannot be negative")
    from_subscription = min(amount_units, max(subscription_left_units, 0))
    remaining = amount_units - from_subscription
    from_purchased = min(remaining, max(purchased_left_units, 0))
    remaining -= from_purchased
    from_granted = min(remaining, max(granted_left_units, 0))
    return BucketSplit(
        from_subscription,
        from_purchased,
        from_granted,
        remaining - from_granted + unpayable_units,
    )


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
    subscription = buckets.subscription_left_units
    purchased = buckets.purchased_left_units
    granted = buckets.granted_left_units
    payable = payable_units(
        actual_units, reserved_units, subscription + purchased + granted - held_units
    )
    return split_debit(
        payable, subscription, purchased, granted, unpayable_units=actual_units - payable
    )
