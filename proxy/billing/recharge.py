"""Auto-recharge on Stripe: the PaymentIntent an outbox recharge starts, and the webhook events
that end it.

The ledger wrote the recharge in the settlement that crossed the threshold,
named after that settlement, so its Stripe idempotency key names the crossing:
however many workers (or retries) try to start it, Stripe makes one
PaymentIntent. It is created off-session and confirmed at once on the
customer's default payment method (saved by a Checkout with
``setup_future_usage``). Credits arrive only with ``payment_intent.succeeded``,
credited once by the ledger. A decline, or a card that asks for an
authentication nobody is there to give (``requires_action``; the intent is
cancelled, so it cannot succeed later), fails the recharge: it is alerted and
the next attempt waits for the next crossing.
"""

import logging
from enum import StrEnum
from typing import Any

import stripe

from ledger import LedgerStore, format_spus
from ledger.outbox import OutboxEvent
from proxy.billing.catalogue.prices import PurchaseRejected, metadata, object_id
from proxy.billing.catalogue.source import CatalogueHolder, CatalogueUnavailable
from proxy.billing.webhooks.outcomes import Outcome
from proxy.outbox.worker import AttemptFailed
from proxy.server.metrics import Metrics

logger = logging.getLogger("spu.billing.recharge")

AUTO_RECHARGE = "auto_recharge"
"""The ``purchase`` metadata of an auto-recharge PaymentIntent."""


class RechargeOutcome(StrEnum):
    """Counted by ``spu_auto_recharges_total{outcome}``."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    REQUIRES_ACTION = "requires_action"
    FAILED = "failed"


def idempotency_key(recharge_id: str) -> str:
    return f"spu-{recharge_id}"


class RechargeStarter:
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

    async def start(self, event: OutboxEvent) -> None:
        """Create (or, on a retry, find again) the recharge's PaymentIntent."""
        recharge_id, amount_units = event.reference, event.amount_units
        assert recharge_id is not None and amount_units is not None
        account = await self._store.get_account(event.org_id)
        payment_method = await self._default_payment_method(account.stripe_customer_id)
        if account.stripe_customer_id is None or payment_method is None:
            await self._fail(recharge_id, "no_payment_method", None, RechargeOutcome.FAILED)
            return
        try:
            credit = (await self._catalogue.require()).credit
        except CatalogueUnavailable as error:
            raise AttemptFailed(str(error)) from error
        if credit is None:
            await self._fail(recharge_id, "no_credit_price", None, RechargeOutcome.FAILED)
            return
        try:
            quantity = credit.quantity_for(amount_units)
        except PurchaseRejected as error:
            await self._fail(recharge_id, f"amount_rejected: {error}", None, RechargeOutcome.FAILED)
            return
        params: dict[str, Any] = {
            "amount": credit.amount_due(quantity),
            "currency": credit.currency,
            "customer": account.stripe_customer_id,
            "payment_method": payment_method,
            "off_session": True,
            "confirm": True,
            "description": f"Auto-recharge of {format_spus(amount_units)} SPUs",
            "metadata": {
                "org_id": event.org_id,
                "purchase": AUTO_RECHARGE,
                "recharge_id": recharge_id,
                "spus": format_spus(amount_units),
            },
        }
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params, {"idempotency_key": idempotency_key(recharge_id)}
            )
        except stripe.CardError as error:
            body = error.json_body or {}
            declined = body.get("error", {}) if isinstance(body, dict) else {}
            reason = f"card_declined: {declined.get('decline_code') or error.code or 'declined'}"
            intent_id = object_id(declined.get("payment_intent"))
            await self._fail(recharge_id, reason, intent_id, RechargeOutcome.DECLINED)
            return
        except stripe.StripeError as error:
            raise AttemptFailed(f"Stripe did not take the PaymentIntent: {error}") from error
        await self._started(recharge_id, intent)

    async def _default_payment_method(self, customer_id: str | None) -> str | None:
        if customer_id is None:
            return None
        try:
            customer = (await self._client.v1.customers.retrieve_async(customer_id)).to_dict()
        except stripe.StripeError as error:
            raise AttemptFailed(f"Stripe did not return the customer: {error}") from error
        settings = customer.get("invoice_settings") or {}
        return object_id(settings.get("default_payment_method"))

    async def _started(self, recharge_id: str, intent: Any) -> None:
        status = intent.status
        if status in ("succeeded", "processing"):
            await self._store.recharge_started(recharge_id, intent.id)
            self._metrics.auto_recharges.labels(outcome=RechargeOutcome.STARTED.value).inc()
            return
        if status == "requires_action":
            try:
                await self._client.v1.payment_intents.cancel_async(intent.id)
            except stripe.StripeError as error:
                logger.error("could not cancel PaymentIntent %s: %s", intent.id, error)
            await self._fail(
                recharge_id, "requires_action", intent.id, RechargeOutcome.REQUIRES_ACTION
            )
            return
        await self._fail(recharge_id, f"payment_{status}", intent.id, RechargeOutcome.FAILED)

    async def _fail(
        self, recharge_id: str, reason: str, intent_id: str | None, outcome: RechargeOutcome
    ) -> None:
        if await self._store.fail_recharge(recharge_id, reason, intent_id):
            logger.warning("auto-recharge %s failed: %s", recharge_id, reason)
            self._metrics.auto_recharges.labels(outcome=outcome.value).inc()


async def payment_intent_event(
    client: stripe.StripeClient, store: LedgerStore, metrics: Metrics, kind: str, intent_id: str
) -> Outcome:
    """``payment_intent.succeeded`` or ``.payment_failed``, re-read from Stripe: an
    auto-recharge is credited once, or failed; other intents (Checkout's) are not ours."""
    intent = (await client.v1.payment_intents.retrieve_async(intent_id)).to_dict()
    tags = metadata(intent)
    recharge_id = tags.get("recharge_id")
    if tags.get("purchase") != AUTO_RECHARGE or not recharge_id:
        return Outcome.NOT_A_RECHARGE
    if intent.get("status") == "succeeded":
        result = await store.complete_recharge(recharge_id, intent_id)
        if result is None:
            logger.error(
                "PaymentIntent %s succeeded for recharge %s, which had failed",
                intent_id,
                recharge_id,
            )
            return Outcome.RECHARGE_NOT_PENDING
        if not result.applied:
            return Outcome.ALREADY_CREDITED
        metrics.auto_recharges.labels(outcome=RechargeOutcome.SUCCEEDED.value).inc()
        return Outcome.RECHARGE_CREDITED
    if kind == "payment_intent.payment_failed":
        failure = intent.get("last_payment_error") or {}
        reason = f"payment_failed: {failure.get('decline_code') or failure.get('code') or 'failed'}"
        if await store.fail_recharge(recharge_id, reason, intent_id):
            metrics.auto_recharges.labels(outcome=RechargeOutcome.DECLINED.value).inc()
        return Outcome.RECHARGE_FAILED
    return Outcome.NOT_PAID_YET
