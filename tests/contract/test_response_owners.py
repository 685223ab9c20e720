"""Who owns which stored response: recorded once, never taken over, forgotten by its owner only."""

import asyncio

import pytest

from ledger.errors import AccountNotFound
from ledger.models import ResponseOwner
from ledger.store import LedgerStore
from tests.contract.conftest import FakeClock
from tests.contract.support import at, new_org

MODEL = "gpt-5-mini"
DAY_S = 86_400.0


async def test_a_recorded_response_belongs_to_its_org_and_recording_it_again_changes_nothing(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    recorded_at = at(clock())
    assert await store.response_owner("resp_1") is None
    assert await store.record_response("resp_1", org, MODEL) is True
    clock.advance(60)
    assert await store.record_response("resp_1", org, "another-model") is True
    assert await store.response_owner("resp_1") == ResponseOwner("resp_1", org, MODEL, recorded_at)


async def test_another_org_never_takes_a_response_over(store: LedgerStore) -> None:
    owner = await new_org(store)
    other = await new_org(store, "org-2")
    assert await store.record_response("resp_1", owner, MODEL) is True
    assert await store.record_response("resp_1", other, MODEL) is False
    assert await store.forget_response("resp_1", other) is False
    found = await store.response_owner("resp_1")
    assert found is not None and found.org_id == owner


async def test_two_orgs_recording_one_id_at_once_leave_exactly_one_owner(
    store: LedgerStore,
) -> None:
    orgs = [await new_org(store, f"org-{index}") for index in range(4)]
    outcomes = await asyncio.gather(
        *(store.record_response("resp_raced", org, MODEL) for org in orgs)
    )
    assert sorted(outcomes) == [False, False, False, True]
    found = await store.response_owner("resp_raced")
    assert found is not None and found.org_id == orgs[outcomes.index(True)]


async def test_an_unknown_org_cannot_own_a_response(store: LedgerStore) -> None:
    with pytest.raises(AccountNotFound):
        await store.record_response("resp_1", "org-missing", MODEL)
    assert await store.response_owner("resp_1") is None


async def test_the_owner_forgets_a_deleted_response_once(store: LedgerStore) -> None:
    org = await new_org(store)
    await store.record_response("resp_1", org, MODEL)
    await store.record_response("resp_2", org, MODEL)
    assert await store.forget_response("resp_1", org) is True
    assert await store.forget_response("resp_1", org) is False
    assert await store.response_owner("resp_1") is None
    assert await store.response_owner("resp_2") is not None


async def test_housekeeping_forgets_the_oldest_responses_before_the_cutoff_in_batches(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    for day in range(5):
        await store.record_response(f"resp_day{day}", org, MODEL)
        clock.advance(DAY_S)
    cutoff = at(clock() - 2.5 * DAY_S)
    assert await store.forget_responses_before(cutoff, limit=2) == 2
    assert await store.response_owner("resp_day0") is None
    assert await store.response_owner("resp_day1") is None
    assert await store.forget_responses_before(cutoff, limit=0) == 0
    assert await store.forget_responses_before(cutoff) == 1
    assert await store.forget_responses_before(cutoff) == 0
    remaining = [await store.response_owner(f"resp_day{day}") for day in range(5)]
    assert [owner is not None for owner in remaining] == [False, False, False, True, True]


@pytest.mark.parametrize(
    ("response_id", "model"), [("", MODEL), ("r" * 257, MODEL), ("resp_1", "")]
)
async def test_a_malformed_record_is_refused_before_the_store_is_touched(
    store: LedgerStore, response_id: str, model: str
) -> None:
    org = await new_org(store)
    with pytest.raises(ValueError):
        await store.record_response(response_id, org, model)
    assert await store.response_owner(response_id) is None
