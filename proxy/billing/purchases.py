"""Credit purchases from Stripe into the ledger: credited once per paid session, taken back
per refund and per dispute. Each step re-reads Stripe, so a replayed, late or missed event
converges on what Stripe says now."""

import logging
from dataclasses import dataclass
from typing import Any

import stripe

from ledger import IdempotencyConflict, LedgerStore, format_spus
from proxy.billing.catalogue.credits import (
    RefundAmount,
    dispute_share,
    purchased_units,
    refund_shares,
)
from proxy.billing.catalogue.prices import metadata, object_id
from proxy.billing.checkout import SAVE_CARD
from proxy.billing.client import PAGE_LIMIT, embedded_list, list_all
from proxy.billing.customers import org_for_customer
from proxy.billing.webhooks.outcomes import Outcome

logger = logging.getLogger("spu.billing.purchases")

REFUND_STATUSES_TAKEN_BACK = frozenset({"pending", "succeeded"})
"""A refund on its way to the buyer stops the credits being spendable at once."""


class UnattributablePayment(RuntimeError):
    """Money arrived for a session whose org cannot be found: retried (500) and logged loudly."""


@dataclass(frozen=True, slots=True)
class CreditPurchase:
    session_id: str
    org_id: str
    amount_units: int


def is_credit_session(session: dict[str, Any]) -> bool:
    return session.get("mode") == "payment" and bool(metadata(session).get("org_id"))


async def _line_items(client: stripe.StripeClient, session: dict[str, Any]) -> list[dict[str, Any]]:
    embedded = embedded_list(session, "line_items")
    if embedded is not None:
        return embedded
    return await list_all(
        await client.v1.checkout.sessions.line_items.list_async(
            session["id"], {"limit": PAGE_LIMIT}
        )
    )


async def read_purchase(
    client: stripe.StripeClient, store: LedgerStore, product_id: str, session: dict[str, Any]
) -> CreditPurchase | None:
    """What a credit session bought and for whom; None when it bought no credits of ours."""
    if not is_credit_session(session):
        return None
    amount_units = purchased_units(await _line_items(client, session), product_id)
    if amount_units == 0:
        return None
    org_id = await org_for_customer(
        store, object_id(session.get("customer")), metadata(session).get("org_id")
    )
    if org_id is None:
        raise UnattributablePayment(
            f"checkout session {session['id']} bought {format_spus(amount_units)} SPUs for"
            f" customer {object_id(session.get('customer'))}, which belongs to no org"
        )
    return CreditPurchase(session["id"], org_id, amount_units)


async def credit_session(
    client: stripe.StripeClient, store: LedgerStore, product_id: str, session: dict[str, Any]
) -> Outcome:
    """Credit a paid credit session once (the ledger is idempotent per session id)."""
    if not is_credit_session(session):
        return Outcome.NOT_A_CREDIT_PURCHASE
    if session.get("payment_status") != "paid":
        return Outcome.NOT_PAID_YET
    purchase = await read_purchase(client, store, product_id, session)
    if purchase is None:
        return Outcome.NO_CREDITS_BOUGHT
    if metadata(session).get(SAVE_CARD) == "true":
        await save_default_card(client, session)
    if not await _credit(store, purchase):
        return Outcome.ALREADY_CREDITED
    logger.info(
        "session %s credited %s SPUs to org %s",
        purchase.session_id,
        format_spus(purchase.amount_units),
        purchase.org_id,
    )
    return Outcome.CREDITED


async def save_default_card(client: stripe.StripeClient, session: dict[str, Any]) -> None:
    """The card a ``save_card`` Checkout paid with becomes the customer's default payment
    method, which auto-recharge charges off-session (setting it again changes nothing)."""
    intent_id, customer_id = (
        object_id(session.get("payment_intent")),
        object_id(session.get("customer")),
    )
    if intent_id is None or customer_id is None:
        return
    intent = (await client.v1.payment_intents.retrieve_async(intent_id)).to_dict()
    payment_method = object_id(intent.get("payment_method"))
    if payment_method is not None:
        await client.v1.customers.update_async(
            customer_id, {"invoice_settings": {"default_payment_method": payment_method}}
        )


