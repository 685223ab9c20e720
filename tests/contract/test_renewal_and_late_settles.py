"""A live call's hold is renewed by its worker; a call settled after its hold expired (swept
or not) still pays for what it used, once, however often the settlement is replayed."""

import pytest

from ledger.errors import HoldNotOpen
from ledger.models import HoldPlaced
from ledger.store import LedgerStore
from ledger.waterfall import BucketSplit
from tests.contract.conftest import FakeClock
from tests.contract.support import DETAILS, FREE_GRANT, SPU, new_org


async def test_a_renewed_hold_keeps_counting_past_its_first_expiry(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    await store.hold(org, 30 * SPU, "live", ttl_s=10)
    for _ in range(5):
        clock.advance(8)
        await store.renew_holds(["live"], 10)

    assert (await store.balance(org)).held_units == 30 * SPU
    assert await store.expire_holds() == 0
    result = await store.settle("live", 20 * SPU, DETAILS)
    assert result.record.split == BucketSplit(granted_units=20 * SPU)
    assert (await store.balance(org)).available_units == FREE_GRANT - 20 * SPU


async def test_renewal_leaves_expired_ended_and_unknown_holds_as_they_are(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    await store.hold(org, 10 * SPU, "lapsed", ttl_s=5)
    await store.hold(org, 10 * SPU, "released", ttl_s=60)
    await store.hold(org, 10 * SPU, "settled", ttl_s=60)
    await store.hold(org, 10 * SPU, "live", ttl_s=60)
    await store.release("released")
    await store.settle("settled", 10 * SPU, DETAILS)
    clock.advance(6)

    await store.renew_holds(["lapsed", "released", "settled", "live", "never-held"], 60)
    await store.renew_holds([], 60)

    # The lapsed hold stopped counting at its expiry, and renewal does not bring it back.
    assert (await store.balance(org)).held_units == 10 * SPU
    assert await store.expire_holds() == 1
    assert await store.release("released") is False
    clock.advance(58)
    assert (await store.balance(org)).held_units == 10 * SPU
    assert await store.release("live") is True


async def test_a_renewal_needs_a_positive_time_to_live(store: LedgerStore) -> None:
    org = await new_org(store)
    await store.hold(org, SPU, "req-1", ttl_s=60)
    with pytest.raises(ValueError):
        await store.renew_holds(["req-1"], 0)
    await store.release("req-1")


@pytest.mark.parametrize("swept", [False, True], ids=["before-the-sweep", "after-the-sweep"])
async def test_a_settle_after_its_hold_expired_debits_and_records_once_also_when_replayed(
    store: LedgerStore, clock: FakeClock, swept: bool
) -> None:
    org = await new_org(store)
    await store.hold(org, 30 * SPU, "late", ttl_s=10)
    clock.advance(11)
    if swept:
        assert await store.expire_holds() == 1
    # Another call takes most of what the expired hold had reserved.
    assert isinstance(await store.hold(org, 90 * SPU, "other", ttl_s=60), HoldPlaced)

    first = await store.settle("late", 25 * SPU, DETAILS)
    again = await store.settle("late", 25 * SPU, DETAILS)

    # Expired, the hold reserves nothing: the 10 SPU no hold reserves pay, the rest is debt.
    expected = BucketSplit(granted_units=10 * SPU, debt_units=15 * SPU)
    assert (first.record.split, first.replayed) == (expected, False)
    assert (again.record, again.replayed) == (first.record, True)
    [record] = await store.usage_records(org)
    assert record == first.record
    account = await store.get_account(org)
    assert (account.granted_left_units, account.debt_units) == (FREE_GRANT - 10 * SPU, 15 * SPU)
    assert (await store.balance(org)).held_units == 90 * SPU
    assert await store.expire_holds() == 0
    assert await store.release("late") is False
    assert (await store.settle("other", 90 * SPU, DETAILS)).record.split == BucketSplit(
        granted_units=90 * SPU
    )


async def test_a_released_hold_still_cannot_be_settled(store: LedgerStore) -> None:
    org = await new_org(store)
    await store.hold(org, 30 * SPU, "req-1", ttl_s=60)
    await store.release("req-1")

    with pytest.raises(HoldNotOpen):
        await store.settle("req-1", 10 * SPU, DETAILS)
    assert await store.usage_records(org) == []
