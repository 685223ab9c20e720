"""A key's own limits: a budget per window and rpm/tpm, decided in the same step as the org's
credits, on every backend."""

from dataclasses import replace
from datetime import timedelta

from ledger.key_limits import BudgetPeriod, KeyLimits, LimitSource
from ledger.models import AccessKey, HoldPlaced, HoldRefused, RateLimited, UsageDetails
from ledger.store import LedgerStore
from tests.contract.conftest import FakeClock
from tests.contract.support import SPU, at, new_org

KEY = "key-limited"
DAY_S = 86_400


def _details(total_tokens: int = 10) -> UsageDetails:
    return UsageDetails(
        model="gpt-4o-mini", provider="openai", key_id=KEY, total_tokens=total_tokens
    )


async def _org_with_key(
    store: LedgerStore, clock: FakeClock, limits: KeyLimits, *, grant_units: int = 1000 * SPU
) -> str:
    org = await new_org(store, grant_units=grant_units)
    key = AccessKey(KEY, org, "spu_limited", "c" * 64, "limited", at(clock()), limits=limits)
    await store.add_access_key(key)
    return org


async def _hold(store: LedgerStore, org: str, units: int, request_id: str, tokens: int = 0):  # type: ignore[no-untyped-def]
    return await store.hold(org, units, request_id, 10 * DAY_S, key_id=KEY, tokens=tokens)


