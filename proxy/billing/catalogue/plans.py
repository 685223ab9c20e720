"""A Stripe subscription, read as the plan the ledger records.

Since API version 2025-03-31.basil the billing period lives on each
subscription item, not on the subscription, so the period is read from the
item that holds the base price. The allowance is that price's own
``included_spus`` — archived or not — which is what grandfathers a subscriber
when a tier's newest price includes more.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from ledger.models import Subscription
from proxy.billing.catalogue.prices import (
    BASE_PRICE,
    PRICE_TYPE_KEY,
    CatalogueError,
    Json,
    metadata,
    object_id,
    plan_from_price,
)

ENTITLED_STATUSES = frozenset({"active", "trialing"})
"""Statuses that carry an allowance: paid up (or trialing). Past-due waits for payment."""
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
"""Statuses after which a subscription can never come back."""
_STATUS_PREFERENCE = ("active", "trialing", "past_due", "unpaid", "paused", "incomplete")


def base_item(subscription: Json, product_id: str) -> Json | None:
    """The subscription item holding a base price of our product, if any."""
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    for item in data or ():
        if not isinstance(item, Mapping):
            continue
        price = item.get("price")
        if (
            isinstance(price, Mapping)
            and object_id(price.get("product")) == product_id
            and metadata(price).get(PRICE_TYPE_KEY) == BASE_PRICE
        ):
            return item
    return None


def current_subscription(subscriptions: Iterable[Json], product_id: str) -> Json | None:
    """The one subscription that decides an org's plan: ours, not ended, best status, newest."""
    live = [
        s
        for s in subscriptions
        if s.get("status") not in ENDED_STATUSES and base_item(s, product_id) is not None
    ]

    def rank(subscription: Json) -> tuple[int, int, str]:
        status = str(subscription.get("status"))
        preference = (
            _STATUS_PREFERENCE.index(status)
            if status in _STATUS_PREFERENCE
            else len(_STATUS_PREFERENCE)
        )
        created = subscription.get("created")
        return -preference, created if isinstance(created, int) else 0, str(subscription.get("id"))

    return max(live, key=rank, default=None)


def _moment(item: Json, key: str, subscription_id: object) -> datetime:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogueError(
            f"subscription {subscription_id}: item {item.get('id')} has no {key}; is the"
            " webhook endpoint or client on an API version before 2025-03-31.basil?"
        )
    return datetime.fromtimestamp(value, tz=UTC)


def subscription_plan(subscription: Json, product_id: str, as_of: datetime) -> Subscription:
    """The ledger plan for a live subscription; the allowance only while entitled."""
    subscription_id = subscription.get("id")
    item = base_item(subscription, product_id)
    if item is None:
        raise CatalogueError(f"subscription {subscription_id} holds no base price of {product_id}")
    plan = plan_from_price(item["price"])
    status = str(subscription.get("status"))
    return Subscription(
        tier=plan.tier,
        allowance_units=plan.allowance_units if status in ENTITLED_STATUSES else 0,
        status=status,
        period_start=_moment(item, "current_period_start", subscription_id),
        period_end=_moment(item, "current_period_end", subscription_id),
        as_of=as_of,
        price_id=plan.price_id,
        item_id=str(item.get("id")),
    )
