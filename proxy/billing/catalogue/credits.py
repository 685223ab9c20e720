"""Credits bought through Checkout, and how much of them a refund or dispute takes back.

What a session bought is read from its line items (the credit price and the
quantity Stripe actually sold), never from metadata a client could have
shaped. A refund takes back the share of those credits that its amount is of
the charge: proportional shares stay right whatever discount, tax or
currency conversion made the charge differ from ``unit_amount × quantity``.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from proxy.billing.catalogue.prices import (
    CREDIT_PRICE,
    PRICE_TYPE_KEY,
    Json,
    credit_from_price,
    metadata,
    object_id,
)


@dataclass(frozen=True, slots=True)
class RefundAmount:
    refund_id: str
    amount: int
    """Minor currency units, in the charge's currency."""
    created: int


def purchased_units(line_items: Iterable[Json], product_id: str) -> int:
    """Ledger units a paid session bought: its credit-price line items of our product."""
    total = 0
    for item in line_items:
        price = item.get("price")
        if not isinstance(price, Mapping) or object_id(price.get("product")) != product_id:
            continue
        if metadata(price).get(PRICE_TYPE_KEY) != CREDIT_PRICE:
            continue
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            continue
        total += quantity * credit_from_price(price).units_per_quantity
    return total


def refund_shares(
    purchased_units: int, charge_amount: int, refunds: Iterable[RefundAmount]
) -> list[tuple[str, int]]:
    """Units each refund takes back, oldest first.

    Shares are differences of rounded-down cumulative shares, so partial
    refunds that add up to the whole charge take back exactly every unit
    bought, and each refund's share never changes when later ones arrive.
    """
    if charge_amount <= 0 or purchased_units <= 0:
        return [(refund.refund_id, 0) for refund in refunds]
    shares: list[tuple[str, int]] = []
    refunded_amount = 0
    taken_units = 0
    for refund in sorted(refunds, key=lambda r: (r.created, r.refund_id)):
        refunded_amount = min(charge_amount, refunded_amount + max(refund.amount, 0))
        cumulative_units = purchased_units * refunded_amount // charge_amount
        shares.append((refund.refund_id, cumulative_units - taken_units))
        taken_units = cumulative_units
    return shares


def dispute_share(
    purchased_units: int, charge_amount: int, dispute_amount: int, refunded_units: int
) -> int:
    """Units a dispute takes back: its share of the charge, less what refunds already took."""
    if charge_amount <= 0:
        return 0
    share = purchased_units * min(max(dispute_amount, 0), charge_amount) // charge_amount
    return max(0, min(share, purchased_units - refunded_units))
