"""A gateway with Stripe configured, its Stripe answered by ``FakeStripe``, driven in-process.

Webhooks are signed for real (``Stripe-Signature: t=…,v1=HMAC-SHA256``) and
verified by the route; the gateway's own HTTP goes through an ASGI transport,
which respx does not intercept, while every request to api.stripe.com must
match the fake (respx refuses anything else, so no test reaches the network).
"""

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import respx

from ledger import Account, LedgerStore, spus_to_units
from proxy.app import create_app
from proxy.auth import issue_token
from proxy.billing.service import StripeBilling
from proxy.gateway import Gateway
from proxy.settings import Settings
from tests.fakes.stripe_api import FakeStripe

SECRET_KEY = "sk_test_fake_key"
WEBHOOK_SECRET = "whsec_test_4eC39HqLyjWDarjtT1zdp7dc"
PUBLIC_URL = "https://gateway.test"
PRODUCT_TAG = "doc_router"


@dataclass(frozen=True)
class SeededCatalogue:
    product: dict[str, Any]
    individual: dict[str, Any]
    team: dict[str, Any]
    credit: dict[str, Any]


def seed_catalogue(
    fake: FakeStripe, *, product_metadata: dict[str, str] | None = None
) -> SeededCatalogue:
    """Individual 5,000 SPUs/month at $20, Team 25,000 at $100, credits $1 per 100 SPUs."""
    product = fake.add_product({"product": PRODUCT_TAG, **(product_metadata or {})})
    base = {"price_type": "base"}
    individual = fake.add_price(
        product["id"],
        unit_amount=2000,
        interval="month",
        metadata={**base, "tier": "individual", "included_spus": "5000"},
    )
    team = fake.add_price(
        product["id"],
        unit_amount=10000,
        interval="month",
        metadata={**base, "tier": "team", "included_spus": "25000"},
    )
    credit = fake.add_price(
        product["id"],
        unit_amount=100,
        divide_by=100,
        metadata={"price_type": "credit", "min_spu_purchase": "100", "max_spu_purchase": "100000"},
    )
    return SeededCatalogue(product, individual, team, credit)


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """What Stripe sends: ``t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload">``."""
    signed = f"{timestamp}.".encode() + payload
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def settings_for(ledger_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ledger_url": f"sqlite:///{ledger_path}",
        "stripe_secret_key": SECRET_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_product_tag": PRODUCT_TAG,
        "public_url": PUBLIC_URL,
        "sweep_interval_s": 3600.0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class BillingHarness:
    fake: FakeStripe
    gateway: Gateway
    client: httpx.AsyncClient

    @property
    def store(self) -> LedgerStore:
        return self.gateway.store

    @property
    def billing(self) -> StripeBilling:
        assert self.gateway.billing is not None
        return self.gateway.billing

    async def new_org(self, org_id: str, *, grant_spus: int = 100) -> dict[str, str]:
        """An org with its free grant and a token; returns the auth header."""
        await self.store.create_account(org_id, free_grant_units=spus_to_units(grant_spus))
        token, _ = await issue_token(self.store, org_id)
        return {"authorization": f"Bearer {token}"}

    async def account(self, org_id: str) -> Account:
        return await self.store.get_account(org_id)

    async def deliver(
        self,
        event: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str = WEBHOOK_SECRET,
    ) -> httpx.Response:
        payload = json.dumps(event).encode()
        header = signature_header(
            payload, secret, int(time.time()) if timestamp is None else timestamp
        )
        return await self.client.post(
            "/billing/webhook",
            content=payload,
            headers={"stripe-signature": header, "content-type": "application/json"},
        )

    async def deliver_all(self, events: list[dict[str, Any]]) -> list[httpx.Response]:
        responses = [await self.deliver(event) for event in events]
        for response in responses:
            assert response.status_code == 200, response.text
        return responses


@asynccontextmanager
async def running_gateway(
    fake: FakeStripe, ledger_path: Path, **overrides: Any
) -> AsyncIterator[BillingHarness]:
    """Start a gateway (lifespan included: catalogue load, refresher, start-up sync)."""
    with respx.mock(assert_all_called=False) as router:
        fake.install(router)
        app = create_app(settings_for(ledger_path, **overrides))
        gateway: Gateway = app.state.gateway
        await gateway.start()
        try:
            if gateway.billing is not None and gateway.billing.startup is not None:
                await gateway.billing.startup
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
                yield BillingHarness(fake, gateway, client)
        finally:
            await gateway.stop()
