"""Checkout Sessions for credits and plans, and Billing Portal sessions, for the caller's org.

Credits are sold as a line item of the credit price with a quantity, so
Stripe's own records (receipts, reports, refunds) show what was sold, and the
webhook credits what the line items say. Every session carries the org id in
metadata and is tied to the org's one Stripe customer.
"""

from dataclasses import dataclass
from typing import Any

import stripe

from ledger import Account, LedgerStore, format_spus
from proxy.billing.catalogue.plans import ENDED_STATUSES
from proxy.billing.catalogue.prices import Catalogue, PurchaseRejected
from proxy.billing.customers import ensure_customer
from proxy.errors import ApiError

SAVE_CARD = "save_card"
"""Session metadata: the card paid with becomes the customer's default, for auto-recharge."""
CHECKOUT_SESSION_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
"""Stripe replaces this in ``success_url`` with the session id."""


@dataclass(frozen=True, slots=True)
class ReturnUrls:
    success_url: str
    cancel_url: str


def gateway_url(public_url: str, name: str, url: str | None, default_path: str) -> str:
    """A page Stripe sends the buyer back to: the caller's, if on this gateway's own origin
    (anything else would make the gateway an open redirect)."""
    base = public_url.rstrip("/")
    if url is None:
        return base + default_path
    if not (url == base or url.startswith(base + "/")):
        raise ApiError(400, f"'{name}' must start with this gateway's URL, {base}/.", param=name)
    return url


def return_urls(public_url: str, success_url: str | None, cancel_url: str | None) -> ReturnUrls:
    return ReturnUrls(
        gateway_url(
            public_url,
            "success_url",
            success_url,
            f"/?checkout=success&session_id={CHECKOUT_SESSION_PLACEHOLDER}",
        ),
        gateway_url(public_url, "cancel_url", cancel_url, "/?checkout=canceled"),
    )


class CatalogueIncomplete(RuntimeError):
    """The Stripe catalogue lacks what a purchase needs, until the operator mends it there."""


def _unavailable(catalogue: Catalogue, what: str) -> CatalogueIncomplete:
    detail = "; ".join(catalogue.issues) or "the Stripe catalogue is empty"
    return CatalogueIncomplete(f"{what} cannot be bought right now: {detail}.")


def _session_json(session: Any, **extra: Any) -> dict[str, Any]:
    return {"object": "checkout.session", "id": session.id, "url": session.url, **extra}


async def _open_session(
    client: stripe.StripeClient,
    store: LedgerStore,
    org_id: str,
    urls: ReturnUrls,
    *,
    mode: str,
    purchase: str,
    price_id: str,
    quantity: int,
    created_data: str,
    save_card: bool = False,
) -> Any:
    """A Checkout Session of the org's one customer, selling one line item.

    The org id rides in the session's metadata and in that of what the session
    creates (``created_data``: its payment intent or subscription), so every
    later event about the purchase names the org. ``save_card`` keeps the card
    for off-session payments (``setup_future_usage``): auto-recharge charges it.
    """
    customer_id = await ensure_customer(client, store, org_id)
    created: dict[str, Any] = {"metadata": {"org_id": org_id}}
    tags = {"org_id": org_id, "purchase": purchase}
    if save_card:
        created["setup_future_usage"] = "off_session"
        tags[SAVE_CARD] = "true"
    return await client.v1.checkout.sessions.create_async(
        {
            "mode": mode,
            "customer": customer_id,
            "client_reference_id": org_id,
            "line_items": [{"price": price_id, "quantity": quantity}],
            "metadata": tags,
            created_data: created,
            "success_url": urls.success_url,
            "cancel_url": urls.cancel_url,
        }
    )


async def credit_checkout(
    client: stripe.StripeClient,
    store: LedgerStore,
    catalogue: Catalogue,
    org_id: str,
    amount_units: int,
    urls: ReturnUrls,
    *,
    save_card: bool = False,
) -> dict[str, Any]:
    credit = catalogue.credit
    if credit is None:
        raise _unavailable(catalogue, "Credits")
    try:
        quantity = credit.quantity_for(amount_units)
    except PurchaseRejected as error:
        raise ApiError(
            400, f"Cannot buy that amount: {error}.", param="spus", code="invalid_quantity"
        ) from error
    session = await _open_session(
        client,
        store,
        org_id,
        urls,
        mode="payment",
        purchase="credits",
        price_id=credit.price_id,
        quantity=quantity,
        created_data="payment_intent_data",
        save_card=save_card,
    )
    return _session_json(
        session,
        save_card=save_card,
        spus=format_spus(amount_units),
        amount=credit.amount_due(quantity),
        currency=credit.currency,
    )


def _has_live_stripe_plan(account: Account) -> bool:
    return account.subscription_price_id is not None and account.subscription_status not in (
        None,
        *ENDED_STATUSES,
    )


async def subscription_checkout(
    client: stripe.StripeClient,
    store: LedgerStore,
    catalogue: Catalogue,
    org_id: str,
    tier: str,
    urls: ReturnUrls,
) -> dict[str, Any]:
    plan = catalogue.plan_for_tier(tier)
    if plan is None:
        offered = ", ".join(p.tier for p in catalogue.tiers()) or "none"
        if catalogue.product_id is None:
            raise _unavailable(catalogue, "Plans")
        raise ApiError(
            400,
            f"Unknown tier {tier!r}; tiers on sale: {offered}.",
            param="tier",
            code="unknown_tier",
        )
    account = await store.get_account(org_id)
    if account.renews_locally:
        raise ApiError(
            409,
            "This organization's plan is managed by the operator; ask them to change it.",
            code="plan_managed_by_operator",
        )
    if _has_live_stripe_plan(account):
        raise ApiError(
            409,
            f"This organization already has the {account.subscription_type} plan"
            f" ({account.subscription_status}); change or cancel it in the billing portal"
            " (POST /billing/portal).",
            code="already_subscribed",
        )
    session = await _open_session(
        client,
        store,
        org_id,
        urls,
        mode="subscription",
        purchase="subscription",
        price_id=plan.price_id,
        quantity=1,
        created_data="subscription_data",
    )
    return _session_json(
        session,
        tier=plan.tier,
        included_spus=format_spus(plan.allowance_units),
        amount=plan.unit_amount,
        currency=plan.currency,
        interval=plan.interval,
    )


async def portal_session(
    client: stripe.StripeClient, store: LedgerStore, org_id: str, return_url: str
) -> dict[str, Any]:
    customer_id = await ensure_customer(client, store, org_id)
    session = await client.v1.billing_portal.sessions.create_async(
        {"customer": customer_id, "return_url": return_url}
    )
    return {"object": "billing_portal.session", "id": session.id, "url": session.url}
