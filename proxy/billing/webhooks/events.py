"""Webhook events: each id processed once, each handler idempotent anyway.

An event is marked processed only after its handler succeeded; a crash in
between means Stripe delivers it again and the handler runs again, which is
safe because every handler re-reads Stripe and writes through the ledger's
idempotent operations (per session, per refund, per ``as_of``).
"""

import logging
from typing import Any

import stripe

from ledger import LedgerStore
from proxy.billing.catalogue.prices import object_id
from proxy.billing.catalogue.source import CatalogueHolder
from proxy.billing.purchases import credit_session, take_back_dispute, take_back_refunds
from proxy.billing.recharge import payment_intent_event
from proxy.billing.subscriptions import reconcile_customer
from proxy.billing.webhooks.outcomes import Outcome
from proxy.server.metrics import Metrics

logger = logging.getLogger("spu.billing.events")

CHECKOUT_EVENTS = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
)
SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    }
)
INVOICE_EVENTS = frozenset({"invoice.paid", "invoice.payment_succeeded"})
PAYMENT_INTENT_EVENTS = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed"})
CATALOGUE_EVENT_PREFIXES = ("product.", "price.")
HANDLED_EVENTS = (
    CHECKOUT_EVENTS
    | SUBSCRIPTION_EVENTS
    | INVOICE_EVENTS
    | PAYMENT_INTENT_EVENTS
    | {"charge.refunded", "charge.dispute.created"}
)


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills: on ``parent`` since 2025-03-31.basil."""
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    if isinstance(details, dict) and object_id(details.get("subscription")):
        return object_id(details.get("subscription"))
    return object_id(invoice.get("subscription"))


class EventHandlers:
    def __init__(
        self,
        client: stripe.StripeClient,
        store: LedgerStore,
        catalogue: CatalogueHolder,
        metrics: Metrics,
    ) -> None:
        self._client = client
        self._store = store
        self._catalogue = catalogue
        self._metrics = metrics

    async def handle(self, event: dict[str, Any]) -> Outcome:
        kind = str(event["type"])
        obj: dict[str, Any] = event["data"]["object"]
        if kind.startswith(CATALOGUE_EVENT_PREFIXES):
            await self._catalogue.refresh()
            return Outcome.CATALOGUE_REFRESHED
        if kind not in HANDLED_EVENTS:
            return Outcome.IGNORED
        if kind in PAYMENT_INTENT_EVENTS:
            return await payment_intent_event(
                self._client, self._store, self._metrics, kind, str(obj["id"])
            )
        product_id = (await self._catalogue.require()).product_id
        if product_id is None:
            raise RuntimeError(
                "no Stripe product carries the catalogue tag; see the catalogue issues"
            )
        if kind in CHECKOUT_EVENTS:
            return await self._checkout_session(product_id, str(obj["id"]))
        if kind in SUBSCRIPTION_EVENTS:
            return await self._plan(product_id, object_id(obj.get("customer")))
        if kind in INVOICE_EVENTS:
            if invoice_subscription(obj) is None:
                return Outcome.NOT_A_SUBSCRIPTION_INVOICE
            return await self._plan(product_id, object_id(obj.get("customer")))
        if kind == "charge.refunded":
            return await take_back_refunds(self._client, self._store, product_id, obj)
        return await take_back_dispute(self._client, self._store, product_id, obj)

    async def _checkout_session(self, product_id: str, session_id: str) -> Outcome:
        session = (
            await self._client.v1.checkout.sessions.retrieve_async(
                session_id, {"expand": ["line_items"]}
            )
        ).to_dict()
        if session.get("mode") == "subscription":
            return await self._plan(product_id, object_id(session.get("customer")))
        return await credit_session(self._client, self._store, product_id, session)

    async def _plan(self, product_id: str, customer_id: str | None) -> Outcome:
        if customer_id is None:
            return Outcome.NO_CUSTOMER
        return await reconcile_customer(self._client, self._store, product_id, customer_id)


async def process_event(
    store: LedgerStore, handlers: EventHandlers, event: dict[str, Any]
) -> Outcome:
    """Run an event's handler unless its id was processed; a failure raises (500: retried)."""
    event_id = str(event["id"])
    if await store.event_seen(event_id):
        return Outcome.DUPLICATE
    outcome = await handlers.handle(event)
    await store.mark_event(event_id, str(event["type"]))
    logger.info("Stripe event %s (%s): %s", event_id, event["type"], outcome.value)
    return outcome
