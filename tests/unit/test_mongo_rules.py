"""The MongoDB backend's decisions over customer documents, without a server."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.models import Subscription
from ledger.mongo.documents import new_customer
from ledger.mongo.rules import period_roll, plan_end, plan_update, roll_is_due

DAY_MS = 86_400_000
START = datetime(2027, 3, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)


def _customer(**fields: Any) -> dict[str, Any]:
    return new_customer("org-1", 0, None, None, None, 0) | fields


def _plan(allowance: int, start: datetime, as_of: datetime, days: int = 30) -> Subscription:
    return Subscription(
        tier="pro",
        allowance_units=allowance,
        status="active",
        period_start=start,
        period_end=start + timedelta(days=days),
        as_of=as_of,
        price_id="price_pro",
        item_id="si_1",
    )


def _local_plan(**fields: Any) -> dict[str, Any]:
    local = {
        "renews_locally": True,
        "period_start_ms": START_MS,
        "period_end_ms": START_MS + 30 * DAY_MS,
        "subscription_allowance_units": 50,
        "subscription_used_units": 40,
    }
    return _customer(**(local | fields))


def test_only_a_locally_renewed_plan_past_its_period_end_is_due() -> None:
    end_ms = START_MS + 30 * DAY_MS

    assert roll_is_due(_local_plan(), end_ms)
    assert not roll_is_due(_local_plan(), end_ms - 1)
    assert not roll_is_due(_local_plan(renews_locally=False), end_ms)
    assert not roll_is_due(_customer(renews_locally=True), end_ms)
    assert period_roll(_local_plan(), end_ms - 1) is None


def test_a_due_roll_skips_whole_missed_periods_and_restores_the_allowance() -> None:
    now_ms = START_MS + 75 * DAY_MS  # two and a half periods later

    update = period_roll(_local_plan(debt_units=15), now_ms)

    assert update is not None
    assert update.fields["period_start_ms"] == START_MS + 60 * DAY_MS
    assert update.fields["period_end_ms"] == START_MS + 90 * DAY_MS
    assert update.fields["subscription_allowance_units"] == 50
    # The returned allowance pays the debt first; the old period's 10 unused lapse.
    assert (update.fields["subscription_used_units"], update.fields["debt_units"]) == (15, 0)
    assert (update.change.lapsed_units, update.change.credited_units) == (10, 50)
    assert update.fields["updated_at_ms"] == now_ms


def test_a_plan_older_than_the_recorded_one_changes_nothing() -> None:
    customer = _customer(subscription_as_of_ms=START_MS)

    assert plan_update(customer, _plan(50, START, START - timedelta(seconds=1)), 0) is None
    assert plan_end(customer, START_MS - 1, 0) is None
    assert plan_update(customer, _plan(50, START, START), 0) is not None


def test_a_later_period_start_resets_the_allowance() -> None:
    customer = _customer(
        subscription_allowance_units=50,
        subscription_used_units=30,
        period_start_ms=START_MS,
        period_end_ms=START_MS + 30 * DAY_MS,
    )
    renewed = START + timedelta(days=30)

    update = plan_update(customer, _plan(80, renewed, renewed), 0)

    assert update is not None
    assert (
        update.fields["subscription_allowance_units"],
        update.fields["subscription_used_units"],
    ) == (80, 0)
    assert update.fields["period_start_ms"] == START_MS + 30 * DAY_MS
    assert (update.change.lapsed_units, update.change.credited_units) == (20, 80)
    assert update.fields["subscription_as_of_ms"] == START_MS + 30 * DAY_MS


def test_a_change_inside_the_period_keeps_what_was_used_and_the_period() -> None:
    customer = _customer(
        subscription_allowance_units=50,
        subscription_used_units=30,
        period_start_ms=START_MS,
        period_end_ms=START_MS + 30 * DAY_MS,
    )

    update = plan_update(customer, _plan(20, START, START + timedelta(hours=1), days=10), 0)

    assert update is not None
    assert update.fields["subscription_allowance_units"] == 30  # never below what was used
    assert update.fields["subscription_used_units"] == 30
    assert update.fields["period_start_ms"] == START_MS
    assert update.fields["period_end_ms"] == START_MS + 30 * DAY_MS


def test_a_period_that_does_not_end_after_it_starts_is_refused() -> None:
    plan = _plan(50, START, START, days=0)

    with pytest.raises(ValueError):
        plan_update(_customer(), plan, 0)


def test_ending_a_plan_lapses_the_allowance_and_clears_the_plan() -> None:
    customer = _local_plan(subscription_type="pro", debt_units=5)

    update = plan_end(customer, START_MS + DAY_MS, START_MS + DAY_MS)

    assert update is not None
    assert update.change.lapsed_units == 10
    fields = update.fields
    assert (fields["subscription_allowance_units"], fields["subscription_used_units"]) == (0, 0)
    assert fields["debt_units"] == 5
    assert (fields["subscription_type"], fields["subscription_status"]) == ("free", "canceled")
    assert fields["period_start_ms"] is None and fields["renews_locally"] is False
