"""Idempotency keys on holds: a key is claimed with its call's hold, its reply is kept in the
call's settlement, and the key then answers the same request again instead of a second call."""

import asyncio

import pytest

from ledger.models import (
    HoldPlaced,
    HoldRefused,
    KeyInUse,
    KeyUse,
    ReplyKey,
    SettleResult,
    StoredReply,
)
from ledger.store import LedgerStore
from tests.contract.conftest import FakeClock
from tests.contract.support import DETAILS, FREE_GRANT, SPU, new_org

KEEP_S = 3600.0
KEY = ReplyKey("key-1", fingerprint="digest-of-the-request", keep_s=KEEP_S)
REPLY = StoredReply("application/json", b'{"id": "chatcmpl-1", "choices": []}')


async def keyed_hold(
    store: LedgerStore, org: str, request_id: str, key: ReplyKey = KEY, units: int = 10 * SPU
) -> HoldPlaced | HoldRefused | KeyInUse:
    return await store.hold(org, units, request_id, 60, reply_key=key)


async def test_a_settled_call_answers_its_key_with_the_reply_it_kept(store: LedgerStore) -> None:
    org = await new_org(store)
    assert isinstance(await keyed_hold(store, org, "req-1"), HoldPlaced)
    await store.settle("req-1", 4 * SPU, DETAILS, reply=REPLY)

    again = await keyed_hold(store, org, "req-2")

    assert again == KeyInUse("key-1", KeyUse.COMPLETED, "req-1", REPLY)
    balance = await store.balance(org)
    assert (balance.held_units, balance.available_units) == (0, FREE_GRANT - 4 * SPU)
    assert len(await store.usage_records(org)) == 1


async def test_a_reply_too_large_to_keep_still_completes_its_key(store: LedgerStore) -> None:
    org = await new_org(store)
    await keyed_hold(store, org, "req-1")
    unkept = StoredReply("text/event-stream", None)
    await store.settle("req-1", SPU, DETAILS, reply=unkept)

    assert await keyed_hold(store, org, "req-2") == KeyInUse(
        "key-1", KeyUse.COMPLETED, "req-1", unkept
    )


async def test_a_key_whose_call_runs_is_in_flight_for_every_other_request(
    store: LedgerStore,
) -> None:
    org = await new_org(store)
    await keyed_hold(store, org, "req-1")

    assert await keyed_hold(store, org, "req-2") == KeyInUse("key-1", KeyUse.IN_FLIGHT, "req-1")
    assert (await store.balance(org)).held_units == 10 * SPU
    await store.release("req-1")


async def test_the_same_key_with_another_request_is_refused_whatever_its_call_became(
    store: LedgerStore,
) -> None:
    org = await new_org(store)
    other = ReplyKey("key-1", fingerprint="digest-of-another-request", keep_s=KEEP_S)
    await keyed_hold(store, org, "req-1")

    assert await keyed_hold(store, org, "req-2", other) == KeyInUse(
        "key-1", KeyUse.OTHER_REQUEST, "req-1"
    )
    await store.release("req-1")
    assert await keyed_hold(store, org, "req-3", other) == KeyInUse(
        "key-1", KeyUse.OTHER_REQUEST, "req-1"
    )


async def test_a_retried_hold_of_the_same_request_is_the_same_hold(store: LedgerStore) -> None:
    org = await new_org(store)
    first = await keyed_hold(store, org, "req-1")
    assert await keyed_hold(store, org, "req-1") == first
    await store.release("req-1")


@pytest.mark.parametrize("ending", ["released", "expired", "swept"])
async def test_a_key_whose_call_ended_unsettled_is_free_for_a_retry(
    store: LedgerStore, clock: FakeClock, ending: str
) -> None:
    org = await new_org(store)
    await keyed_hold(store, org, "req-1")
    if ending == "released":
        await store.release("req-1")
    else:
        clock.advance(61)  # its worker died: nobody renewed its hold
        if ending == "swept":
            assert await store.expire_holds() == 1

    retry = await keyed_hold(store, org, "req-2")

    assert isinstance(retry, HoldPlaced)
    assert await keyed_hold(store, org, "req-3") == KeyInUse("key-1", KeyUse.IN_FLIGHT, "req-2")
    await store.settle("req-2", SPU, DETAILS, reply=REPLY)
    assert await keyed_hold(store, org, "req-3") == KeyInUse(
        "key-1", KeyUse.COMPLETED, "req-2", REPLY
    )


async def test_a_refused_hold_claims_nothing(store: LedgerStore) -> None:
    org = await new_org(store)

    refused = await keyed_hold(store, org, "req-1", units=FREE_GRANT + 1)

    assert isinstance(refused, HoldRefused)
    assert isinstance(await keyed_hold(store, org, "req-2"), HoldPlaced)
    await store.release("req-2")


async def test_keys_are_per_org(store: LedgerStore) -> None:
    org = await new_org(store)
    other_org = await new_org(store, "org-2")
    await keyed_hold(store, org, "req-1")

    assert isinstance(await keyed_hold(store, other_org, "req-2"), HoldPlaced)
    await store.release("req-1")
    await store.release("req-2")


async def test_a_key_is_kept_for_its_time_then_forgotten(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    await keyed_hold(store, org, "req-1")
    await store.settle("req-1", SPU, DETAILS, reply=REPLY)
    clock.advance(KEEP_S - 1)
    assert await store.forget_replies() == 0
    assert isinstance(await keyed_hold(store, org, "req-2"), KeyInUse)

    clock.advance(1)
    # Past its time the key is free at once, before any housekeeping.
    assert isinstance(await keyed_hold(store, org, "req-3"), HoldPlaced)
    await store.release("req-3")
    clock.advance(KEEP_S)
    assert await store.forget_replies() == 1
    assert await store.forget_replies() == 0


async def test_a_replayed_settlement_keeps_the_first_reply(store: LedgerStore) -> None:
    org = await new_org(store)
    await keyed_hold(store, org, "req-1")
    await store.settle("req-1", SPU, DETAILS, reply=REPLY)

    replayed = await store.settle(
        "req-1", SPU, DETAILS, reply=StoredReply("application/json", b"{}")
    )

    assert replayed.replayed
    assert await keyed_hold(store, org, "req-2") == KeyInUse(
        "key-1", KeyUse.COMPLETED, "req-1", REPLY
    )


async def test_concurrent_holds_with_one_key_place_exactly_one(store: LedgerStore) -> None:
    org = await new_org(store)

    outcomes = await asyncio.gather(*(keyed_hold(store, org, f"req-{n}") for n in range(8)))

    [placed] = [outcome for outcome in outcomes if isinstance(outcome, HoldPlaced)]
    in_flight = [outcome for outcome in outcomes if isinstance(outcome, KeyInUse)]
    assert len(in_flight) == 7
    assert {outcome.use for outcome in in_flight} == {KeyUse.IN_FLIGHT}
    assert {outcome.request_id for outcome in in_flight} == {placed.request_id}
    settled = await store.settle(placed.request_id, SPU, DETAILS, reply=REPLY)
    assert isinstance(settled, SettleResult)
    assert (await store.balance(org)).held_units == 0


async def test_an_invalid_key_is_refused_before_anything_is_written(store: LedgerStore) -> None:
    org = await new_org(store)
    with pytest.raises(ValueError):
        await keyed_hold(store, org, "req-1", ReplyKey("", "digest", KEEP_S))
    with pytest.raises(ValueError):
        await keyed_hold(store, org, "req-1", ReplyKey("k" * 256, "digest", KEEP_S))
    assert (await store.balance(org)).held_units == 0
