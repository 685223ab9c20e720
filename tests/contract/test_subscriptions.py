"""Plans: the waterfall's first bucket, period resets, stale updates, local renewal."""

import asyncio
from datetime import timedelta

from ledger.models import CreditKind, HoldPlaced
from ledger.store import LedgerStore
from ledger.waterfall import BucketSplit
from tests.contract.conftest import FakeClock
from tests.contract.support import (
    FREE_GRANT,
    PERIOD,
    SPU,
    at,
    new_org,
    plan,
    spend,
    subscribed_org,
)


async def test_the_waterfall_pays_subscription_then_purchased_then_granted(
    store: LedgerStore, clock: FakeClock
) -> None:
    now = at(clock())
    org = await subscribed_org(store, now, 50 * SPU)
    await store.credit_purchase("cs_1", org, 20 * SPU)

    first = await spend(store, org, 60 * SPU, "req-1")
    second = await spend(store, org, 30 * SPU, "req-2")

    assert first.record.split == BucketSplit(50 * SPU, 10 * SPU, 0)
    assert second.record.split == BucketSplit(0, 10 * SPU, 20 * SPU)
    account = await store.get_account(org)
    assert account.subscription_left_units == 0
    assert account.purchased_left_units == 0
    assert account.granted_left_units == FREE_GRANT - 20 * SPU


async def test_a_plan_sets_tier_period_and_allowance(store: LedgerStore, clock: FakeClock) -> None:
    org = await new_org(store)
    now = at(clock())

    account = await store.set_subscription(org, plan(50 * SPU, now, as_of=now, tier="team"))

    assert account.subscription_type == "team"
    assert account.subscription_status == "active"
    assert account.subscription_price_id == "price_team"
    assert (account.period_start, account.period_end) == (now, now + PERIOD)
    assert account.subscription_left_units == 50 * SPU
    assert (await store.balance(org)).available_units == FREE_GRANT + 50 * SPU


async def test_a_new_period_lapses_the_unused_allowance_and_resets_once(
    store: LedgerStore, clock: FakeClock
) -> None:
    start = at(clock())
    org = await subscribed_org(store, start, 50 * SPU)
    await spend(store, org, 30 * SPU, "req-1")

    renewed = start + PERIOD
    first = await store.set_subscription(org, plan(50 * SPU, renewed, as_of=renewed))
    again = await store.set_subscription(
        org, plan(50 * SPU, renewed, as_of=renewed + timedelta(seconds=5))
    )

    assert first.subscription_left_units == again.subscription_left_units == 50 * SPU
    assert again.period_start == renewed
    kinds = [t.kind for t in await store.credit_transactions(org)]
    assert kinds.count(CreditKind.ALLOWANCE_EXPIRED) == 1
    assert kinds.count(CreditKind.ALLOWANCE) == 2


async def test_a_new_period_set_twice_concurrently_resets_once(
    store: LedgerStore, clock: FakeClock
) -> None:
    start = at(clock())
    org = await subscribed_org(store, start, 50 * SPU)
    await spend(store, org, 30 * SPU, "req-1")
    renewed = start + PERIOD

    await asyncio.gather(
        store.set_subscription(org, plan(50 * SPU, renewed, as_of=renewed)),
        store.set_subscription(org, plan(50 * SPU, renewed, as_of=renewed + timedelta(seconds=1))),
    )

    account = await store.get_account(org)
    assert account.subscription_left_units == 50 * SPU
    assert (await store.balance(org)).available_units == FREE_GRANT + 50 * SPU
    kinds = [t.kind for t in await store.credit_transactions(org)]
    assert kinds.count(CreditKind.ALLOWANCE) == 2


async def test_an_update_older_than_the_recorded_one_is_ignored(
    store: LedgerStore, clock: FakeClock
) -> None:
    now = at(clock())
    org = await subscribed_org(store, now, 50 * SPU, tier="pro")

    stale = await store.set_subscription(
        org, plan(80 * SPU, now, as_of=now - timedelta(minutes=1), tier="max")
    )

    assert stale.subscription_type == "pro"
    assert stale.subscription_left_units == 50 * SPU
    assert (await store.get_account(org)).subscription_allowance_units == 50 * SPU


