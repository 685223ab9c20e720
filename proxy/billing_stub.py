"""The ``/billing`` routes of local-only mode (no ``STRIPE_SECRET_KEY``): each answers 503
``billing_not_configured``, in the OpenAI error shape, before any authentication.

Stripe mode mounts ``proxy.billing.routes`` at the same paths instead. This
module imports nothing of Stripe's, so local-only mode never loads stripe.
"""

from fastapi import APIRouter

from proxy.errors import UNTIL_RECONFIGURED_S, ApiError

BILLING_PATHS = (
    "/billing/checkout/credits",
    "/billing/checkout/subscription",
    "/billing/portal",
    "/billing/webhook",
)

router = APIRouter()


async def billing_not_configured() -> None:
    raise ApiError(
        503,
        "Stripe billing is not configured on this gateway (STRIPE_SECRET_KEY is not set):"
        " it runs in local-only mode, where the operator grants credits and sets plans.",
        error_type="api_error",
        code="billing_not_configured",
        retry_after_s=UNTIL_RECONFIGURED_S,
    )


for path in BILLING_PATHS:
    router.add_api_route(
        path,
        billing_not_configured,
        methods=["POST"],
        status_code=503,
        response_description="Local-only mode: Stripe billing is not configured",
    )
