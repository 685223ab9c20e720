"""Thousands of seeded random operations against a store and a pure model of the ledger.

Each round runs one random operation on each of a few different orgs at once
(``asyncio.gather``), so operations interleave in the store while their
outcome stays independent of the order they commit in. Between rounds the
clock moves (past hold expiries and billing periods) and the sweep runs.
After every round every touched org's balance must match the model to the
unit, and ``verify`` must find nothing.

The model below is written from the rules, not from the backend's code: it
shares no arithmetic with ``ledger`` so that a wrong rule cannot agree with
itself.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.errors import HoldNotOpen, IdempotencyConflict
from ledger.models import (
    Account,
    CreditResult,
    HoldPlaced,
    HoldRefused,
    SettleResult,
    Subscription,
    UsageDetails,
)
from ledger.store import LedgerStore
from ledger.verify import verify
from ledger.waterfall import BucketSplit
from tests.contract.conftest import FakeClock
from tests.contract.support import SPU

SEEDS = [11, 22, 33]
ROUNDS_PER_SEED = 1_000
ORGS = {"org-a": 100 * SPU, "org-b": 0, "org-c": 20 * SPU, "org-d": 5 * SPU}
HOUR_MS = 3_600_000
DETAILS = UsageDetails(model="gpt-4o-mini", provider="openai", total_tokens=1)


def _at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


@dataclass
class ModelHold:
    org_id: str
    amount: int
    expires_ms: int
    state: str = "open"
    charged: int = 0
    split: BucketSplit = field(default_factory=BucketSplit)


@dataclass
class ModelOrg:
    sub_allowance: int = 0
    sub_used: int = 0
    purchased_left: int = 0
    granted_left: int = 0
    debt: int = 0
    period: tuple[int, int] | None = None
    renews_locally: bool = False
    as_of_ms: int = 0

    @property
    def buckets(self) -> int:
        return self.sub_allowance - self.sub_used + self.purchased_left + self.granted_left

    def pay_debt(self, credit: int) -> int:
        paid = min(credit, self.debt)
        self.debt -= paid
        return paid


@dataclass
class Ledger:
    """What every balance should be, and what every operation should answer."""

    orgs: dict[str, ModelOrg]
    holds: dict[str, ModelHold] = field(default_factory=dict)
    credits: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    settled_count: int = 0

    def held(self, org_id: str, now_ms: int) -> int:
        return sum(
            h.amount
            for h in self.holds.values()
            if h.org_id == org_id and h.state == "open" and h.expires_ms > now_ms
        )

    def available(self, org_id: str, now_ms: int) -> int:
        org = self.orgs[org_id]
        return org.buckets - org.debt - self.held(org_id, now_ms)

    def renew_if_due(self, org_id: str, now_ms: int) -> None:
        org = self.orgs[org_id]
        if not org.renews_locally or org.period is None or now_ms < org.period[1]:
            return
        start, end = org.period
        length = end - start
        start += ((now_ms - end) // length + 1) * length
        org.period = (start, start + length)
        org.sub_used = org.pay_debt(org.sub_allowance)

    def hold(self, org_id: str, amount: int, rid: str, ttl_ms: int, now_ms: int) -> object:
        existing = self.holds.get(rid)
        if existing is not None:
            if (existing.org_id, existing.amount) != (org_id, amount):
                return IdempotencyConflict
            return HoldPlaced(rid, org_id, amount, _at(existing.expires_ms))
        self.renew_if_due(org_id, now_ms)
        available = self.available(org_id, now_ms)
        if amount > available:
            return HoldRefused(rid, org_id, max(available, 0), amount)
        self.holds[rid] = ModelHold(org_id, amount, now_ms + ttl_ms)
        return HoldPlaced(rid, org_id, amount, _at(now_ms + ttl_ms))

    def settle(self, rid: str, actual: int, now_ms: int) -> object:
        hold = self.holds[rid]
        org_id = hold.org_id
        if hold.state == "settled":
            if hold.charged != actual:
                return IdempotencyConflict
            return (rid, actual, hold.split, max(self.available(org_id, now_ms), 0), True)
        if hold.state == "released":
            return HoldNotOpen
        self.renew_if_due(org_id, now_ms)
        org = self.orgs[org_id]
        # Expired (swept or not), a hold reserves nothing, but the call is still paid for.
        reserved = hold.amount if hold.state == "open" and hold.expires_ms > now_ms else 0
        free = max(org.buckets - self.held(org_id, now_ms), 0)
        payable = min(actual, reserved + free)
        from_sub = min(payable, org.sub_allowance - org.sub_used)
        from_purchased = min(payable - from_sub, org.purchased_left)
        from_granted = min(payable - from_sub - from_purchased, org.granted_left)
        debt = actual - from_sub - from_purchased - from_granted
        org.sub_used += from_sub
        org.purchased_left -= from_purchased
        org.granted_left -= from_granted
        org.debt += debt
        hold.state, hold.charged = "settled", actual
        hold.split = BucketSplit(from_sub, from_purchased, from_granted, debt)
        self.settled_count += 1
        return (rid, actual, hold.split, max(self.available(org_id, now_ms), 0), False)

    def release(self, rid: str) -> bool:
        hold = self.holds[rid]
        if hold.state != "open":
            return False
        hold.state = "released"
        return True

    def expire(self, now_ms: int) -> int:
        due = [h for h in self.holds.values() if h.state == "open" and h.expires_ms <= now_ms]
        for hold in due:
            hold.state = "expired"
        return len(due)

    def credit(self, key: str, org_id: str, kind: str, amount: int) -> object:
        if key in self.credits:
            if self.credits[key][:2] != (org_id, amount):
                return IdempotencyConflict
            return (False, self.credits[key][2])
        org = self.orgs[org_id]
        if kind == "refund":
            taken = min(amount, org.purchased_left)
            org.purchased_left -= taken
            org.debt += amount - taken
            paid = 0
        else:
            paid = org.pay_debt(amount)
            if kind == "purchase":
                org.purchased_left += amount - paid
            else:
                org.granted_left += amount - paid
        self.credits[key] = (org_id, amount, paid)
        return (True, paid)

    def subscribe(self, org_id: str, plan: Subscription) -> ModelOrg:
        org = self.orgs[org_id]
        as_of = int(plan.as_of.timestamp() * 1000)
        if as_of < org.as_of_ms:
            return org
        org.as_of_ms = as_of
        start = int(plan.period_start.timestamp() * 1000)
        end = int(plan.period_end.timestamp() * 1000)
        if org.period is None or start > org.period[0]:
            org.sub_allowance = plan.allowance_units
            org.sub_used = org.pay_debt(plan.allowance_units)
            org.period = (start, end)
        else:
            effective = max(plan.allowance_units, org.sub_used)
            org.sub_used += org.pay_debt(max(effective - org.sub_allowance, 0))
            org.sub_allowance = effective
            org.period = (org.period[0], max(end, org.period[1]))
        org.renews_locally = plan.renews_locally
        return org

    def unsubscribe(self, org_id: str, as_of_ms: int) -> ModelOrg:
        org = self.orgs[org_id]
        if as_of_ms < org.as_of_ms:
            return org
        org.as_of_ms = as_of_ms
        org.sub_allowance = org.sub_used = 0
        org.period, org.renews_locally = None, False
        return org


Call = Callable[[LedgerStore], Awaitable[Any]]


def _observed(outcome: Any) -> object:
    """The parts of an answer the model predicts, in the model's shape."""
    if isinstance(outcome, BaseException):
        return type(outcome)
    if isinstance(outcome, SettleResult):
        record = outcome.record
        return (
            record.request_id,
            record.charged_units,
            record.split,
            outcome.available_units,
            outcome.replayed,
        )
    if isinstance(outcome, CreditResult):
        return (outcome.applied, outcome.transaction.debt_paid_units)
    if isinstance(outcome, Account):
        return _figures(outcome)
    return outcome