async def test_a_change_inside_the_period_keeps_what_was_used(
    store: LedgerStore, clock: FakeClock
) -> None:
    start = at(clock())
    org = await subscribed_org(store, start, 50 * SPU)
    await spend(store, org, 30 * SPU, "req-1")

    upgraded = await store.set_subscription(
        org, plan(80 * SPU, start, as_of=start + timedelta(hours=1), tier="max")
    )
    downgraded = await store.set_subscription(
        org, plan(20 * SPU, start, as_of=start + timedelta(hours=2), tier="lite")
    )

    assert upgraded.subscription_type == "max"
    assert upgraded.subscription_left_units == 50 * SPU
    assert downgraded.subscription_used_units == 30 * SPU
    assert downgraded.subscription_left_units == 0
    assert downgraded.period_start == start


async def test_ending_the_plan_lapses_only_the_allowance(
    store: LedgerStore, clock: FakeClock
) -> None:
    now = at(clock())
    org = await subscribed_org(store, now, 50 * SPU)
    await store.credit_purchase("cs_1", org, 20 * SPU)

    ended = await store.clear_subscription(org, as_of=now + timedelta(hours=1))

    assert ended.subscription_left_units == 0
    assert ended.purchased_left_units == 20 * SPU
    assert ended.granted_left_units == FREE_GRANT
    assert (await store.balance(org)).available_units == FREE_GRANT + 20 * SPU


async def test_a_stale_plan_after_the_end_is_ignored(store: LedgerStore, clock: FakeClock) -> None:
    org = await new_org(store)
    now = at(clock())
    await store.clear_subscription(org, as_of=now)

    late = await store.set_subscription(org, plan(50 * SPU, now, as_of=now - timedelta(hours=1)))

    assert late.subscription_left_units == 0


async def test_a_new_period_pays_debt_from_the_allowance_first(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store, grant_units=10 * SPU)
    await spend(store, org, 25 * SPU, "req-1", hold_units=10 * SPU)
    now = at(clock())

    account = await store.set_subscription(org, plan(50 * SPU, now, as_of=now))

    assert account.debt_units == 0
    assert account.subscription_left_units == 35 * SPU


async def test_a_locally_renewed_plan_rolls_over_once_on_the_clock(
    store: LedgerStore, clock: FakeClock
) -> None:
    start = at(clock())
    org = await subscribed_org(
        store, start, 50 * SPU, grant_units=0, tier="enterprise", renews_locally=True
    )
    await spend(store, org, 40 * SPU, "req-1")

    clock.advance(PERIOD.total_seconds() + 60)
    await spend(store, org, 5 * SPU, "req-2")
    await spend(store, org, 5 * SPU, "req-3")

    account = await store.get_account(org)
    assert (account.period_start, account.period_end) == (start + PERIOD, start + 2 * PERIOD)
    assert account.subscription_left_units == 40 * SPU
    kinds = [t.kind for t in await store.credit_transactions(org)]
    assert kinds.count(CreditKind.ALLOWANCE) == 2


async def test_a_locally_renewed_plan_skips_whole_missed_periods(
    store: LedgerStore, clock: FakeClock
) -> None:
    start = at(clock())
    org = await subscribed_org(
        store, start, 50 * SPU, grant_units=0, tier="enterprise", renews_locally=True
    )
    await spend(store, org, 50 * SPU, "req-1")

    clock.advance(2.5 * PERIOD.total_seconds())
    placed = await store.hold(org, 50 * SPU, "req-2", 60)

    assert isinstance(placed, HoldPlaced)
    account = await store.get_account(org)
    assert account.period_start == start + 2 * PERIOD
    assert account.period_end == start + 3 * PERIOD


async def test_a_stripe_plan_does_not_roll_over_on_the_clock(
    store: LedgerStore, clock: FakeClock
) -> None:
    start = at(clock())
    org = await subscribed_org(store, start, 50 * SPU, grant_units=0)
    await spend(store, org, 40 * SPU, "req-1")

    clock.advance(PERIOD.total_seconds() + 60)
    await spend(store, org, 5 * SPU, "req-2")

    account = await store.get_account(org)
    assert account.period_start == start
    assert account.subscription_left_units == 5 * SPU
