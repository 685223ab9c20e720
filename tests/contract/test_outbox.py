"""Balance watches and the outbox: a crossing settlement writes each alert and each recharge
once, in its own transaction; credits re-arm; workers claim, retry and dead-letter events."""

import asyncio
from datetime import timedelta

from ledger.models import HoldPlaced
from ledger.outbox import (
    AutoRecharge,
    EventKind,
    OutboxEvent,
    OutboxState,
    OutboxTopic,
    RechargeState,
)
from ledger.store import LedgerStore
from tests.contract.conftest import FakeClock
from tests.contract.support import DETAILS, SPU, at, new_org, spend

URL = "https://alerts.example.test/hook"


async def _alerts(store: LedgerStore) -> list[tuple[str, int | None]]:
    claimed = await store.claim_outbox(OutboxTopic.ALERT, limit=100, lease_s=60)
    for event in claimed:
        await store.outbox_delivered(event.event_id)
    return [(event.kind.value, event.threshold_units) for event in claimed]


async def _recharges(store: LedgerStore) -> list[OutboxEvent]:
    """The recharges to start, handed to this worker and marked done."""
    claimed = await store.claim_outbox(OutboxTopic.RECHARGE, limit=100, lease_s=60)
    for event in claimed:
        await store.outbox_delivered(event.event_id)
    return claimed


async def test_each_threshold_alerts_once_per_crossing_and_a_credit_rearms_it(
    store: LedgerStore,
) -> None:
    org = await new_org(store, grant_units=100 * SPU)
    settings, created = await store.set_alerts(org, URL, [50 * SPU, 20 * SPU], "whsec_1")
    again, created_again = await store.set_alerts(org, URL, [20 * SPU, 50 * SPU], "whsec_2")
    assert (created, created_again) == (True, False)
    assert settings.secret == again.secret == "whsec_1"
    assert again.thresholds_units == (20 * SPU, 50 * SPU)

    await spend(store, org, 40 * SPU, "r1")
    assert await _alerts(store) == []
    await spend(store, org, 15 * SPU, "r2")
    assert await _alerts(store) == [("balance.low", 50 * SPU)]
    await spend(store, org, 5 * SPU, "r3")
    assert await _alerts(store) == []
    await spend(store, org, 40 * SPU, "r4")
    assert sorted(await _alerts(store)) == [("balance.depleted", 1), ("balance.low", 20 * SPU)]

    await store.grant(org, 60 * SPU, "top up", "grant-1")
    await spend(store, org, 30 * SPU, "r5")
    assert await _alerts(store) == [("balance.low", 50 * SPU)]
    assert await store.clear_alerts(org)
    await spend(store, org, 30 * SPU, "r6")
    assert await _alerts(store) == []
    assert await store.alert_settings(org) is None


async def test_concurrent_settlements_crossing_the_threshold_start_one_recharge(
    store: LedgerStore,
) -> None:
    org = await new_org(store, grant_units=100 * SPU)
    await store.set_auto_recharge(org, AutoRecharge(50 * SPU, 100 * SPU, 1000 * SPU))
    for n in range(20):
        assert isinstance(await store.hold(org, 4 * SPU, f"r{n}", 60), HoldPlaced)

    await asyncio.gather(*(store.settle(f"r{n}", 4 * SPU, DETAILS) for n in range(20)))

    claimed = await store.claim_outbox(OutboxTopic.RECHARGE, limit=100, lease_s=60)
    assert [(e.kind, e.amount_units) for e in claimed] == [(EventKind.RECHARGE_START, 100 * SPU)]
    [recharge] = await store.recharges(org)
    assert (recharge.recharge_id, recharge.state) == (claimed[0].reference, RechargeState.PENDING)


