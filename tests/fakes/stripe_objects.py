"""Stripe API objects as the pinned API version returns them, built by hand for the tests.

Shapes follow Stripe's published fixtures for the current version: billing
periods on subscription items (not the subscription), an invoice's
subscription under ``parent.subscription_details``, Checkout line items as
``item`` objects carrying their full ``price``. Only fields the tests or the
gateway might read are filled; the rest keep Stripe's field names and nulls.
"""

from typing import Any

from proxy.billing.client import STRIPE_API_VERSION

Obj = dict[str, Any]


def product(product_id: str, *, metadata: dict[str, str], created: int, active: bool = True) -> Obj:
    return {
        "id": product_id,
        "object": "product",
        "active": active,
        "created": created,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": dict(metadata),
        "name": "SPU Gateway",
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": None,
    }


def price(
    price_id: str,
    *,
    product_id: str,
    unit_amount: int,
    metadata: dict[str, str],
    created: int,
    interval: str | None = None,
    divide_by: int | None = None,
    active: bool = True,
    currency: str = "usd",
) -> Obj:
    return {
        "id": price_id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": dict(metadata),
        "nickname": None,
        "product": product_id,
        "recurring": (
            {
                "interval": interval,
                "interval_count": 1,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
            if interval
            else None
        ),
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": {"divide_by": divide_by, "round": "up"} if divide_by else None,
        "type": "recurring" if interval else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def customer(customer_id: str, *, metadata: dict[str, str], created: int, email: str | None) -> Obj:
    return {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "email": email,
        "invoice_prefix": customer_id[-7:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(metadata),
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def line_item(item_id: str, *, price_obj: Obj, quantity: int, amount_total: int) -> Obj:
    return {
        "id": item_id,
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": amount_total,
        "amount_tax": 0,
        "amount_total": amount_total,
        "currency": price_obj["currency"],
        "description": "SPU Gateway",
        "metadata": {},
        "price": dict(price_obj),
        "quantity": quantity,
    }


def checkout_session(
    session_id: str,
    *,
    mode: str,
    customer_id: str | None,
    client_reference_id: str | None,
    metadata: dict[str, str],
    amount_total: int,
    created: int,
    success_url: str,
    cancel_url: str,
) -> Obj:
    return {
        "id": session_id,
        "object": "checkout.session",
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "status": None, "provider": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "customer_creation": None,
        "customer_details": None,
        "customer_email": None,
        "expires_at": created + 86_400,
        "invoice": None,
        "livemode": False,
        "locale": None,
        "metadata": dict(metadata),
        "mode": mode,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": f"https://checkout.stripe.com/c/pay/{session_id}",
    }


def subscription_item(
    item_id: str, *, price_obj: Obj, subscription_id: str, period_start: int, period_end: int
) -> Obj:
    return {
        "id": item_id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": period_start,
        "current_period_end": period_end,
        "current_period_start": period_start,
        "discounts": [],
        "metadata": {},
        "price": dict(price_obj),
        "quantity": 1,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def subscription(
    subscription_id: str,
    *,
    customer_id: str,
    item: Obj,
    created: int,
    metadata: dict[str, str],
    status: str = "active",
) -> Obj:
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "billing_cycle_anchor": item["current_period_start"],
        "billing_mode": {"type": "flexible"},
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "days_until_due": None,
        "default_payment_method": None,
        "description": None,
        "discounts": [],
        "ended_at": None,
        "items": {
            "object": "list",
            "data": [item],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": dict(metadata),
        "pending_update": None,
        "schedule": None,
        "start_date": created,
        "status": status,
        "test_clock": None,
        "trial_end": None,
        "trial_start": None,
    }


def invoice(
    invoice_id: str,
    *,
    customer_id: str,
    subscription_id: str,
    item: Obj,
    amount: int,
    billing_reason: str,
    created: int,
) -> Obj:
    period = {"start": item["current_period_start"], "end": item["current_period_end"]}
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_due": amount,
        "amount_paid": amount,
        "amount_remaining": 0,
        "attempt_count": 1,
        "attempted": True,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": f"il_{invoice_id[3:]}",
                    "object": "line_item",
                    "amount": amount,
                    "currency": "usd",
                    "invoice": invoice_id,
                    "metadata": {},
                    "parent": {
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": False,
                            "proration_details": {"credited_items": None},
                            "subscription": subscription_id,
                            "subscription_item": item["id"],
                        },
                        "type": "subscription_item_details",
                    },
                    "period": period,
                    "pricing": {
                        "price_details": {
                            "price": item["price"]["id"],
                            "product": item["price"]["product"],
                        },
                        "type": "price_details",
                        "unit_amount_decimal": str(amount),
                    },
                    "quantity": 1,
                }
            ],
            "has_more": False,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "parent": {
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription_id},
            "type": "subscription_details",
        },
        "period_end": period["start"],
        "period_start": period["start"],
        "status": "paid",
        "status_transitions": {"paid_at": created},
        "subtotal": amount,
        "total": amount,
    }


def charge(
    charge_id: str, *, amount: int, customer_id: str | None, payment_intent: str, created: int
) -> Obj:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "balance_transaction": f"txn_{charge_id[3:]}",
        "captured": True,
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "description": None,
        "disputed": False,
        "livemode": False,
        "metadata": {},
        "paid": True,
        "payment_intent": payment_intent,
        "refunded": False,
        "status": "succeeded",
    }


def refund(refund_id: str, *, charge_obj: Obj, amount: int, created: int) -> Obj:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge_obj["id"],
        "created": created,
        "currency": "usd",
        "metadata": {},
        "payment_intent": charge_obj["payment_intent"],
        "reason": "requested_by_customer",
        "status": "succeeded",
    }


def dispute(dispute_id: str, *, charge_obj: Obj, amount: int, created: int) -> Obj:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge_obj["id"],
        "created": created,
        "currency": "usd",
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge_obj["payment_intent"],
        "reason": "fraudulent",
        "status": "needs_response",
    }


def portal_session(session_id: str, *, customer_id: str, return_url: str, created: int) -> Obj:
    return {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": "bpc_test",
        "created": created,
        "customer": customer_id,
        "flow": None,
        "livemode": False,
        "locale": None,
        "on_behalf_of": None,
        "return_url": return_url,
        "url": f"https://billing.stripe.com/p/session/test_{session_id}",
    }


def event(event_id: str, *, kind: str, obj: Obj, created: int) -> Obj:
    return {
        "id": event_id,
        "object": "event",
        "api_version": STRIPE_API_VERSION,
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }
