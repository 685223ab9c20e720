"""An org's plan, reconciled from all its Stripe subscriptions as they are now.

Every subscription event, invoice event and sync does the same thing: list
the customer's subscriptions and apply the one that decides the plan. Reading
the current state (rather than trusting the event's snapshot) makes late,
duplicated and reordered deliveries harmless; ``as_of`` — taken before the
read — lets the ledger drop a slower, older read that lands after a newer one.
"""

import logging
from datetime import UTC, datetime

import stripe

from ledger import LedgerStore
from proxy.billing.catalogue.plans import base_item, current_subscription, subscription_plan
from proxy.billing.client import PAGE_LIMIT, list_all
from proxy.billing.webhooks.outcomes import Outcome

logger = logging.getLogger("spu.billing.subscriptions")


async def reconcile_customer(
    client: stripe.StripeClient, store: LedgerStore, product_id: str, customer_id: str
) -> Outcome:
    org_id = await store.find_org_by_stripe_customer(customer_id)
    if org_id is None:
        logger.info("customer %s belongs to no org; its subscriptions are ignored", customer_id)
        return Outcome.UNKNOWN_CUSTOMER
    as_of = datetime.now(UTC)
    subscriptions = await list_all(
        await client.v1.subscriptions.list_async(
            {"customer": customer_id, "status": "all", "limit": PAGE_LIMIT}
        )
    )
    ours = [s for s in subscriptions if base_item(s, product_id) is not None]
    account = await store.get_account(org_id)
    if account.renews_locally:
        logger.warning("org %s has an operator-managed plan; Stripe subscriptions ignored", org_id)
        return Outcome.PLAN_MANAGED_BY_OPERATOR
    current = current_subscription(ours, product_id)
    if current is None:
        if not ours and account.subscription_price_id is None:
            return Outcome.NO_PLAN
        await store.clear_subscription(org_id, as_of=as_of)
        return Outcome.PLAN_ENDED
    plan = subscription_plan(current, product_id, as_of)
    await store.set_subscription(org_id, plan)
    logger.info("org %s: plan %s (%s)", org_id, plan.tier, plan.status)
    return Outcome.PLAN_SET