async def test_a_recharge_credits_once_alerts_and_the_monthly_cap_holds(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store, grant_units=100 * SPU)
    await store.set_alerts(org, URL, [], "whsec_1")
    await store.set_auto_recharge(org, AutoRecharge(50 * SPU, 60 * SPU, 120 * SPU))

    await spend(store, org, 60 * SPU, "r1")
    [first] = await _recharges(store)
    assert first.reference is not None
    await store.recharge_started(first.reference, "pi_1")
    credited = await store.complete_recharge(first.reference, "pi_1")
    replayed = await store.complete_recharge(first.reference, "pi_1")
    assert credited is not None and credited.applied
    assert replayed is not None and not replayed.applied
    assert (await store.get_account(org)).purchased_credits_units == 60 * SPU
    assert await _alerts(store) == [("auto_recharge.succeeded", None)]

    await spend(store, org, 60 * SPU, "r2")
    [second] = await _recharges(store)
    assert second.reference is not None
    assert await store.fail_recharge(second.reference, "card_declined", "pi_2")
    assert not await store.fail_recharge(second.reference, "card_declined", "pi_2")
    assert await store.complete_recharge(second.reference, "pi_2") is None
    [failed] = await store.alert_events(org, state=OutboxState.PENDING)
    assert (failed.kind, failed.reason, failed.reference) == (
        EventKind.RECHARGE_FAILED,
        "card_declined",
        "pi_2",
    )
    await _alerts(store)

    await store.grant(org, 30 * SPU, "top up", "grant-1")
    await spend(store, org, 30 * SPU, "r3")
    [third] = await _recharges(store)
    assert third.reference is not None
    assert await store.complete_recharge(third.reference, "pi_3") is not None
    await _alerts(store)
    await spend(store, org, 60 * SPU, "r4")
    assert await _recharges(store) == []
    [capped, *_] = await store.recharges(org)
    assert (capped.state, capped.reason) == (RechargeState.FAILED, "monthly_cap_reached")
    [(kind, _)] = await _alerts(store)
    assert kind == "auto_recharge.failed"
    assert (await store.get_account(org)).purchased_credits_units == 120 * SPU

    clock.advance(40 * 86_400)
    await store.grant(org, 100 * SPU, "top up", "grant-2")
    await spend(store, org, 100 * SPU, "r5")
    assert len(await _recharges(store)) == 1


async def test_claims_lease_events_retry_them_and_keep_dead_letters(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store, grant_units=10 * SPU)
    await store.set_alerts(org, URL, [5 * SPU], "whsec_1")
    await spend(store, org, 6 * SPU, "r1")

    [event] = await store.claim_outbox(OutboxTopic.ALERT, limit=10, lease_s=30)
    assert await store.claim_outbox(OutboxTopic.ALERT, limit=10, lease_s=30) == []
    clock.advance(31)
    [again] = await store.claim_outbox(OutboxTopic.ALERT, limit=10, lease_s=30)
    assert again.event_id == event.event_id

    retry_at = at(clock()) + timedelta(seconds=10)
    assert await store.outbox_failed(event.event_id, "502", retry_at) is OutboxState.PENDING
    assert await store.claim_outbox(OutboxTopic.ALERT, limit=10, lease_s=30) == []
    clock.advance(10)
    [retried] = await store.claim_outbox(OutboxTopic.ALERT, limit=10, lease_s=30)
    assert (retried.attempts, retried.last_error) == (1, "502")
    assert await store.outbox_failed(event.event_id, "timeout", None) is OutboxState.DEAD
    assert await store.outbox_delivered(event.event_id) is False

    [dead] = await store.alert_events(org, state=OutboxState.DEAD)
    assert (dead.event_id, dead.attempts, dead.last_error) == (event.event_id, 2, "timeout")
    assert await store.requeue_outbox(org, event.event_id)
    assert not await store.requeue_outbox(org, event.event_id)
    [requeued] = await store.claim_outbox(OutboxTopic.ALERT, limit=10, lease_s=30)
    assert await store.outbox_delivered(requeued.event_id)
    assert await store.alert_events(org, state=OutboxState.PENDING) == []
