"""Small builders the contract tests share; they use only the ``LedgerStore`` protocol."""

from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.models import HoldPlaced, SettleResult, Subscription, UsageDetails
from ledger.store import LedgerStore
from ledger.units import UNITS_PER_SPU

SPU = UNITS_PER_SPU
FREE_GRANT = 100 * SPU
DETAILS = UsageDetails(model="gpt-4o-mini", provider="openai", prompt_tokens=10, total_tokens=10)
PERIOD = timedelta(days=30)


def at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


async def new_org(store: LedgerStore, org_id: str = "org-1", grant_units: int = FREE_GRANT) -> str:
    await store.create_account(org_id, free_grant_units=grant_units)
    return org_id


async def spend(
    store: LedgerStore,
    org_id: str,
    units: int,
    request_id: str,
    *,
    hold_units: int | None = None,
    details: UsageDetails = DETAILS,
) -> SettleResult:
    """One metered call: hold (``units`` unless told otherwise), then settle ``units``."""
    placed = await store.hold(org_id, units if hold_units is None else hold_units, request_id, 60)
    assert isinstance(placed, HoldPlaced), placed
    return await store.settle(request_id, units, details)


def plan(
    allowance_units: int,
    start: datetime,
    *,
    as_of: datetime,
    tier: str = "pro",
    length: timedelta = PERIOD,
    renews_locally: bool = False,
) -> Subscription:
    return Subscription(
        tier=tier,
        allowance_units=allowance_units,
        status="active",
        period_start=start,
        period_end=start + length,
        as_of=as_of,
        price_id=f"price_{tier}",
        item_id="si_1",
        renews_locally=renews_locally,
    )


async def subscribed_org(
    store: LedgerStore,
    start: datetime,
    allowance_units: int,
    *,
    grant_units: int = FREE_GRANT,
    **plan_options: Any,
) -> str:
    """A new org on a plan whose period starts (and that was recorded) at ``start``."""
    org_id = await new_org(store, grant_units=grant_units)
    await store.set_subscription(org_id, plan(allowance_units, start, as_of=start, **plan_options))
    return org_id
