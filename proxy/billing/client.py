"""One Stripe client per process: the library's native async calls over its HTTPX client."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe

STRIPE_API_VERSION = "2026-10-28.endive"
"""The API version every request and the webhook endpoint must use: the code reads
objects in this shape (billing periods on subscription items, invoice parents)."""

STRIPE_TIMEOUT_S = 30.0
STRIPE_MAX_NETWORK_RETRIES = 2
"""Stripe retries connection errors, 409s and 5xx; POSTs carry idempotency keys, so safely."""
MAX_LISTED_OBJECTS = 10_000
"""Bound on one auto-paginated listing (100 per page)."""
PAGE_LIMIT = 100


class ListingTooLong(RuntimeError):
    """A listing went past ``MAX_LISTED_OBJECTS``; refuse rather than grow without bound."""


@dataclass(frozen=True, slots=True)
class StripeConnection:
    """The client and the HTTPX pool under it, kept together so shutdown can close the pool."""

    client: stripe.StripeClient
    http: stripe.HTTPXClient

    async def aclose(self) -> None:
        await self.http.close_async()


def connect(
    secret_key: str, *, max_network_retries: int = STRIPE_MAX_NETWORK_RETRIES
) -> StripeConnection:
    http = stripe.HTTPXClient(timeout=STRIPE_TIMEOUT_S)
    client = stripe.StripeClient(
        secret_key,
        stripe_version=STRIPE_API_VERSION,
        http_client=http,
        max_network_retries=max_network_retries,
    )
    return StripeConnection(client, http)


def as_dict(obj: Any) -> dict[str, Any]:
    """A Stripe object as the plain dict ``proxy.billing.catalogue.prices`` reads."""
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"not a Stripe object: {type(obj).__name__}")


async def list_all(first_page: Any) -> list[dict[str, Any]]:
    """Every object of a listing, following pages (Stripe returns 10 per page unless asked)."""
    objects: list[dict[str, Any]] = []
    async for obj in first_page.auto_paging_iter():
        if len(objects) == MAX_LISTED_OBJECTS:
            raise ListingTooLong(f"a Stripe listing has more than {MAX_LISTED_OBJECTS} objects")
        objects.append(as_dict(obj))
    return objects


def embedded_list(obj: Mapping[str, Any], key: str) -> list[dict[str, Any]] | None:
    """An expanded sub-list when Stripe returned all of it, else None (fetch it instead)."""
    value = obj.get(key)
    if not isinstance(value, Mapping) or value.get("has_more"):
        return None
    data = value.get("data")
    return [dict(item) for item in data] if isinstance(data, list) else None
