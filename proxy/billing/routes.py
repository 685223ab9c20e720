"""Stripe billing routes: Checkout for credits and plans, the Billing Portal, the webhook.

Mounted in Stripe mode only (local-only mode mounts ``proxy.billing_stub``).
Callers authenticate with their org token; the webhook with Stripe's signature.
"""

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import stripe
from fastapi import APIRouter, Depends, Request

from ledger import UNITS_PER_SPU, LedgerUnavailable
from ledger.checks import MAX_UNITS
from proxy.auth import Principal
from proxy.billing.catalogue.source import CatalogueUnavailable
from proxy.billing.checkout import (
    CatalogueIncomplete,
    ReturnUrls,
    credit_checkout,
    gateway_url,
    portal_session,
    return_urls,
    subscription_checkout,
)
from proxy.billing.webhooks.outcomes import Outcome
from proxy.billing.webhooks.signature import WebhookRejected, verify_event
from proxy.errors import UNTIL_RECONFIGURED_S, ApiError, bad_request, ledger_unavailable
from proxy.gateway import authenticated, gateway_of
from proxy.request_body import positive_int, read_json_object

if TYPE_CHECKING:
    from proxy.billing.service import StripeBilling

logger = logging.getLogger("spu.routes.billing")

router = APIRouter()


def stripe_billing(request: Request) -> "StripeBilling":
    billing = gateway_of(request).billing
    assert billing is not None, "billing routes are mounted in Stripe mode only"
    return billing


Billing = Annotated["StripeBilling", Depends(stripe_billing)]
Caller = Annotated[Principal, Depends(authenticated)]


@contextlib.contextmanager
def _failures_as_api_errors(billing: "StripeBilling") -> Iterator[None]:
    try:
        yield
    except LedgerUnavailable as error:
        raise ledger_unavailable() from error
    except CatalogueUnavailable as error:
        raise ApiError(
            503,
            f"{error}; try again shortly.",
            error_type="api_error",
            code="catalogue_unavailable",
            # The next request loads the catalogue again: as soon as Stripe answers.
            retry_after_s=billing.stripe_outage.retry_after_s(),
        ) from error
    except CatalogueIncomplete as error:
        raise ApiError(
            503,
            str(error),
            error_type="api_error",
            code="catalogue_incomplete",
            # Mended in Stripe, it is read again at the next scheduled refresh (or webhook).
            retry_after_s=billing.settings.stripe_catalogue_refresh_s,
        ) from error
    except stripe.StripeError as error:
        logger.error("Stripe request failed: %r", error)
        raise ApiError(
            502,
            f"Stripe did not accept the request: {error.user_message or 'no detail'}",
            error_type="api_error",
            code="stripe_error",
        ) from error


async def _optional_body(request: Request) -> dict[str, Any]:
    return await read_json_object(request) if (await request.body()).strip() else {}


def _optional_url(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"'{name}' must be a URL string.", param=name)
    return value


def _urls(billing: "StripeBilling", body: dict[str, Any]) -> ReturnUrls:
    return return_urls(
        billing.settings.public_url,
        _optional_url(body, "success_url"),
        _optional_url(body, "cancel_url"),
    )


@router.post("/billing/checkout/credits")
async def checkout_credits(
    request: Request,
    billing: Billing,
    principal: Caller,
) -> dict[str, Any]:
    """Body: ``{"spus": 1000}`` (and optional ``success_url``/``cancel_url`` on this gateway,
    and ``save_card``: keep the card for auto-recharge; by default when the org has it on)."""
    body = await read_json_object(request)
    spus = positive_int(body, "spus", limit=MAX_UNITS // UNITS_PER_SPU)
    if spus is None:
        raise bad_request("'spus' is required: how many SPUs to buy.", param="spus")
    save_card = body.get("save_card")
    if save_card is not None and not isinstance(save_card, bool):
        raise bad_request("'save_card' must be true or false.", param="save_card")
    urls = _urls(billing, body)
    with _failures_as_api_errors(billing):
        if save_card is None:
            save_card = await billing.store.auto_recharge(principal.org_id) is not None
        catalogue = await billing.catalogue.require()
        return await credit_checkout(
            billing.client,
            billing.store,
            catalogue,
            principal.org_id,
            spus * UNITS_PER_SPU,
            urls,
            save_card=save_card,
        )


@router.post("/billing/checkout/subscription")
async def checkout_subscription(
    request: Request,
    billing: Billing,
    principal: Caller,
) -> dict[str, Any]:
    """Body: ``{"tier": "individual"}`` (and optional ``success_url``/``cancel_url``)."""
    body = await read_json_object(request)
    tier = body.get("tier")
    if not isinstance(tier, str) or not tier.strip():
        raise bad_request("'tier' is required: the plan to subscribe to.", param="tier")
    urls = _urls(billing, body)
    with _failures_as_api_errors(billing):
        catalogue = await billing.catalogue.require()
        return await subscription_checkout(
            billing.client, billing.store, catalogue, principal.org_id, tier.strip(), urls
        )


@router.post("/billing/portal")
async def portal(
    request: Request,
    billing: Billing,
    principal: Caller,
) -> dict[str, Any]:
    """Body (optional): ``{"return_url": ...}`` on this gateway."""
    body = await _optional_body(request)
    return_url = gateway_url(
        billing.settings.public_url, "return_url", _optional_url(body, "return_url"), "/"
    )
    with _failures_as_api_errors(billing):
        return await portal_session(billing.client, billing.store, principal.org_id, return_url)


@router.post("/billing/webhook")
async def webhook(request: Request, billing: Billing) -> dict[str, Any]:
    secret = billing.webhook_secret
    if secret is None:
        raise ApiError(
            503,
            "The Stripe webhook is not configured (STRIPE_WEBHOOK_SECRET is not set).",
            error_type="api_error",
            code="webhook_not_configured",
            retry_after_s=UNTIL_RECONFIGURED_S,
        )
    try:
        event = verify_event(await request.body(), request.headers.get("stripe-signature"), secret)
    except WebhookRejected as error:
        raise ApiError(400, str(error), code="invalid_signature") from error
    counted = gateway_of(request).metrics.webhook_events
    try:
        outcome = await billing.receive(event)
    except Exception as error:
        # Any failure must answer 500 so Stripe delivers the event again.
        logger.exception("Stripe event %s (%s) failed", event["id"], event["type"])
        counted.labels(type=event["type"], outcome=Outcome.FAILED.value).inc()
        raise ApiError(
            500,
            f"Event {event['id']} could not be processed; Stripe will deliver it again.",
            error_type="api_error",
            code="webhook_handler_failed",
        ) from error
    counted.labels(type=event["type"], outcome=outcome.value).inc()
    return {"received": True, "id": event["id"], "type": event["type"], "outcome": outcome.value}