async def test_a_key_budget_counts_settled_spend_and_open_holds(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await _org_with_key(store, clock, KeyLimits(budget_units=10 * SPU))

    assert isinstance(await _hold(store, org, 6 * SPU, "r1"), HoldPlaced)
    refused = await _hold(store, org, 5 * SPU, "r2")
    assert refused == HoldRefused(
        "r2", org, 4 * SPU, 5 * SPU, LimitSource.KEY_BUDGET, resets_at=None
    )
    await store.settle("r1", 3 * SPU, _details())
    assert isinstance(await _hold(store, org, 5 * SPU, "r3"), HoldPlaced)
    refused = await _hold(store, org, 3 * SPU, "r4")
    assert isinstance(refused, HoldRefused) and refused.available_units == 2 * SPU
    await store.release("r3")
    assert isinstance(await _hold(store, org, 7 * SPU, "r5"), HoldPlaced)
    assert (await store.balance(org)).held_units == 7 * SPU


async def test_the_org_refuses_first_when_both_would(store: LedgerStore, clock: FakeClock) -> None:
    org = await _org_with_key(store, clock, KeyLimits(budget_units=SPU), grant_units=SPU // 2)

    refused = await _hold(store, org, 2 * SPU, "r1")

    assert refused == HoldRefused("r1", org, SPU // 2, 2 * SPU)


async def test_a_daily_budget_starts_again_each_day_but_open_holds_still_count(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await _org_with_key(
        store, clock, KeyLimits(budget_units=10 * SPU, budget_period=BudgetPeriod.DAY)
    )
    created = at(clock())
    await _hold(store, org, 8 * SPU, "r1")
    await store.settle("r1", 8 * SPU, _details())
    assert isinstance(await _hold(store, org, 2 * SPU, "r2"), HoldPlaced)
    refused = await _hold(store, org, 1, "r3")
    assert isinstance(refused, HoldRefused)
    assert refused.resets_at == created + timedelta(days=1)

    clock.advance(DAY_S)
    refused = await _hold(store, org, 9 * SPU, "r4")
    assert isinstance(refused, HoldRefused) and refused.available_units == 8 * SPU
    assert isinstance(await _hold(store, org, 8 * SPU, "r5"), HoldPlaced)
    [use] = await store.key_budget_use(org)
    assert (use.window_start, use.window_end) == (
        created + timedelta(days=1),
        created + timedelta(days=2),
    )
    assert (use.spent_units, use.held_units, use.left_units) == (0, 10 * SPU, 0)

    await store.settle("r2", 2 * SPU, _details())
    [use] = await store.key_budget_use(org)
    assert (use.spent_units, use.held_units) == (2 * SPU, 8 * SPU)


async def test_an_expired_hold_stops_counting_against_the_key(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await _org_with_key(store, clock, KeyLimits(budget_units=10 * SPU))
    await store.hold(org, 10 * SPU, "r1", 30, key_id=KEY)
    assert isinstance(await _hold(store, org, 1, "r2"), HoldRefused)

    clock.advance(31)

    assert isinstance(await _hold(store, org, 10 * SPU, "r3"), HoldPlaced)


async def test_rpm_admits_at_most_that_many_holds_in_any_minute(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await _org_with_key(store, clock, KeyLimits(rpm=3))
    for n in range(3):
        assert isinstance(await _hold(store, org, SPU, f"r{n}"), HoldPlaced)
        await store.release(f"r{n}")
        clock.advance(10)

    refused = await _hold(store, org, SPU, "r3")

    assert refused == RateLimited("r3", org, LimitSource.KEY_RPM, 3, 3, 1, 30_000)
    clock.advance(29.999)
    assert isinstance(await _hold(store, org, SPU, "r4"), RateLimited)
    clock.advance(0.001)
    assert isinstance(await _hold(store, org, SPU, "r5"), HoldPlaced)


async def test_tpm_counts_worst_cases_until_settlement_trues_them_up(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await _org_with_key(store, clock, KeyLimits(tpm=100))
    assert isinstance(await _hold(store, org, SPU, "r1", tokens=60), HoldPlaced)
    clock.advance(5)

    refused = await _hold(store, org, SPU, "r2", tokens=60)
    assert refused == RateLimited("r2", org, LimitSource.KEY_TPM, 100, 60, 60, 55_000)
    await store.settle("r1", SPU, _details(total_tokens=25))
    assert isinstance(await _hold(store, org, SPU, "r3", tokens=60), HoldPlaced)
    await store.release("r3")
    assert isinstance(await _hold(store, org, SPU, "r4", tokens=75), HoldPlaced)


async def test_a_call_bigger_than_tpm_cannot_wait_its_way_in(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await _org_with_key(store, clock, KeyLimits(tpm=100))

    refused = await _hold(store, org, SPU, "r1", tokens=101)

    assert refused == RateLimited("r1", org, LimitSource.KEY_TPM, 100, 0, 101, None)


async def test_new_limits_count_what_the_window_already_spent(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await _org_with_key(store, clock, KeyLimits())
    await _hold(store, org, 5 * SPU, "r1")
    await store.settle("r1", 5 * SPU, _details())
    await _hold(store, org, 2 * SPU, "r2")

    limits = KeyLimits(budget_units=8 * SPU, budget_period=BudgetPeriod.MONTH, rpm=50)
    key = await store.set_key_limits(org, KEY, limits)

    assert key is not None and key.limits == limits
    refused = await _hold(store, org, 2 * SPU, "r3")
    assert isinstance(refused, HoldRefused) and refused.available_units == SPU
    [listed] = await store.list_access_keys(org)
    assert listed.limits == limits
    assert await store.set_key_limits(org, "key-missing", limits) is None
    await store.settle("r2", 2 * SPU, _details())
    lowered = await store.set_key_limits(org, KEY, replace(limits, budget_units=SPU))
    assert lowered is not None
    assert isinstance(await _hold(store, org, 1, "r4"), HoldRefused)
    assert await store.set_key_limits(org, KEY, KeyLimits()) is not None
    assert isinstance(await _hold(store, org, 50 * SPU, "r5"), HoldPlaced)


async def test_keys_without_limits_and_calls_without_keys_are_not_limited(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await _org_with_key(store, clock, KeyLimits())

    for n in range(5):
        assert isinstance(await _hold(store, org, 100 * SPU, f"r{n}", tokens=10**6), HoldPlaced)
    assert isinstance(await store.hold(org, 100 * SPU, "anonymous", 60), HoldPlaced)
    assert await store.key_budget_use(org) == []
