"""The catalogue as the gateway holds it: loaded at start-up, refreshed on a schedule and on
``product.*``/``price.*`` webhooks, and swapped whole so readers never see half of one."""

import asyncio
import logging
from collections.abc import Callable

import stripe

from proxy.billing.catalogue.prices import Catalogue, parse_catalogue
from proxy.billing.client import PAGE_LIMIT, ListingTooLong, list_all

logger = logging.getLogger("spu.billing.catalogue")


class CatalogueUnavailable(RuntimeError):
    """The catalogue could not be loaded from Stripe yet (unreachable, or a bad key)."""


async def fetch_catalogue(client: stripe.StripeClient, tag: str) -> Catalogue:
    """Read every product, then every price (archived included) of the tagged one."""
    products = await list_all(await client.v1.products.list_async({"limit": PAGE_LIMIT}))
    located = parse_catalogue(products, (), tag)
    if located.product_id is None:
        return located
    prices = await list_all(
        await client.v1.prices.list_async({"product": located.product_id, "limit": PAGE_LIMIT})
    )
    return parse_catalogue(products, prices, tag)


class CatalogueHolder:
    def __init__(
        self, client: stripe.StripeClient, tag: str, on_change: Callable[[Catalogue], None]
    ) -> None:
        self._client = client
        self._tag = tag
        self._on_change = on_change
        self._lock = asyncio.Lock()
        self._reported_issues: tuple[str, ...] | None = None
        self.current: Catalogue | None = None

    async def refresh(self) -> Catalogue:
        """Reload from Stripe; callers queue, so the last load follows the last change."""
        async with self._lock:
            catalogue = await fetch_catalogue(self._client, self._tag)
            self.current = catalogue
            self._report(catalogue)
            self._on_change(catalogue)
            return catalogue

    async def refresh_logged(self) -> Catalogue | None:
        """Refresh, logging (not raising) a Stripe failure: the gateway runs on without plans."""
        try:
            return await self.refresh()
        except (stripe.StripeError, ListingTooLong) as error:
            logger.error("Stripe catalogue not loaded: %s", error)
            return None

    async def require(self) -> Catalogue:
        """The catalogue, loading it now if start-up could not."""
        if self.current is not None:
            return self.current
        try:
            return await self.refresh()
        except (stripe.StripeError, ListingTooLong) as error:
            raise CatalogueUnavailable(
                f"the Stripe catalogue could not be loaded: {error}"
            ) from error

    async def refresh_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh_logged()

    def _report(self, catalogue: Catalogue) -> None:
        """Log the issues when they change, not on every scheduled refresh."""
        if catalogue.issues == self._reported_issues:
            return
        self._reported_issues = catalogue.issues
        for issue in catalogue.issues:
            logger.error("Stripe catalogue (tag %r): %s", self._tag, issue)
        tiers = ", ".join(f"{plan.tier}={plan.price_id}" for plan in catalogue.tiers())
        credit = catalogue.credit.price_id if catalogue.credit else "none"
        logger.info(
            "Stripe catalogue: product %s, plans [%s], credit price %s, %d issue(s)",
            catalogue.product_id,
            tiers,
            credit,
            len(catalogue.issues),
        )
