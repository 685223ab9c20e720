"""The running gateway's parts, built once per process and shared by every route."""

import asyncio
import contextlib
import importlib.util
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import Request

from ledger import LedgerStore, LedgerUnavailable, open_store, spus_to_units
from ledger.outbox import OutboxEvent, OutboxState, OutboxTopic
from pricing import PricingPolicy
from pricing.tokens import drop_idle_encodings
from proxy.alerts.delivery import AlertDelivery
from proxy.auth import Principal, TokenAuthenticator, bearer_token
from proxy.call.idempotency import Idempotency
from proxy.call.meter import Meter
from proxy.call.policy import PolicySource
from proxy.call.relay import Relay
from proxy.model_registry import ModelRegistry
from proxy.outbox.worker import OutboxWorker, retry_policy
from proxy.responses import owners
from proxy.server.give_way import GiveWay
from proxy.server.metrics import Metrics
from proxy.server.warmup import warm_up
from proxy.settings import Settings
from proxy.upstream.clients import Upstreams

if TYPE_CHECKING:
    from proxy.billing.service import StripeBilling

logger = logging.getLogger("spu.gateway")


def require_stripe() -> None:
    """Stripe mode needs the stripe library, which only the [stripe] extra installs."""
    if importlib.util.find_spec("stripe") is None:
        raise ValueError(
            "STRIPE_SECRET_KEY is set, but the stripe library is not installed: install the"
            " gateway's [stripe] extra (SPU_EXTRAS=stripe ./scripts/run.sh), or unset"
            " STRIPE_SECRET_KEY to run local-only"
        )


@dataclass
class Gateway:
    settings: Settings
    store: LedgerStore
    registry: ModelRegistry
    pricing: PolicySource
    meter: Meter
    auth: TokenAuthenticator
    upstreams: Upstreams
    relay: Relay
    metrics: Metrics
    _sweeper: "asyncio.Task[None] | None" = field(default=None, init=False)
    _renewer: "asyncio.Task[None] | None" = field(default=None, init=False)
    billing: "StripeBilling | None" = field(default=None, init=False)
    """Stripe billing; None in local-only mode (no STRIPE_SECRET_KEY)."""
    alert_delivery: AlertDelivery = field(init=False)
    alerts: OutboxWorker = field(init=False)
    """Delivers the outbox's alerts from this process."""
    give_way: GiveWay = field(default_factory=GiveWay, init=False)
    """Large request bodies' turns behind small calls (``proxy.server.give_way``)."""

    def __post_init__(self) -> None:
        if self.settings.stripe_secret_key is not None:
            require_stripe()
            # The billing package is imported in Stripe mode only: local-only mode never
            # loads stripe and its HTTP stack (memory, start-up time).
            from proxy.billing.service import StripeBilling

            self.billing = StripeBilling.from_settings(
                self.settings, self.store, self.pricing, self.metrics
            )
        self.alert_delivery = AlertDelivery(self.store, timeout_s=self.settings.alert_timeout_s)
        self.alerts = OutboxWorker(
            self.store,
            OutboxTopic.ALERT,
            self.alert_delivery.deliver,
            retries=retry_policy(self.settings),
            poll_s=self.settings.outbox_poll_s,
            on_outcome=self._alert_attempted,
        )

    async def _alert_attempted(self, event: OutboxEvent, state: OutboxState) -> None:
        outcome = {OutboxState.PENDING: "retrying"}.get(state, state.value)
        self.metrics.alert_deliveries.labels(event=event.kind.value, outcome=outcome).inc()

    @classmethod
    def build(cls, settings: Settings, store: LedgerStore | None = None) -> "Gateway":
        store = store or open_store(settings.ledger_url)
        metrics = Metrics()
        pricing = PolicySource(
            PricingPolicy(markup=settings.markup, usd_per_spu=settings.usd_per_spu)
        )
        meter = Meter(
            store,
            pricing,
            hold_ttl_s=settings.hold_ttl_s,
            call_deadline_s=settings.call_deadline_s,
            max_in_flight_per_org=settings.max_in_flight_per_org,
            metrics=metrics,
        )
        upstreams = Upstreams(
            timeout_s=settings.upstream_timeout_s,
            connect_timeout_s=settings.upstream_connect_timeout_s,
            demo_stream_delay_s=settings.demo_stream_delay_ms / 1000,
        )
        return cls(
            settings=settings,
            store=store,
            registry=ModelRegistry(settings.model_list, include_demo=settings.demo_model),
            pricing=pricing,
            meter=meter,
            auth=TokenAuthenticator(store, cache_ttl_s=settings.token_cache_ttl_s),
            upstreams=upstreams,
            relay=Relay(
                meter,
                upstreams,
                metrics,
                Idempotency(
                    keep_s=settings.idempotency_keep_s,
                    max_reply_bytes=settings.idempotency_max_reply_bytes,
                ),
            ),
            metrics=metrics,
        )

    @property
    def free_grant_units(self) -> int:
        return spus_to_units(self.settings.free_grant_spus)

    async def start(self) -> None:
        await self.store.open()
        warm_up()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="hold-sweeper")
        self._renewer = asyncio.create_task(self.meter.renewal.renew_forever(), name="hold-renewal")
        self.alerts.start()
        if self.billing is not None:
            await self.billing.start()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        # Holds are renewed until the last ending is written: a drained call keeps its hold.
        await self.meter.drain(self.settings.shutdown_grace_s)
        await self.alerts.stop()
        await self.alert_delivery.aclose()
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        await self.upstreams.aclose()
        if self.billing is not None:
            await self.billing.stop()
        await self.store.close()

    async def _sweep_forever(self) -> None:
        """Housekeeping only: expired holds already stop counting without it, the owner of a
        response its upstream no longer keeps guards nothing, and idempotency keys kept past
        their time are already free; an encoding dropped is loaded again by the next exact
        count."""
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            dropped = await asyncio.to_thread(drop_idle_encodings, self.settings.sweep_interval_s)
            if dropped:
                logger.info("dropped the encodings unused since the last sweep: %s", dropped)
            try:
                expired = await self.store.expire_holds()
                forgotten_owners = await self.store.forget_responses_before(
                    datetime.now(UTC) - owners.RETENTION
                )
                forgotten_keys = await self.store.forget_replies()
            except LedgerUnavailable:
                logger.warning("sweep skipped: ledger unavailable")
                continue
            if expired:
                logger.info("expired %d abandoned holds", expired)
            if forgotten_owners:
                logger.info("forgot the owners of %d responses past retention", forgotten_owners)
            if forgotten_keys:
                logger.info("forgot %d idempotency keys kept past their time", forgotten_keys)


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def authenticated(request: Request) -> Principal:
    """FastAPI dependency: the calling org, or 401 in the client's error shape."""
    return await gateway_of(request).auth.authenticate(bearer_token(request))
