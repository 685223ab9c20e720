"""Ledger values built whole for tests that need one without a store."""

from dataclasses import replace
from datetime import datetime
from typing import Any

from ledger.models import Account


def account(at: datetime, **changes: Any) -> Account:
    """A free org's account created and last changed at ``at``: empty buckets, no plan."""
    fresh = Account(
        org_id="org-1",
        user_id=None,
        user_name=None,
        user_email=None,
        stripe_customer_id=None,
        subscription_type="free",
        subscription_status=None,
        subscription_price_id=None,
        subscription_item_id=None,
        subscription_allowance_units=0,
        subscription_used_units=0,
        period_start=None,
        period_end=None,
        purchased_credits_units=0,
        purchased_used_units=0,
        granted_credits_units=0,
        granted_used_units=0,
        debt_units=0,
        subscription_as_of=None,
        renews_locally=False,
        created_at=at,
        updated_at=at,
    )
    return replace(fresh, **changes)
