"""The Stripe side of one gateway process: client, catalogue, event handlers, tasks, routes."""

import asyncio
import contextlib
import logging
from typing import Any

import stripe
from pydantic import SecretStr

from ledger import LedgerError, LedgerStore
from ledger.outbox import OutboxEvent, OutboxState, OutboxTopic
from proxy.billing import routes
from proxy.billing.catalogue.prices import Catalogue
from proxy.billing.catalogue.source import CatalogueHolder
from proxy.billing.client import ListingTooLong, StripeConnection, connect
from proxy.billing.recharge import RechargeStarter
from proxy.billing.sync import SyncReport, sync_all
from proxy.billing.webhooks.events import EventHandlers, process_event
from proxy.billing.webhooks.outcomes import Outcome
from proxy.call.policy import PolicySource
from proxy.outages import Outage
from proxy.outbox.worker import OutboxWorker, retry_policy
from proxy.server.metrics import Metrics
from proxy.settings import Settings

logger = logging.getLogger("spu.billing")


def secret_value(secret: SecretStr | None) -> str | None:
    """A configured secret, treating an empty variable (``STRIPE_SECRET_KEY=``) as unset."""
    value = secret.get_secret_value().strip() if secret is not None else ""
    return value or None


class StripeBilling:
    router = routes.router
    """The ``/billing`` routes the gateway mounts in Stripe mode."""

    def __init__(
        self,
        settings: Settings,
        store: LedgerStore,
        pricing: PolicySource,
        connection: StripeConnection,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = connection.client
        self._connection = connection
        self._pricing = pricing
        self.catalogue = CatalogueHolder(
            self.client, settings.stripe_product_tag, on_change=self._apply_policy
        )
        self.handlers = EventHandlers(self.client, store, self.catalogue, metrics)
        self._metrics = metrics
        self.recharges = OutboxWorker(
            store,
            OutboxTopic.RECHARGE,
            RechargeStarter(self.client, store, self.catalogue, metrics).start,
            retries=retry_policy(settings),
            poll_s=settings.outbox_poll_s,
            on_outcome=self._recharge_attempted,
        )
        self.stripe_outage = Outage()
        """Times the catalogue could not be loaded from Stripe (the advice of its 503s)."""
        self._refresher: asyncio.Task[None] | None = None
        self.startup: asyncio.Task[SyncReport | None] | None = None
        """Catalogue load, then the sync of every org; its result is the sync report."""

    @classmethod
    def from_settings(
        cls, settings: Settings, store: LedgerStore, pricing: PolicySource, metrics: Metrics
    ) -> "StripeBilling | None":
        """None in local-only mode (no ``STRIPE_SECRET_KEY``)."""
        secret_key = secret_value(settings.stripe_secret_key)
        if secret_key is None:
            return None
        return cls(settings, store, pricing, connect(secret_key), metrics)

    async def _recharge_attempted(self, event: OutboxEvent, state: OutboxState) -> None:
        """A recharge Stripe never took, after every retry: it fails (and stops counting
        against the cap); the next waits for the next crossing."""
        if state is OutboxState.DEAD and event.reference is not None:
            if await self.store.fail_recharge(event.reference, "stripe_unreachable"):
                self._metrics.auto_recharges.labels(outcome="failed").inc()

    @property
    def webhook_secret(self) -> str | None:
        return secret_value(self.settings.stripe_webhook_secret)

    async def start(self) -> None:
        """Load the catalogue and sync every org in the background, so that a slow or
        unreachable Stripe never holds up start-up; then refresh on a schedule."""
        self.startup = asyncio.create_task(self._start_up(), name="stripe-start-up")
        self.recharges.start()
        self._refresher = asyncio.create_task(
            self.catalogue.refresh_forever(self.settings.stripe_catalogue_refresh_s),
            name="stripe-catalogue-refresh",
        )

    async def stop(self) -> None:
        await self.recharges.stop()
        for task in (self._refresher, self.startup):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._connection.aclose()

    async def receive(self, event: dict[str, Any]) -> Outcome:
        return await process_event(self.store, self.handlers, event)

    async def _start_up(self) -> SyncReport | None:
        """Every failure is logged here: the gateway runs on and the schedule retries."""
        catalogue = await self.catalogue.refresh_logged()
        if catalogue is None or catalogue.product_id is None:
            logger.warning("start-up Stripe sync skipped: no catalogue")
            return None
        try:
            report = await sync_all(self.client, self.store, catalogue.product_id)
        except (stripe.StripeError, ListingTooLong, LedgerError) as error:
            logger.error("start-up Stripe sync failed: %s", error)
            return None
        logger.info(
            "start-up Stripe sync: %d org(s), %d session(s) credited, %d failure(s)",
            report.orgs,
            report.sessions_credited,
            len(report.failures),
        )
        return report

    def _apply_policy(self, catalogue: Catalogue) -> None:
        """Product metadata ``markup``/``usd_per_spu`` reprice calls with no deploy."""
        if self._pricing.override(markup=catalogue.markup, usd_per_spu=catalogue.usd_per_spu):
            policy = self._pricing.current
            logger.info(
                "pricing policy from Stripe: markup %s, usd_per_spu %s",
                policy.markup,
                policy.usd_per_spu,
            )