async def _credit(store: LedgerStore, purchase: CreditPurchase) -> bool:
    try:
        result = await store.credit_purchase(
            purchase.session_id,
            purchase.org_id,
            purchase.amount_units,
            reason=f"Stripe Checkout {purchase.session_id}",
        )
    except IdempotencyConflict as error:
        logger.error("session %s was credited with another amount: %s", purchase.session_id, error)
        return False
    return result.applied


async def _purchase_for_charge(
    client: stripe.StripeClient, store: LedgerStore, product_id: str, charge: dict[str, Any]
) -> CreditPurchase | None:
    """The credit purchase a charge paid for, credited first if its own event is still on its
    way: a refund taken back before its purchase would turn into debt instead."""
    purchase = await _find_purchase(client, store, product_id, charge)
    if purchase is not None:
        await _credit(store, purchase)
    return purchase


async def _find_purchase(
    client: stripe.StripeClient, store: LedgerStore, product_id: str, charge: dict[str, Any]
) -> CreditPurchase | None:
    payment_intent = object_id(charge.get("payment_intent"))
    if payment_intent is None:
        return None
    sessions = await list_all(
        await client.v1.checkout.sessions.list_async(
            {"payment_intent": payment_intent, "expand": ["data.line_items"], "limit": PAGE_LIMIT}
        )
    )
    for session in sessions:
        purchase = await read_purchase(client, store, product_id, session)
        if purchase is not None:
            return purchase
    return None


async def _refunds(client: stripe.StripeClient, charge_id: str) -> list[RefundAmount]:
    refunds = await list_all(
        await client.v1.refunds.list_async({"charge": charge_id, "limit": PAGE_LIMIT})
    )
    return [
        RefundAmount(str(r["id"]), int(r.get("amount") or 0), int(r.get("created") or 0))
        for r in refunds
        if r.get("status") in REFUND_STATUSES_TAKEN_BACK
    ]


async def _take_back(
    store: LedgerStore, take_back_id: str, purchase: CreditPurchase, units: int, reason: str
) -> bool:
    try:
        result = await store.refund_purchase(take_back_id, purchase.org_id, units, reason)
    except IdempotencyConflict as error:
        logger.warning("%s was already taken back with another amount: %s", take_back_id, error)
        return False
    return result.applied


async def take_back_refunds(
    client: stripe.StripeClient, store: LedgerStore, product_id: str, charge: dict[str, Any]
) -> Outcome:
    """Every refund of a credit purchase's charge takes back its share of the credits, once."""
    purchase = await _purchase_for_charge(client, store, product_id, charge)
    if purchase is None:
        return Outcome.NOT_A_CREDIT_PURCHASE
    charge_amount = int(charge.get("amount") or 0)
    shares = refund_shares(
        purchase.amount_units, charge_amount, await _refunds(client, charge["id"])
    )
    applied = 0
    for refund_id, units in shares:
        if units > 0:
            reason = f"Stripe refund {refund_id} of {purchase.session_id}"
            applied += await _take_back(store, refund_id, purchase, units, reason)
    logger.info("charge %s: %d of %d refund(s) taken back", charge["id"], applied, len(shares))
    return Outcome.REFUNDS_TAKEN_BACK if applied else Outcome.NOTHING_TO_TAKE_BACK


async def take_back_dispute(
    client: stripe.StripeClient, store: LedgerStore, product_id: str, dispute: dict[str, Any]
) -> Outcome:
    """A dispute freezes its share of the credits at once, less what refunds already took."""
    charge_id = object_id(dispute.get("charge"))
    if charge_id is None:
        return Outcome.NO_CHARGE
    charge = (await client.v1.charges.retrieve_async(charge_id)).to_dict()
    purchase = await _purchase_for_charge(client, store, product_id, charge)
    if purchase is None:
        return Outcome.NOT_A_CREDIT_PURCHASE
    charge_amount = int(charge.get("amount") or 0)
    refunded_units = sum(
        units
        for _, units in refund_shares(
            purchase.amount_units, charge_amount, await _refunds(client, charge_id)
        )
    )
    units = dispute_share(
        purchase.amount_units, charge_amount, int(dispute.get("amount") or 0), refunded_units
    )
    if units == 0:
        return Outcome.NOTHING_TO_TAKE_BACK
    reason = f"Stripe dispute {dispute['id']} of {purchase.session_id}"
    applied = await _take_back(store, str(dispute["id"]), purchase, units, reason)
    return Outcome.DISPUTE_TAKEN_BACK if applied else Outcome.NOTHING_TO_TAKE_BACK
