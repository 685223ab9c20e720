"""Webhook authenticity: the ``Stripe-Signature`` HMAC and its timestamp, checked before
anything is read or written."""

import json
from typing import Any

import stripe

SIGNATURE_TOLERANCE_S = 300
"""Stripe's own default: older signatures are replays and are refused."""


class WebhookRejected(ValueError):
    """The payload is not a fresh, authentic Stripe event (answered 400; nothing written)."""


def verify_event(
    payload: bytes, signature: str | None, secret: str, tolerance_s: int = SIGNATURE_TOLERANCE_S
) -> dict[str, Any]:
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance_s)
    except stripe.SignatureVerificationError as error:
        raise WebhookRejected(f"Stripe signature check failed: {error.user_message}") from error
    except UnicodeDecodeError as error:
        raise WebhookRejected("the webhook body is not UTF-8") from error
    try:
        event = json.loads(payload)
    except ValueError as error:
        raise WebhookRejected("the webhook body is not JSON") from error
    data = event.get("data") if isinstance(event, dict) else None
    if (
        not isinstance(event, dict)
        or event.get("object") != "event"
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or not isinstance(data, dict)
        or not isinstance(data.get("object"), dict)
    ):
        raise WebhookRejected("the webhook body is not a Stripe event")
    return event
