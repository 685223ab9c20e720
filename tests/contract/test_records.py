"""Usage queries, access keys and processed webhook events."""

import asyncio
from datetime import timedelta

import pytest

from ledger.errors import IdempotencyConflict
from ledger.models import AccessKey, UsageDetails, UsageTotal
from ledger.store import LedgerStore
from tests.contract.conftest import FakeClock
from tests.contract.support import SPU, at, new_org, spend

DAY_S = 86_400.0


def _call(model: str, key_id: str | None, tokens: int) -> UsageDetails:
    return UsageDetails(
        model=model,
        provider="openai",
        key_id=key_id,
        prompt_tokens=tokens,
        completion_tokens=2 * tokens,
        total_tokens=3 * tokens,
        cost_pico_usd=1_000 * tokens,
    )


async def test_usage_records_are_newest_first_and_filtered(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    other = await new_org(store, "org-2")
    started = at(clock())
    for n, model in enumerate(["gpt-4o", "gpt-4o-mini", "gpt-4o"]):
        clock.advance(60)
        await spend(store, org, (n + 1) * SPU, f"req-{n}", details=_call(model, None, 1))
    clock.advance(60)
    await spend(store, other, SPU, "other-req", details=_call("gpt-4o", None, 1))

    newest_first = await store.usage_records(org)
    assert [r.request_id for r in newest_first] == ["req-2", "req-1", "req-0"]
    assert [r.request_id for r in await store.usage_records(org, limit=1)] == ["req-2"]
    assert [r.request_id for r in await store.usage_records(org, model="gpt-4o")] == [
        "req-2",
        "req-0",
    ]
    window = await store.usage_records(
        org, start=started + timedelta(seconds=90), end=started + timedelta(seconds=150)
    )
    assert [r.request_id for r in window] == ["req-1"]
    everyone = await store.usage_records(None)
    assert [r.request_id for r in everyone] == ["other-req", "req-2", "req-1", "req-0"]


async def test_usage_totals_group_by_model_key_and_day(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    day_start = at(clock() - clock() % DAY_S)
    clock.advance(DAY_S - clock() % DAY_S + 3_600)  # one hour into the next UTC day
    await spend(store, org, 2 * SPU, "req-1", details=_call("gpt-4o", "key-a", 10))
    await spend(store, org, 3 * SPU, "req-2", details=_call("gpt-4o-mini", "key-a", 20))
    clock.advance(DAY_S)
    await spend(store, org, 4 * SPU, "req-3", details=_call("gpt-4o", None, 30))
    window = {"start": day_start, "end": day_start + timedelta(days=3)}

    by_model = await store.usage_totals(org, "model", **window)
    by_key = await store.usage_totals(org, "key", **window)
    by_day = await store.usage_totals(org, "day", **window)

    assert by_model == [
        UsageTotal("gpt-4o", 2, 40, 80, 120, 40_000, 6 * SPU),
        UsageTotal("gpt-4o-mini", 1, 20, 40, 60, 20_000, 3 * SPU),
    ]
    assert by_key == [
        UsageTotal("", 1, 30, 60, 90, 30_000, 4 * SPU),
        UsageTotal("key-a", 2, 30, 60, 90, 30_000, 5 * SPU),
    ]
    first_day = (day_start + timedelta(days=1)).strftime("%Y-%m-%d")
    second_day = (day_start + timedelta(days=2)).strftime("%Y-%m-%d")
    assert by_day == [
        UsageTotal(first_day, 2, 30, 60, 90, 30_000, 5 * SPU),
        UsageTotal(second_day, 1, 30, 60, 90, 30_000, 4 * SPU),
    ]
    assert await store.usage_totals(org, "model", start=day_start, end=day_start) == []


def _key(key_id: str, org_id: str, token_sha256: str, created_s: float) -> AccessKey:
    return AccessKey(
        key_id=key_id,
        org_id=org_id,
        prefix="spu_abcd",
        token_sha256=token_sha256,
        name=f"{key_id} name",
        created_at=at(created_s),
        expires_at=at(created_s + DAY_S),
    )


async def test_access_keys_are_found_by_hash_listed_and_revoked(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    other = await new_org(store, "org-2")
    first = _key("key-1", org, "a" * 64, clock())
    second = _key("key-2", org, "b" * 64, clock() + 1)
    await store.add_access_key(first)
    await store.add_access_key(second)
    await store.add_access_key(_key("key-3", other, "c" * 64, clock()))

    assert await store.access_key_by_hash("a" * 64) == first
    assert await store.access_key_by_hash("f" * 64) is None
    assert await store.list_access_keys(org) == [first, second]

    clock.advance(10)
    revoked = await store.revoke_access_key(org, "key-1")
    assert revoked is not None and revoked.revoked_at == at(clock())
    clock.advance(10)
    again = await store.revoke_access_key(org, "key-1")
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert await store.access_key_by_hash("a" * 64) == revoked
    assert await store.revoke_access_key(other, "key-2") is None
    assert await store.revoke_access_key(org, "key-404") is None
    assert (await store.access_key_by_hash("b" * 64)) == second


async def test_adding_a_key_again_is_a_no_op_but_a_reused_token_conflicts(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    key = _key("key-1", org, "a" * 64, clock())
    await store.add_access_key(key)

    await store.add_access_key(key)
    with pytest.raises(IdempotencyConflict):
        await store.add_access_key(_key("key-2", org, "a" * 64, clock()))

    assert await store.list_access_keys(org) == [key]


async def test_an_event_is_marked_processed_once(store: LedgerStore) -> None:
    assert await store.event_seen("evt_1") is False

    marks = await asyncio.gather(*(store.mark_event("evt_1", "invoice.paid") for _ in range(10)))

    assert sum(marks) == 1
    assert await store.event_seen("evt_1") is True
    assert await store.event_seen("evt_2") is False