def _figures(account: Account | ModelOrg) -> tuple[int, int, int, int]:
    if isinstance(account, ModelOrg):
        return (
            account.sub_allowance - account.sub_used,
            account.purchased_left,
            account.granted_left,
            account.debt,
        )
    return (
        account.subscription_left_units,
        account.purchased_left_units,
        account.granted_left_units,
        account.debt_units,
    )


class Scenario:
    """Draws operations from a seeded generator and predicts each with the model."""

    def __init__(self, seed: int, clock: FakeClock) -> None:
        self.rng = random.Random(seed)
        self.clock = clock
        self.model = Ledger({org_id: ModelOrg(granted_left=g) for org_id, g in ORGS.items()})
        self.serial = 0

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def amount(self, most_spus: int) -> int:
        return self.rng.randrange(0, most_spus * SPU) + self.rng.choice([0, 1, 999])

    def org_holds(self, org_id: str) -> list[str]:
        return [rid for rid, h in self.model.holds.items() if h.org_id == org_id]

    def operation(self, org_id: str) -> tuple[Call, object]:
        """One random operation on ``org_id`` and the answer the model expects."""
        rng, now = self.rng, self.now_ms()
        holds = self.org_holds(org_id)
        roll = rng.random()
        if roll < 0.35 or not holds:
            if holds and rng.random() < 0.1:
                rid = rng.choice(holds)
                amount = self.model.holds[rid].amount + rng.choice([0, 0, 1])
            else:
                rid, amount = self.next_id("req"), self.amount(15)
            ttl_s = rng.choice([30, 60, 600])
            expected = self.model.hold(org_id, amount, rid, ttl_s * 1000, now)
            return (lambda s: s.hold(org_id, amount, rid, ttl_s)), expected
        if roll < 0.62:
            open_holds = [rid for rid in holds if self.model.holds[rid].state == "open"]
            rid = rng.choice(open_holds if open_holds and rng.random() < 0.8 else holds)
            hold = self.model.holds[rid]
            if hold.state == "settled" and rng.random() < 0.7:
                actual = hold.charged
            else:
                actual = rng.choice(
                    [0, hold.amount // 2, hold.amount, hold.amount + self.amount(5)]
                )
            expected = self.model.settle(rid, actual, now)
            return (lambda s: s.settle(rid, actual, DETAILS)), expected
        if roll < 0.72:
            rid = rng.choice(holds)
            return (lambda s: s.release(rid)), self.model.release(rid)
        if roll < 0.88:
            return self.credit(org_id)
        return self.subscription(org_id)

    def credit(self, org_id: str) -> tuple[Call, object]:
        rng = self.rng
        kind = rng.choice(["purchase", "purchase", "grant", "refund"])
        earlier = [k for k, v in self.model.credits.items() if v[0] == org_id and kind in k]
        if earlier and rng.random() < 0.3:
            key = rng.choice(earlier)
            amount = self.model.credits[key][1] + rng.choice([0, 0, 0, SPU])
        else:
            key, amount = self.next_id(kind), 1 + self.amount(60)
        expected = self.model.credit(key, org_id, kind, amount)
        if kind == "purchase":
            return (lambda s: s.credit_purchase(key, org_id, amount)), expected
        if kind == "grant":
            return (lambda s: s.grant(org_id, amount, "promo", key)), expected
        return (lambda s: s.refund_purchase(key, org_id, amount, "refund")), expected

    def subscription(self, org_id: str) -> tuple[Call, object]:
        rng, now = self.rng, self.now_ms()
        org = self.model.orgs[org_id]
        choice = rng.random()
        if choice < 0.15:
            as_of = max(now, org.as_of_ms + 1)
            expected = _figures(self.model.unsubscribe(org_id, as_of))
            return (lambda s: s.clear_subscription(org_id, as_of=_at(as_of))), expected
        stale = choice < 0.3 and org.as_of_ms > 0
        as_of = org.as_of_ms - 1_000 if stale else max(now, org.as_of_ms + 1)
        same_period = org.period is not None and rng.random() < 0.4
        start = org.period[0] if org.period and same_period else max(now, as_of)
        if org.period is not None and not same_period:
            start = max(start, org.period[0] + 1)
        length = rng.choice([HOUR_MS, 24 * HOUR_MS])
        # Ends after now, so no period is left waiting for a hold to notice its end.
        end = max(start, now) + length
        plan = Subscription(
            tier=rng.choice(["pro", "team"]),
            allowance_units=rng.choice([0, 10 * SPU, 50 * SPU]) + self.amount(5),
            status="active",
            period_start=_at(start),
            period_end=_at(end),
            as_of=_at(as_of),
            renews_locally=rng.random() < 0.5,
        )
        expected = _figures(self.model.subscribe(org_id, plan))
        return (lambda s: s.set_subscription(org_id, plan)), expected


async def _check_balances(store: LedgerStore, scenario: Scenario, org_ids: list[str]) -> None:
    now = scenario.now_ms()
    for org_id in org_ids:
        balance = await store.balance(org_id)
        model = scenario.model
        expected = (*_figures(model.orgs[org_id]), model.held(org_id, now))
        assert (*_figures(balance.account), balance.held_units) == expected, org_id
        assert balance.available_units == max(model.available(org_id, now), 0)
    checked, violations = await verify(store)
    assert (checked, violations) == (len(ORGS), [])


async def _move_time(store: LedgerStore, scenario: Scenario) -> None:
    """Advance the clock, let a hold notice every ended local period, maybe sweep."""
    rng = scenario.rng
    scenario.clock.advance(rng.choice([0.5, 5, 45, 700, 3_700, 90_000]))
    now = scenario.now_ms()
    for org_id, org in scenario.model.orgs.items():
        if org.renews_locally and org.period is not None and now >= org.period[1]:
            rid = scenario.next_id("notice")
            expected = scenario.model.hold(org_id, 1, rid, 60_000, now)
            assert await store.hold(org_id, 1, rid, 60) == expected
    if rng.random() < 0.5:
        assert await store.expire_holds() == scenario.model.expire(now)


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_operations_match_the_model_and_keep_invariants(
    store: LedgerStore, clock: FakeClock, seed: int
) -> None:
    scenario = Scenario(seed, clock)
    for org_id, grant in ORGS.items():
        await store.create_account(org_id, free_grant_units=grant)

    for _ in range(ROUNDS_PER_SEED):
        if scenario.rng.random() < 0.2:
            await _move_time(store, scenario)
            await _check_balances(store, scenario, list(ORGS))
        org_ids = scenario.rng.sample(list(ORGS), scenario.rng.randint(1, 3))
        planned = [scenario.operation(org_id) for org_id in org_ids]
        outcomes = await asyncio.gather(
            *(call(store) for call, _ in planned), return_exceptions=True
        )
        for (_, expected), outcome in zip(planned, outcomes, strict=True):
            assert _observed(outcome) == expected
        await _check_balances(store, scenario, org_ids)

    usage = await store.usage_records(None, limit=100_000)
    assert len(usage) == scenario.model.settled_count
