"""Stripe billing: the catalogue, Checkout, the Billing Portal, webhooks and sync.

Optional: without ``STRIPE_SECRET_KEY`` the gateway runs in local-only mode
and every ``/billing`` route answers 503.
"""
